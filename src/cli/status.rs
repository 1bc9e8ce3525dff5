//! `migrate status`: where the run stands.

use super::{GlobalArgs, StatusArgs, StatusFormat, exit};
use crate::engine::StoredPlan;
use crate::plan::Phase;
use crate::state::{Event, RunInfo, SledStore, StateError, StepState, Store};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;

pub fn run(_global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.state.state_dir;
    if !dir.exists() {
        eprintln!(
            "no state in {}: no run has started here (`migrate apply -f SPEC` starts one)",
            dir.display()
        );
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let store = match SledStore::open(dir) {
        Ok(o) => {
            if let Some(notice) = &o.notice {
                eprintln!("note: {notice}");
            }
            o.store
        }
        Err(locked @ StateError::Locked { .. }) => {
            // Another process runs the plan and holds the store: show the
            // copy it keeps for us, and say whose it is.
            let StateError::Locked {
                holder: Some(holder),
                ..
            } = &locked
            else {
                eprintln!("error: {locked}");
                return Ok(ExitCode::from(exit::FAILED));
            };
            let (plan, copy) = match crate::state::mirror::read(dir) {
                Ok(found) => found,
                Err(e) => {
                    eprintln!("error: {locked}; no readable status copy yet: {e}");
                    return Ok(ExitCode::from(exit::FAILED));
                }
            };
            let plan: StoredPlan = serde_json::from_value(plan)?;
            if args.events {
                eprintln!("note: the journal (--events) can be read once the run ends");
            }
            let live = format!(
                "in progress in pid {} on {} (`{}`)",
                holder.pid, holder.host, holder.command
            );
            return print(args, &copy.run, &plan, &copy.states, &[], Some(&live));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(run) = store.latest_run()? else {
        println!("no run yet in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let plan = StoredPlan::load(&store, run.id)?;
    let states = store.step_states(run.id)?;
    let events = if args.events {
        store.events(run.id, 0)?
    } else {
        Vec::new()
    };
    print(args, &run, &plan, &states, &events, None)
}

/// Prints the run; `live` describes the process running it, when another
/// one holds the store.
fn print(
    args: &StatusArgs,
    run: &RunInfo,
    plan: &StoredPlan,
    states: &BTreeMap<String, StepState>,
    events: &[Event],
    live: Option<&str>,
) -> anyhow::Result<ExitCode> {
    match args.output {
        StatusFormat::Json => {
            let steps: Vec<_> = plan
                .steps
                .iter()
                .map(|s| {
                    let st = states
                        .get(&s.id)
                        .cloned()
                        .unwrap_or_else(StepState::pending);
                    json!({
                        "id": s.id,
                        "phase": s.phase,
                        "status": st.status,
                        "attempts": st.attempts,
                        "started": st.started.map(|t| t.to_string()),
                        "finished": st.finished.map(|t| t.to_string()),
                        "durationSeconds": duration(&st),
                        "lastError": st.last_error,
                    })
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
            if args.events {
                doc["events"] = serde_json::to_value(events)?;
            }
            if let Some(live) = live {
                doc["run"]["live"] = json!(live);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        StatusFormat::Text => {
            let finished = run
                .finished
                .map(|t| format!(", finished {t}"))
                .unwrap_or_default();
            // Without `live` we hold the lock, so a run still marked running
            // has no live process.
            let outcome = if let Some(live) = live {
                live.to_string()
            } else if run.outcome == crate::state::Outcome::Running {
                "stopped while running (its process is gone; `migrate apply -f SPEC --resume` continues it)"
                    .to_string()
            } else {
                run.outcome.to_string()
            };
            println!(
                "run {} of {}: {outcome} (started {}{finished}; resumed {} times)",
                run.id, run.spec_name, run.started, run.resumed
            );
            println!("plan {}", run.fingerprint);
            for phase in Phase::ALL {
                let steps: Vec<_> = plan.steps.iter().filter(|s| s.phase == phase).collect();
                if steps.is_empty() {
                    continue;
                }
                println!("{phase}");
                for s in steps {
                    let st = states
                        .get(&s.id)
                        .cloned()
                        .unwrap_or_else(StepState::pending);
                    let took = duration(&st)
                        .map(|d| format!("{d:.1}s"))
                        .unwrap_or_default();
                    let attempts = if st.attempts > 1 {
                        format!("  attempts {}", st.attempts)
                    } else {
                        String::new()
                    };
                    println!(
                        "  {:<12} {:<44} {took:>7}{attempts}",
                        st.status.to_string(),
                        s.id
                    );
                    if let Some(err) = &st.last_error {
                        println!("      error: {err}");
                    }
                }
            }
            for e in events {
                let step = e
                    .step
                    .as_deref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                println!("#{:<5} {} {:?}{step} {}", e.seq, e.at, e.kind, e.message);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(st: &StepState) -> Option<f64> {
    let (Some(a), Some(b)) = (st.started, st.finished) else {
        return None;
    };
    Some((b.0 - a.0).as_seconds_f64())
}
