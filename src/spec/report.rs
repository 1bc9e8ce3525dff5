//! Collects findings while a spec is decoded and checked, so every problem is
//! reported in one run instead of one per edit-and-retry.

use super::yaml::Pos;
use super::{Diagnostic, Severity};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub severity: Severity,
    pub pos: Pos,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Report {
    findings: Vec<Finding>,
}

impl Report {
    pub fn push(
        &mut self,
        severity: Severity,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.findings.push(Finding {
            severity,
            pos,
            path: path.to_string(),
            message: message.into(),
            hint,
        });
    }

    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, pos, path, message, None);
    }

    pub fn error_hint(
        &mut self,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Severity::Error, pos, path, message, hint);
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Diagnostics in file order (line, then column; errors first on ties).
    pub fn into_diagnostics(self, file: &Path) -> Vec<Diagnostic> {
        let mut findings = self.findings;
        findings.sort_by_key(|f| (f.pos, f.severity != Severity::Error));
        findings.dedup_by(|a, b| {
            a.pos == b.pos && a.path == b.path && a.message == b.message && a.severity == b.severity
        });
        findings
            .into_iter()
            .map(|f| Diagnostic {
                severity: f.severity,
                file: file.to_path_buf(),
                line: f.pos.line,
                column: f.pos.column,
                path: f.path,
                message: f.message,
                hint: f.hint,
            })
            .collect()
    }
}

/// Where each decoded field path was written: its value, and its key when it
/// had one. Semantic checks run on typed data and look positions up here.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Locations {
    pub fn record(&mut self, path: &str, key: Option<Pos>, value: Pos) {
        self.values.insert(path.to_string(), value);
        if let Some(k) = key {
            self.keys.insert(path.to_string(), k);
        }
    }

    /// The value at `path`, else the nearest ancestor that was written.
    pub fn of(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// The key naming `path` (`mesh:`), else where its value starts.
    pub fn key_of(&self, path: &str) -> Pos {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.of(path))
    }
}

/// `spec.clusters[1].name` -> `spec.clusters[1]` -> `spec.clusters` -> `spec`.
pub fn parent(path: &str) -> Option<&str> {
    if let Some(stripped) = path.strip_suffix(']') {
        return stripped.rfind('[').map(|i| &path[..i]);
    }
    path.rfind(['.', '[']).map(|i| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_walk_up_fields_and_indices() {
        assert_eq!(parent("spec.clusters[1].name"), Some("spec.clusters[1]"));
        assert_eq!(parent("spec.clusters[1]"), Some("spec.clusters"));
        assert_eq!(parent("spec"), None);
    }

    #[test]
    fn lookups_fall_back_to_ancestors() {
        let mut l = Locations::default();
        l.record("spec.clusters[0]", None, Pos { line: 4, column: 7 });
        assert_eq!(l.of("spec.clusters[0].network").line, 4);
        assert_eq!(l.key_of("spec.clusters[0]").column, 7);
        assert_eq!(l.of("elsewhere").line, 1);
    }

    #[test]
    fn diagnostics_are_sorted_by_position() {
        let mut r = Report::default();
        r.error(Pos { line: 9, column: 1 }, "b", "later");
        r.push(
            Severity::Warning,
            Pos { line: 2, column: 5 },
            "a",
            "warn",
            None,
        );
        r.error(Pos { line: 2, column: 3 }, "a", "first");
        let d = r.into_diagnostics(Path::new("x.yaml"));
        let order: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(order, ["first", "warn", "later"]);
    }
}
