//! get, list, create, update (PUT), delete and deletecollection.

use super::body::{check_body, for_version, needs_version_rewrite, validate_schema};
use super::request::{
    Ctx, Selectors, dry_run, field_manager, field_validation, main_status_policy, write_options,
};
use crate::http::{Body, add_warnings, json_response};
use crate::merge::apply::record_update;
use crate::status::{ApiError, success_status};
use crate::store::{
    DeleteOptions, Deleted, Grace, Propagation, StatusPolicy, meta_str, now_rfc3339,
};
use hyper::Response;
use serde_json::{Value, json};

pub(super) fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let obj = ctx
        .cluster
        .store
        .get_arc(&ctx.rt, ctx.target.namespace.as_deref(), name)?;
    if super::table::wants_table(ctx.req) {
        let rv = meta_str(&obj, "resourceVersion").unwrap_or("0").to_string();
        return Ok(json_response(200, &super::table::table(ctx, &[obj], &rv)));
    }
    if needs_version_rewrite(&ctx.rt, &obj) {
        return Ok(json_response(200, &for_version(&ctx.rt, &obj)));
    }
    // The hot path: serialise the stored object without copying it.
    Ok(json_response(200, &obj))
}

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let selectors = Selectors::from_req(ctx.req)?;
    let (items, rv) = ctx
        .cluster
        .store
        .list(&ctx.rt, ctx.target.namespace.as_deref());
    let items: Vec<_> = items.into_iter().filter(|o| selectors.matches(o)).collect();
    let rv = rv.to_string();
    if super::table::wants_table(ctx.req) {
        return Ok(json_response(200, &super::table::table(ctx, &items, &rv)));
    }
    let items: Vec<Value> = items.iter().map(|o| for_version(&ctx.rt, o)).collect();
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", ctx.rt.kind),
            "apiVersion": ctx.rt.api_version(),
            "metadata": {"resourceVersion": rv},
            "items": items,
        }),
    ))
}

pub(super) fn create(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let mut obj = ctx.req.body_value()?;
    check_body(ctx, &mut obj)?;
    let (obj, warnings) = validate_schema(&ctx.rt, obj, field_validation(ctx.req)?)?;
    let manager = field_manager(ctx.req)?;
    let obj = record_update(&ctx.rt.kind, None, &obj, &manager, &now_rfc3339());
    let opts = write_options(ctx.req, main_status_policy(&ctx.rt))?;
    let created = ctx.cluster.store.create(&ctx.rt, obj, &opts)?;
    let mut resp = json_response(201, &created);
    add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// PUT on the object (or, with `status`, on its status subresource).
pub(super) fn update(ctx: &Ctx<'_>, policy: StatusPolicy) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let mut obj = ctx.req.body_value()?;
    check_body(ctx, &mut obj)?;
    match meta_str(&obj, "name") {
        Some(n) if n == name => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        None => {
            crate::store::metadata_mut(&mut obj).insert("name".into(), json!(name));
        }
    }
    let old = ctx
        .cluster
        .store
        .get_arc(&ctx.rt, ctx.target.namespace.as_deref(), name)?;
    let (obj, warnings) = validate_schema(&ctx.rt, obj, field_validation(ctx.req)?)?;
    let manager = field_manager(ctx.req)?;
    let obj = record_update(&ctx.rt.kind, Some(&old), &obj, &manager, &now_rfc3339());
    let updated = ctx
        .cluster
        .store
        .update(&ctx.rt, obj, &write_options(ctx.req, policy)?)?;
    let mut resp = json_response(200, &updated);
    add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// DeleteOptions from the body (JSON) and the query.
fn delete_options(ctx: &Ctx<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if ctx.req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&ctx.req.body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?
    };
    let policy = ctx
        .req
        .param("propagationPolicy")
        .map(str::to_string)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(
            || match body.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => Some("Orphan".into()),
                _ => None,
            },
        );
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy must be Background, Foreground or Orphan, got {other:?}"
            )));
        }
    };
    let body_dry_run = match body.get("dryRun").and_then(Value::as_array) {
        Some(v) if v.iter().any(|x| x == "All") => true,
        Some(v) if !v.is_empty() => {
            return Err(ApiError::bad_request("dryRun may only contain \"All\""));
        }
        _ => false,
    };
    let pre = body.get("preconditions");
    let pre_str = |k: &str| {
        pre.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(DeleteOptions {
        dry_run: dry_run(ctx.req)? || body_dry_run,
        propagation,
        precondition_uid: pre_str("uid"),
        precondition_rv: pre_str("resourceVersion"),
        grace: grace(ctx.req.param("gracePeriodSeconds"), &body)?,
    })
}

/// `gracePeriodSeconds` (query or body); without it, the pod's own period.
pub(super) fn grace(param: Option<&str>, body: &Value) -> Result<Grace, ApiError> {
    let secs = match param {
        Some(p) => Some(p.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("gracePeriodSeconds must be an integer, got {p:?}"))
        })?),
        None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    Ok(match secs {
        Some(s) if s < 0 => {
            return Err(ApiError::bad_request(
                "gracePeriodSeconds must not be negative",
            ));
        }
        Some(s) => Grace::Seconds(s),
        None => Grace::PodDefault,
    })
}

pub(super) fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let opts = delete_options(ctx)?;
    match ctx
        .cluster
        .store
        .delete(&ctx.rt, ctx.target.namespace.as_deref(), name, &opts)?
    {
        Deleted::Finalizing(obj) => Ok(json_response(200, &obj)),
        Deleted::Gone(obj) => {
            let uid = meta_str(&obj, "uid").unwrap_or_default();
            Ok(json_response(
                200,
                &success_status(&ctx.rt.group, &ctx.rt.resource, name, uid),
            ))
        }
    }
}

pub(super) fn delete_collection(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let selectors = Selectors::from_req(ctx.req)?;
    let opts = delete_options(ctx)?;
    let (items, _) = ctx
        .cluster
        .store
        .list(&ctx.rt, ctx.target.namespace.as_deref());
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| selectors.matches(o)) {
        let name = meta_str(obj, "name").unwrap_or_default();
        let ns = meta_str(obj, "namespace");
        match ctx.cluster.store.delete(&ctx.rt, ns, name, &opts) {
            Ok(Deleted::Gone(o) | Deleted::Finalizing(o)) => deleted.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", ctx.rt.kind),
            "apiVersion": ctx.rt.api_version(),
            "metadata": {"resourceVersion": ctx.cluster.store.resource_version().to_string()},
            "items": deleted,
        }),
    ))
}
