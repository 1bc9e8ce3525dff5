//! Server-side apply: field ownership per manager in `metadata.managedFields`
//! (FieldsV1 form), conflicts between managers, `force`.
//!
//! Lists and maps merge with the table in [`super::types`] (the same one
//! strategic merge uses); custom resources merge maps key by key and own
//! lists whole. `apiVersion`, `kind`, `status` and the server-set metadata
//! (name, namespace, uid, resourceVersion, generation, creationTimestamp,
//! deletion fields, managedFields) are never owned, and apply never writes
//! them on an existing object.

use super::fieldpath::{
    FieldSet, Pos, compare, display_path, field_set, item_key, stored_field_set,
};
use super::types::{self, Field, ListType};
use serde_json::{Map, Value};

/// A field owned by another manager with a different value (409 Conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub manager: String,
    /// `.spec.replicas`, `.metadata.labels.app`, `.spec.containers[name="web"].image`.
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("Apply failed with {} conflict(s)", .0.len())]
    Conflicts(Vec<FieldConflict>),
    #[error("invalid apply configuration: {0}")]
    Invalid(String),
}

/// The manager the server invents for objects that had no managedFields
/// when first applied to: it owns everything that was there.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The Status message the API server writes for apply conflicts; each
/// conflict is also a cause of type `FieldManagerConflict` with message
/// `conflict with "<manager>"` and the field.
pub fn conflict_message(conflicts: &[FieldConflict]) -> String {
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
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Applies `config` (the object as the manager wants it) on top of `live`
/// (None: the object is created). Fields the manager owned before and no
/// longer lists are removed unless another manager owns them. Returns the
/// new object with `metadata.managedFields` updated (`operation: Apply`,
/// `time` = `now`, RFC 3339). Server-owned metadata (uid, resourceVersion,
/// generation, creationTimestamp) is the caller's job.
///
/// Applying the same configuration again returns `live` unchanged (the
/// entry's `time` only moves when something changed).
pub fn server_side_apply(
    kind: &str,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let api_version = check_config(kind, config, manager)?;
    let rf = Some(Field::Map(types::root(kind)));

    let mut config_set = FieldSet::default();
    field_set(config, rf, Pos::Root, true, &mut config_set)
        .map_err(|e| ApplyError::Invalid(e.describe()))?;
    config_set.compact();

    let skeleton;
    let (base, mut entries) = match live {
        Some(l) => {
            let mut entries = decode_entries(l.pointer("/metadata/managedFields"));
            if entries.is_empty() {
                let set = stored_field_set(l, rf);
                if !set.is_empty() {
                    entries.push(Entry {
                        manager: BEFORE_FIRST_APPLY.into(),
                        operation: "Update".into(),
                        api_version: str_at(l, "apiVersion").to_string(),
                        time: Some(now.to_string()),
                        subresource: None,
                        set,
                    });
                }
            }
            (l, entries)
        }
        None => {
            skeleton = identity_of(config);
            (&skeleton, Vec::new())
        }
    };

    let mut new = base.clone();
    merge_apply(&mut new, config, rf, Pos::Root);

    let mut changed = FieldSet::default();
    compare(
        base,
        &new,
        rf,
        Pos::Root,
        &mut changed,
        &mut FieldSet::default(),
    );
    changed.compact();

    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| e.manager != manager) {
        for path in e.set.intersection(&changed).members() {
            conflicts.push(FieldConflict {
                manager: e.manager.clone(),
                field: display_path(&path),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    // Changed fields now belong to the applier alone (forced conflicts included).
    for e in entries.iter_mut().filter(|e| !e.is_apply_of(manager)) {
        if !e.set.intersection(&changed).is_empty() {
            e.set = e.set.difference(&changed);
        }
    }

    let idx = match entries.iter().position(|e| e.is_apply_of(manager)) {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.to_string(),
                operation: "Apply".into(),
                api_version: api_version.to_string(),
                time: None,
                subresource: None,
                set: FieldSet::default(),
            });
            entries.len() - 1
        }
    };
    let previous = std::mem::replace(&mut entries[idx].set, config_set);
    let config_set = &entries[idx].set;
    let dropped = previous.difference(config_set);
    if !dropped.is_empty() {
        let mut others = FieldSet::default();
        for (i, e) in entries.iter().enumerate() {
            if i != idx {
                others.union_with(&e.set);
            }
        }
        let mut keep = others.clone();
        keep.union_with(config_set);
        for path in dropped.members() {
            if !others.has_at_or_below(&path) {
                remove_at(&mut new, &path, rf, Some(&keep), 0);
            }
        }
    }

    let entry = &mut entries[idx];
    if new != *base
        || previous != entry.set
        || entry.api_version != api_version
        || entry.time.is_none()
    {
        entry.time = Some(now.to_string());
    }
    entry.api_version = api_version.to_string();
    entries.retain(|e| !e.set.is_empty());
    write_entries(&mut new, &entries);
    Ok(new)
}

/// After a non-apply write (create, update, patch) by `manager`, records the
/// fields it changed as owned by it (`operation: Update`) and takes them away
/// from apply managers that no longer match, as the real server does.
///
/// `managedFields` sent by the client (different from `old`'s) replace the
/// stored ones, and an empty list resets them, as on a real server.
pub fn record_update(
    kind: &str,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: &str,
) -> Value {
    let rf = Some(Field::Map(types::root(kind)));
    let old_mf = old.and_then(|o| o.pointer("/metadata/managedFields"));
    let new_mf = new.pointer("/metadata/managedFields");
    let mut entries = match (new_mf, old_mf) {
        (Some(n), o) if Some(n) != o => decode_entries(Some(n)),
        (_, o) => decode_entries(o),
    };

    let mut changed = FieldSet::default();
    let mut removed = FieldSet::default();
    match old {
        Some(o) => compare(o, new, rf, Pos::Root, &mut changed, &mut removed),
        None => changed = stored_field_set(new, rf),
    }
    changed.compact();
    removed.compact();

    let mut out = new.clone();
    if !changed.is_empty() || !removed.is_empty() {
        let mine =
            |e: &Entry| e.manager == manager && e.operation == "Update" && e.subresource.is_none();
        for e in entries.iter_mut().filter(|e| !mine(e)) {
            if !e.set.intersection(&changed).is_empty() || !e.set.intersection(&removed).is_empty()
            {
                e.set = e.set.difference(&changed).difference(&removed);
            }
        }
        let idx = match entries.iter().position(mine) {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    manager: manager.to_string(),
                    operation: "Update".into(),
                    api_version: String::new(),
                    time: None,
                    subresource: None,
                    set: FieldSet::default(),
                });
                entries.len() - 1
            }
        };
        let e = &mut entries[idx];
        e.set = e.set.difference(&removed);
        e.set.union_with(&changed);
        e.api_version = str_at(new, "apiVersion").to_string();
        e.time = Some(now.to_string());
        entries.retain(|e| !e.set.is_empty());
    }
    write_entries(&mut out, &entries);
    out
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Checks what the server checks before typing the configuration; returns its apiVersion.
fn check_config<'a>(kind: &str, config: &'a Value, manager: &str) -> Result<&'a str, ApplyError> {
    let invalid = |m: String| Err(ApplyError::Invalid(m));
    if !config.is_object() {
        return invalid("the configuration must be an object".into());
    }
    if manager.is_empty() {
        return invalid("fieldManager is required for apply requests".into());
    }
    let api_version = str_at(config, "apiVersion");
    if api_version.is_empty() {
        return invalid("apiVersion must be set".into());
    }
    match config.get("kind").and_then(Value::as_str) {
        None | Some("") => return invalid("kind must be set".into()),
        Some(k) if k != kind => {
            return invalid(format!(
                "kind {k:?} does not match the resource kind {kind:?}"
            ));
        }
        Some(_) => {}
    }
    match config.get("metadata") {
        None | Some(Value::Object(_)) => Ok(api_version),
        Some(_) => invalid("metadata must be an object".into()),
    }
}

