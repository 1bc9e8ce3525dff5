//! istiod's debug endpoints, read as `istioctl remote-clusters` reads them:
//! a port-forward to an istiod pod's monitoring port (15014), then a plain
//! HTTP/1.1 GET over the stream.
//!
//! Why not the API server's service proxy: istiod lets a debug request in
//! only from localhost or from a caller that authenticates as an XDS client
//! (`allowAuthenticatedOrLocalhost`; from 1.27.7, 1.28.4 and 1.29 an
//! authenticated caller outside the system namespace is restricted further).
//! Through the proxy the request comes from the API server with no token
//! istiod accepts: 401. Through a port-forward it is localhost inside the
//! pod, on every version.
//!
//! Why every replica: each istiod replica watches the remote clusters on
//! its own, and a proxy is served by whichever replica it connected to. One
//! replica that synced a peer says nothing of another that has not, so a
//! peer counts as synced only when every Running and Ready replica says so.

use super::{Cluster, ClusterError};
use crate::object::ObjectRef;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::core::Selector;
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::task::JoinSet;

/// istiod's monitoring and debug port.
pub const MONITORING_PORT: u16 = 15014;

/// One debug read of one pod, all of it: the port-forward's connection and
/// upgrade, the request and the whole answer. A stuck read is a transient failure.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest debug answer read (clusterz is a few hundred bytes per cluster).
const MAX_BODY: usize = 16 << 20;
/// Replicas asked at once: a large istiod Deployment gets a few port-forwards
/// at a time, not one per pod at once.
const CONCURRENT_REPLICAS: usize = 4;

/// One row of istiod's `debug/clusterz` (`cluster.DebugInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterzRow {
    /// The cluster ID istiod registered (its own, or a remote secret's).
    #[serde(rename = "ID")]
    pub id: String,
    /// `synced`, `syncing`, `timeout` or `closed`.
    #[serde(rename = "SyncStatus", default)]
    pub sync_status: String,
    /// `namespace/name` of the remote secret; `None` for istiod's own cluster.
    #[serde(rename = "SecretName", default, deserialize_with = "non_empty")]
    pub secret_name: Option<String>,
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// One replica's `debug/clusterz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaClusterz {
    /// The pod asked.
    pub pod: String,
    /// What it answered.
    pub rows: Vec<ClusterzRow>,
}

/// istiod's registry of clusters as every Running and Ready replica of its
/// Deployment reports it, in pod name order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusterz {
    /// Each replica's answer.
    pub replicas: Vec<ReplicaClusterz>,
}

/// What the replicas say of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerView {
    /// Every replica reports it `synced`.
    Synced,
    /// The first replica (in pod name order) that does not.
    Lagging {
        /// That replica's pod.
        pod: String,
        /// Its status there; `None`: not registered there at all.
        status: Option<String>,
    },
}

impl Clusterz {
    /// Whether every replica reports cluster `id` synced, else which one lags.
    pub fn peer(&self, id: &str) -> PeerView {
        for r in &self.replicas {
            let status = r.rows.iter().find(|row| row.id == id);
            if status.is_none_or(|row| row.sync_status != "synced") {
                return PeerView::Lagging {
                    pod: r.pod.clone(),
                    status: status.map(|row| row.sync_status.clone()),
                };
            }
        }
        PeerView::Synced
    }

    /// Every cluster ID some replica registered, in the order first seen.
    pub fn ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for row in self.replicas.iter().flat_map(|r| &r.rows) {
            if !out.contains(&row.id) {
                out.push(row.id.clone());
            }
        }
        out
    }
}

impl PeerView {
    /// `synced`, else the status of the lagging replica with its pod
    /// (`syncing on pod istiod-b`, `not registered on pod istiod-b`).
    pub fn describe(&self) -> String {
        match self {
            PeerView::Synced => "synced".into(),
            PeerView::Lagging { pod, status } => format!(
                "{} on pod {pod}",
                status.as_deref().unwrap_or("not registered")
            ),
        }
    }
}

