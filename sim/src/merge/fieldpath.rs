//! Field sets in the FieldsV1 form used by `metadata.managedFields`, built
//! from objects with the list semantics of [`super::types`].
//!
//! Path elements are kept in their FieldsV1 spelling: `f:name` (a field),
//! `k:{"name":"web"}` (a keyed list item), `v:"x"` (a set member), `i:3`
//! (an item of a list whose items lack their key).

use super::types::{self, Field, KeyField, ListType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// The path leading here is itself in the set.
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    fn child(&mut self, elem: String) -> &mut FieldSet {
        self.children.entry(elem).or_default()
    }

    /// Drops empty nodes left behind by building (call once on the root).
    pub fn compact(&mut self) {
        self.children.retain(|_, c| {
            c.compact();
            !c.is_empty()
        });
    }

    /// Parses FieldsV1 (`{"f:spec":{"f:replicas":{}}}`); None if malformed.
    pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
        let obj = v.as_object()?;
        let mut set = FieldSet {
            member: obj.is_empty(),
            children: BTreeMap::new(),
        };
        for (k, child) in obj {
            if k == "." {
                set.member = true;
            } else if ["f:", "k:", "v:", "i:"].iter().any(|p| k.starts_with(p)) {
                set.children
                    .insert(k.clone(), FieldSet::from_fields_v1(child)?);
            } else {
                return None;
            }
        }
        Some(set)
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut obj = Map::new();
        if self.member && !self.children.is_empty() {
            obj.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            obj.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(obj)
    }

    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.child(k.clone()).union_with(c);
        }
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, parents before children.
    pub fn members(&self) -> Vec<Vec<&str>> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.collect(&mut path, &mut out);
        out
    }

    fn collect<'a>(&'a self, path: &mut Vec<&'a str>, out: &mut Vec<Vec<&'a str>>) {
        if self.member {
            out.push(path.clone());
        }
        for (k, c) in &self.children {
            path.push(k);
            c.collect(path, out);
            path.pop();
        }
    }

    /// Whether the set has `path` or anything below it.
    pub fn has_at_or_below(&self, path: &[&str]) -> bool {
        let mut cur = self;
        for elem in path {
            match cur.children.get(*elem) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        !cur.is_empty()
    }

    pub fn get(&self, elem: &str) -> Option<&FieldSet> {
        self.children.get(elem)
    }
}

