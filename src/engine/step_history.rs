//! What a run's journal says of its steps' earlier executions, read in one
//! pass per walk instead of once per step: a step that restarts something
//! needs its cycle, one with `finally` actions whether its forward actions
//! completed (each read the whole journal before its first action).
//!
//! Read the first time a step of the walk needs it, and exact for every step
//! of the walk: a step's facts change only by that step's own marks, and a
//! walk runs each step once, after the read (its first need came at the
//! latest when it started).

use crate::state::{EventKind, NewEvent, RunId, StateError, Store};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The journal key of a step's forward actions having completed.
const FORWARD_COMPLETE: &str = "forwardComplete";

/// The facts, per step.
#[derive(Debug, Default)]
pub(crate) struct StepHistory {
    /// How many times each step was completed or rolled back.
    finished: BTreeMap<String, u32>,
    /// The executions (step, cycle) whose forward actions completed.
    forward_done: BTreeSet<(String, u32)>,
}

/// Read once per walk, by whichever step needs it first.
pub(crate) type Shared = tokio::sync::OnceCell<StepHistory>;

impl StepHistory {
    /// Reads `run`'s whole journal once.
    pub(crate) fn read(store: &dyn Store, run: RunId) -> Result<StepHistory, StateError> {
        let mut history = StepHistory::default();
        for e in store.events(run, 0)? {
            let (Some(step), Some(details)) = (e.step, e.details) else {
                continue;
            };
            match e.kind {
                EventKind::StepStatus => {
                    let to = details.get("to");
                    if to.is_some_and(|t| t == "done" || t == "rolled-back") {
                        let n = history.finished.entry(step).or_default();
                        *n = n.saturating_add(1);
                    }
                }
                EventKind::Note => {
                    let cycle = details.get(FORWARD_COMPLETE).and_then(Value::as_u64);
                    if let Some(cycle) = cycle.and_then(|c| u32::try_from(c).ok()) {
                        history.forward_done.insert((step, cycle));
                    }
                }
                _ => {}
            }
        }
        Ok(history)
    }

    /// How many times `step` was completed or rolled back before: the same
    /// for every attempt of one execution, one more for each later execution.
    pub(crate) fn cycle(&self, step: &str) -> u32 {
        self.finished.get(step).copied().unwrap_or(0)
    }

    /// Whether `step`'s forward actions completed in its execution `cycle`.
    pub(crate) fn forward_completed(&self, step: &str, cycle: u32) -> bool {
        self.forward_done.contains(&(step.to_string(), cycle))
    }
}

/// Records, durably and before any `finally` action, that the forward
/// actions of `step`'s execution `cycle` completed.
pub(crate) fn mark_forward_completed(
    store: &dyn Store,
    run: RunId,
    step: &str,
    cycle: u32,
) -> Result<(), StateError> {
    let event = NewEvent::new(
        EventKind::Note,
        Some(step),
        "forward actions complete: after a crash only the finally actions run again",
    )
    .with_details(serde_json::json!({ FORWARD_COMPLETE: cycle }));
    store.record_event(run, event).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, NewRun, RunKind, StepStatus};

    #[test]
    fn cycles_and_completed_forward_actions_are_read_per_step() {
        let store = MemoryStore::new();
        let run = store
            .begin_run(NewRun {
                fingerprint: "f".into(),
                spec_name: "t".into(),
                kind: RunKind::Apply,
                plan: serde_json::json!({}),
                steps: vec!["a".into(), "b".into()],
            })
            .unwrap()
            .id;
        let set = |step: &str, status| store.set_step_status(run, step, status, None).unwrap();
        set("a", StepStatus::Running);
        mark_forward_completed(&store, run, "a", 0).unwrap();
        set("a", StepStatus::Done);
        set("a", StepStatus::RollingBack);
        set("a", StepStatus::RolledBack);
        set("a", StepStatus::Running);
        set("b", StepStatus::Running);
        set("b", StepStatus::Failed);
        let history = StepHistory::read(&store, run).unwrap();
        assert_eq!((history.cycle("a"), history.cycle("b")), (2, 0));
        assert!(history.forward_completed("a", 0));
        assert!(!history.forward_completed("a", 2));
        assert!(!history.forward_completed("b", 0));
    }
}
