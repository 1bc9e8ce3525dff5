//! What a pod's requests meet: Services through the mesh model (from the pod's cluster, with
//! its sidecar, injected or not, and its identity), API servers as a real one answers an
//! anonymous caller, and the sidecar's `quitquitquit`. What the model cannot answer says so.

use crate::cluster::ClusterInner;
use crate::istio::view::{build_view, pod_view};
use crate::mesh::{Options, Request, answer};
use crate::shell::{Host, HttpReply, HttpRequest};
use crate::status::ApiError;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// curl's own limit when `--max-time` is not given: long enough that the model's failures are
/// decided by the mesh (Envoy's timeouts, resets), not by curl.
const CURL_NO_MAX_TIME_SECS: u32 = 300;

/// The network as one pod sees it.
pub(crate) struct PodNetwork {
    pub cluster: Arc<ClusterInner>,
    /// The pod as stored (after injection).
    pub pod: Value,
    /// Where round robin starts for this pod; advanced per request.
    pub seed: u64,
    pub requests: AtomicU64,
    /// Told when the sidecar is asked to quit (`POST localhost:15020/quitquitquit`); closed
    /// for a pod the kubelet does not run.
    pub quit: mpsc::UnboundedSender<()>,
    /// Requests leave the pod directly, past its sidecar: a program in the `istio-proxy`
    /// container runs as the proxy's user, whose traffic the iptables rules do not redirect.
    pub direct: bool,
}

struct Url<'a> {
    https: bool,
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn split(url: &str) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let https = match scheme {
        "http" => false,
        "https" => true,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, if https { 443 } else { 80 }),
    };
    Some(Url {
        https,
        host,
        port,
        path,
    })
}

impl PodNetwork {
    /// The cluster whose API server `host:port` names: any cluster's `127.0.0.1:<port>` /
    /// `localhost:<port>` (its kubeconfig address) or `<cluster>-control-plane:6443` (its node),
    /// and the pod's own through `kubernetes.default` (443).
    fn api_server(&self, host: &str, port: u16) -> Option<Arc<ClusterInner>> {
        let own = matches!(
            host,
            "kubernetes"
                | "kubernetes.default"
                | "kubernetes.default.svc"
                | "kubernetes.default.svc.cluster.local"
                | "10.96.0.1"
        ) && port == 443;
        if own {
            return Some(self.cluster.clone());
        }
        self.cluster.all.clusters().into_iter().find(|c| {
            (matches!(host, "127.0.0.1" | "localhost") && port == c.port)
                || (host == format!("{}-control-plane", c.name) && port == 6443)
        })
    }

    fn api_reply(&self, target: &ClusterInner, url: &Url<'_>, req: &HttpRequest) -> HttpReply {
        if !url.https {
            return HttpReply::Response {
                status: 400,
                body: "Client sent an HTTP request to an HTTPS server.\n".into(),
            };
        }
        if target.faults.is_down() {
            return HttpReply::Failed {
                code: 7,
                line: format!(
                    "curl: (7) Failed to connect to {} port {} after 0 ms: Couldn't connect to server",
                    url.host, url.port
                ),
            };
        }
        if !req.insecure {
            return HttpReply::Failed {
                code: 60,
                line: "curl: (60) SSL certificate problem: unable to get local issuer certificate\n\
                       More details here: https://curl.se/docs/sslcerts.html\n\n\
                       curl failed to verify the legitimacy of the server and therefore could not\n\
                       establish a secure connection to it. To learn more about this situation and\n\
                       how to fix it, please visit the webpage mentioned above."
                    .into(),
            };
        }
        let path = url.path.split('?').next().unwrap_or(url.path);
        // What system:public-info-viewer lets anyone read; the rest is forbidden to anonymous.
        let (status, body) = match path.trim_end_matches('/') {
            "/version" => (200, crate::discovery::version()),
            "/healthz" | "/livez" | "/readyz" => {
                return HttpReply::Response {
                    status: 200,
                    body: "ok".into(),
                };
            }
            _ => {
                let verb = if req.method == "GET" { "get" } else { "create" };
                let err = match crate::resource_path::parse_path(path) {
                    Some(t) => ApiError::forbidden(
                        "system:anonymous",
                        if t.name.is_none() && verb == "get" {
                            "list"
                        } else {
                            verb
                        },
                        &t.group,
                        &t.resource,
                        t.namespace.as_deref(),
                    ),
                    None => ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "forbidden: User \"system:anonymous\" cannot {verb} path \"{path}\""
                        ),
                    ),
                };
                (403, err.to_status())
            }
        };
        HttpReply::Response {
            status,
            body: format!(
                "{}\n",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| json!({}).to_string())
            ),
        }
    }

    fn has_sidecar(&self) -> bool {
        // An ordinary container, or a native sidecar (an init container).
        ["/spec/containers", "/spec/initContainers"]
            .iter()
            .any(|k| {
                self.pod
                    .pointer(k)
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"))
            })
    }
}