/// `.spec.containers[name="web"].image`, the server's spelling in conflicts.
pub(crate) fn display_path(path: &[&str]) -> String {
    let mut out = String::new();
    for elem in path {
        if let Some(name) = elem.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = elem.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Map<String, Value>>(key) {
                Ok(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                Err(_) => vec![key.to_string()],
            };
            out.push('[');
            out.push_str(&parts.join(","));
            out.push(']');
        } else if let Some(v) = elem.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = elem.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// Where a value sits: the root and `metadata` hold fields the server owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pos {
    Root,
    Meta,
    Inner,
}

impl Pos {
    /// Fields nobody owns through the main resource: type and identity,
    /// server-set metadata, and status.
    pub fn untracked(self, key: &str) -> bool {
        match self {
            Pos::Root => matches!(key, "apiVersion" | "kind" | "status"),
            Pos::Meta => matches!(
                key,
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ),
            Pos::Inner => false,
        }
    }

    pub fn below(self, key: &str) -> Pos {
        if self == Pos::Root && key == "metadata" {
            Pos::Meta
        } else {
            Pos::Inner
        }
    }
}

/// `k:{"name":"web"}` for an item of a keyed list; None when a key field is
/// missing and has no default.
pub(crate) fn item_key(item: &Value, keys: &[KeyField]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        let v = match (item.get(k.name), k.default) {
            (Some(v), _) if !v.is_null() => v.clone(),
            (_, Some(d)) => Value::String(d.to_string()),
            _ => return None,
        };
        m.insert(k.name.to_string(), v);
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// An apply configuration the server cannot type (missing or duplicate keys).
#[derive(Debug)]
pub(crate) struct BadConfig {
    /// Path elements, innermost first (pushed while unwinding).
    pub rev_path: Vec<String>,
    pub message: String,
}

impl BadConfig {
    pub fn describe(mut self) -> String {
        self.rev_path.reverse();
        let path: Vec<&str> = self.rev_path.iter().map(String::as_str).collect();
        format!("{}: {}", display_path(&path), self.message)
    }
}

fn at<T>(r: Result<T, BadConfig>, elem: &str) -> Result<T, BadConfig> {
    r.map_err(|mut e| {
        e.rev_path.push(elem.to_string());
        e
    })
}

/// The set of fields `value` sets. `strict`: items of keyed lists must carry
/// their keys and be unique (apply configurations); otherwise such items are
/// tracked by index (objects written by other means).
pub(crate) fn field_set(
    value: &Value,
    field: Option<Field>,
    pos: Pos,
    strict: bool,
    out: &mut FieldSet,
) -> Result<(), BadConfig> {
    match value {
        Value::Null => {}
        Value::Object(obj) => {
            if matches!(field, Some(Field::AtomicMap)) || (obj.is_empty() && pos == Pos::Inner) {
                out.member = true;
                return Ok(());
            }
            let node = types::map_node(field);
            for (k, v) in obj {
                if pos.untracked(k) {
                    continue;
                }
                let elem = format!("f:{k}");
                let child = out.child(elem.clone());
                at(
                    field_set(v, types::child(node, k), pos.below(k), strict, child),
                    &elem,
                )?;
            }
        }
        Value::Array(items) => match types::list_type(field) {
            ListType::Atomic => out.member = true,
            ListType::Set => {
                if items.is_empty() {
                    out.member = true;
                }
                for item in items {
                    out.child(format!("v:{item}")).member = true;
                }
            }
            ListType::Map {
                apply_keys,
                item: node,
                ..
            } => {
                if items.is_empty() {
                    out.member = true;
                }
                for (i, item) in items.iter().enumerate() {
                    let elem = match item_key(item, apply_keys) {
                        Some(k) => k,
                        None if strict => {
                            let missing = apply_keys
                                .iter()
                                .find(|k| {
                                    k.default.is_none()
                                        && item.get(k.name).is_none_or(Value::is_null)
                                })
                                .map_or("", |k| k.name);
                            return Err(BadConfig {
                                rev_path: Vec::new(),
                                message: format!(
                                    "element {i}: associative list with keys has an element that omits key field {missing:?} (and doesn't have default value)"
                                ),
                            });
                        }
                        None => format!("i:{i}"),
                    };
                    let child = out.child(elem.clone());
                    if child.member && strict {
                        let shown = display_path(&[elem.as_str()]);
                        return Err(BadConfig {
                            rev_path: Vec::new(),
                            message: format!("duplicate entries for key {shown}"),
                        });
                    }
                    child.member = true;
                    if item.is_object() {
                        at(
                            field_set(item, Some(Field::Map(node)), Pos::Inner, strict, child),
                            &elem,
                        )?;
                        // The item itself is the member; an empty-object marker is not needed.
                        child.member = true;
                    }
                }
            }
        },
        _ => out.member = true,
    }
    Ok(())
}

/// The set of `value` for objects already stored (never fails).
pub(crate) fn stored_field_set(value: &Value, field: Option<Field>) -> FieldSet {
    let mut set = FieldSet::default();
    // Non-strict building cannot fail.
    let _ = field_set(value, field, Pos::Root, false, &mut set);
    set.compact();
    set
}

/// Fields added or changed, and fields removed, from `old` to `new`.
pub(crate) fn compare(
    old: &Value,
    new: &Value,
    field: Option<Field>,
    pos: Pos,
    changed: &mut FieldSet,
    removed: &mut FieldSet,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !matches!(field, Some(Field::AtomicMap)) => {
            if n.is_empty() && !o.is_empty() && pos == Pos::Inner {
                changed.member = true;
            }
            let node = types::map_node(field);
            for (k, nv) in n {
                if pos.untracked(k) {
                    continue;
                }
                let elem = format!("f:{k}");
                let f = types::child(node, k);
                match o.get(k) {
                    Some(ov) => compare(
                        ov,
                        nv,
                        f,
                        pos.below(k),
                        changed.child(elem.clone()),
                        removed.child(elem),
                    ),
                    None => {
                        let _ = field_set(nv, f, pos.below(k), false, changed.child(elem));
                    }
                }
            }
            for (k, ov) in o {
                if !n.contains_key(k) && !pos.untracked(k) {
                    let f = types::child(node, k);
                    let _ = field_set(ov, f, pos.below(k), false, removed.child(format!("f:{k}")));
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => match types::list_type(field) {
            ListType::Set => {
                for item in n.iter().filter(|x| !o.contains(x)) {
                    changed.child(format!("v:{item}")).member = true;
                }
                for item in o.iter().filter(|x| !n.contains(x)) {
                    removed.child(format!("v:{item}")).member = true;
                }
            }
            ListType::Map {
                apply_keys,
                item: node,
                ..
            } => {
                let keyed = |list: &[Value]| -> Option<Vec<String>> {
                    list.iter().map(|x| item_key(x, apply_keys)).collect()
                };
                let (Some(ok), Some(nk)) = (keyed(o), keyed(n)) else {
                    if old != new {
                        changed.member = true;
                    }
                    return;
                };
                let item_field = Some(Field::Map(node));
                for (k, nv) in nk.iter().zip(n) {
                    match ok.iter().position(|x| x == k) {
                        Some(i) => compare(
                            &o[i],
                            nv,
                            item_field,
                            Pos::Inner,
                            changed.child(k.clone()),
                            removed.child(k.clone()),
                        ),
                        None => {
                            let c = changed.child(k.clone());
                            c.member = true;
                            let _ = field_set(nv, item_field, Pos::Inner, false, c);
                            c.member = true;
                        }
                    }
                }
                for (k, ov) in ok.iter().zip(o) {
                    if !nk.contains(k) {
                        let r = removed.child(k.clone());
                        r.member = true;
                        let _ = field_set(ov, item_field, Pos::Inner, false, r);
                        r.member = true;
                    }
                }
            }
            ListType::Atomic => {
                if o != n {
                    changed.member = true;
                }
            }
        },
        _ => {
            if old == new {
                return;
            }
            let container = |v: &Value| v.is_object() || v.is_array();
            if container(old) && !matches!(field, Some(Field::AtomicMap)) {
                let _ = field_set(old, field, pos, false, removed);
            }
            if container(new) && !matches!(field, Some(Field::AtomicMap)) {
                let _ = field_set(new, field, pos, false, changed);
            } else if !new.is_null() {
                changed.member = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_of(v: &Value, kind: &str) -> FieldSet {
        let mut s = FieldSet::default();
        field_set(
            v,
            Some(Field::Map(types::root(kind))),
            Pos::Root,
            true,
            &mut s,
        )
        .unwrap();
        s.compact();
        s
    }

    #[test]
    fn fields_v1_of_a_deployment() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "x", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                        "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 2}
        });
        let s = set_of(&d, "Deployment");
        assert_eq!(
            s.to_fields_v1(),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"a\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }
                    }}}
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&s.to_fields_v1()).unwrap(), s);
    }

    #[test]
    fn display_paths() {
        assert_eq!(display_path(&["f:spec", "f:replicas"]), ".spec.replicas");
        assert_eq!(
            display_path(&["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"]),
            ".spec.containers[name=\"web\"].image"
        );
        assert_eq!(
            display_path(&["f:metadata", "f:finalizers", "v:\"a\""]),
            ".metadata.finalizers[=\"a\"]"
        );
    }

    #[test]
    fn set_algebra() {
        let a = set_of(&json!({"spec": {"a": 1, "b": 2}}), "X");
        let b = set_of(&json!({"spec": {"b": 3, "c": 4}}), "X");
        assert_eq!(a.intersection(&b).members(), vec![vec!["f:spec", "f:b"]]);
        assert_eq!(a.difference(&b).members(), vec![vec!["f:spec", "f:a"]]);
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(u.members().len(), 3);
        assert!(u.has_at_or_below(&["f:spec"]));
        assert!(!u.has_at_or_below(&["f:spec", "f:d"]));
    }

    #[test]
    fn strict_sets_reject_missing_and_duplicate_keys() {
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let mut s = FieldSet::default();
        let e = field_set(
            &missing,
            Some(Field::Map(types::root("Deployment"))),
            Pos::Root,
            true,
            &mut s,
        )
        .unwrap_err()
        .describe();
        assert!(
            e.starts_with(".spec.template.spec.containers: element 0"),
            "{e}"
        );
        let dup =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let e = field_set(
            &dup,
            Some(Field::Map(types::root("Deployment"))),
            Pos::Root,
            true,
            &mut FieldSet::default(),
        )
        .unwrap_err()
        .describe();
        assert_eq!(
            e,
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
        );
    }

    #[test]
    fn compare_finds_changes_and_removals() {
        let f = Some(Field::Map(types::root("Deployment")));
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "resourceVersion": "1"},
                         "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "w", "image": "1"}, {"name": "old"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1", "c": "3"}, "resourceVersion": "2"},
                         "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "w", "image": "2"}, {"name": "n"}]}}}});
        let (mut c, mut r) = (FieldSet::default(), FieldSet::default());
        compare(&old, &new, f, Pos::Root, &mut c, &mut r);
        c.compact();
        r.compact();
        let cm: Vec<String> = c.members().iter().map(|p| display_path(p)).collect();
        let rm: Vec<String> = r.members().iter().map(|p| display_path(p)).collect();
        assert_eq!(
            cm,
            vec![
                ".metadata.labels.c",
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"n\"]",
                ".spec.template.spec.containers[name=\"n\"].name",
                ".spec.template.spec.containers[name=\"w\"].image"
            ]
        );
        assert_eq!(
            rm,
            vec![
                ".metadata.labels.b",
                ".spec.template.spec.containers[name=\"old\"]",
                ".spec.template.spec.containers[name=\"old\"].name"
            ]
        );
    }
}
