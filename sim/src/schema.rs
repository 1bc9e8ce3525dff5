//! OpenAPI v3 structural schemas from CustomResourceDefinitions: validation,
//! pruning of unknown fields, and the `fieldValidation` modes.
//!
//! Messages follow the API server: causes read `Required value`,
//! `Unsupported value: "X": supported values: "A", "B"`,
//! `Invalid value: "string": spec.port in body must be of type integer: "string"`,
//! and unknown fields `unknown field "spec.trafficPolicy.foo"` (the server
//! answers 400 `strict decoding error: unknown field ...` for those, 422 for
//! the others; the cause `reason` tells them apart).

pub mod tree;

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// The default is `Warn`, as on a real server when the request has no
/// `fieldValidation` parameter (kube-rs sends none; kubectl sends `Strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown or duplicate fields fail the request (400 BadRequest,
    /// `strict decoding error`; see [`strict_decoding_message`]).
    Strict,
    /// Unknown fields are pruned and reported as `Warning:` headers.
    #[default]
    Warn,
    /// Unknown fields are pruned silently.
    Ignore,
}

impl FieldValidation {
    /// The `fieldValidation` query parameter (`Strict`, `Warn`, `Ignore`).
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "Strict" => Some(Self::Strict),
            "Warn" => Some(Self::Warn),
            "Ignore" => Some(Self::Ignore),
            _ => None,
        }
    }
}

/// One schema violation, located by field path (`spec.trafficPolicy.outlierDetection.foo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    /// Kubernetes cause type: `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueTypeInvalid`, `FieldUnknown`.
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    /// `spec.x: Required value`, as in the server's Status message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reason == REASON_UNKNOWN {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The object after pruning (and defaulting, where the schema has `default`).
    pub object: Value,
    /// Unknown fields dropped under `Warn`, as `unknown field "spec.foo"`.
    pub warnings: Vec<String>,
}

pub const REASON_UNKNOWN: &str = "FieldUnknown";

/// The 400 BadRequest message a real server gives when `Strict` validation
/// found unknown fields: `DestinationRule in version "v1" cannot be handled as
/// a DestinationRule: strict decoding error: unknown field "spec.foo"`.
/// None when no error is about an unknown field (then it is a 422 Invalid).
pub fn strict_decoding_message(kind: &str, version: &str, errors: &[FieldError]) -> Option<String> {
    let unknown: Vec<&str> = errors
        .iter()
        .filter(|e| e.reason == REASON_UNKNOWN)
        .map(|e| e.message.as_str())
        .collect();
    if unknown.is_empty() {
        return None;
    }
    Some(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
        unknown.join(", ")
    ))
}

/// The `openAPIV3Schema` of `version` in a CustomResourceDefinition
/// (`spec.versions[].schema`, or the v1beta1-era `spec.validation`).
pub fn crd_version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    let spec = crd.get("spec")?;
    let from_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        })
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"));
    from_version.or_else(|| spec.pointer("/validation/openAPIV3Schema"))
}

/// Validates `object` against `schema` (a CRD version's `openAPIV3Schema`).
/// `metadata`, `apiVersion` and `kind` are the server's business and are not
/// checked beyond their presence. Honours `x-kubernetes-preserve-unknown-fields`,
/// `x-kubernetes-int-or-string`, `x-kubernetes-embedded-resource`, types,
/// formats it can check cheaply, enum, required, min/max, pattern (regex),
/// oneOf/anyOf/allOf/not as value validations.
pub fn validate(
    schema: &Value,
    object: &Value,
    mode: FieldValidation,
) -> Result<Validated, Vec<FieldError>> {
    let mut ctx = Ctx {
        mode,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if !object.is_object() {
        return Err(vec![type_invalid("", object, "object")]);
    }
    for field in ["apiVersion", "kind"] {
        if object
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            ctx.errors.push(required(field));
        }
    }
    let mut out = object.clone();
    let mut path = String::new();
    walk(schema, &mut out, &mut path, &mut ctx, true);
    if ctx.errors.is_empty() {
        Ok(Validated {
            object: out,
            warnings: ctx.warnings,
        })
    } else {
        Err(ctx.errors)
    }
}

struct Ctx {
    mode: FieldValidation,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How a value is shown after `Invalid value:` (scalars as JSON, containers by type).
fn shown(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => format!("\"{}\"", type_name(v)),
        _ => v.to_string(),
    }
}

fn error(field: &str, reason: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.to_string(),
        message,
    }
}

fn required(field: &str) -> FieldError {
    error(field, "FieldValueRequired", "Required value".into())
}

fn type_invalid(field: &str, v: &Value, expected: &str) -> FieldError {
    let actual = type_name(v);
    error(
        field,
        "FieldValueTypeInvalid",
        format!(
            "Invalid value: \"{actual}\": {field} in body must be of type {expected}: \"{actual}\""
        ),
    )
}

fn invalid(field: &str, v: &Value, detail: impl std::fmt::Display) -> FieldError {
    error(
        field,
        "FieldValueInvalid",
        format!("Invalid value: {}: {field} in body {detail}", shown(v)),
    )
}

