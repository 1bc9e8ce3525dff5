//! Whether a step changed anything: every attempt journals that it began
//! with nothing changed, and the mark that its first change comes next is
//! durable before that change. A failed or interrupted step whose every
//! attempt of its current execution began unchanged and never got that far
//! has nothing to undo (rollback skips it).
//!
//! No fsync is added for it: the "began" record is a progress note made
//! durable by the step's start (`begin_step`) right after it; so is the
//! "first change next" mark when the step's first action after its snapshots
//! is a change (most steps). Only a step that reads or waits before its
//! first change writes that mark on its own, durably, just before it.
//!
//! Old state directories stay safe: an attempt without a "began" record (an
//! older `migrate`, or the record lost with a crash) counts as changed.

use crate::plan::Action;
use crate::state::{Event, EventKind, NewEvent, RunId, StateError, StepStatus, Store};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The key of the records in an event's details.
const KEY: &str = "firstChange";
/// An attempt began; nothing changed yet.
const BEGAN: &str = "none-yet";
/// The attempt's first change comes next (or already happened).
const NEXT: &str = "next";

/// Whether `action` may change a cluster or this machine: all but reads,
/// checks and waits (a snapshot is taken with the step's start).
pub(crate) fn changes(action: &Action) -> bool {
    !matches!(
        action,
        Action::Snapshot { .. } | Action::Check { .. } | Action::Wait { .. }
    )
}

/// Whether the first action of `actions` after its snapshots is a change:
/// then the mark rides on the step's start, nothing can fail between them
/// that is not that change's own doing.
pub(crate) fn changes_at_once(actions: &[Action]) -> bool {
    actions
        .iter()
        .find(|a| !matches!(a, Action::Snapshot { .. }))
        .is_some_and(changes)
}

/// Journals, as a progress note (durable with the step's start that follows
/// at once), that `attempt` of `step` begins; with `first_change_next` its
/// first change is to come before anything else can fail.
pub(crate) fn note_began(
    store: &dyn Store,
    run: RunId,
    step: &str,
    attempt: u32,
    first_change_next: bool,
) -> Result<(), StateError> {
    let (state, message) = if first_change_next {
        (NEXT, "begins with its first change")
    } else {
        (BEGAN, "begins; nothing changed yet")
    };
    let event = NewEvent::new(
        EventKind::Note,
        Some(step),
        format!("attempt {attempt} {message}"),
    )
    .with_details(json!({ KEY: state, "attempt": attempt }));
    store.record_progress(run, event).map(|_| ())
}

/// Journals durably, before it is made, that `step`'s first change comes next.
pub(crate) fn mark_durably(store: &dyn Store, run: RunId, step: &str) -> Result<(), StateError> {
    let event = NewEvent::new(EventKind::Note, Some(step), "first change next")
        .with_details(json!({ KEY: NEXT }));
    store.record_event(run, event).map(|_| ())
}

/// What the journal says of one step's current execution (since it was last
/// rolled back).
#[derive(Default)]
struct Execution {
    /// Attempts that entered `Running`.
    attempts: BTreeSet<u64>,
    /// Attempts journalled as begun with nothing changed.
    began_unchanged: BTreeSet<u64>,
    /// A first change was marked.
    changed: bool,
}

/// The steps of `run` whose current execution changed nothing: every attempt
/// that entered `Running` is journalled as begun unchanged, and no first
/// change was marked. Rollback has nothing to undo for them.
pub fn untouched_steps(store: &dyn Store, run: RunId) -> Result<BTreeSet<String>, StateError> {
    Ok(untouched_in(&store.events(run, 0)?))
}

fn untouched_in(events: &[Event]) -> BTreeSet<String> {
    let mut steps: BTreeMap<&str, Execution> = BTreeMap::new();
    for e in events {
        let (Some(step), Some(details)) = (e.step.as_deref(), e.details.as_ref()) else {
            continue;
        };
        let attempt = details.get("attempt").and_then(Value::as_u64);
        match e.kind {
            EventKind::StepStatus => {
                let to = details.get("to").cloned();
                let to: Option<StepStatus> = to.and_then(|t| serde_json::from_value(t).ok());
                match to {
                    // A new execution starts from a clean slate.
                    Some(StepStatus::RolledBack) => {
                        steps.insert(step, Execution::default());
                    }
                    Some(StepStatus::Running) => {
                        // Without its number the attempt cannot be matched: changed.
                        let exec = steps.entry(step).or_default();
                        match attempt {
                            Some(a) => {
                                exec.attempts.insert(a);
                            }
                            None => exec.changed = true,
                        }
                    }
                    _ => {}
                }
            }
            EventKind::Note => match details.get(KEY).and_then(Value::as_str) {
                Some(BEGAN) => {
                    if let Some(a) = attempt {
                        steps.entry(step).or_default().began_unchanged.insert(a);
                    }
                }
                Some(_) => steps.entry(step).or_default().changed = true,
                None => {}
            },
            _ => {}
        }
    }
    steps
        .into_iter()
        .filter(|(_, x)| {
            !x.changed && !x.attempts.is_empty() && x.attempts.is_subset(&x.began_unchanged)
        })
        .map(|(step, _)| step.to_string())
        .collect()
}