impl Cluster {
    /// istiod's registry of clusters (`debug/clusterz`), from every Running
    /// and Ready pod of the `istiod` Deployment, a few at a time. Any replica
    /// that cannot be asked fails the whole read (naming its pod): its view
    /// is unknown, so no peer can be called synced.
    pub async fn istiod_clusterz(&self, istiod: &ObjectRef) -> Result<Clusterz, ClusterError> {
        let mut pending = self.ready_pods_of(istiod).await?;
        pending.reverse();
        let mut running = JoinSet::new();
        let mut replicas = Vec::new();
        let mut first_error: Option<(String, ClusterError)> = None;
        loop {
            while running.len() < CONCURRENT_REPLICAS
                && let Some(pod) = pending.pop()
            {
                let ask = DebugTarget {
                    client: self.client.clone(),
                    cluster: self.name.clone(),
                    istiod: istiod.clone(),
                    pod,
                };
                running.spawn(async move {
                    let answer = ask.clusterz(EXCHANGE_TIMEOUT).await;
                    (ask.pod, answer)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (pod, answer) = joined.map_err(|e| ClusterError::IstiodDebug {
                cluster: self.name.clone(),
                target: istiod.to_string(),
                message: format!("asking a replica failed: {e}"),
                transient: true,
            })?;
            match answer {
                Ok(rows) => replicas.push(ReplicaClusterz { pod, rows }),
                // Report the first pod by name, whichever failed first.
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(p, _)| pod < *p) {
                        first_error = Some((pod, e));
                    }
                }
            }
        }
        if let Some((_, e)) = first_error {
            return Err(e);
        }
        replicas.sort_by(|a, b| a.pod.cmp(&b.pod));
        Ok(Clusterz { replicas })
    }

    /// Every Running and Ready, not terminating, pod the Deployment selects,
    /// by name; an error when there is none.
    async fn ready_pods_of(&self, deployment: &ObjectRef) -> Result<Vec<String>, ClusterError> {
        let ns = deployment.namespace.as_deref().unwrap_or_default();
        let object = deployment.to_string();
        let d = Api::<Deployment>::namespaced(self.client.clone(), ns)
            .get(&deployment.name)
            .await
            .map_err(|e| ClusterError::from_kube(&self.name, &object, e))?;
        let invalid = |message: String| ClusterError::Invalid {
            cluster: self.name.clone(),
            object: object.clone(),
            message,
        };
        let selector = d
            .spec
            .and_then(|s| Selector::try_from(s.selector).ok())
            .filter(|s| !s.selects_all())
            .ok_or_else(|| invalid("its pod selector is missing or unusable".into()))?;
        let pods = Api::<Pod>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default().labels_from(&selector))
            .await
            .map_err(|e| ClusterError::from_kube(&self.name, &object, e))?;
        let mut names: Vec<String> = pods
            .items
            .into_iter()
            .filter(is_ready)
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(ClusterError::IstiodDebug {
                cluster: self.name.clone(),
                target: object,
                message: format!("no Running and Ready pod ({selector}) to port-forward to"),
                transient: true,
            });
        }
        Ok(names)
    }
}

/// One istiod pod to ask, owning what the ask needs (it runs on its own task).
struct DebugTarget {
    client: Client,
    cluster: String,
    istiod: ObjectRef,
    pod: String,
}

impl DebugTarget {
    fn fail(&self, message: String, transient: bool) -> ClusterError {
        ClusterError::IstiodDebug {
            cluster: self.cluster.clone(),
            target: pod_target(&self.istiod, &self.pod),
            message,
            transient,
        }
    }

    /// This pod's `debug/clusterz`.
    async fn clusterz(&self, timeout: Duration) -> Result<Vec<ClusterzRow>, ClusterError> {
        let body = self.get(DEBUG_CLUSTERZ, timeout).await?;
        serde_json::from_slice(&body).map_err(|e| {
            self.fail(
                format!("debug/clusterz is not the expected JSON: {e}"),
                false,
            )
        })
    }

