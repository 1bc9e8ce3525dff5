//! Patch and apply semantics of the API server, as pure functions on JSON.

pub mod apply;
pub mod strategic;

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
    let _ = (target, patch);
    todo!("merge helper")
}

/// RFC 6902 JSON patch (`application/json-patch+json`).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let _ = (target, patch);
    todo!("merge helper")
}
