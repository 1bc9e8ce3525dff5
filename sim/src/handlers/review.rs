//! SelfSubjectAccessReview (`kubectl auth can-i`): RBAC answers about the caller.

use super::request::Ctx;
use crate::auth::{Attributes, Identity, authorize};
use crate::http::{Body, json_response};
use crate::status::ApiError;
use hyper::Response;
use serde_json::{Value, json};

pub(super) fn self_subject_access_review(
    ctx: &Ctx<'_>,
    who: &Identity,
) -> Result<Response<Body>, ApiError> {
    let mut review = ctx.req.body_value()?;
    let spec = review.get("spec").cloned().unwrap_or_default();
    let allowed = if let Some(ra) = spec.get("resourceAttributes") {
        let s = |k: &str| ra.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let verb = s("verb")
            .ok_or_else(|| ApiError::bad_request("spec.resourceAttributes.verb is required"))?;
        let attrs = Attributes {
            verb,
            group: s("group").unwrap_or(""),
            resource: s("resource").unwrap_or(""),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
        };
        authorize(&ctx.cluster.store, who, &attrs)
    } else if spec.get("nonResourceAttributes").is_some() {
        // Discovery and health paths are open to everyone authenticated; the rest to admins.
        let path = spec
            .pointer("/nonResourceAttributes/path")
            .and_then(Value::as_str)
            .unwrap_or("");
        who.admin
            || [
                "/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi",
            ]
            .iter()
            .any(|p| path.starts_with(p))
    } else {
        return Err(ApiError::bad_request(
            "exactly one of spec.resourceAttributes and spec.nonResourceAttributes must be set",
        ));
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by a binding"})
    } else {
        json!({"allowed": false})
    };
    Ok(json_response(201, &review))
}