impl Host for PodNetwork {
    fn http(&self, req: &HttpRequest) -> HttpReply {
        let Some(url) = split(&req.url) else {
            let scheme = req.url.split("://").next().unwrap_or_default();
            return HttpReply::Failed {
                code: 1,
                line: format!("curl: (1) Protocol \"{scheme}\" not supported"),
            };
        };
        if let Some(target) = self.api_server(url.host, url.port) {
            return self.api_reply(&target, &url, req);
        }
        if matches!(url.host, "127.0.0.1" | "localhost") {
            if url.port == 15020 && url.path == "/quitquitquit" && self.has_sidecar() {
                if req.method != "POST" {
                    return HttpReply::Response {
                        status: 405,
                        body: "Method Not Allowed\n".into(),
                    };
                }
                if self.quit.send(()).is_err() {
                    return HttpReply::Unmodelled(
                        "the sidecar's quitquitquit is modelled for pods the kubelet runs, \
                         not for a controller's pods"
                            .into(),
                    );
                }
                return HttpReply::Response {
                    status: 200,
                    body: String::new(),
                };
            }
            return HttpReply::Unmodelled(format!(
                "what listens on {}:{} inside the pod is not modelled",
                url.host, url.port
            ));
        }
        if url.https {
            return HttpReply::Unmodelled(format!(
                "TLS to {}:{} is not modelled (only API servers answer https)",
                url.host, url.port
            ));
        }
        if url.host.parse::<std::net::IpAddr>().is_ok() {
            return HttpReply::Unmodelled(format!(
                "requests to an IP address ({}) are not modelled: name a Service",
                url.host
            ));
        }
        if req.method != "GET" && req.method != "HEAD" {
            return HttpReply::Unmodelled(format!(
                "{} requests to Services are not modelled",
                req.method
            ));
        }
        let view = build_view(&self.cluster.all);
        let mut client = pod_view(&self.pod);
        if self.direct {
            client.sidecar = None;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let opts = Options {
            seed: self.seed.wrapping_add(n),
            timeout_secs: req.max_time_secs.unwrap_or(CURL_NO_MAX_TIME_SECS),
            ..Options::default()
        };
        let request = Request {
            cluster: &self.cluster.name,
            client: &client,
            url: &req.url,
        };
        match answer(&view, &request, 1, &opts) {
            Ok(mut answers) if !answers.is_empty() => {
                let a = answers.remove(0);
                match a.status {
                    Some(status) => HttpReply::Response {
                        status,
                        body: a.output,
                    },
                    None => HttpReply::Failed {
                        code: curl_code(&a.output),
                        line: a.output.trim_end().to_string(),
                    },
                }
            }
            Ok(_) => HttpReply::Unmodelled("the mesh model gave no answer".into()),
            Err(e) => HttpReply::Unmodelled(e.to_string()),
        }
    }

    fn hostname(&self) -> String {
        crate::store::meta_str(&self.pod, "name")
            .unwrap_or_default()
            .to_string()
    }
}

/// The exit code in curl's error line (`curl: (6) ...`).
fn curl_code(line: &str) -> i32 {
    line.strip_prefix("curl: (")
        .and_then(|r| r.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_codes() {
        let u = split("https://127.0.0.1:6443/version").unwrap();
        assert!(u.https);
        assert_eq!((u.host, u.port, u.path), ("127.0.0.1", 6443, "/version"));
        let u = split("http://helloworld:5000").unwrap();
        assert_eq!((u.port, u.path), (5000, "/"));
        assert_eq!(curl_code("curl: (28) Operation timed out"), 28);
        assert_eq!(curl_code("weird"), 1);
    }
}