fn push_child(path: &mut String, name: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    len
}

fn push_index(path: &mut String, index: impl std::fmt::Display) -> usize {
    let len = path.len();
    use std::fmt::Write;
    let _ = write!(path, "[{index}]");
    len
}

/// Validates, prunes and defaults `value` in place.
fn walk(schema: &Value, value: &mut Value, path: &mut String, ctx: &mut Ctx, root: bool) {
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    if let Value::Object(obj) = value {
        prune_nulls_and_default(schema, obj);
    }
    if !local_checks(schema, value, path, &mut ctx.errors) {
        return;
    }
    match value {
        Value::Object(obj) => walk_object(schema, obj, path, ctx, root),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = push_index(path, i);
                    walk(item_schema, item, path, ctx, false);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// Nulls in non-nullable fields are pruned, then defaults fill missing
/// fields, before validation (as the server does).
fn prune_nulls_and_default(schema: &Value, obj: &mut Map<String, Value>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        if obj.get(name).is_some_and(Value::is_null) && !flag(prop, "nullable") {
            obj.remove(name);
        }
        if !obj.contains_key(name)
            && let Some(default) = prop.get("default")
        {
            obj.insert(name.clone(), default.clone());
        }
    }
}

fn walk_object(
    schema: &Value,
    obj: &mut Map<String, Value>,
    path: &mut String,
    ctx: &mut Ctx,
    root: bool,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
        || matches!(additional, Some(Value::Bool(true)));
    let embedded = flag(schema, "x-kubernetes-embedded-resource");

    let mut unknown = Vec::new();
    for (name, v) in obj.iter_mut() {
        if (root || embedded) && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(prop) = properties.and_then(|p| p.get(name)) {
            let len = push_child(path, name);
            walk(prop, v, path, ctx, false);
            path.truncate(len);
        } else if let Some(add) = additional.filter(|a| a.is_object()) {
            let len = push_index(path, name);
            walk(add, v, path, ctx, false);
            path.truncate(len);
        } else if !preserve {
            unknown.push(name.clone());
        }
    }
    for name in unknown {
        let len = push_child(path, &name);
        let message = format!("unknown field \"{path}\"");
        match ctx.mode {
            FieldValidation::Strict => ctx.errors.push(error(path, REASON_UNKNOWN, message)),
            FieldValidation::Warn => ctx.warnings.push(message),
            FieldValidation::Ignore => {}
        }
        path.truncate(len);
        obj.remove(&name);
    }
}

/// Checks of `value` itself (type, enum, bounds, format, required,
/// combinators). False when the type is wrong and nothing below should be checked.
fn local_checks(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) -> bool {
    if value.is_null() {
        if flag(schema, "nullable") {
            return true;
        }
        let expected = schema.get("type").and_then(Value::as_str);
        if let Some(t) = expected {
            errors.push(type_invalid(path, value, t));
            return false;
        }
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || is_integer(value)) {
            errors.push(type_invalid(path, value, "integer,string"));
            return false;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => is_integer(value),
            "number" => value.is_number(),
            _ => true,
        };
        if !ok {
            errors.push(type_invalid(path, value, t));
            return false;
        }
    }

    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(error(
            path,
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: {}",
                value,
                list.join(", ")
            ),
        ));
    }

    match value {
        Value::Number(n) => {
            number_checks(schema, value, n.as_f64().unwrap_or(f64::NAN), path, errors)
        }
        Value::String(s) => string_checks(schema, value, s, path, errors),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                errors.push(invalid(
                    path,
                    value,
                    format!("should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errors.push(error(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            list_type_checks(schema, items, path, errors);
        }
        Value::Object(obj) => {
            if let Some(Value::Array(req)) = schema.get("required") {
                for name in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(name) {
                        let mut p = path.to_string();
                        push_child(&mut p, name);
                        errors.push(required(&p));
                    }
                }
            }
            let n = obj.len() as u64;
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && n < min
            {
                errors.push(invalid(
                    path,
                    value,
                    format!("should have at least {min} properties"),
                ));
            }
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && n > max
            {
                errors.push(invalid(
                    path,
                    value,
                    format!("should have at most {max} properties"),
                ));
            }
        }
        _ => {}
    }
    combinator_checks(schema, value, path, errors);
    true
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn number_checks(schema: &Value, value: &Value, n: f64, path: &str, errors: &mut Vec<FieldError>) {
    let bound = |k: &str| schema.get(k).and_then(Value::as_f64);
    let fmt_bound = |k: &str| schema.get(k).map(Value::to_string).unwrap_or_default();
    if let Some(min) = bound("minimum") {
        if flag(schema, "exclusiveMinimum") {
            if n <= min {
                errors.push(invalid(
                    path,
                    value,
                    format!("should be greater than {}", fmt_bound("minimum")),
                ));
            }
        } else if n < min {
            errors.push(invalid(
                path,
                value,
                format!(
                    "should be greater than or equal to {}",
                    fmt_bound("minimum")
                ),
            ));
        }
    }
    if let Some(max) = bound("maximum") {
        if flag(schema, "exclusiveMaximum") {
            if n >= max {
                errors.push(invalid(
                    path,
                    value,
                    format!("should be less than {}", fmt_bound("maximum")),
                ));
            }
        } else if n > max {
            errors.push(invalid(
                path,
                value,
                format!("should be less than or equal to {}", fmt_bound("maximum")),
            ));
        }
    }
    if let Some(m) = bound("multipleOf")
        && m > 0.0
        && (n / m).fract().abs() > 1e-9
    {
        errors.push(invalid(
            path,
            value,
            format!("should be a multiple of {}", fmt_bound("multipleOf")),
        ));
    }
}

fn string_checks(schema: &Value, value: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(invalid(
            path,
            value,
            format!("should be at least {min} chars long"),
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(error(
            path,
            "FieldValueTooLong",
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && let Some(re) = cached_regex(pattern)
        && !re.is_match(s)
    {
        errors.push(invalid(path, value, format!("should match '{pattern}'")));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        errors.push(invalid(
            path,
            value,
            format!("must be of type {format}: {value}"),
        ));
    }
}

/// String formats the API server checks; others (and numeric formats such as
/// `int32`, which the server does not range-check) pass.
fn format_ok(format: &str, s: &str) -> bool {
    use base64::Engine;
    use time::format_description::well_known::Rfc3339;
    match format {
        "date-time" => time::OffsetDateTime::parse(s, &Rfc3339).is_ok(),
        "date" => {
            let b = s.as_bytes();
            b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && s[..4].parse::<u16>().is_ok()
                && s[5..7].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
                && s[8..].parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
        }
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let max = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) => 32,
                Ok(std::net::IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        }),
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
                && parts
                    .iter()
                    .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        _ => true,
    }
}

/// `x-kubernetes-list-type: set|map` forbid duplicates.
fn list_type_checks(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    let mut p = path.to_string();
                    push_index(&mut p, i);
                    errors.push(error(
                        &p,
                        "FieldValueDuplicate",
                        format!("Duplicate value: {item}"),
                    ));
                }
            }
        }
        Some("map") => {
            let Some(Value::Array(keys)) = schema.get("x-kubernetes-list-map-keys") else {
                return;
            };
            let key_of = |item: &Value| -> Map<String, Value> {
                keys.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|k| item.get(k).map(|v| (k.to_string(), v.clone())))
                    .collect()
            };
            let seen: Vec<Map<String, Value>> = items.iter().map(key_of).collect();
            for (i, k) in seen.iter().enumerate() {
                if seen[..i].contains(k) {
                    let mut p = path.to_string();
                    push_index(&mut p, i);
                    errors.push(error(
                        &p,
                        "FieldValueDuplicate",
                        format!("Duplicate value: {}", Value::Object(k.clone())),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// oneOf/anyOf/allOf/not: value validations only (no pruning or defaulting).
fn combinator_checks(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let passes = |s: &Value| {
        let mut errs = Vec::new();
        check_tree(s, value, path, &mut errs);
        errs.is_empty()
    };
    let list = |k: &str| schema.get(k).and_then(Value::as_array).map(Vec::as_slice);
    if let Some(subs) = list("allOf")
        && !subs.iter().all(passes)
    {
        errors.push(invalid(
            path,
            value,
            "must validate all the schemas (allOf)",
        ));
    }
    if let Some(subs) = list("anyOf")
        && !subs.iter().any(passes)
    {
        errors.push(invalid(
            path,
            value,
            "must validate at least one schema (anyOf)",
        ));
    }
    if let Some(subs) = list("oneOf")
        && subs.iter().filter(|s| passes(s)).count() != 1
    {
        errors.push(invalid(
            path,
            value,
            "must validate one and only one schema (oneOf)",
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        errors.push(invalid(path, value, "must not validate the schema (not)"));
    }
}

/// Read-only validation of a whole subtree (for combinators).
fn check_tree(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if !local_checks(schema, value, path, errors) {
        return;
    }
    match value {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, v) in obj {
                let sub = props.and_then(|p| p.get(name)).or(additional);
                if let Some(sub) = sub {
                    let mut p = path.to_string();
                    push_child(&mut p, name);
                    check_tree(sub, v, &p, errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    let mut p = path.to_string();
                    push_index(&mut p, i);
                    check_tree(sub, item, &p, errors);
                }
            }
        }
        _ => {}
    }
}

/// Patterns compile once per process; a pattern the regex engine rejects is
/// not enforced (the CRD would have been refused on creation by a real server).
fn cached_regex(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    const MAX_ENTRIES: usize = 4096;
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(map) = cache.read()
        && let Some(re) = map.get(pattern)
    {
        return re.clone();
    }
    let re = Regex::new(pattern).ok().map(Arc::new);
    if let Ok(mut map) = cache.write() {
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(pattern.to_string(), re.clone());
    }
    re
}

#[cfg(test)]
mod tests;