    /// The body of `GET path` on the pod's monitoring port. `timeout` bounds
    /// all of it: the port-forward's connection and upgrade, the request,
    /// the answer's head and its whole body.
    async fn get(&self, path: &str, timeout: Duration) -> Result<Bytes, ClusterError> {
        let ns = self.istiod.namespace.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let target = pod_target(&self.istiod, &self.pod);
        let exchange = async {
            let mut forward = pods
                .portforward(&self.pod, &[MONITORING_PORT])
                .await
                .map_err(|e| ClusterError::from_kube(&self.cluster, &target, e))?;
            let (Some(stream), Some(refused)) = (
                forward.take_stream(MONITORING_PORT),
                forward.take_error(MONITORING_PORT),
            ) else {
                return Err(self.fail("the port-forward opened no stream".into(), true));
            };
            // Boxed, so that an unfinished request can be dropped (and the stream closed) below.
            let mut request = Box::pin(get(stream, path));
            tokio::pin!(refused);
            let mut refused_done = false;
            let answer = loop {
                tokio::select! {
                    answer = &mut request => break answer,
                    // The kubelet's error channel: nothing listens, the pod is not running.
                    message = &mut refused, if !refused_done => match message {
                        Some(m) => break Err((format!("port-forward to {MONITORING_PORT} failed: {}", m.trim()), true)),
                        None => refused_done = true,
                    },
                }
            };
            drop(request);
            Ok((answer, forward))
        };
        let (answer, forward) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                self.fail(
                    format!(
                        "no answer to GET {path} within {timeout:?} (port-forward, upgrade, request and answer together)"
                    ),
                    true,
                )
            })??;
        // With the stream dropped kube closes the websocket; do not wait long for it.
        let _ = tokio::time::timeout(Duration::from_secs(1), forward.join()).await;
        let (status, body) = answer.map_err(|(m, transient)| self.fail(m, transient))?;
        match status {
            200 => Ok(body),
            401 | 403 => Err(self.fail(
                format!(
                    "istiod refused the debug request GET {path} ({status}{}): it lets in only localhost and authenticated XDS clients",
                    snippet(&body)
                ),
                false,
            )),
            _ => Err(self.fail(
                format!("GET {path} answered {status}{}", snippet(&body)),
                status >= 500,
            )),
        }
    }
}

/// The path of istiod's registry of clusters.
const DEBUG_CLUSTERZ: &str = "/debug/clusterz";

