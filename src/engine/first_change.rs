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
