//! `migrate status`'s output: the run, phase by phase, as text or JSON.

use super::hints::{self, Hints, with_hint};
use crate::cli::StatusFormat;
use crate::cli::results::{RunReport, Status};
use crate::engine::GateRecord;
use crate::plan::Phase;
use crate::state::{Holder, Outcome, StepState, StepStatus};
use serde_json::json;

/// Shows what `migrate status` found; `events` is whether the journal was
/// asked for; `hints` word the commands on.
pub fn show(
    status: &Status,
    format: StatusFormat,
    events: bool,
    hints: &Hints,
) -> anyhow::Result<()> {
    match status {
        // A script that asked for JSON gets JSON even when there is no run.
        Status::NoState(dir) | Status::NoRun(dir) if format == StatusFormat::Json => tell!(
            "{}",
            json!({
                "state": dir.display().to_string(),
                "run": null,
                "reason": if matches!(status, Status::NoState(_)) { "no state" } else { "no run yet" },
            })
        ),
        Status::NoState(dir) => say!(
            "no state in {}: no run has started here (`migrate apply -f SPEC` starts one)",
            dir.display()
        ),
        Status::NoRun(dir) => tell!("no run yet in {}", dir.display()),
        Status::Unreadable { locked, copy } => {
            let locked = with_hint(locked.to_string(), hints::for_state(locked));
            match copy {
                None => say!("error: {locked}"),
                Some(e) => say!(
                    "error: {locked}; no readable status copy yet: {}",
                    with_hint(e.to_string(), hints::for_state(e))
                ),
            }
        }
        Status::Run(report) => {
            if events && report.live.is_some() {
                say!("note: the journal (--events) can be read once the run ends");
            }
            match format {
                StatusFormat::Json => tell!("{}", json_report(report, events)?),
                StatusFormat::Text => text(report, hints),
            }
        }
    }
    Ok(())
}

/// The process running the plan now, in a few words.
fn live(holder: &Holder) -> String {
    format!(
        "in progress in pid {} on {} (`{}`)",
        holder.pid, holder.host, holder.command
    )
}

fn state_of(report: &RunReport, step: &str) -> StepState {
    report
        .states
        .get(step)
        .cloned()
        .unwrap_or_else(StepState::pending)
}

/// A failed or interrupted step that changed nothing: rollback skips it.
fn nothing_to_undo(report: &RunReport, step: &str, st: &StepState) -> bool {
    matches!(st.status, StepStatus::Failed | StepStatus::Running) && report.untouched.contains(step)
}

/// The result of gate `step` that matches where the step stands: a passing
/// one when it is done, a failing one when it failed (none otherwise: a
/// gate pending again, running or rolled back has no current result).
fn gate<'a>(report: &'a RunReport, step: &str, st: &StepState) -> Option<&'a GateRecord> {
    let record = report.gates.get(step)?;
    match st.status {
        StepStatus::Done if record.passed() => Some(record),
        StepStatus::Failed if !record.passed() => Some(record),
        _ => None,
    }
}

/// A gate's result for `status -o json`.
fn gate_json(record: &GateRecord) -> serde_json::Value {
    json!({
        "result": if record.passed() { "passed" } else { "failed" },
        "summary": record.to_string(),
        "groups": record.groups,
        "errors": record.errors,
        "warnings": record.warnings,
        "findings": record.findings,
    })
}

/// A run paused by `apply --until`: the phase it stopped after, the first
/// phase with a step not done and how many steps are left.
fn pause(report: &RunReport) -> Option<(&str, Option<Phase>, usize)> {
    let after = report.run.paused_after.as_deref()?;
    if report.run.outcome != Outcome::Interrupted || report.live.is_some() {
        return None;
    }
    let left: Vec<Phase> = report
        .plan
        .steps
        .iter()
        .filter(|s| state_of(report, &s.id).status != StepStatus::Done)
        .map(|s| s.phase)
        .collect();
    Some((after, left.iter().copied().min(), left.len()))
}

fn json_report(report: &RunReport, events: bool) -> anyhow::Result<String> {
    let run = &report.run;
    let steps: Vec<_> = report
        .plan
        .steps
        .iter()
        .map(|s| {
            let st = state_of(report, &s.id);
            let mut step = json!({
                "id": s.id,
                "phase": s.phase,
                "status": st.status,
                "attempts": st.attempts,
                "started": st.started.map(|t| t.to_string()),
                "finished": st.finished.map(|t| t.to_string()),
                "durationSeconds": duration(&st),
                "lastError": st.last_error,
                "nothingToUndo": nothing_to_undo(report, &s.id, &st),
            });
            if let Some(record) = gate(report, &s.id, &st) {
                step["gate"] = gate_json(record);
            }
            step
        })
        .collect();
    let mut doc = json!({
        "run": {
            "id": run.id, "spec": run.spec_name, "fingerprint": run.fingerprint,
            "outcome": run.outcome, "started": run.started.to_string(),
            "finished": run.finished.map(|t| t.to_string()), "resumed": run.resumed,
        },
        "steps": steps,
    });
    if events {
        doc["events"] = serde_json::to_value(&report.events)?;
    }
    if let Some(holder) = &report.live {
        doc["run"]["live"] = json!(live(holder));
    }
    if let Some((after, next, left)) = pause(report) {
        doc["run"]["pausedAfter"] = json!(after);
        doc["run"]["next"] = json!({ "phase": next, "stepsLeft": left });
    }
    doc["lineage"] = report
        .lineage
        .iter()
        .map(|l| json!({"id": l.run.id, "outcome": l.run.outcome, "fingerprint": l.run.fingerprint, "stepsNotRolledBack": l.held}))
        .collect();
    doc["pendingRestores"] = serde_json::to_value(&report.pending_restores)?;
    if !report.inventory.is_empty() {
        doc["meshInventory"] = super::inventory::json(&report.inventory);
    }
    if let Some((key, exists)) = root_key(report) {
        doc["rootKey"] = json!({ "path": key, "exists": exists });
    }
    Ok(serde_json::to_string_pretty(&doc)?)
}