/// What a created object starts from: type and identity of the configuration.
fn identity_of(config: &Value) -> Value {
    let mut obj = Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = config.get(k) {
            obj.insert(k.into(), v.clone());
        }
    }
    if let Some(Value::Object(m)) = config.get("metadata") {
        let mut meta = Map::new();
        for k in ["name", "namespace"] {
            if let Some(v) = m.get(k) {
                meta.insert(k.into(), v.clone());
            }
        }
        obj.insert("metadata".into(), Value::Object(meta));
    }
    Value::Object(obj)
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        _ => v.clone(),
    }
}

/// Merges the configuration into the object: maps key by key, keyed lists by
/// key, sets by value, everything else replaced. A null removes the field.
fn merge_apply(live: &mut Value, config: &Value, field: Option<Field>, pos: Pos) {
    // Re-applying mostly finds equal values: comparing is cheaper than rebuilding.
    if pos == Pos::Inner && *live == *config {
        return;
    }
    let atomic_map = matches!(field, Some(Field::AtomicMap));
    match (&mut *live, config) {
        (Value::Object(l), Value::Object(c)) if !atomic_map => {
            let node = types::map_node(field);
            for (k, cv) in c {
                if pos.untracked(k) {
                    continue;
                }
                if cv.is_null() {
                    l.remove(k);
                    continue;
                }
                match l.get_mut(k) {
                    Some(lv) => merge_apply(lv, cv, types::child(node, k), pos.below(k)),
                    None => {
                        l.insert(k.clone(), without_nulls(cv));
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(c)) => match types::list_type(field) {
            ListType::Set => {
                for item in c {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListType::Map {
                apply_keys,
                item: node,
                ..
            } => {
                let mut keys: Vec<Option<String>> =
                    l.iter().map(|x| item_key(x, apply_keys)).collect();
                for ci in c {
                    let key = item_key(ci, apply_keys);
                    match keys.iter().position(|k| k.is_some() && *k == key) {
                        Some(i) => merge_apply(&mut l[i], ci, Some(Field::Map(node)), Pos::Inner),
                        None => {
                            l.push(without_nulls(ci));
                            keys.push(key);
                        }
                    }
                }
            }
            ListType::Atomic => *live = without_nulls(config),
        },
        _ => *live = without_nulls(config),
    }
}

/// Removes the field at `path`, and maps it leaves empty unless `keep` owns them.
fn remove_at(
    value: &mut Value,
    path: &[&str],
    field: Option<Field>,
    keep: Option<&FieldSet>,
    depth: usize,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let keep_child = keep.and_then(|k| k.get(first));
    if let Some(name) = first.strip_prefix("f:") {
        let Value::Object(o) = value else { return };
        if rest.is_empty() {
            o.remove(name);
            return;
        }
        let Some(c) = o.get_mut(name) else { return };
        remove_at(
            c,
            rest,
            types::child(types::map_node(field), name),
            keep_child,
            depth + 1,
        );
        let emptied = c.as_object().is_some_and(Map::is_empty);
        if depth > 0 && emptied && !keep_child.is_some_and(|k| k.member) {
            o.remove(name);
        }
    } else if first.starts_with("k:") {
        let (
            Value::Array(items),
            ListType::Map {
                apply_keys, item, ..
            },
        ) = (value, types::list_type(field))
        else {
            return;
        };
        let Some(i) = items
            .iter()
            .position(|x| item_key(x, apply_keys).as_deref() == Some(*first))
        else {
            return;
        };
        if rest.is_empty() {
            items.remove(i);
        } else {
            remove_at(
                &mut items[i],
                rest,
                Some(Field::Map(item)),
                keep_child,
                depth + 1,
            );
        }
    } else if let Some(v) = first.strip_prefix("v:")
        && let (Value::Array(items), true) = (value, rest.is_empty())
        && let Ok(member) = serde_json::from_str::<Value>(v)
    {
        items.retain(|x| *x != member);
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn is_apply_of(&self, manager: &str) -> bool {
        self.manager == manager && self.operation == "Apply" && self.subresource.is_none()
    }
}

/// Entries that are not well-formed FieldsV1 are dropped, as the server
/// resets managed fields it cannot decode.
fn decode_entries(list: Option<&Value>) -> Vec<Entry> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| {
            if e.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
                return None;
            }
            let opt = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Entry {
                manager: opt("manager").unwrap_or_default(),
                operation: opt("operation")?,
                api_version: opt("apiVersion").unwrap_or_default(),
                time: opt("time"),
                subresource: opt("subresource"),
                set: {
                    // `{}` at the top is an empty set, not a member.
                    let mut set = FieldSet::from_fields_v1(e.get("fieldsV1")?)?;
                    set.member = false;
                    set
                },
            })
        })
        .collect()
}

fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let Value::Object(o) = obj else { return };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else { return };
    if entries.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let list = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), Value::String(e.manager.clone()));
            m.insert("operation".into(), Value::String(e.operation.clone()));
            m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
            if let Some(t) = &e.time {
                m.insert("time".into(), Value::String(t.clone()));
            }
            m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            m.insert("fieldsV1".into(), e.set.to_fields_v1());
            if let Some(s) = &e.subresource {
                m.insert("subresource".into(), Value::String(s.clone()));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

#[cfg(test)]
mod tests;
