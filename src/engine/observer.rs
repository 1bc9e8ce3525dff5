//! What the engine tells the user while it runs (progress bars, plain lines).

use std::time::Duration;

/// The answers of one probe, per cluster, for the failover table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeReport {
    pub step: String,
    pub from: String,
    pub requests: u32,
    /// (cluster, answers), every cluster of the plan, in plan order.
    pub answers: Vec<(String, u32)>,
    /// Failed requests and what they printed, counted by message.
    pub errors: Vec<(String, u32)>,
    pub passed: bool,
    /// Why it failed, when it did.
    pub verdict: String,
}

/// Receives progress; every method has a no-op default.
pub trait Observer: Send + Sync {
    fn run_started(&self, _title: &str, _total: usize, _done: usize) {}
    fn step_started(&self, _step: &str, _description: &str) {}
    fn action_started(&self, _step: &str, _action: &str) {}
    fn retrying(&self, _step: &str, _attempt: u32, _error: &str) {}
    fn warning(&self, _step: &str, _message: &str) {}
    fn probe(&self, _report: &ProbeReport) {}
    fn step_finished(&self, _step: &str, _ok: bool, _elapsed: Duration) {}
    fn run_finished(&self) {}
}

/// Ignores everything (tests, benchmarks).
pub struct NullObserver;

impl Observer for NullObserver {}