fn text(report: &RunReport, hints: &Hints) {
    let run = &report.run;
    let paused = pause(report);
    let ended = if paused.is_some() {
        "paused"
    } else {
        "finished"
    };
    let finished = run
        .finished
        .map(|t| format!(", {ended} {t}"))
        .unwrap_or_default();
    // Without a live holder we hold the lock, so a run still marked running
    // has no live process.
    let outcome = if let Some(holder) = &report.live {
        live(holder)
    } else if run.outcome == Outcome::Running {
        "stopped while running (its process is gone; `migrate apply -f SPEC --resume` continues it)"
            .to_string()
    } else if let Some((after, _, _)) = paused {
        // Named as the other commands name phases, when this build knows it.
        match after.parse::<Phase>() {
            Ok(phase) => format!("paused after {phase}"),
            Err(_) => format!("paused after {after}"),
        }
    } else {
        run.standing()
    };
    tell!(
        "run {} of {}: {outcome} (started {}{finished}; resumed {} times)",
        run.id,
        run.spec_name,
        run.started,
        run.resumed
    );
    tell!("plan {}", run.fingerprint);
    if let Some((_, Some(next), left)) = paused {
        tell!("next: {next}, {left} step(s) left in it and later phases");
        for line in hints.after_pause(next) {
            tell!("  {line}");
        }
    }
    // Earlier runs matter only when there are some: their snapshots are what
    // a rollback to phase0 still needs.
    if report.lineage.len() > 1 {
        tell!("runs");
        for l in &report.lineage {
            tell!(
                "  run {:<4} {:<12} {} step(s) not rolled back",
                l.run.id.to_string(),
                l.run.standing(),
                l.held
            );
        }
    }
    for restore in &report.pending_restores {
        tell!("WARNING: {restore}");
    }
    if let Some((key, exists)) = root_key(report) {
        if exists {
            tell!(
                "reminder: the mesh's root key exists only in {}: keep it backed up",
                key.display()
            );
        } else {
            tell!(
                "WARNING: the mesh's root key {} is gone from this machine: restore it from your backup",
                key.display()
            );
        }
    }
    for phase in Phase::ALL {
        let steps: Vec<_> = report
            .plan
            .steps
            .iter()
            .filter(|s| s.phase == phase)
            .collect();
        if steps.is_empty() {
            continue;
        }
        tell!("{phase}");
        for s in steps {
            let st = state_of(report, &s.id);
            let took = duration(&st)
                .map(|d| format!("{d:.1}s"))
                .unwrap_or_default();
            let mut attempts = if st.attempts > 1 {
                format!("  attempts {}", st.attempts)
            } else {
                String::new()
            };
            let record = gate(report, &s.id, &st);
            if let Some(record) = record {
                // A gate never changes anything: no word about undoing it.
                attempts.push_str(&format!("  gate {record}"));
            } else if nothing_to_undo(report, &s.id, &st) {
                attempts.push_str("  (nothing to undo: it stopped before its first change)");
            }
            tell!(
                "  {:<12} {:<44} {took:>7}{attempts}",
                st.status.to_string(),
                s.id
            );
            match record {
                // The findings say what the step's error says, one per line.
                Some(record) if !record.passed() => gate_findings(record, hints),
                _ => {
                    if let Some(err) = &st.last_error {
                        tell!("      error: {err}");
                    }
                }
            }
        }
    }
    if !report.inventory.is_empty() {
        tell!(
            "{}\n{}",
            super::inventory::STATUS_TITLE,
            super::inventory::text(&report.inventory).trim_end()
        );
    }
    for e in &report.events {
        let step = e
            .step
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        tell!("#{:<5} {} {:?}{step} {}", e.seq, e.at, e.kind, e.message);
    }
}

/// A failed gate's errors and warnings, each with its fix.
fn gate_findings(record: &GateRecord, hints: &Hints) {
    for f in record.errors().chain(record.warnings()) {
        tell!(
            "      {} {} {} {}: {}",
            f.severity,
            f.code,
            f.cluster,
            f.object,
            f.message
        );
        tell!("        fix: {}", f.fix);
    }
    let [resume, _] = hints.after_failed_apply();
    tell!("      once the mesh is fixed, {resume} (the gate runs again)");
}

fn duration(st: &StepState) -> Option<f64> {
    let (Some(a), Some(b)) = (st.started, st.finished) else {
        return None;
    };
    Some((b.0 - a.0).as_seconds_f64())
}

/// The root key the run generated into certDir (and whether it is still
/// there), while the step that generated it is not rolled back.
fn root_key(report: &RunReport) -> Option<(std::path::PathBuf, bool)> {
    let (step, key) = crate::engine::generated_root_key(&report.plan.steps)?;
    let done = report
        .states
        .get(&step)
        .is_some_and(|s| s.status == crate::state::StepStatus::Done);
    done.then(|| {
        let exists = key.exists();
        (key, exists)
    })
}
