//! Decodes the located YAML tree into the typed spec, by hand, so that every
//! structural problem (unknown field, wrong type, missing field, duplicate
//! key, bad enum value) is reported with its position and the decoding goes
//! on to find the next one.
//!
//! Each decoder returns `None` when its part could not be built; the error is
//! already in the report. Siblings are always decoded before giving up.

mod document;
mod paths;

pub(crate) use document::document;
pub(crate) use paths::{resolve_cert_dir, spec_dir};

use super::report::{Locations, Report};
use super::suggest;
use super::yaml::{Entry, Pos, Resolved, Value, YamlNode, shorten};
use std::collections::HashMap;

pub(crate) struct Decoder<'r> {
    pub report: &'r mut Report,
    pub locs: Locations,
}

/// The fields of one mapping, already checked for unknown and duplicate keys.
pub(crate) struct Fields<'n> {
    path: String,
    /// Where "missing field" errors point: the parent's key, else the mapping.
    pos: Pos,
    entries: HashMap<&'n str, &'n Entry>,
}

pub(crate) fn child(path: &str, name: &str) -> String {
    let name = shorten(name);
    if path.is_empty() {
        name
    } else {
        format!("{path}.{name}")
    }
}

impl Decoder<'_> {
    fn type_error(&mut self, node: &YamlNode, path: &str, expected: &str) {
        let hint = match &node.value {
            Value::Scalar(s) if s.plain && expected.contains("string") => match s.resolve() {
                Resolved::Bool(_) | Resolved::Int(_) | Resolved::Float(_) => {
                    Some(format!("quote it: \"{}\"", s.text))
                }
                _ => None,
            },
            Value::Scalar(s) if !s.plain && !expected.contains("string") => {
                let unquoted = super::yaml::Scalar {
                    plain: true,
                    tagged_str: false,
                    ..s.clone()
                };
                let fits = match unquoted.resolve() {
                    Resolved::Int(_) | Resolved::Float(_) => expected.contains("number"),
                    Resolved::Bool(_) => expected.contains("boolean"),
                    _ => false,
                };
                fits.then(|| "remove the quotes".into())
            }
            Value::Map(_) | Value::Seq(_) if expected.contains("string") => {
                Some("a `{` or `[` starts a mapping or list; quote the value".into())
            }
            _ => None,
        };
        let found = node.describe();
        self.report.error_hint(
            node.pos,
            path,
            format!("expected {expected}, found {found}"),
            hint,
        );
    }

    /// Opens a mapping whose known fields are `known`; reports the rest.
    pub fn fields<'n>(
        &mut self,
        node: &'n YamlNode,
        path: &str,
        what: &str,
        known: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.type_error(node, path, what);
            return None;
        };
        let (own, merged) = self.expand_merges(entries, path);
        let mut seen: HashMap<&'n str, &'n Entry> = HashMap::new();
        let mut unknown: Vec<&'n str> = Vec::new();
        for (entry, is_merged) in own
            .into_iter()
            .map(|e| (e, false))
            .chain(merged.into_iter().map(|e| (e, true)))
        {
            if is_merged {
                // Explicit keys override merged ones, and earlier merge
                // sources override later ones (YAML merge key semantics).
                if let Value::Scalar(k) = &entry.key.value
                    && (seen.contains_key(k.text.as_str()) || unknown.contains(&k.text.as_str()))
                {
                    continue;
                }
            }
            let key = match &entry.key.value {
                Value::Scalar(s) => s.text.as_str(),
                _ => {
                    let found = entry.key.describe();
                    self.report.error(
                        entry.key.pos,
                        path,
                        format!("a field name must be a plain word, found {found}"),
                    );
                    continue;
                }
            };
            let field_path = child(path, key);
            if let Some(first) = seen.get(key) {
                let line = first.key.pos.line;
                self.report.error_hint(
                    entry.key.pos,
                    &field_path,
                    format!("duplicate field `{key}`"),
                    Some(format!("it is already given on line {line}; keep one")),
                );
                continue;
            }
            if !known.contains(&key) {
                unknown.push(key);
                self.report.error_hint(
                    entry.key.pos,
                    &field_path,
                    format!("unknown field `{}`", shorten(key)),
                    Some(suggest::hint(key, known)),
                );
                continue;
            }
            seen.insert(key, entry);
        }
        Some(Fields {
            path: path.to_string(),
            pos: self.locs.key_of(path),
            entries: seen,
        })
    }

    /// Splits a mapping's entries into its own and those merged in with
    /// `<<: *anchor` (or `<<: [*a, *b]`), expanded recursively, in priority
    /// order. kubectl accepts merge keys, so platform engineers use them.
    fn expand_merges<'n>(
        &mut self,
        entries: &'n [Entry],
        path: &str,
    ) -> (Vec<&'n Entry>, Vec<&'n Entry>) {
        let mut own = Vec::with_capacity(entries.len());
        let mut sources: Vec<&'n YamlNode> = Vec::new();
        for entry in entries {
            match &entry.key.value {
                Value::Scalar(k) if k.plain && k.text == "<<" => match &entry.value.value {
                    Value::Map(_) => sources.push(&entry.value),
                    Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
                        sources.extend(items.iter());
                    }
                    _ => {
                        let found = entry.value.describe();
                        self.report.error(
                            entry.value.pos,
                            path,
                            format!("a merge (`<<`) takes a mapping or a list of mappings, found {found}"),
                        );
                    }
                },
                _ => own.push(entry),
            }
        }
        let mut merged = Vec::new();
        for source in sources {
            if let Value::Map(inner) = &source.value {
                let (o, m) = self.expand_merges(inner, path);
                merged.extend(o);
                merged.extend(m);
            }
        }
        (own, merged)
    }

    fn lookup<'n>(&mut self, f: &Fields<'n>, name: &str) -> Option<(&'n Entry, String)> {
        let entry = *f.entries.get(name)?;
        let path = child(&f.path, name);
        self.locs
            .record(&path, Some(entry.key.pos), entry.value.pos);
        Some((entry, path))
    }

    /// A field that must be there (and not null).
    pub fn req<T>(
        &mut self,
        f: &Fields<'_>,
        name: &str,
        dec: impl FnOnce(&mut Self, &YamlNode, &str) -> Option<T>,
    ) -> Option<T> {
        match self.lookup(f, name) {
            Some((entry, path)) => dec(self, &entry.value, &path),
            None => {
                self.report.error(
                    f.pos,
                    &child(&f.path, name),
                    format!("missing required field `{name}`"),
                );
                None
            }
        }
    }

    /// An optional field: `Some(None)` when absent or null, `None` when it failed.
    pub fn opt<T>(
        &mut self,
        f: &Fields<'_>,
        name: &str,
        dec: impl FnOnce(&mut Self, &YamlNode, &str) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.lookup(f, name) {
            Some((entry, _)) if entry.value.is_null() => Some(None),
            Some((entry, path)) => dec(self, &entry.value, &path).map(Some),
            None => Some(None),
        }
    }

    /// An optional field with a default.
    pub fn or<T>(
        &mut self,
        f: &Fields<'_>,
        name: &str,
        dec: impl FnOnce(&mut Self, &YamlNode, &str) -> Option<T>,
        default: impl FnOnce() -> T,
    ) -> Option<T> {
        self.opt(f, name, dec).map(|v| v.unwrap_or_else(default))
    }

    pub fn string(&mut self, node: &YamlNode, path: &str) -> Option<String> {
        if let Value::Scalar(s) = &node.value
            && let Resolved::Str(t) = s.resolve()
        {
            return Some(t.to_string());
        }
        self.type_error(node, path, "a string");
        None
    }

    /// A duration as written; a bare number is kept so the duration check
    /// can say it lacks a unit (`30` meant as `30s`).
    pub fn duration_text(&mut self, node: &YamlNode, path: &str) -> Option<String> {
        if let Value::Scalar(s) = &node.value
            && matches!(s.resolve(), Resolved::Int(_) | Resolved::Float(_))
        {
            return Some(s.text.clone());
        }
        self.string(node, path)
    }

    pub fn path_buf(&mut self, node: &YamlNode, path: &str) -> Option<std::path::PathBuf> {
        let s = self.string(node, path)?;
        if s.is_empty() {
            self.report.error(node.pos, path, "the path is empty");
            return None;
        }
        Some(s.into())
    }

    pub fn boolean(&mut self, node: &YamlNode, path: &str) -> Option<bool> {
        if let Value::Scalar(s) = &node.value {
            match s.resolve() {
                Resolved::Bool(b) => return Some(b),
                Resolved::Str(t) if is_yaml11_bool(t) => {
                    self.report.error_hint(
                        node.pos,
                        path,
                        format!("expected a boolean, found a string `{t}`"),
                        Some("write `true` or `false`".into()),
                    );
                    return None;
                }
                _ => {}
            }
        }
        self.type_error(node, path, "a boolean (true or false)");
        None
    }

    fn integer(&mut self, node: &YamlNode, path: &str, max: u64) -> Option<u64> {
        if let Value::Scalar(s) = &node.value {
            match s.resolve() {
                Resolved::Int(i) if i < 0 => {
                    self.report
                        .error(node.pos, path, format!("must not be negative, found {i}"));
                    return None;
                }
                Resolved::Int(i) if i as u64 > max => {
                    self.report
                        .error(node.pos, path, format!("{i} is too large (at most {max})"));
                    return None;
                }
                Resolved::Int(i) => return Some(i as u64),
                Resolved::Float(_) => {
                    self.report.error(
                        node.pos,
                        path,
                        format!("expected a whole number, found `{}`", s.text),
                    );
                    return None;
                }
                _ => {}
            }
        }
        self.type_error(node, path, "a whole number");
        None
    }

    pub fn u32(&mut self, node: &YamlNode, path: &str) -> Option<u32> {
        self.integer(node, path, u32::MAX.into())
            .and_then(|v| u32::try_from(v).ok())
    }

    pub fn u16(&mut self, node: &YamlNode, path: &str) -> Option<u16> {
        self.integer(node, path, u16::MAX.into())
            .and_then(|v| u16::try_from(v).ok())
    }

    pub fn f64(&mut self, node: &YamlNode, path: &str) -> Option<f64> {
        if let Value::Scalar(s) = &node.value {
            match s.resolve() {
                Resolved::Int(i) => return Some(i as f64),
                Resolved::Float(f) if f.is_finite() => return Some(f),
                Resolved::Float(_) => {
                    self.report
                        .error(node.pos, path, "expected a finite number");
                    return None;
                }
                _ => {}
            }
        }
        self.type_error(node, path, "a number");
        None
    }

    /// One of a fixed set of words (`multi-primary`, `primary-remote`).
    pub fn one_of<T: Copy>(
        &mut self,
        node: &YamlNode,
        path: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let Value::Scalar(s) = &node.value else {
            self.type_error(node, path, &format!("one of {}", names.join(", ")));
            return None;
        };
        if let Some((_, v)) = choices.iter().find(|(n, _)| *n == s.text) {
            return Some(*v);
        }
        let hint = suggest::closest(&s.text, &names).map(|c| format!("did you mean `{c}`?"));
        self.report.error_hint(
            node.pos,
            path,
            format!(
                "expected one of {}, found `{}`",
                names.join(", "),
                shorten(&s.text)
            ),
            hint,
        );
        None
    }

    /// A list whose items decode with `item`; `what` names it ("a list of clusters").
    pub fn list<T>(
        &mut self,
        node: &YamlNode,
        path: &str,
        what: &str,
        mut item: impl FnMut(&mut Self, &YamlNode, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Value::Seq(items) = &node.value else {
            self.type_error(node, path, what);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, n) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            self.locs.record(&p, None, n.pos);
            match item(self, n, &p) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub fn strings(&mut self, node: &YamlNode, path: &str) -> Option<Vec<String>> {
        self.list(node, path, "a list of strings", Self::string)
    }

    /// A mapping from user-chosen names to values (`perCluster`).
    pub fn string_map<T>(
        &mut self,
        node: &YamlNode,
        path: &str,
        what: &str,
        mut value: impl FnMut(&mut Self, &YamlNode, &str) -> Option<T>,
    ) -> Option<Vec<(String, T)>> {
        let Value::Map(entries) = &node.value else {
            self.type_error(node, path, what);
            return None;
        };
        let mut out: Vec<(String, T)> = Vec::with_capacity(entries.len());
        let mut ok = true;
        for entry in entries {
            let Some(key) = self.string(&entry.key, path) else {
                ok = false;
                continue;
            };
            let p = child(path, &key);
            if out.iter().any(|(k, _)| *k == key) {
                self.report
                    .error(entry.key.pos, &p, format!("duplicate key `{key}`"));
                ok = false;
                continue;
            }
            self.locs.record(&p, Some(entry.key.pos), entry.value.pos);
            match value(self, &entry.value, &p) {
                Some(v) => out.push((key, v)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Arbitrary YAML passed through to Kubernetes (an Istio `spec`), as JSON.
    pub fn json(&mut self, node: &YamlNode, path: &str) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        match &node.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => Some(J::Null),
                Resolved::Bool(b) => Some(J::Bool(b)),
                Resolved::Int(i) => Some(J::from(i)),
                Resolved::Float(f) => match serde_json::Number::from_f64(f) {
                    Some(n) => Some(J::Number(n)),
                    None => {
                        self.report.error(
                            node.pos,
                            path,
                            "infinity and NaN cannot be sent to Kubernetes",
                        );
                        None
                    }
                },
                Resolved::Str(t) => Some(J::String(t.to_string())),
            },
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, n) in items.iter().enumerate() {
                    match self.json(n, &format!("{path}[{i}]")) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(J::Array(out))
            }
            Value::Map(entries) => {
                let mut out = serde_json::Map::new();
                let mut ok = true;
                let (own, merged) = self.expand_merges(entries, path);
                let own_len = own.len();
                for (i, e) in own.into_iter().chain(merged).enumerate() {
                    if i >= own_len
                        && let Value::Scalar(k) = &e.key.value
                        && out.contains_key(&k.text)
                    {
                        continue;
                    }
                    let Value::Scalar(k) = &e.key.value else {
                        self.report
                            .error(e.key.pos, path, "a field name must be a plain word");
                        ok = false;
                        continue;
                    };
                    let p = child(path, &k.text);
                    if out.contains_key(&k.text) {
                        self.report
                            .error(e.key.pos, &p, format!("duplicate field `{}`", k.text));
                        ok = false;
                        continue;
                    }
                    match self.json(&e.value, &p) {
                        Some(v) => {
                            out.insert(k.text.clone(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(J::Object(out))
            }
        }
    }
}

/// YAML 1.1 booleans that YAML 1.2 (and so this parser) reads as strings.
fn is_yaml11_bool(t: &str) -> bool {
    matches!(
        t.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n"
    )
}
