//! The rules both stores share, as pure functions over records, so sled and memory behave identically.

use std::collections::BTreeSet;

use serde_json::json;

use super::error::StateError;
use super::model::{
    Event, EventKind, NewEvent, NewRun, Outcome, RunId, RunInfo, SnapshotKey, StepState,
    StepStatus, Timestamp,
};
use super::redact::{redact_object, redact_text};

/// Which step transitions the store accepts. Re-entering `Running`/`RollingBack` is allowed because a resumed
/// run re-runs the step that was in flight when its process died.
pub fn transition_allowed(from: StepStatus, to: StepStatus) -> bool {
    use StepStatus::*;
    matches!(
        (from, to),
        (Pending, Running)
            | (Running, Running | Done | Failed | Pending | RollingBack)
            | (Failed, Running | Pending | RollingBack)
            | (Done, RollingBack)
            | (RollingBack, RollingBack | RolledBack | Failed)
            | (RolledBack, Running)
    )
}

/// Refuses a run without a fingerprint, with an empty step id, or with a step twice.
pub fn validate_new_run(new: &NewRun) -> Result<(), StateError> {
    if new.fingerprint.is_empty() {
        return Err(StateError::InvalidInput(
            "the run's spec fingerprint is empty".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for step in &new.steps {
        if step.is_empty() {
            return Err(StateError::InvalidInput("a step id is empty".into()));
        }
        if !seen.insert(step.as_str()) {
            return Err(StateError::InvalidInput(format!(
                "step id {step:?} appears twice"
            )));
        }
    }
    Ok(())
}

/// Refuses a snapshot key with an empty part.
pub fn validate_key(key: &SnapshotKey) -> Result<(), StateError> {
    for (field, v) in [
        ("cluster", &key.cluster),
        ("apiVersion", &key.object.api_version),
        ("kind", &key.object.kind),
        ("name", &key.object.name),
    ] {
        if v.is_empty() {
            return Err(StateError::InvalidInput(format!(
                "snapshot key {key}: {field} is empty"
            )));
        }
    }
    // Stored keys encode a missing namespace as empty: keep `Some("")` from meaning something else.
    if key.object.namespace.as_deref() == Some("") {
        return Err(StateError::InvalidInput(format!(
            "snapshot key {key}: namespace is empty; use None for cluster-scoped objects"
        )));
    }
    Ok(())
}

/// `replace_plan` applies to the latest run only.
pub fn check_can_replace_plan(latest: Option<RunId>, run: RunId) -> Result<(), StateError> {
    if latest != Some(run) {
        return Err(StateError::CannotResume {
            run,
            reason: "only the latest run can take a new plan".into(),
        });
    }
    Ok(())
}

/// `begin_run` may start a new run unless the latest one is still marked running.
pub fn check_can_begin(latest: Option<&RunInfo>) -> Result<(), StateError> {
    match latest {
        Some(r) if r.outcome == Outcome::Running => Err(StateError::RunInProgress { run: r.id }),
        _ => Ok(()),
    }
}

/// The record of a run that starts now.
pub fn new_run_info(id: RunId, new: &NewRun, now: Timestamp) -> RunInfo {
    RunInfo {
        id,
        fingerprint: new.fingerprint.clone(),
        spec_name: new.spec_name.clone(),
        kind: new.kind.clone(),
        started: now,
        finished: None,
        outcome: Outcome::Running,
        resumed: 0,
        last_event_seq: 0,
        paused_after: None,
    }
}

/// Journals a run that starts.
pub fn run_started_event(new: &NewRun) -> NewEvent {
    NewEvent::new(
        EventKind::RunStarted,
        None,
        format!(
            "run started for spec {} ({} steps)",
            new.spec_name,
            new.steps.len()
        ),
    )
    .with_details(json!({"kind": new.kind, "fingerprint": new.fingerprint}))
}

/// Appends an event to `run`: assigns the next sequence number and redacts what it carries.
pub fn next_event(run: &mut RunInfo, new: NewEvent, now: Timestamp) -> Event {
    run.last_event_seq += 1;
    Event {
        seq: run.last_event_seq,
        at: now,
        step: new.step,
        kind: new.kind,
        message: redact_text(&new.message),
        details: new.details.as_ref().map(redact_object),
    }
}

/// Steps and snapshots change only while their run is running.
pub fn require_running(run: &RunInfo) -> Result<(), StateError> {
    if run.outcome == Outcome::Running {
        Ok(())
    } else {
        Err(StateError::RunNotRunning {
            run: run.id,
            outcome: run.outcome,
        })
    }
}

/// The step's new state and the event that journals the change.
pub fn step_transition(
    run: &RunInfo,
    step: &str,
    old: &StepState,
    to: StepStatus,
    error: Option<&str>,
    now: Timestamp,
) -> Result<(StepState, NewEvent), StateError> {
    require_running(run)?;
    if !transition_allowed(old.status, to) {
        return Err(StateError::InvalidTransition {
            run: run.id,
            step: step.to_string(),
            from: old.status,
            to,
        });
    }
    let mut new = old.clone();
    new.status = to;
    match to {
        StepStatus::Running | StepStatus::RollingBack => {
            new.attempts += 1;
            new.started = Some(now);
            new.finished = None;
        }
        StepStatus::Done | StepStatus::RolledBack => {
            new.finished = Some(now);
            new.last_error = None;
        }
        StepStatus::Failed => new.finished = Some(now),
        StepStatus::Pending => {
            new.started = None;
            new.finished = None;
        }
    }
    let error = error.map(redact_text);
    if let Some(e) = &error {
        new.last_error = Some(e.clone());
    } else if to == StepStatus::Failed && new.last_error.is_none() {
        new.last_error = Some("failed without an error message".to_string());
    }
    let message = match &error {
        Some(e) => format!("{step}: {} -> {to}: {e}", old.status),
        None => format!("{step}: {} -> {to}", old.status),
    };
    let event = NewEvent::new(EventKind::StepStatus, Some(step), message).with_details(json!({
        "from": old.status, "to": to, "attempt": new.attempts,
    }));
    Ok((new, event))
}

/// Journals a snapshot taken (or the absence recorded) of `key`.
pub fn snapshot_event(step: &str, key: &SnapshotKey, present: bool) -> NewEvent {
    let what = if present {
        "snapshot of"
    } else {
        "recorded absence of"
    };
    NewEvent::new(EventKind::Snapshot, Some(step), format!("{what} {key}"))
        .with_details(json!({"key": key, "present": present}))
}

/// Journals that `step`'s snapshots were forgotten; `verify` subtracts `dropped`.
pub fn snapshots_dropped_event(step: &str, dropped: usize) -> NewEvent {
    NewEvent::new(
        EventKind::Snapshot,
        Some(step),
        format!("forgot {dropped} snapshot(s) of a rolled-back step"),
    )
    .with_details(json!({"dropped": dropped}))
}

/// Journals a replaced plan.
pub fn plan_replaced_event(fingerprint: &str, added: usize) -> NewEvent {
    NewEvent::new(
        EventKind::Note,
        None,
        format!("plan replaced ({fingerprint}); {added} new step(s)"),
    )
    .with_details(json!({"fingerprint": fingerprint, "added": added}))
}

/// The run ended with `outcome`, and the event that journals it.
pub fn finish(
    run: &RunInfo,
    outcome: Outcome,
    now: Timestamp,
) -> Result<(RunInfo, NewEvent), StateError> {
    if outcome == Outcome::Running {
        return Err(StateError::InvalidInput(format!(
            "finish_run({}) needs an outcome other than running",
            run.id
        )));
    }
    require_running(run)?;
    let mut new = run.clone();
    new.outcome = outcome;
    new.finished = Some(now);
    new.paused_after = None;
    let event = NewEvent::new(EventKind::RunFinished, None, format!("run {outcome}"));
    Ok((new, event))
}

/// The run stopped, as asked, after the phase named `after`: finished `Interrupted` with `paused_after` set
/// (so it resumes as any interrupted run), and the event that journals it.
pub fn pause(
    run: &RunInfo,
    after: &str,
    now: Timestamp,
) -> Result<(RunInfo, NewEvent), StateError> {
    if after.trim().is_empty() {
        return Err(StateError::InvalidInput(format!(
            "pause_run({}) needs the phase it stops after",
            run.id
        )));
    }
    let (mut new, _) = finish(run, Outcome::Interrupted, now)?;
    new.paused_after = Some(after.to_string());
    let event = NewEvent::new(
        EventKind::RunFinished,
        None,
        format!("run paused after {after}"),
    )
    .with_details(json!({"outcome": Outcome::Interrupted, "pausedAfter": after}));
    Ok((new, event))
}

/// The run going on again (after a crash, an interruption, a failure, or a success a rollback reopens), and
/// the event that journals it; only the latest run can.
pub fn resume(run: &RunInfo, latest: RunId) -> Result<(RunInfo, NewEvent), StateError> {
    if run.id != latest {
        return Err(StateError::CannotResume {
            run: run.id,
            reason: format!("run {latest} started after it"),
        });
    }
    let message = match (&run.paused_after, run.outcome) {
        (Some(phase), Outcome::Interrupted) => format!("resumed after it paused after {phase}"),
        (_, outcome) => resume_message(outcome),
    };
    let mut new = run.clone();
    new.outcome = Outcome::Running;
    new.finished = None;
    new.paused_after = None;
    new.resumed += 1;
    Ok((new, NewEvent::new(EventKind::RunResumed, None, message)))
}

fn resume_message(outcome: Outcome) -> String {
    match outcome {
        // A rollback, or `apply --resume --replan` with a new plan, reopens a run that succeeded.
        Outcome::Succeeded => "reopened after it succeeded".to_string(),
        Outcome::Running => "resumed after its process stopped without finishing it".to_string(),
        other => format!("resumed after it {other}", other = past(other)),
    }
}

/// An earlier run reopened so `rollback` can undo its steps (state written before apply refused to start a
/// run over another's unrolled-back steps may hold several such runs); refused while `later_running`, a later
/// run still marked running, exists. A run already `Running` (a rollback that crashed) stays so.
pub fn reopen_for_rollback(
    run: &RunInfo,
    later_running: Option<RunId>,
) -> Result<(RunInfo, NewEvent), StateError> {
    if let Some(later) = later_running {
        return Err(StateError::CannotResume {
            run: run.id,
            reason: format!("run {later} started after it and is still running"),
        });
    }
    let mut new = run.clone();
    new.outcome = Outcome::Running;
    new.finished = None;
    new.paused_after = None;
    new.resumed += 1;
    let message = "reopened to roll it back".to_string();
    Ok((new, NewEvent::new(EventKind::RunResumed, None, message)))
}

fn past(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Failed => "failed",
        Outcome::Interrupted => "was interrupted",
        Outcome::RolledBack => "was rolled back",
        Outcome::Succeeded => "succeeded",
        Outcome::Running => "was running",
    }
}

/// The run `current_run` returns: the latest, unless it succeeded.
pub fn current(latest: Option<RunInfo>) -> Option<RunInfo> {
    latest.filter(|r| r.outcome != Outcome::Succeeded)
}
