//! istiod's debug endpoints, read as `istioctl remote-clusters` reads them:
//! a port-forward to one istiod pod's monitoring port (15014), then a plain
//! HTTP/1.1 GET over the stream.
//!
//! Why not the API server's service proxy: istiod lets a debug request in
//! only from localhost or from a caller that authenticates as an XDS client
//! (`allowAuthenticatedOrLocalhost`; from 1.27.7, 1.28.4 and 1.29 an
//! authenticated caller outside the system namespace is restricted further).
//! Through the proxy the request comes from the API server with no token
//! istiod accepts: 401. Through a port-forward it is localhost inside the
//! pod, on every version.

use super::{Cluster, ClusterError};
use crate::object::ObjectRef;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::core::Selector;
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use tokio::io::DuplexStream;

/// istiod's monitoring and debug port.
pub const MONITORING_PORT: u16 = 15014;

/// One port-forward and request, at most: a stuck stream is a transient failure.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest debug answer read (clusterz is a few hundred bytes per cluster).
const MAX_BODY: usize = 16 << 20;

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

impl Cluster {
    /// istiod's registry of clusters (`debug/clusterz`), from a Running and
    /// Ready pod of the `istiod` Deployment.
    pub async fn istiod_clusterz(
        &self,
        istiod: &ObjectRef,
    ) -> Result<Vec<ClusterzRow>, ClusterError> {
        let (pod, body) = self.istiod_debug(istiod, "/debug/clusterz").await?;
        serde_json::from_slice(&body).map_err(|e| ClusterError::IstiodDebug {
            cluster: self.name.clone(),
            target: pod_target(istiod, &pod),
            message: format!("debug/clusterz is not the expected JSON: {e}"),
            transient: false,
        })
    }

    /// The body of `GET path` on the monitoring port of a Running and Ready
    /// pod of the `istiod` Deployment, and the pod asked.
    pub async fn istiod_debug(
        &self,
        istiod: &ObjectRef,
        path: &str,
    ) -> Result<(String, Bytes), ClusterError> {
        let pod = self.ready_pod_of(istiod).await?;
        let target = pod_target(istiod, &pod);
        let fail = |message: String, transient: bool| ClusterError::IstiodDebug {
            cluster: self.name.clone(),
            target: target.clone(),
            message,
            transient,
        };
        let ns = istiod.namespace.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut forward = pods
            .portforward(&pod, &[MONITORING_PORT])
            .await
            .map_err(|e| ClusterError::from_kube(&self.name, &target, e))?;
        let (Some(stream), Some(refused)) = (
            forward.take_stream(MONITORING_PORT),
            forward.take_error(MONITORING_PORT),
        ) else {
            return Err(fail("the port-forward opened no stream".into(), true));
        };
        // Boxed, so that an unfinished exchange can be dropped (and the stream closed) below.
        let mut exchange = Box::pin(get(stream, path));
        tokio::pin!(refused);
        let mut refused_done = false;
        let deadline = tokio::time::sleep(EXCHANGE_TIMEOUT);
        tokio::pin!(deadline);
        let answer = loop {
            tokio::select! {
                answer = &mut exchange => break answer,
                // The kubelet's error channel: nothing listens, the pod is not running.
                message = &mut refused, if !refused_done => match message {
                    Some(m) => break Err((format!("port-forward to {MONITORING_PORT} failed: {}", m.trim()), true)),
                    None => refused_done = true,
                },
                () = &mut deadline => break Err((format!(
                    "no answer to GET {path} within {}s", EXCHANGE_TIMEOUT.as_secs()), true)),
            }
        };
        // With the stream dropped kube closes the websocket; do not wait long for it.
        drop(exchange);
        let _ = tokio::time::timeout(Duration::from_secs(1), forward.join()).await;
        let (status, body) = answer.map_err(|(m, transient)| fail(m, transient))?;
        match status {
            200 => Ok((pod, body)),
            401 | 403 => Err(fail(
                format!(
                    "istiod refused the debug request GET {path} ({status}{}): it lets in only localhost and authenticated XDS clients",
                    snippet(&body)
                ),
                false,
            )),
            _ => Err(fail(
                format!("GET {path} answered {status}{}", snippet(&body)),
                status >= 500,
            )),
        }
    }

    /// The newest Running and Ready, not terminating, pod the Deployment selects.
    async fn ready_pod_of(&self, deployment: &ObjectRef) -> Result<String, ClusterError> {
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
        pods.items
            .into_iter()
            .filter(is_ready)
            .max_by_key(|p| {
                (
                    p.metadata.creation_timestamp.clone().map(|t| t.0),
                    p.metadata.name.clone(),
                )
            })
            .and_then(|p| p.metadata.name)
            .ok_or_else(|| ClusterError::IstiodDebug {
                cluster: self.name.clone(),
                target: object.clone(),
                message: format!("no Running and Ready pod ({selector}) to port-forward to"),
                transient: true,
            })
    }
}

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
