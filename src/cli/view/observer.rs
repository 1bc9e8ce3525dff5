//! The engine's progress as it happens: bars or timestamped lines on
//! stderr (see [`super::progress`]), warnings, and each probe's table; and,
//! with `-o json`, the same as events on stdout (see [`super::events`]).

use super::events::{self, Sink};
use super::progress::{self, Progress};
use crate::engine::{GateRecord, Observer, ProbeReport, RunStart};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shows a run (apply or rollback) on stderr while it goes, and tells it as
/// events when the command was asked for them.
pub struct CliObserver {
    progress: Mutex<Option<Progress>>,
    events: Option<&'static Sink>,
}

impl CliObserver {
    /// An observer with nothing shown yet; the first run starts the bars.
    pub fn new() -> Arc<CliObserver> {
        Arc::new(CliObserver {
            progress: Mutex::new(None),
            events: events::sink(),
        })
    }

    fn with(&self, f: impl FnOnce(&Progress)) {
        if let Ok(p) = self.progress.lock()
            && let Some(p) = p.as_ref()
        {
            f(p);
        }
    }

    fn tell(&self, f: impl FnOnce(&Sink)) {
        if let Some(sink) = self.events {
            f(sink);
        }
    }
}

impl Observer for CliObserver {
    fn run_started(&self, start: &RunStart<'_>) {
        if let Ok(mut p) = self.progress.lock() {
            *p = Some(Progress::new(start.title, start.total, start.done));
        }
        self.tell(|e| e.run_started(start));
    }
    fn step_started(&self, step: &str, description: &str) {
        self.with(|p| p.step_started(step, description));
        self.tell(|e| e.step_started(step, description));
    }
    fn action_started(&self, step: &str, action: &str) {
        tracing::info!(step, "{action}");
        self.with(|p| p.step_action(step, action));
    }
    fn retrying(&self, step: &str, attempt: u32, error: &str) {
        self.with(|p| p.step_retrying(step, attempt, error));
        self.tell(|e| e.step_retrying(step, attempt, error));
    }
    fn warning(&self, step: &str, message: &str) {
        progress::multi().suspend(|| say!("warning: {step}: {message}"));
        self.tell(|e| e.warning(step, message));
    }
    fn probe(&self, report: &ProbeReport) {
        progress::multi().suspend(|| say!("{}", probe_table(report).trim_end()));
        self.tell(|e| e.probe(report));
    }
    fn gate(&self, step: &str, record: &GateRecord) {
        self.tell(|e| e.gate(step, record));
    }
    fn step_failed(&self, step: &str, error: &str) {
        self.tell(|e| e.step_failed(step, error));
    }
    fn step_finished(&self, step: &str, ok: bool, elapsed: Duration) {
        self.with(|p| p.step_finished(step, ok, elapsed));
        self.tell(|e| e.step_finished(step, ok, elapsed));
    }
    fn run_finished(&self) {
        if let Ok(mut p) = self.progress.lock() {
            p.take();
        }
    }
}

/// The answers of a probe per cluster, as a small table.
pub fn probe_table(r: &ProbeReport) -> String {
    let mut out = format!(
        "probe {} from {}: {} requests {}\n",
        r.step,
        r.from,
        r.requests,
        if r.passed { "PASSED" } else { "FAILED" }
    );
    out.push_str(&format!("  {:<16} {:>8}\n", "cluster", "answers"));
    for (cluster, n) in &r.answers {
        out.push_str(&format!("  {cluster:<16} {n:>8}\n"));
    }
    for (error, n) in &r.errors {
        out.push_str(&format!("  error x{n}: {error}\n"));
    }
    if !r.passed {
        out.push_str(&format!("  why: {}\n", r.verdict));
    }
    out
}