/// Whether a step in `status` may hold changes a rollback undoes; `untouched`
/// says its current execution changed nothing (see [`untouched_steps`]).
pub(crate) fn holds_changes(status: StepStatus, untouched: bool) -> bool {
    match status {
        StepStatus::Done | StepStatus::RollingBack => true,
        StepStatus::Failed | StepStatus::Running => !untouched,
        StepStatus::Pending | StepStatus::RolledBack => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Check, Condition, ObjectRef};
    use crate::state::{MemoryStore, NewRun, RunKind};

    fn store_with_step() -> (MemoryStore, RunId) {
        let store = MemoryStore::new();
        let run = store
            .begin_run(NewRun {
                fingerprint: "sha256:x".into(),
                spec_name: "t".into(),
                kind: RunKind::Apply,
                plan: json!({}),
                steps: vec!["s".into()],
            })
            .unwrap()
            .id;
        (store, run)
    }

    /// One attempt as the engine journals it: began (with the mark riding
    /// on the start when `at_once`), started, then maybe a later mark.
    fn attempt(store: &MemoryStore, run: RunId, at_once: bool, later_mark: bool) {
        let n = store.step_state(run, "s").unwrap().attempts + 1;
        note_began(store, run, "s", n, at_once).unwrap();
        store
            .begin_step(run, "s", StepStatus::Running, Vec::new())
            .unwrap();
        if later_mark {
            mark_durably(store, run, "s").unwrap();
        }
    }

    fn fail(store: &MemoryStore, run: RunId) {
        store
            .set_step_status(run, "s", StepStatus::Failed, Some("x"))
            .unwrap();
    }

    fn untouched(store: &MemoryStore, run: RunId) -> bool {
        untouched_steps(store, run).unwrap().contains("s")
    }

    #[test]
    fn reads_checks_and_waits_change_nothing() {
        let object = ObjectRef::config_map("ns", "cm");
        let snapshot = Action::Snapshot {
            cluster: "c".into(),
            object: object.clone(),
        };
        let wait = Action::Wait {
            cluster: "c".into(),
            object: object.clone(),
            condition: Condition::Present,
            timeout_seconds: 1,
        };
        let check = Action::Check {
            cluster: None,
            check: Check::Reachable,
        };
        let delete = Action::Delete {
            cluster: "c".into(),
            object,
        };
        assert!(!changes(&snapshot) && !changes(&wait) && !changes(&check));
        assert!(changes(&delete));
        assert!(changes_at_once(&[snapshot.clone(), delete.clone()]));
        assert!(!changes_at_once(&[snapshot.clone(), wait, delete]));
        assert!(!changes_at_once(&[snapshot]));
        assert!(!changes_at_once(&[]));
    }

    #[test]
    fn a_failed_attempt_that_never_reached_its_first_change_is_untouched() {
        let (store, run) = store_with_step();
        attempt(&store, run, false, false);
        fail(&store, run);
        assert!(untouched(&store, run));
        // Resumed, it fails again before any change: still untouched.
        attempt(&store, run, false, false);
        assert!(untouched(&store, run), "running, nothing changed yet");
        fail(&store, run);
        assert!(untouched(&store, run));
    }

    #[test]
    fn a_mark_riding_on_the_start_or_written_later_counts_for_the_whole_execution() {
        let (store, run) = store_with_step();
        attempt(&store, run, true, false);
        fail(&store, run);
        assert!(!untouched(&store, run), "the mark rode on the start");

        let (store, run) = store_with_step();
        attempt(&store, run, false, true);
        fail(&store, run);
        assert!(
            !untouched(&store, run),
            "the mark written before the change"
        );
        // A later attempt that changes nothing does not hide the first one's change.
        attempt(&store, run, false, false);
        fail(&store, run);
        assert!(!untouched(&store, run));
    }

    #[test]
    fn an_attempt_journalled_by_an_older_migrate_counts_as_changed() {
        let (store, run) = store_with_step();
        // No began record: an older build, or one lost with a crash.
        store
            .set_step_status(run, "s", StepStatus::Running, None)
            .unwrap();
        fail(&store, run);
        assert!(!untouched(&store, run));
        // A newer attempt journals itself, but the older one still counts.
        attempt(&store, run, false, false);
        fail(&store, run);
        assert!(!untouched(&store, run));
    }

    #[test]
    fn a_rollback_starts_a_new_execution() {
        let (store, run) = store_with_step();
        attempt(&store, run, true, false);
        store
            .set_step_status(run, "s", StepStatus::Done, None)
            .unwrap();
        store
            .set_step_status(run, "s", StepStatus::RollingBack, None)
            .unwrap();
        store
            .set_step_status(run, "s", StepStatus::RolledBack, None)
            .unwrap();
        attempt(&store, run, false, false);
        fail(&store, run);
        assert!(
            untouched(&store, run),
            "the earlier execution's change was undone"
        );
    }

    #[test]
    fn which_statuses_hold_changes() {
        use StepStatus::*;
        for (status, untouched, holds) in [
            (Done, false, true),
            (Done, true, true),
            (RollingBack, true, true),
            (Failed, false, true),
            (Failed, true, false),
            (Running, false, true),
            (Running, true, false),
            (Pending, false, false),
            (RolledBack, false, false),
        ] {
            assert_eq!(
                holds_changes(status, untouched),
                holds,
                "{status} untouched={untouched}"
            );
        }
    }
}
