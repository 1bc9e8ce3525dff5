//! Subresources: scale (autoscaling/v1 Scale), status, pods/log.

use super::objects;
use super::patch::{PatchKind, RETRIES, apply_patch, patch, patch_body, patch_kind};
use super::request::{Ctx, field_manager, write_options};
use crate::http::{Body, json_response, text_response};
use crate::status::ApiError;
use crate::store::{StatusPolicy, meta_str, now_rfc3339};
use hyper::Response;
use serde_json::{Value, json};

pub(super) fn status(ctx: &Ctx<'_>, verb: &str) -> Result<Response<Body>, ApiError> {
    match verb {
        "get" => objects::get(ctx),
        "update" => objects::update(ctx, StatusPolicy::StatusOnly),
        "patch" => patch(ctx, StatusPolicy::StatusOnly),
        _ => Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
    }
}

/// `matchLabels` as the `a=b,c=d` string Scale.status.selector carries.
fn selector_string(obj: &Value) -> String {
    obj.pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj),
        },
    })
}

pub(super) fn scale(ctx: &Ctx<'_>, verb: &str) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let ns = ctx.target.namespace.as_deref();
    let store = &ctx.cluster.store;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let live = store.get(&ctx.rt, ns, name)?;
        let current = scale_of(&live);
        let wanted = match verb {
            "get" => return Ok(json_response(200, &current)),
            "update" => ctx.req.body_value()?,
            "patch" => {
                let kind = patch_kind(ctx)?;
                if kind == PatchKind::Apply {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "apply patches on the scale subresource are not supported",
                    ));
                }
                apply_patch("Scale", kind, &current, &patch_body(ctx, kind)?)?
            }
            _ => return Err(ApiError::method_not_allowed(ctx.req.method.as_str())),
        };
        let replicas = wanted
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
            .ok_or_else(|| {
                ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![crate::status::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: spec.replicas must be a non-negative integer"
                            .into(),
                        field: "spec.replicas".into(),
                    }],
                )
            })?;
        let mut obj = live.clone();
        obj["spec"]["replicas"] = json!(replicas);
        // A resourceVersion in the Scale is a precondition on the object.
        let pinned = meta_str(&wanted, "resourceVersion").filter(|r| !r.is_empty());
        if let Some(rv) = pinned {
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
        let manager = field_manager(ctx.req)?;
        let obj = crate::merge::apply::record_update(
            &ctx.rt.kind,
            Some(&live),
            &obj,
            &manager,
            &now_rfc3339(),
        );
        match store.update(
            &ctx.rt,
            obj,
            &write_options(ctx.req, StatusPolicy::KeepStatus)?,
        ) {
            Ok(updated) => return Ok(json_response(200, &scale_of(&updated))),
            // Without a resourceVersion of its own the Scale applies to the latest object, as the
            // API server's retried update does: a controller's write in between is no conflict.
            Err(e) if e.reason == "Conflict" && pinned.is_none() && attempt < RETRIES => {}
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn log(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let ns = ctx.target.namespace.as_deref().unwrap_or_default();
    let pod = ctx.cluster.store.get_arc(&ctx.rt, Some(ns), name)?;
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match ctx.req.param("container") {
        Some(c) if !containers.contains(&c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() > 1 => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
        _ => {}
    }
    let text = ctx.cluster.store.log(ns, name).unwrap_or_default();
    let text = match ctx.req.param("tailLines") {
        None => text,
        Some(n) => {
            let n: usize = n.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "tailLines must be a non-negative integer, got {n:?}"
                ))
            })?;
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            let mut tail = lines[start..].join("\n");
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail
        }
    };
    Ok(text_response(200, text))
}
