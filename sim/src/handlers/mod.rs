//! Routing of resource requests: path parsing, type resolution, scope,
//! verbs, authorization, then the per-verb handlers.

mod objects;
mod patch;
mod review;
mod subresources;
pub(crate) mod table;

use crate::auth::{Attributes, Identity, authorize};
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response, text_response};
use crate::resources::ResourceType;
use crate::schema::{self, FieldValidation};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, Cause};
use crate::store::{StatusPolicy, WriteOptions, meta_str};
use hyper::{Method, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a resource request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths.
pub(crate) fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, more @ ..]
            if !matches!(*r, "status" | "finalize") || !more.is_empty() =>
        {
            (Some(ns.to_string()), [&[*r][..], more].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    if resource.is_empty() || name.as_deref() == Some("") {
        return None;
    }
    Some(Target {
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
        namespace,
        name,
        subresource,
    })
}

/// Everything a handler needs.
pub(crate) struct Ctx<'a> {
    pub cluster: &'a Arc<ClusterInner>,
    pub req: &'a Req,
    pub rt: ResourceType,
    pub target: Target,
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Answers a request; returns the verb it counted as.
pub(crate) async fn route(cluster: &Arc<ClusterInner>, req: Req) -> (&'static str, Response<Body>) {
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
    if let Some(answer) = crate::istio::istiod::serve_debug(cluster, &req, &who) {
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
    let ctx = Ctx {
        cluster,
        req: &req,
        rt,
        target,
    };
    let result = dispatch(&ctx, verb, &who).await;
    (verb, result.unwrap_or_else(|e| error_response(&e)))
}

fn verb_of(req: &Req, target: &Target) -> Result<&'static str, ApiError> {
    let collection = target.name.is_none();
    let watch = matches!(req.param("watch"), Some("true" | "1"));
    Ok(match (&req.method, collection) {
        (&Method::GET, true) if watch => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, true) => "create",
        (&Method::POST, false) if target.subresource.as_deref() == Some("token") => "create",
        (&Method::PUT, false) => "update",
        (&Method::PATCH, false) => "patch",
        (&Method::DELETE, false) => "delete",
        (&Method::DELETE, true) => "deletecollection",
        (m, _) => return Err(ApiError::method_not_allowed(m.as_str())),
    })
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
        Some("token") if verb == "create" => return subresources::token(ctx),
        Some(_) => return Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
        None => {}
    }
    match verb {
        "watch" => crate::watch::serve(ctx),
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

/// Writes to the main resource of a type with a status subresource keep its status.
pub(crate) fn main_status_policy(rt: &ResourceType) -> StatusPolicy {
    if rt.has_subresource("status") {
        StatusPolicy::KeepStatus
    } else {
        StatusPolicy::All
    }
}

// ---- shared helpers ----

pub(crate) fn write_options(req: &Req, status: StatusPolicy) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: dry_run(req)?,
        status,
    })
}

pub(crate) fn dry_run(req: &Req) -> Result<bool, ApiError> {
    match req.param("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value {other:?}: the only supported value is \"All\""
        ))),
    }
}

pub(crate) fn field_validation(req: &Req) -> Result<FieldValidation, ApiError> {
    match req.param("fieldValidation") {
        None | Some("") => Ok(FieldValidation::Warn),
        Some(v) => FieldValidation::from_query(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "fieldValidation must be one of \"Strict\", \"Warn\" or \"Ignore\", got {v:?}"
            ))
        }),
    }
}

/// The manager a non-apply write is recorded under.
pub(crate) fn field_manager(req: &Req) -> Result<String, ApiError> {
    if let Some(m) = req.param("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 || m.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(
                "fieldManager must be at most 128 printable characters",
            ));
        }
        return Ok(m.to_string());
    }
    let agent = req.header("user-agent").unwrap_or("unknown");
    Ok(agent.split('/').next().unwrap_or("unknown").to_string())
}

