//! istiod's monitoring port 15014 and its debug endpoints (`debug/clusterz`).
//!
//! Real istiod wraps every debug handler in `allowAuthenticatedOrLocalhost`
//! (`pilot/pkg/xds/debug.go`): a request from localhost passes; any other
//! must authenticate as an XDS client would, or gets a bare 401. So:
//! - through a port-forward ([`listener`]) the request comes from localhost
//!   inside the pod and is answered, on every version;
//! - through the API server's service proxy ([`serve_proxy`]) it comes from
//!   the API server without credentials istiod accepts: 401, empty body.
//!
//! Each replica answers for itself. Replicas of a real istiod sync remote
//! clusters each on its own, so one may still be `syncing` a peer another
//! has synced: a pod annotated [`ANN_CLUSTERZ_SYNCING`] with cluster IDs
//! reports those as `syncing` until the annotation goes.

use super::fields::{annotation, is_ready, labels};
use super::install::ISTIO_NAMESPACE;
use super::istiod_pod::{ANN_CA_MODE, MODE_PLUGGED_IN, MODE_SELF_SIGNED, pod_cluster_id};
use crate::auth::{Attributes, Identity, authorize};
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response, full};
use crate::status::ApiError;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::DuplexStream;

/// istiod's monitoring and debug port.
pub const MONITORING_PORT: u16 = 15014;

/// On an istiod pod: cluster IDs (comma separated) that this replica has
/// not synced yet; its `debug/clusterz` says `syncing` for each, whatever
/// the others say.
pub const ANN_CLUSTERZ_SYNCING: &str = "meshsim.dev/clusterz-syncing";

/// A connection to `port` of `pod` if something listens there: istiod's
/// 15014 once the pod serves (ready, CA chosen). The other end is served as
/// HTTP/1.1 on its own task, per that pod's own view.
pub(crate) fn listener(
    cluster: &Arc<ClusterInner>,
    pod: &Value,
    port: u16,
) -> Option<DuplexStream> {
    if port != MONITORING_PORT || !serves(pod) {
        return None;
    }
    let (client, server) = tokio::io::duplex(64 * 1024);
    let cluster = cluster.clone();
    let own = pod_cluster_id(pod);
    let lagging = lagging_peers(pod);
    tokio::spawn(async move {
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let answer = debug_answer(&cluster, &own, &lagging, req.method(), req.uri().path());
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    Some(client)
}

/// An istiod pod that has started: `app: istiod` in istio-system, ready,
/// not terminating, with a CA chosen (a pod whose CA failed never listens).
fn serves(pod: &Value) -> bool {
    pod.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ISTIO_NAMESPACE)
        && labels(pod).get("app").map(String::as_str) == Some("istiod")
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && is_ready(pod)
        && matches!(
            annotation(pod, ANN_CA_MODE),
            Some(MODE_SELF_SIGNED | MODE_PLUGGED_IN)
        )
}

/// The cluster IDs this replica has not synced yet ([`ANN_CLUSTERZ_SYNCING`]).
fn lagging_peers(pod: &Value) -> Vec<String> {
    annotation(pod, ANN_CLUSTERZ_SYNCING)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

/// What istiod's debug mux answers a caller it lets in; `lagging` are the
/// peers this replica still syncs.
fn debug_answer(
    cluster: &ClusterInner,
    own: &str,
    lagging: &[String],
    method: &hyper::Method,
    path: &str,
) -> Response<Body> {
    if path.trim_end_matches('/') != "/debug/clusterz" {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if method != hyper::Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let mut remotes = super::remote::registered(&cluster.all, &cluster.store, own);
    for r in &mut remotes {
        if r.status == crate::mesh::SyncStatus::Synced && lagging.contains(&r.cluster_id) {
            r.status = crate::mesh::SyncStatus::Syncing;
        }
    }
    // istiod's writeJSON indents with two spaces.
    let body =
        serde_json::to_vec_pretty(&super::remote::clusterz(own, &remotes)).unwrap_or_default();
    let mut resp = Response::new(full(body));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn plain(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(text));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET /api/v1/namespaces/<ns>/services/[http:]istiod[-<rev>]:15014/proxy/<path>`:
/// the API server's service proxy to istiod's monitoring port. Authorized as
/// `get services/proxy`; istiod then refuses the unauthenticated, non-local
/// caller with a bare 401. `None` for any other path.
pub(crate) fn serve_proxy(
    cluster: &ClusterInner,
    req: &Req,
    who: &Identity,
) -> Option<(&'static str, Response<Body>)> {
    if !req.path.contains("/proxy/") {
        return None;
    }
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let [
        "api",
        "v1",
        "namespaces",
        ns,
        "services",
        service,
        "proxy",
        ..,
    ] = segs.as_slice()
    else {
        return None;
    };
    let name = service.strip_prefix("http:").unwrap_or(service);
    let name = name.strip_suffix(":15014")?;
    if name != "istiod" && !name.starts_with("istiod-") {
        return None;
    }
    let attrs = Attributes {
        verb: "get",
        group: "",
        resource: "services",
        subresource: Some("proxy"),
        namespace: Some(ns),
        name: Some(service),
    };
    if !authorize(&cluster.store, who, &attrs) {
        let err = ApiError::forbidden(&who.user, "get", "", "services/proxy", Some(ns));
        return Some(("get", error_response(&err)));
    }
    cluster.streams.count_proxied_debug();
    let exists = cluster
        .store
        .resolve("", "v1", "services")
        .is_some_and(|rt| cluster.store.get(&rt, Some(ns), name).is_ok());
    if !exists {
        return Some((
            "get",
            error_response(&ApiError::not_found("", "services", name)),
        ));
    }
    let serving =
        *ns == ISTIO_NAMESPACE && super::istiod_pod::serving_istiod_pod(&cluster.store).is_some();
    if !serving {
        // No endpoint behind the Service: the proxy's own error.
        return Some((
            "get",
            error_response(&ApiError::new(
                503,
                "ServiceUnavailable",
                format!("no endpoints available for service \"{service}\""),
            )),
        ));
    }
    let mut resp = Response::new(full(Vec::new()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    Some(("get", resp))
}
