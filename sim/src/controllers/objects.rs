//! What the controllers share about the objects they write: their types and owner
//! references. Below the controllers, so that none of them imports the dispatcher.

use crate::resources::ResourceType;
use crate::store::Store;
use serde_json::Value;

/// The `v1` type of `group`/`resource` (every kind the controllers write is `v1`).
pub(super) fn rt(store: &Store, group: &str, resource: &str) -> Option<ResourceType> {
    store.resolve(group, "v1", resource)
}

/// An ownerReference (controller) to `owner`.
pub(super) fn owner_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": owner.pointer("/metadata/name"),
        "uid": owner.pointer("/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `obj` has an ownerReference to the object with `uid`.
pub(super) fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        })
}