/// Checks `obj` against a custom resource's schema: pruned object and warnings,
/// or the error the API server gives (400 for strict unknown fields, 422 otherwise).
pub(crate) fn validate_schema(
    rt: &ResourceType,
    obj: Value,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let Some(schema) = &rt.schema else {
        return Ok((obj, Vec::new()));
    };
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    match schema::validate(schema, &obj, mode) {
        Ok(v) => Ok((v.object, v.warnings)),
        Err(errors) => {
            if !errors.is_empty() && errors.iter().all(|e| e.reason == "FieldUnknown") {
                let fields: Vec<String> = errors
                    .iter()
                    .map(|e| format!("unknown field \"{}\"", e.field))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", "),
                    kind = rt.kind,
                    v = rt.version
                )));
            }
            let causes = errors
                .into_iter()
                .map(|e| Cause {
                    reason: e.reason,
                    message: e.message,
                    field: e.field,
                })
                .collect();
            Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes))
        }
    }
}

/// Checks the body's apiVersion/kind against the URL's type and puts the
/// URL's namespace into it.
pub(crate) fn check_body(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let rt = &ctx.rt;
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({})",
            rt.kind
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
        let group = av.split_once('/').map(|(g, _)| g).unwrap_or("");
        if group != rt.group {
            return Err(ApiError::bad_request(format!(
                "the apiVersion of the object ({av}) does not match the group of the resource ({})",
                rt.group
            )));
        }
    }
    if rt.namespaced
        && let Some(ns) = &ctx.target.namespace
    {
        match meta_str(obj, "namespace") {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                crate::store::metadata_mut(obj)
                    .insert("namespace".into(), Value::String(ns.clone()));
            }
        }
    }
    Ok(())
}

/// Label and field selectors of a list or watch.
pub(crate) struct Selectors {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Selectors {
    pub fn from_req(req: &Req) -> Result<Self, ApiError> {
        let label = match req.param("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let field = match req.param("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        Ok(Selectors { label, field })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(label) = &self.label {
            let labels: BTreeMap<String, String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            if !label.matches(&labels) {
                return false;
            }
        }
        self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// The object as the requested version presents it (custom resources are
/// stored once for all versions; no conversion beyond apiVersion).
pub(crate) fn needs_version_rewrite(rt: &ResourceType, obj: &Value) -> bool {
    rt.custom && obj.get("apiVersion").and_then(Value::as_str) != Some(&rt.api_version())
}

pub(crate) fn for_version(rt: &ResourceType, obj: &Value) -> Value {
    let mut obj = obj.clone();
    if rt.custom && obj.get("apiVersion").and_then(Value::as_str) != Some(&rt.api_version()) {
        obj["apiVersion"] = Value::String(rt.api_version());
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn t(path: &str) -> Option<Parsed> {
        parse_path(path).map(|t| {
            (
                t.group,
                t.version,
                t.resource,
                t.namespace,
                t.name,
                t.subresource,
            )
        })
    }

    #[test]
    fn paths() {
        assert_eq!(
            t("/api/v1/namespaces"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                None,
                None
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                Some("foo".into()),
                None
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo/status"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                Some("foo".into()),
                Some("status".into())
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo/pods"),
            Some((
                "".into(),
                "v1".into(),
                "pods".into(),
                Some("foo".into()),
                None,
                None
            ))
        );
        assert_eq!(
            t("/apis/apps/v1/namespaces/ns/deployments/web/scale"),
            Some((
                "apps".into(),
                "v1".into(),
                "deployments".into(),
                Some("ns".into()),
                Some("web".into()),
                Some("scale".into())
            ))
        );
        assert_eq!(
            t("/apis/apps/v1/deployments"),
            Some((
                "apps".into(),
                "v1".into(),
                "deployments".into(),
                None,
                None,
                None
            ))
        );
        assert_eq!(t("/apis/apps"), None);
        assert_eq!(t("/version"), None);
        assert_eq!(t("/api/v1/a/b/c/d"), None);
    }
}
