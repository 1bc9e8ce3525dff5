//! Patch and apply semantics of the API server, as pure functions on JSON.

pub mod apply;
mod fieldpath;
pub mod strategic;
pub mod types;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (400 BadRequest).
    #[error("invalid patch: {0}")]
    BadPatch(String),
    /// The patch is well formed but cannot apply to this object (422 Invalid), e.g. a failed `test`.
    #[error("patch cannot be applied: {0}")]
    Unprocessable(String),
}

/// RFC 7386 JSON merge patch (`application/merge-patch+json`).
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// RFC 6902 JSON patch (`application/json-patch+json`).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_array() {
        return Err(PatchError::BadPatch(
            "a JSON patch must be a list of operations".into(),
        ));
    }
    let ops =
        json_patch::Patch::deserialize(patch).map_err(|e| PatchError::BadPatch(e.to_string()))?;
    let mut out = target.clone();
    // The result is thrown away on error, so no undo log is needed.
    json_patch::patch_unsafe(&mut out, &ops).map_err(|e| {
        PatchError::Unprocessable(format!(
            "operation {} ({}) at path '{}': {}",
            e.operation,
            op_name(&ops.0[e.operation]),
            e.path,
            e.kind
        ))
    })?;
    Ok(out)
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(_) => "add",
        P::Remove(_) => "remove",
        P::Replace(_) => "replace",
        P::Move(_) => "move",
        P::Copy(_) => "copy",
        P::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null, "n": {"x": null, "y": 1}}, "l": [3]});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"a": "z", "c": {"d": "e", "n": {"y": 1}}, "l": [3]})
        );
        // RFC 7386 appendix cases
        assert_eq!(
            merge_patch(&json!({"a": "b"}), &json!({"a": null})),
            json!({})
        );
        assert_eq!(
            merge_patch(&json!(["a"]), &json!({"a": "b"})),
            json!({"a": "b"})
        );
        assert_eq!(merge_patch(&json!({"a": "b"}), &json!(["c"])), json!(["c"]));
        assert_eq!(
            merge_patch(&json!({"e": null}), &json!({"a": 1})),
            json!({"e": null, "a": 1})
        );
        assert_eq!(merge_patch(&json!({"a": "foo"}), &json!(null)), json!(null));
        assert_eq!(
            merge_patch(&json!({}), &json!({"a": {"bb": {"ccc": null}}})),
            json!({"a": {"bb": {}}})
        );
        // kubectl label: a merge patch on metadata.labels
        let obj = json!({"metadata": {"name": "x", "labels": {"app": "web", "old": "1"}}});
        let p = json!({"metadata": {"labels": {"old": null, "new": "2"}}});
        assert_eq!(
            merge_patch(&obj, &p),
            json!({"metadata": {"name": "x", "labels": {"app": "web", "new": "2"}}})
        );
    }

    #[test]
    fn json_patch_operations() {
        let target = json!({"a": {"b": [1, 2, 3]}, "x": "y"});
        let patch = json!([
            {"op": "add", "path": "/a/b/-", "value": 4},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "remove", "path": "/a/b/1"},
            {"op": "replace", "path": "/x", "value": {"z": 1}},
            {"op": "copy", "from": "/x", "path": "/c"},
            {"op": "move", "from": "/c/z", "path": "/moved"},
            {"op": "test", "path": "/moved", "value": 1}
        ]);
        assert_eq!(
            json_patch(&target, &patch).unwrap(),
            json!({"a": {"b": [0, 2, 3, 4]}, "x": {"z": 1}, "c": {}, "moved": 1})
        );
    }

    #[test]
    fn json_patch_escaped_pointers() {
        let target = json!({"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}});
        let patch = json!([
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/m~0n"},
            {"op": "add", "path": "/metadata/annotations/kubectl.kubernetes.io~1restartedAt", "value": "now"}
        ]);
        assert_eq!(
            json_patch(&target, &patch).unwrap(),
            json!({"metadata": {"annotations": {"a/b": "x", "kubectl.kubernetes.io/restartedAt": "now"}}})
        );
    }

    #[test]
    fn json_patch_whole_document_and_null_values() {
        assert_eq!(
            json_patch(
                &json!({"a": 1}),
                &json!([{"op": "replace", "path": "", "value": [1]}])
            )
            .unwrap(),
            json!([1])
        );
        assert_eq!(
            json_patch(
                &json!({"a": 1}),
                &json!([{"op": "add", "path": "/a", "value": null}])
            )
            .unwrap(),
            json!({"a": null})
        );
        assert_eq!(
            json_patch(&json!({"a": 1}), &json!([])).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn json_patch_unprocessable() {
        let target = json!({"a": [1], "s": "x"});
        for p in [
            json!([{"op": "test", "path": "/s", "value": "y"}]),
            json!([{"op": "test", "path": "/missing", "value": "y"}]),
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "replace", "path": "/missing", "value": 1}]),
            json!([{"op": "add", "path": "/no/parent", "value": 1}]),
            json!([{"op": "add", "path": "/a/5", "value": 1}]),
            json!([{"op": "remove", "path": "/a/-"}]),
            json!([{"op": "add", "path": "/a/01", "value": 1}]),
            json!([{"op": "move", "from": "/missing", "path": "/b"}]),
            json!([{"op": "move", "from": "/a", "path": "/a/0"}]),
            json!([{"op": "copy", "from": "/missing", "path": "/b"}]),
            json!([{"op": "remove", "path": ""}]),
        ] {
            match json_patch(&target, &p) {
                Err(PatchError::Unprocessable(msg)) => assert!(msg.contains("path"), "{msg}"),
                other => panic!("{p}: expected Unprocessable, got {other:?}"),
            }
        }
        // the failing op is named
        let e = json_patch(&target, &json!([{"op": "add", "path": "/b", "value": 1}, {"op": "test", "path": "/s", "value": "z"}]))
            .unwrap_err();
        assert!(e.to_string().contains("operation 1 (test)"), "{e}");
    }

    #[test]
    fn json_patch_bad_documents() {
        let target = json!({"a": 1});
        for p in [
            json!({"op": "add", "path": "/a", "value": 1}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "add", "value": 1}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
            json!([{"op": "add", "path": "/a~2", "value": 1}]),
            json!([{"op": "move", "path": "/b"}]),
            json!(["add"]),
        ] {
            assert!(
                matches!(json_patch(&target, &p), Err(PatchError::BadPatch(_))),
                "{p} should be a bad patch, got {:?}",
                json_patch(&target, &p)
            );
        }
    }
}
