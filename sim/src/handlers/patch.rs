//! PATCH: JSON merge, JSON patch, strategic merge and server-side apply.

use super::body::validate_schema;
use super::request::{Ctx, field_manager, field_validation, write_options};
use crate::http::{Body, add_warnings, json_response};
use crate::merge::apply::{ApplyError, record_update, server_side_apply};
use crate::merge::{PatchError, json_patch, merge_patch, strategic::strategic_merge_patch};
use crate::status::{ApiError, Cause};
use crate::store::{StatusPolicy, meta_str, metadata_mut, now_rfc3339};
use hyper::Response;
use serde_json::{Value, json};

/// Internal retries when a concurrent write moved the object underneath a
/// patch (or a Scale) that did not ask for a resourceVersion.
pub(super) const RETRIES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

pub(super) fn patch_kind(ctx: &Ctx<'_>) -> Result<PatchKind, ApiError> {
    let ct = ctx.req.header("content-type").unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    match mime {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/strategic-merge-patch+json" if ctx.rt.custom => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::BadPatch(m) => ApiError::bad_request(m),
        PatchError::Unprocessable(m) => ApiError::new(422, "Invalid", m),
    }
}

/// The patch document (apply bodies may be YAML).
pub(super) fn patch_body(ctx: &Ctx<'_>, kind: PatchKind) -> Result<Value, ApiError> {
    if ctx.req.body.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    if kind == PatchKind::Apply {
        serde_yaml::from_slice(&ctx.req.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the apply configuration is not valid YAML or JSON: {e}"
            ))
        })
    } else {
        serde_json::from_slice(&ctx.req.body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
    }
}

/// Applies a non-apply patch document to `live`.
pub(super) fn apply_patch(
    kind_name: &str,
    kind: PatchKind,
    live: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            Ok(merge_patch(live, patch))
        }
        PatchKind::Json => json_patch(live, patch).map_err(patch_error),
        PatchKind::Strategic => strategic_merge_patch(kind_name, live, patch).map_err(patch_error),
        PatchKind::Apply => Err(ApiError::bad_request(
            "apply patches are not supported here",
        )),
    }
}

pub(super) fn patch(ctx: &Ctx<'_>, policy: StatusPolicy) -> Result<Response<Body>, ApiError> {
    let kind = patch_kind(ctx)?;
    let body = patch_body(ctx, kind)?;
    let name = ctx.target.name.as_deref().unwrap_or_default().to_string();
    let ns = ctx.target.namespace.clone();
    let mode = field_validation(ctx.req)?;
    let opts = write_options(ctx.req, policy)?;
    let now = now_rfc3339();
    let store = &ctx.cluster.store;
    let pinned_rv = body.pointer("/metadata/resourceVersion").is_some();
    if kind == PatchKind::Apply {
        check_apply_config(ctx, &body, &name)?;
    }
    let manager = match (kind, ctx.req.param("fieldManager")) {
        (PatchKind::Apply, Some(m)) if !m.is_empty() => m.to_string(),
        (PatchKind::Apply, _) => {
            return Err(ApiError::bad_request(
                "PATCH requests with apply content type must specify fieldManager",
            ));
        }
        _ => field_manager(ctx.req)?,
    };
    let force = matches!(ctx.req.param("force"), Some("true" | "1"));
    if kind != PatchKind::Apply && ctx.req.param("force").is_some() {
        return Err(ApiError::bad_request(
            "force is only allowed for apply patches",
        ));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let live = match store.get(&ctx.rt, ns.as_deref(), &name) {
            Ok(v) => Some(v),
            Err(e) if e.code == 404 && kind == PatchKind::Apply => None,
            Err(e) => return Err(e),
        };
        let mut patched = match (&live, kind) {
            (_, PatchKind::Apply) => {
                server_side_apply(&ctx.rt.kind, live.as_ref(), &body, &manager, force, &now)
                    .map_err(|e| apply_error(ctx, &name, e))?
            }
            (Some(l), _) => apply_patch(&ctx.rt.kind, kind, l, &body)?,
            (None, _) => return Err(ApiError::not_found(&ctx.rt.group, &ctx.rt.resource, &name)),
        };
        // The patch may not move the object.
        let meta = metadata_mut(&mut patched);
        meta.insert("name".into(), json!(name));
        match &ns {
            Some(ns) if ctx.rt.namespaced => meta.insert("namespace".into(), json!(ns)),
            _ => meta.remove("namespace"),
        };
        if let Some(l) = &live
            && !pinned_rv
        {
            let rv = meta_str(l, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            metadata_mut(&mut patched).insert("resourceVersion".into(), json!(rv));
        }
        let (patched, warnings) = validate_schema(&ctx.rt, patched, mode)?;
        let patched = if kind == PatchKind::Apply {
            patched
        } else {
            record_update(&ctx.rt.kind, live.as_ref(), &patched, &manager, &now)
        };
        let result = match &live {
            None => store.create(&ctx.rt, patched, &opts).map(|o| (201, o)),
            Some(_) => store.update(&ctx.rt, patched, &opts).map(|o| (200, o)),
        };
        match result {
            Ok((code, obj)) => {
                let mut resp = json_response(code, &obj);
                add_warnings(&mut resp, &warnings);
                return Ok(resp);
            }
            Err(e)
                if (e.reason == "Conflict" || e.reason == "AlreadyExists")
                    && !pinned_rv
                    && attempt < RETRIES =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

fn check_apply_config(ctx: &Ctx<'_>, body: &Value, name: &str) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    for field in ["apiVersion", "kind"] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "{field} must be set in the apply configuration"
            )));
        }
    }
    if body.get("kind").and_then(Value::as_str) != Some(ctx.rt.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "the kind of the apply configuration does not match the resource ({})",
            ctx.rt.kind
        )));
    }
    if let Some(n) = meta_str(body, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the apply configuration ({n}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(n), Some(ns)) = (meta_str(body, "namespace"), &ctx.target.namespace)
        && n != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn apply_error(ctx: &Ctx<'_>, name: &str, e: ApplyError) -> ApiError {
    match e {
        ApplyError::Invalid(m) => ApiError::bad_request(m),
        ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Cause> = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with \"{}\"", c.manager),
                    field: c.field.clone(),
                })
                .collect();
            let mut err = ApiError::new(409, "Conflict", conflict_message(&conflicts));
            err.details = Some(json!({
                "name": name, "group": ctx.rt.group, "kind": ctx.rt.resource,
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            }));
            err
        }
    }
}

/// The real server's wording: `Apply failed with 1 conflict: conflict with "a": .data.x`,
/// or, for several, one `conflicts with "<manager>":` block per manager.
fn conflict_message(conflicts: &[crate::merge::apply::FieldConflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {:?}: {}",
            only.manager, only.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m:?}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|c| c.manager == m)
                .map(|c| format!("- {}", c.field)),
        );
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}
