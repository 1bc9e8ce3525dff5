//! What the engine tells the user while it runs (progress bars, plain lines).

use crate::plan::Plan;
use crate::state::{RunId, RunKind};
use std::time::Duration;

/// The answers of one probe, per cluster, for the failover table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeReport {
    pub step: String,
    pub from: String,
    pub requests: u32,
    /// (cluster, answers), every cluster of the plan, in plan order.
    pub answers: Vec<(String, u32)>,
    /// (cluster, version, answers): the answers of each cluster by the
    /// version that gave them (`Hello version: v2`), sorted. Absent in
    /// journals of older builds.
    #[serde(default)]
    pub versions: Vec<(String, String, u32)>,
    /// Failed requests and what they printed, counted by message.
    pub errors: Vec<(String, u32)>,
    pub passed: bool,
    /// Why it failed, when it did.
    pub verdict: String,
}

/// A walk of a run begins (an apply, or the rollback of one run).
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// The run (a rollback walks the apply run it undoes).
    pub run: RunId,
    /// Apply, or rollback to a phase.
    pub kind: &'a RunKind,
    /// The run's plan (its fingerprint; each step's phase).
    pub plan: &'a Plan,
    /// A title for people.
    pub title: &'a str,
    /// Steps within reach of the walk.
    pub total: usize,
    /// Of those, done already (a resumed run).
    pub done: usize,
    /// The steps this walk runs: in plan order, or a rollback's in the order it undoes them.
    pub steps: &'a [String],
}

/// Receives progress; every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A run begins: which, its title, how many steps it has and how many are done already.
    fn run_started(&self, _start: &RunStart<'_>) {}
    /// A step begins.
    fn step_started(&self, _step: &str, _description: &str) {}
    /// An action of a step begins (one line of the plan's wording).
    fn action_started(&self, _step: &str, _action: &str) {}
    /// A transient error; the action is tried again.
    fn retrying(&self, _step: &str, _attempt: u32, _error: &str) {}
    /// Something the user should know that does not fail the step.
    fn warning(&self, _step: &str, _message: &str) {}
    /// A probe finished, passed or not.
    fn probe(&self, _report: &ProbeReport) {}
    /// A phase's gate (step `step`) ran and its result is journalled.
    fn gate(&self, _step: &str, _record: &super::GateRecord) {}
    /// A step failed with `error` (redacted); `step_finished` follows.
    fn step_failed(&self, _step: &str, _error: &str) {}
    /// A step ended, done (`ok`) or failed.
    fn step_finished(&self, _step: &str, _ok: bool, _elapsed: Duration) {}
    /// The run ended.
    fn run_finished(&self) {}
}

/// Ignores everything (tests, benchmarks).
pub struct NullObserver;

impl Observer for NullObserver {}
