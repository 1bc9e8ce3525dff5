//! Request bodies and stored objects: checked against the URL's type and a custom
//! resource's schema, and presented in the requested version.

use super::request::Ctx;
use crate::resources::ResourceType;
use crate::schema::{self, FieldValidation};
use crate::status::{ApiError, Cause};
use crate::store::meta_str;
use serde_json::Value;

/// Checks `obj` against a custom resource's schema: pruned object and warnings,
/// or the error the API server gives (400 for strict unknown fields, 422 otherwise).
pub(super) fn validate_schema(
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
pub(super) fn check_body(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), ApiError> {
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

/// The object as the requested version presents it (custom resources are
/// stored once for all versions; no conversion beyond apiVersion).
pub(super) fn needs_version_rewrite(rt: &ResourceType, obj: &Value) -> bool {
    rt.custom && obj.get("apiVersion").and_then(Value::as_str) != Some(&rt.api_version())
}

pub(super) fn for_version(rt: &ResourceType, obj: &Value) -> Value {
    let mut obj = obj.clone();
    if rt.custom && obj.get("apiVersion").and_then(Value::as_str) != Some(&rt.api_version()) {
        obj["apiVersion"] = Value::String(rt.api_version());
    }
    obj
}
