//! A gate's result as the journal keeps it and `status` and `-o json`
//! show it: plain data, apart from the gate that makes it (so the
//! observer can take it without importing the engine's step context).

use crate::check::{self, Finding};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A gate's result, journalled as `{"gate": GateRecord}` in the details of
/// its last event: what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateRecord {
    /// The gated phase's name (`trust`).
    pub phase: String,
    /// The verifier's groups that ran.
    pub groups: Vec<String>,
    /// Error findings: the gate failed when there is one.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Every finding, errors first (secrets redacted).
    pub findings: Vec<Finding>,
}

impl GateRecord {
    /// Whether the gate passed.
    pub fn passed(&self) -> bool {
        self.errors == 0
    }

    /// The error findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == check::Severity::Error)
    }

    /// The warning findings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == check::Severity::Warning)
    }

    /// The latest gate record of `step` in a journal.
    pub fn latest<'a>(
        journal: impl DoubleEndedIterator<Item = &'a crate::state::Event>,
        step: &str,
    ) -> Option<GateRecord> {
        journal
            .rev()
            .filter(|e| e.step.as_deref() == Some(step))
            .find_map(|e| {
                let found = e.details.as_ref()?.get("gate")?;
                serde_json::from_value(found.clone()).ok()
            })
    }
}

/// `passed`, `passed with 2 warning(s)`, `failed with 1 error(s)`.
impl fmt::Display for GateRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.errors, self.warnings) {
            (0, 0) => f.write_str("passed"),
            (0, w) => write!(f, "passed with {w} warning(s)"),
            (e, 0) => write!(f, "failed with {e} error(s)"),
            (e, w) => write!(f, "failed with {e} error(s) and {w} warning(s)"),
        }
    }
}

/// One finding on one line: `MC101 cluster2 ConfigMap istio-system/x: what; fix: how`.
pub fn finding_line(f: &Finding) -> String {
    format!(
        "{} {} {}: {}; fix: {}",
        f.code, f.cluster, f.object, f.message, f.fix
    )
}
