//! Decoding of the Kubernetes protobuf encoding for the few kinds kubectl
//! sends that way (`kubectl create namespace|configmap|secret|serviceaccount|token`).
//! Other kinds, or fields meshsim does not know, get 415 with a clear message:
//! silently dropping fields would be worse.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    RepStr,
    MapStr,
    MapBytes,
    Msg(&'static [Field]),
    RepMsg(&'static [Field]),
    /// metav1.Time: seconds (1), nanos (2) -> RFC 3339.
    Time,
    /// Known, server-owned or empty in requests: ignored.
    Skip,
}

type Field = (u64, &'static str, Kind);

const OWNER_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (5, "apiVersion", Kind::Str),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];
const META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (4, "selfLink", Kind::Skip),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (7, "generation", Kind::Int),
    (8, "creationTimestamp", Kind::Time),
    (9, "deletionTimestamp", Kind::Skip),
    (10, "deletionGracePeriodSeconds", Kind::Skip),
    (11, "labels", Kind::MapStr),
    (12, "annotations", Kind::MapStr),
    (13, "ownerReferences", Kind::RepMsg(OWNER_REF)),
    (14, "finalizers", Kind::RepStr),
    (15, "clusterName", Kind::Skip),
    (17, "managedFields", Kind::Skip),
];
const NAME_REF: &[Field] = &[(1, "name", Kind::Str)];
const OBJECT_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (2, "namespace", Kind::Str),
    (3, "name", Kind::Str),
];
const NAMESPACE: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (2, "spec", Kind::Msg(&[(1, "finalizers", Kind::RepStr)])),
    (3, "status", Kind::Skip),
];
const CONFIGMAP: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (2, "data", Kind::MapStr),
    (3, "binaryData", Kind::MapBytes),
    (4, "immutable", Kind::Bool),
];
const SECRET: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (2, "data", Kind::MapBytes),
    (3, "type", Kind::Str),
    (4, "stringData", Kind::MapStr),
    (5, "immutable", Kind::Bool),
];
const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (2, "secrets", Kind::RepMsg(OBJECT_REF)),
    (3, "imagePullSecrets", Kind::RepMsg(NAME_REF)),
    (4, "automountServiceAccountToken", Kind::Bool),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
    (8, "fieldSelector", Kind::Skip),
    (9, "labelSelector", Kind::Skip),
];
const ACCESS_REVIEW: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (
        2,
        "spec",
        Kind::Msg(&[
            (1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRIBUTES)),
            (
                2,
                "nonResourceAttributes",
                Kind::Msg(&[(1, "path", Kind::Str), (2, "verb", Kind::Str)]),
            ),
        ]),
    ),
    (3, "status", Kind::Skip),
];

