//! TokenRequest (`POST .../serviceaccounts/<name>/token`, `kubectl create
//! token`): a token for the service account with the requested audiences,
//! lifetime and bound object, checked as the API server's token REST storage
//! checks them.

use super::request::{Ctx, dry_run};
use crate::auth::{API_AUDIENCE, BoundObject, TokenClaims};
use crate::http::{Body, json_response};
use crate::status::{ApiError, Cause};
use crate::store::meta_str;
use hyper::Response;
use serde_json::{Value, json};

/// The lifetime when none is asked for.
const DEFAULT_EXPIRATION: i64 = 3600;
/// The shortest lifetime the API server accepts (10 minutes).
const MIN_EXPIRATION: i64 = 600;
/// The longest: 2^32 seconds.
const MAX_EXPIRATION: i64 = 1 << 32;

fn invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Resolves `spec.boundObjectRef` to the object (and its uid) the token is bound to.
fn bind(ctx: &Ctx<'_>, sa: &str, ns: &str, r: &Value) -> Result<BoundObject, ApiError> {
    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    let (kind, api_version, name) = (field("kind"), field("apiVersion"), field("name"));
    let store = &ctx.cluster.store;
    let (resource, namespace) = match (api_version, kind) {
        ("v1", "Pod") => ("pods", Some(ns)),
        ("v1", "Secret") => ("secrets", Some(ns)),
        ("v1", "Node") => ("nodes", None),
        _ => {
            let group_version = if api_version.contains('/') {
                api_version.replacen('/', ", Version=", 1)
            } else {
                format!(", Version={api_version}")
            };
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group_version}, Kind={kind}"
            )));
        }
    };
    let rt = store
        .resolve("", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} are not served")))?;
    let obj = store.get_arc(&rt, namespace, name)?;
    if kind == "Pod" {
        let pod_sa = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if pod_sa != sa {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
            )));
        }
    }
    let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
    let asked = field("uid");
    if !asked.is_empty() && asked != uid {
        return Err(ApiError::conflict(
            "",
            kind,
            name,
            &format!(
                "the UID in the bound object reference ({asked}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(BoundObject {
        kind: kind.to_string(),
        name: name.to_string(),
        uid,
    })
}

/// Answers a TokenRequest with the token and its expiry (201).
pub(super) fn create(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let ns = ctx.target.namespace.as_deref().unwrap_or_default();
    let sa = ctx.cluster.store.get_arc(&ctx.rt, Some(ns), name)?;
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "serviceaccounts \"{name}\" is forbidden: the service account is being deleted"
            ),
        ));
    }
    let body = ctx.req.body_value()?;
    let spec = body.get("spec").cloned().unwrap_or_default();
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION,
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(
                name,
                "spec.expirationSeconds",
                format!("Invalid value: {v}: must be an integer"),
            )
        })?,
    };
    if seconds < MIN_EXPIRATION {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    if seconds > MAX_EXPIRATION {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            format!(
                "Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.to_string());
    }
    let bound = match spec.get("boundObjectRef") {
        None | Some(Value::Null) => None,
        Some(r) => Some(bind(ctx, name, ns, r)?),
    };
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let expires = now + time::Duration::seconds(seconds);
    let claims = TokenClaims {
        namespace: ns.to_string(),
        service_account: name.to_string(),
        service_account_uid: meta_str(&sa, "uid").unwrap_or_default().to_string(),
        expires: expires.unix_timestamp(),
        audiences: audiences.clone(),
        bound: bound.clone(),
    };
    // A dry run issues nothing.
    let token = if dry_run(ctx.req)? {
        String::new()
    } else {
        ctx.cluster.auth.mint_requested_token(&claims)
    };
    let bound_ref =
        bound.map(|b| json!({"kind": b.kind, "apiVersion": "v1", "name": b.name, "uid": b.uid}));
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": bound_ref},
            "status": {"token": token, "expirationTimestamp": expires},
        }),
    ))
}