fn pod_target(istiod: &ObjectRef, pod: &str) -> String {
    format!(
        "pod {}/{pod} ({} port {MONITORING_PORT})",
        istiod.namespace.as_deref().unwrap_or_default(),
        istiod.name
    )
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// `GET path` over the forwarded stream, as Go's net/http client sends it;
/// the status and the whole body (Content-Length or chunked).
async fn get(stream: DuplexStream, path: &str) -> Result<(u16, Bytes), (String, bool)> {
    let io_err = |what: &str, e: hyper::Error| (format!("{what}: {e}"), true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| io_err("HTTP over the port-forward", e))?;
    let request = http::Request::get(path)
        .header(http::header::HOST, format!("localhost:{MONITORING_PORT}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| (format!("cannot build GET {path}: {e}"), false))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| io_err(&format!("GET {path}"), e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| (format!("reading the answer to GET {path}: {e}"), true))?
            .to_bytes();
        Ok((status, body))
    };
    // The connection future drives the bytes. A server may close right after
    // its answer (Connection: close): then the exchange still has it to read.
    tokio::pin!(exchange);
    tokio::select! {
        answer = &mut exchange => answer,
        closed = connection => match closed {
            Ok(()) => exchange.await,
            Err(e) => Err(io_err(&format!("GET {path}"), e)),
        },
    }
}

/// A short, single-line excerpt of an error body.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    format!(": {cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusterz_rows_as_istiod_writes_them() {
        let json = r#"[
          {"ID": "cluster1", "SecretName": "", "SyncStatus": "synced"},
          {"ID": "cluster2", "SecretName": "istio-system/istio-remote-secret-cluster2", "SyncStatus": "timeout"},
          {"ID": "cluster3"}
        ]"#;
        let rows: Vec<ClusterzRow> = serde_json::from_str(json).unwrap();
        assert_eq!(rows[0].secret_name, None);
        assert_eq!(rows[0].sync_status, "synced");
        assert_eq!(
            rows[1].secret_name.as_deref(),
            Some("istio-system/istio-remote-secret-cluster2")
        );
        assert_eq!(rows[1].sync_status, "timeout");
        assert_eq!(rows[2].sync_status, "");
    }

    fn replica(pod: &str, rows: &[(&str, &str)]) -> ReplicaClusterz {
        ReplicaClusterz {
            pod: pod.into(),
            rows: rows
                .iter()
                .map(|(id, status)| ClusterzRow {
                    id: (*id).into(),
                    sync_status: (*status).into(),
                    secret_name: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_peer_is_synced_only_when_every_replica_says_so() {
        let both = Clusterz {
            replicas: vec![
                replica(
                    "istiod-a",
                    &[("cluster1", "synced"), ("cluster2", "synced")],
                ),
                replica(
                    "istiod-b",
                    &[("cluster1", "synced"), ("cluster2", "synced")],
                ),
            ],
        };
        assert_eq!(both.peer("cluster2"), PeerView::Synced);
        let one_lags = Clusterz {
            replicas: vec![
                replica(
                    "istiod-a",
                    &[("cluster1", "synced"), ("cluster2", "synced")],
                ),
                replica(
                    "istiod-b",
                    &[("cluster1", "synced"), ("cluster2", "syncing")],
                ),
            ],
        };
        let lagging = one_lags.peer("cluster2");
        assert_eq!(
            lagging,
            PeerView::Lagging {
                pod: "istiod-b".into(),
                status: Some("syncing".into())
            }
        );
        assert_eq!(lagging.describe(), "syncing on pod istiod-b");
        let one_lacks = Clusterz {
            replicas: vec![
                replica("istiod-a", &[("cluster1", "synced")]),
                replica(
                    "istiod-b",
                    &[("cluster1", "synced"), ("cluster3", "synced")],
                ),
            ],
        };
        assert_eq!(
            one_lacks.peer("cluster3").describe(),
            "not registered on pod istiod-a"
        );
        assert_eq!(one_lacks.ids(), ["cluster1", "cluster3"]);
    }

    /// A server that accepts the connection and never answers: the
    /// port-forward's upgrade hangs, and the one deadline still ends it,
    /// naming the cluster and the pod.
    #[tokio::test]
    async fn a_port_forward_that_never_answers_ends_at_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            // Hold every connection open, silent.
            while let Ok((socket, _)) = listener.accept().await {
                let _ = held_tx.send(socket);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let ask = DebugTarget {
            client: Client::try_from(config).unwrap(),
            cluster: "cluster7".into(),
            istiod: ObjectRef::deployment("istio-system", "istiod"),
            pod: "istiod-5d8f-x2".into(),
        };
        let started = std::time::Instant::now();
        let err = ask
            .clusterz(Duration::from_millis(300))
            .await
            .expect_err("a silent server gives no answer");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The server did see the connection: the deadline covered the upgrade, not only the GET.
        assert!(
            held_rx.try_recv().is_ok(),
            "no connection reached the server"
        );
        let text = err.to_string();
        assert!(
            text.contains("cluster cluster7")
                && text.contains("pod istio-system/istiod-5d8f-x2")
                && text.contains("no answer to GET /debug/clusterz within 300ms"),
            "{text}"
        );
        assert!(err.is_transient(), "{err:?}");
        server.abort();
    }

    #[test]
    fn error_bodies_are_cut_to_one_short_line() {
        assert_eq!(snippet(b""), "");
        assert_eq!(
            snippet(b"authentication\n failed\n"),
            ": authentication failed"
        );
        assert_eq!(snippet(&[b'x'; 500]).len(), 202);
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_whole_even_if_the_server_closes_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(4096);
        let serve = async move {
            let mut buf = vec![0u8; 1024];
            let n = server.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            server
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[{}\r\n1\r\n]\r\n0\r\n\r\n")
                .await
                .unwrap();
            request
        };
        let (answer, request) = tokio::join!(get(client, "/debug/clusterz"), serve);
        assert!(
            request.starts_with("GET /debug/clusterz HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("host: localhost:15014")
        );
        let (status, body) = answer.unwrap();
        assert_eq!((status, body.as_ref()), (200, b"[{}]".as_ref()));
    }
}