const BOUND_OBJECT_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (2, "apiVersion", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
];
const TOKEN_REQUEST: &[Field] = &[
    (1, "metadata", Kind::Msg(META)),
    (
        2,
        "spec",
        Kind::Msg(&[
            (1, "audiences", Kind::RepStr),
            (3, "boundObjectRef", Kind::Msg(BOUND_OBJECT_REF)),
            (4, "expirationSeconds", Kind::Int),
        ]),
    ),
    (3, "status", Kind::Skip),
];

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the body lacks the k8s protobuf envelope")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, val) in fields(rest)? {
        match (num, val) {
            (1, Wire::Len(type_meta)) => {
                for (n, v) in fields(type_meta)? {
                    match (n, v) {
                        (1, Wire::Len(b)) => api_version = utf8(b)?,
                        (2, Wire::Len(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(b)) => raw = b,
            _ => {}
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIGMAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => ACCESS_REVIEW,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        _ => {
            return Err(format!(
                "meshsim decodes protobuf only for Namespace, ConfigMap, Secret, ServiceAccount, SelfSubjectAccessReview and TokenRequest, not {kind} ({api_version}); send JSON or YAML (e.g. kubectl create -f)"
            ));
        }
    };
    let mut obj = message(raw, schema, &kind)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        let val = match wire {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            2 => {
                let len =
                    usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length too large")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let b = &buf[pos..end];
                pos = end;
                Wire::Len(b)
            }
            1 => {
                pos += 8;
                Wire::Fixed
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((num, val));
    }
    Ok(out)
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

fn map_entry(b: &[u8]) -> Result<(String, &[u8]), String> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (n, v) in fields(b)? {
        match (n, v) {
            (1, Wire::Len(k)) => key = utf8(k)?,
            (2, Wire::Len(x)) => value = x,
            _ => {}
        }
    }
    Ok((key, value))
}

fn message(buf: &[u8], schema: &[Field], path: &str) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for (num, val) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == num) else {
            return Err(format!(
                "meshsim cannot decode protobuf field {num} of {path}; send JSON or YAML instead"
            ));
        };
        let here = format!("{path}.{name}");
        if matches!(kind, Kind::Skip) {
            continue;
        }
        let entry = obj.entry(name.to_string());
        match (kind, val) {
            // gogo writes empty strings and zeros that JSON would omit.
            (Kind::Str, Wire::Len(b)) => {
                if !b.is_empty() {
                    entry.or_insert(json!(utf8(b)?));
                }
            }
            (Kind::Bool, Wire::Varint(v)) => {
                entry.or_insert(json!(v != 0));
            }
            (Kind::Int, Wire::Varint(v)) => {
                if v != 0 {
                    entry.or_insert(json!(v));
                }
            }
            (Kind::RepStr, Wire::Len(b)) => {
                if let Value::Array(a) = entry.or_insert(json!([])) {
                    a.push(json!(utf8(b)?));
                }
            }
            (Kind::MapStr | Kind::MapBytes, Wire::Len(b)) => {
                let (k, v) = map_entry(b)?;
                let v = match kind {
                    Kind::MapStr => json!(utf8(v)?),
                    _ => json!(STANDARD.encode(v)),
                };
                if let Value::Object(m) = entry.or_insert(json!({})) {
                    m.insert(k, v);
                }
            }
            (Kind::Msg(s), Wire::Len(b)) => {
                entry.or_insert(Value::Object(message(b, s, &here)?));
            }
            (Kind::RepMsg(s), Wire::Len(b)) => {
                let m = message(b, s, &here)?;
                if let Value::Array(a) = entry.or_insert(json!([])) {
                    a.push(Value::Object(m));
                }
            }
            (Kind::Time, Wire::Len(b)) => {
                let mut secs = 0i64;
                for (n, v) in fields(b)? {
                    if let (1, Wire::Varint(s)) = (n, v) {
                        secs = s as i64;
                    }
                }
                if secs != 0
                    && let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs)
                    && let Ok(s) = t.format(&time::format_description::well_known::Rfc3339)
                {
                    entry.or_insert(json!(s));
                }
            }
            _ => return Err(format!("protobuf field {here} has an unexpected wire type")),
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(num: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = [
            len_field(1, b"c1"),
            len_field(3, b"ns"),
            len_field(11, &[len_field(1, b"a"), len_field(2, b"b")].concat()),
        ]
        .concat();
        let raw = [
            len_field(1, &meta),
            len_field(2, &[len_field(1, b"k"), len_field(2, b"v")].concat()),
        ]
        .concat();
        let type_meta = [len_field(1, b"v1"), len_field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), len_field(1, &type_meta), len_field(2, &raw)].concat();
        let v = decode(&body).expect("decodes");
        assert_eq!(
            v,
            json!({"metadata": {"name": "c1", "namespace": "ns", "labels": {"a": "b"}}, "data": {"k": "v"},
                "apiVersion": "v1", "kind": "ConfigMap"})
        );
        let dep = [
            MAGIC.to_vec(),
            len_field(
                1,
                &[len_field(1, b"apps/v1"), len_field(2, b"Deployment")].concat(),
            ),
        ]
        .concat();
        assert!(
            decode(&dep)
                .expect_err("unsupported")
                .contains("Deployment")
        );
        assert!(decode(b"nope").is_err());
    }
}
