//! Semantic checks on a spec that decoded cleanly: references between
//! fields, counts, formats and the Istio rules a typo would break only at
//! apply time. Every finding is located at the field it is about.
//!
//! They run only when decoding found no error: a half-decoded spec would
//! produce follow-on noise ("no network" after a misspelt `netwrok`).

mod address;
mod clusters;
mod failover_test;
mod mesh;
mod observability;
mod routing;
mod trust;
mod workloads;

use super::mesh_migration::MeshMigration;
use super::report::{Locations, Report};
use super::suggest;
use super::{Severity, formats};

pub(crate) struct Checker<'a> {
    pub spec: &'a MeshMigration,
    locs: &'a Locations,
    report: &'a mut Report,
}

pub(crate) fn check(spec: &MeshMigration, locs: &Locations, report: &mut Report) {
    let mut c = Checker { spec, locs, report };
    mesh::check(&mut c);
    clusters::check(&mut c);
    address::check(&mut c);
    trust::check(&mut c);
    routing::check(&mut c);
    observability::check(&mut c);
    workloads::check(&mut c);
    failover_test::check(&mut c);
}

impl Checker<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let pos = self.locs.of(path);
        self.report.push(Severity::Error, pos, path, message, hint);
    }

    /// An error about something missing under `path`: points at its key.
    pub fn error_at_key(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let pos = self.locs.key_of(path);
        self.report.push(Severity::Error, pos, path, message, hint);
    }

    pub fn warn(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let pos = self.locs.of(path);
        self.report
            .push(Severity::Warning, pos, path, message, hint);
    }

    /// A warning about a field itself (deprecated, redundant): points at its key.
    pub fn warn_at_key(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let pos = self.locs.key_of(path);
        self.report
            .push(Severity::Warning, pos, path, message, hint);
    }

    pub fn line_of(&self, path: &str) -> usize {
        self.locs.of(path).line
    }

    /// Runs a format check on `value` and reports its complaint at `path`.
    pub fn format(
        &mut self,
        path: &str,
        value: &str,
        what: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> bool {
        match check(value) {
            Ok(()) => true,
            Err(_) if value.is_empty() => {
                self.error(path, format!("{what} must not be empty"), None);
                false
            }
            Err(e) => {
                let shown = super::yaml::shorten(value);
                self.error(path, format!("{what} `{shown}` {e}"), None);
                false
            }
        }
    }

    pub fn cluster_names(&self) -> Vec<&str> {
        self.spec
            .spec
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }

    /// `name` must be one of the spec's clusters.
    pub fn cluster_ref(&mut self, path: &str, name: &str) -> bool {
        self.cluster_ref_at(path, name, false)
    }

    /// Like `cluster_ref`, for a cluster name used as a mapping key.
    pub fn cluster_key_ref(&mut self, path: &str, name: &str) -> bool {
        self.cluster_ref_at(path, name, true)
    }

    fn cluster_ref_at(&mut self, path: &str, name: &str, at_key: bool) -> bool {
        let names = self.cluster_names();
        if names.contains(&name) {
            return true;
        }
        let hint = match suggest::closest(name, &names) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("the clusters are: {}", names.join(", ")),
        };
        let shown = super::yaml::shorten(name);
        let message = format!("no cluster named `{shown}`");
        if at_key {
            self.error_at_key(path, message, Some(hint));
        } else {
            self.error(path, message, Some(hint));
        }
        false
    }
}
