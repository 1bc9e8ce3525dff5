//! Routing of resource requests: path parsing, type resolution, scope,
//! verbs, authorization, then the per-verb handlers.
//!
//! This file only routes; what the handlers share lives in [`request`] (the routed
//! request and its options) and [`body`] (objects checked and presented), so that the
//! handlers never import the router.

mod body;
mod eviction;
mod objects;
mod patch;
mod request;
mod review;
mod subresources;
mod table;
mod token;
mod watch;

use crate::auth::{Attributes, Identity, authorize};
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response, text_response};
use crate::resource_path::{ResourcePath, parse_path};
use crate::status::ApiError;
use crate::store::StatusPolicy;
use hyper::{Method, Response};
use request::{Ctx, main_status_policy};
use std::sync::Arc;

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Answers a request; returns the verb it counted as.
pub(crate) async fn route(
    cluster: &Arc<ClusterInner>,
    mut req: Req,
) -> (&'static str, Response<Body>) {
    let path = req.path.clone();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return ("get", text_response(200, "ok".into()));
    }
    // Public, as system:public-info-viewer makes it on a real cluster.
    if path.trim_end_matches('/') == "/version"
        && let Some(resp) = crate::discovery::serve(cluster, &req)
    {
        return ("get", resp);
    }
    let Some(who) = cluster
        .auth
        .authenticate(req.header("authorization"), &cluster.store)
    else {
        return (req.verb_hint(), error_response(&ApiError::unauthorized()));
    };
    if let Some(resp) = crate::discovery::serve(cluster, &req) {
        return ("get", resp);
    }
    if let Some(resp) = crate::openapi::serve(cluster, &req) {
        return ("get", resp);
    }
    if let Some(answer) = crate::istio::monitoring::serve_proxy(cluster, &req, &who) {
        return answer;
    }
    let Some(target) = parse_path(&path) else {
        return (req.verb_hint(), error_response(&not_found_path()));
    };
    let Some(rt) = cluster
        .store
        .resolve(&target.group, &target.version, &target.resource)
    else {
        return (req.verb_hint(), error_response(&not_found_path()));
    };
    // Namespaced types under /namespaces/<ns>/ (or listed across all), cluster types never.
    let scope_ok = if rt.namespaced {
        target.namespace.is_some() || target.name.is_none()
    } else {
        target.namespace.is_none()
    };
    if !scope_ok {
        return (req.verb_hint(), error_response(&not_found_path()));
    }
    if let Some(sub) = &target.subresource
        && !rt.has_subresource(sub)
    {
        return (req.verb_hint(), error_response(&not_found_path()));
    }
    let verb = match verb_of(&req, &target) {
        Ok(v) => v,
        Err(e) => return (req.verb_hint(), error_response(&e)),
    };
    let attrs = Attributes {
        verb,
        group: &rt.group,
        resource: &rt.resource,
        subresource: target.subresource.as_deref(),
        namespace: target.namespace.as_deref(),
        name: target.name.as_deref(),
    };
    // Every authenticated user may ask what it may do (system:basic-user).
    let review = rt.group == "authorization.k8s.io";
    if !review && !authorize(&cluster.store, &who, &attrs) {
        let full = match &target.subresource {
            Some(s) => format!("{}/{s}", rt.resource),
            None => rt.resource.clone(),
        };
        let err = ApiError::forbidden(
            &who.user,
            verb,
            &rt.group,
            &full,
            target.namespace.as_deref(),
        );
        return (verb, error_response(&err));
    }
    if let Some(sub @ ("portforward" | "exec" | "attach")) = target.subresource.as_deref() {
        return (verb, connect(cluster, &mut req, &target, &rt, sub));
    }
    let ctx = Ctx {
        cluster,
        req: &req,
        rt,
        target,
    };
    let result = dispatch(&ctx, verb, &who).await;
    (verb, result.unwrap_or_else(|e| error_response(&e)))
}

fn verb_of(req: &Req, target: &ResourcePath) -> Result<&'static str, ApiError> {
    let collection = target.name.is_none();
    let watch = matches!(req.param("watch"), Some("true" | "1"));
    Ok(match (&req.method, collection) {
        // A websocket upgrade is a GET; the API server asks for `create` on
        // the connect subresource, as for the POST of SPDY (1.30+).
        (&Method::GET | &Method::POST, false)
            if matches!(
                target.subresource.as_deref(),
                Some("portforward" | "exec" | "attach")
            ) =>
        {
            "create"
        }
        (&Method::GET, true) if watch => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, true) => "create",
        (&Method::POST, false)
            if matches!(target.subresource.as_deref(), Some("token" | "eviction")) =>
        {
            "create"
        }
        (&Method::PUT, false) => "update",
        (&Method::PATCH, false) => "patch",
        (&Method::DELETE, false) => "delete",
        (&Method::DELETE, true) => "deletecollection",
        (m, _) => return Err(ApiError::method_not_allowed(m.as_str())),
    })
}

/// `pods/{name}/portforward`, `exec`, `attach`: the pod must exist; the session is the
/// streaming module's.
fn connect(
    cluster: &Arc<ClusterInner>,
    req: &mut Req,
    target: &ResourcePath,
    rt: &crate::resources::ResourceType,
    sub: &str,
) -> Response<Body> {
    let name = target.name.as_deref().unwrap_or_default();
    let pod = match cluster.store.get(rt, target.namespace.as_deref(), name) {
        Ok(pod) => pod,
        Err(e) => return error_response(&e),
    };
    let upgrade = req.upgrade.take();
    match sub {
        "exec" => crate::streaming::exec::serve(cluster, req, upgrade, pod),
        "attach" => crate::streaming::attach::serve(cluster, req, upgrade, pod),
        _ => crate::streaming::portforward::serve(cluster, req, upgrade, pod),
    }
}

async fn dispatch(ctx: &Ctx<'_>, verb: &str, who: &Identity) -> Result<Response<Body>, ApiError> {
    if ctx.rt.group == "authorization.k8s.io" {
        return match verb {
            "create" => review::self_subject_access_review(ctx, who),
            _ => Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
        };
    }
    match ctx.target.subresource.as_deref() {
        Some("scale") => return subresources::scale(ctx, verb),
        Some("log") if verb == "get" => return subresources::log(ctx),
        Some("status") => return subresources::status(ctx, verb),
        Some("token") if verb == "create" => return token::create(ctx),
        Some("eviction") if verb == "create" => return eviction::evict(ctx),
        Some(_) => return Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
        None => {}
    }
    match verb {
        "watch" => watch::serve(ctx),
        "list" => objects::list(ctx),
        "get" => objects::get(ctx),
        "create" => objects::create(ctx),
        "update" => objects::update(ctx, StatusPolicy::KeepStatus),
        "patch" => patch::patch(ctx, main_status_policy(&ctx.rt)),
        "delete" => objects::delete(ctx),
        "deletecollection" => objects::delete_collection(ctx),
        _ => Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
    }
}
