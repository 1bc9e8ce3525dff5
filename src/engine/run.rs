//! Apply and rollback: the run's life cycle in the store, and each step's.

use super::action::execute;
use super::context::{ActionError, EngineOptions, Environment, StepCtx};
use super::failpoint;
use super::scheduler::{Limits, StopFlag, Task, walk};
use crate::plan::{Action, Phase, Plan, PlanHeader, Step};
use crate::state::{
    EventKind, NewEvent, NewRun, Outcome, RunId, RunInfo, RunKind, StateError, StepStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What a run keeps of its plan, so `rollback` and `status` need no spec.
///
/// Versioned apart from the store (`format`): its steps are the engine's action types, which change with the
/// engine. Format 1 (the first release) has no `format` field; 2 adds `format` and `writtenBy`, nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    /// The format of this record (`StoredPlan::FORMAT` when written by this build; absent means 1).
    #[serde(default = "StoredPlan::first_format")]
    pub format: u32,
    /// The migrate version that wrote it (absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    /// The plan's header: spec name, clusters, fingerprint inputs.
    pub header: PlanHeader,
    /// The spec's fingerprint when the plan was made.
    pub fingerprint: String,
    /// Every step, in plan order.
    pub steps: Vec<Step>,
    /// The kubeconfig each cluster was reached with.
    #[serde(default)]
    pub kubeconfigs: BTreeMap<String, PathBuf>,
}

impl StoredPlan {
    /// The format this build writes, and the newest it reads.
    pub const FORMAT: u32 = 2;

    fn first_format() -> u32 {
        1
    }

    /// The plan and the kubeconfigs it runs with, as the store keeps them.
    pub fn new(plan: &Plan, kubeconfigs: BTreeMap<String, PathBuf>) -> StoredPlan {
        StoredPlan {
            format: Self::FORMAT,
            written_by: Some(env!("CARGO_PKG_VERSION").to_string()),
            header: plan.header.clone(),
            fingerprint: plan.fingerprint.clone(),
            steps: plan.steps.clone(),
            kubeconfigs,
        }
    }

    /// The stored plan of `run`. One of a newer format is refused before its steps are read (they may not
    /// parse), naming the format and the migrate version that wrote it.
    pub fn load(store: &dyn crate::state::Store, run: RunId) -> Result<StoredPlan, EngineError> {
        Self::from_value(store.plan(run)?)
    }

    /// `load` from the stored JSON.
    pub fn from_value(value: serde_json::Value) -> Result<StoredPlan, EngineError> {
        let format = match value.get("format") {
            None => Self::first_format(),
            Some(f) => f
                .as_u64()
                .and_then(|f| u32::try_from(f).ok())
                .ok_or_else(|| {
                    EngineError::BadStoredPlan(format!("its format is not a number: {f}"))
                })?,
        };
        if format > Self::FORMAT {
            let by = value
                .get("writtenBy")
                .and_then(|w| w.as_str())
                .unwrap_or("a version not recorded");
            return Err(EngineError::BadStoredPlan(format!(
                "it was written in plan format {format} by migrate {by}; this migrate ({}) reads formats up to {}; \
                 nothing was changed",
                env!("CARGO_PKG_VERSION"),
                Self::FORMAT
            )));
        }
        serde_json::from_value(value).map_err(|e| EngineError::BadStoredPlan(e.to_string()))
    }
}

/// Whether `apply` starts a new run or continues the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// A new run; refused while an unfinished one exists.
    Start,
    /// Continue the current run; `replan` accepts a changed spec.
    Resume { replan: bool },
}

/// Why a run could not start or go on; the state store's errors pass through.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "run {} is unfinished ({}, started {}): resume it, or roll it back, before starting another",
        .run.id, .run.outcome, .run.started
    )]
    UnfinishedRun { run: Box<RunInfo> },
    #[error("there is no run to {0} in this state directory")]
    NoRun(&'static str),
    #[error(
        "the spec changed since run {run} started ({changes}); resuming needs a replan (done steps stay done)"
    )]
    SpecChanged { run: RunId, changes: String },
    #[error("the run's stored plan cannot be read: {0}")]
    BadStoredPlan(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run: RunId,
    pub outcome: Outcome,
    pub succeeded: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub not_started: Vec<String>,
    pub stopped: bool,
    /// Nothing to do: the same plan already succeeded.
    pub already_done: bool,
}

/// Runs (or resumes) `plan`. Transitions are checkpointed before the side
/// effects they announce; a failure stops new steps and lets running ones
/// finish; so does `stop`.
pub async fn apply(
    plan: &Plan,
    env: Arc<Environment>,
    opts: EngineOptions,
    mode: ApplyMode,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
    let store = env.store.clone();
    let stored = StoredPlan::new(plan, env.kubeconfigs.clone());
    let plan_json =
        serde_json::to_value(&stored).map_err(|e| EngineError::BadStoredPlan(e.to_string()))?;
    let run = match mode {
        ApplyMode::Start => {
            if let Some(latest) = store.latest_run()? {
                if latest.outcome == Outcome::Succeeded && latest.fingerprint == plan.fingerprint {
                    return Ok(RunSummary {
                        run: latest.id,
                        outcome: Outcome::Succeeded,
                        succeeded: Vec::new(),
                        failed: Vec::new(),
                        not_started: Vec::new(),
                        stopped: false,
                        already_done: true,
                    });
                }
                if latest.outcome != Outcome::Succeeded {
                    return Err(EngineError::UnfinishedRun {
                        run: Box::new(latest),
                    });
                }
            }
            store.begin_run(NewRun {
                fingerprint: plan.fingerprint.clone(),
                spec_name: plan.header.name.clone(),
                kind: RunKind::Apply,
                plan: plan_json,
                steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            })?
        }
        ApplyMode::Resume { replan } => {
            let current = store.current_run()?.ok_or(EngineError::NoRun("resume"))?;
            if current.fingerprint != plan.fingerprint {
                let old = StoredPlan::load(store.as_ref(), current.id)?;
                let changes = describe_changes(&old.steps, &plan.steps);
                if !replan {
                    return Err(EngineError::SpecChanged {
                        run: current.id,
                        changes,
                    });
                }
                store.replace_plan(
                    current.id,
                    &plan.fingerprint,
                    plan_json,
                    &plan.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                )?;
                store.record_event(
                    current.id,
                    NewEvent::new(EventKind::Note, None, format!("replanned: {changes}")),
                )?;
            }
            store.resume_run(current.id)?
        }
    };
    let states = store.step_states(run.id)?;
    let todo: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| {
            states
                .get(&s.id)
                .is_none_or(|st| st.status != StepStatus::Done)
        })
        .collect();
    env.observer.run_started(
        &format!("apply {}", plan.header.name),
        plan.steps.len(),
        plan.steps.len() - todo.len(),
    );
    let nodes: Vec<Task> = todo
        .iter()
        .map(|s| Task {
            id: s.id.clone(),
            needs: s.needs.clone(),
            clusters: s.clusters.clone(),
        })
        .collect();
    let steps: Vec<Step> = todo.into_iter().cloned().collect();
    let summary = drive(
        &env,
        &opts,
        run.id,
        plan,
        nodes,
        steps,
        Direction::Forward,
        stop,
    )
    .await?;
    Ok(summary)
}

/// Undoes every step of the phases after `to` that did anything, newest
/// first, in parallel where independent.
pub async fn rollback(
    env: Arc<Environment>,
    opts: EngineOptions,
    to: Phase,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
    let store = env.store.clone();
    let latest = store.latest_run()?.ok_or(EngineError::NoRun("roll back"))?;
    let stored = StoredPlan::load(store.as_ref(), latest.id)?;
    let plan = Plan::new(stored.header.clone(), stored.steps.clone())
        .map_err(|e| EngineError::BadStoredPlan(e.to_string()))?;
    let run = store.resume_run(latest.id)?;
    store.record_event(
        run.id,
        NewEvent::new(EventKind::Note, None, format!("rollback to {to}")),
    )?;
    let states = store.step_states(run.id)?;
    let selected = rollback_steps(&plan, &states, to);
    let ids: HashSet<&str> = selected.iter().map(|s| s.id.as_str()).collect();
    // Reverse edges: a step waits for every selected step that needed it.
    let nodes: Vec<Task> = selected
        .iter()
        .map(|s| Task {
            id: s.id.clone(),
            needs: plan
                .steps
                .iter()
                .filter(|t| ids.contains(t.id.as_str()) && t.needs.contains(&s.id))
                .map(|t| t.id.clone())
                .collect(),
            clusters: s.clusters.clone(),
        })
        .collect();
    env.observer
        .run_started(&format!("rollback to {to}"), nodes.len(), 0);
    let steps: Vec<Step> = selected.into_iter().cloned().collect();
    drive(
        &env,
        &opts,
        run.id,
        &plan,
        nodes,
        steps,
        Direction::Back,
        stop,
    )
    .await
}

/// The steps a rollback to `to` undoes, newest first: those of later phases
/// that started at all.
pub fn rollback_steps<'a>(
    plan: &'a Plan,
    states: &BTreeMap<String, crate::state::StepState>,
    to: Phase,
) -> Vec<&'a Step> {
    plan.steps
        .iter()
        .rev()
        .filter(|s| s.phase > to)
        .filter(|s| {
            states.get(&s.id).is_some_and(|st| {
                matches!(
                    st.status,
                    StepStatus::Done
                        | StepStatus::Failed
                        | StepStatus::Running
                        | StepStatus::RollingBack
                )
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Back,
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    env: &Arc<Environment>,
    opts: &EngineOptions,
    run: RunId,
    plan: &Plan,
    nodes: Vec<Task>,
    steps: Vec<Step>,
    direction: Direction,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
    let limits = Limits {
        parallelism: opts.parallelism,
        per_cluster: opts.per_cluster,
    };
    let opts = Arc::new(opts.clone());
    let plan_clusters = Arc::new(
        plan.header
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
    );
    let steps = Arc::new(steps);
    let outcome = walk(
        &nodes,
        limits,
        stop,
        |i| {
            let ctx = StepCtx {
                env: env.clone(),
                opts: opts.clone(),
                run,
                step: steps[i].id.clone(),
                plan_clusters: plan_clusters.clone(),
            };
            let steps = steps.clone();
            async move { run_step(&ctx, &steps[i], direction).await }
        },
        |id| format!("step {id} panicked"),
    )
    .await;
    env.observer.run_finished();
    let run_outcome = if !outcome.failed.is_empty() {
        Outcome::Failed
    } else if outcome.stopped || !outcome.not_started.is_empty() {
        Outcome::Interrupted
    } else if direction == Direction::Back {
        // Undone down to a phase: the run can be resumed forward again.
        Outcome::RolledBack
    } else {
        Outcome::Succeeded
    };
    env.store.finish_run(run, run_outcome)?;
    Ok(RunSummary {
        run,
        outcome: run_outcome,
        succeeded: outcome.succeeded,
        failed: outcome.failed,
        not_started: outcome.not_started,
        stopped: outcome.stopped,
        already_done: false,
    })
}

/// One step: checkpoint, actions in order (then `finally`), checkpoint.
async fn run_step(ctx: &StepCtx, step: &Step, direction: Direction) -> Result<(), String> {
    let store = &ctx.env.store;
    let started = Instant::now();
    let (entering, leaving, actions) = match direction {
        Direction::Forward => (StepStatus::Running, StepStatus::Done, &step.forward),
        Direction::Back => (
            StepStatus::RollingBack,
            StepStatus::RolledBack,
            &step.rollback,
        ),
    };
    let description = match direction {
        Direction::Forward => step.description.clone(),
        Direction::Back => format!("undo: {}", step.description),
    };
    ctx.env.observer.step_started(&step.id, &description);
    let mut result = Ok(());
    if !ctx.opts.dry_run {
        // Write-ahead: the step's start and the live state of what it will
        // change reach the disk together, before its first side effect.
        let snapshots = match direction {
            Direction::Forward => ctx.read_snapshots(actions).await,
            Direction::Back => Ok(Vec::new()),
        };
        let begun = match snapshots {
            Ok(taken) => store.begin_step(ctx.run, &step.id, entering, taken),
            Err(e) => {
                result = Err(crate::state::redact_text(&format!("taking snapshots: {e}")));
                store.set_step_status(ctx.run, &step.id, entering, None)
            }
        };
        begun.map_err(|e| format!("cannot checkpoint: {e}"))?;
        failpoint::before_step(&step.id);
    }
    if result.is_ok() {
        result = run_actions(ctx, actions).await;
    }
    if direction == Direction::Forward {
        // `finally` runs whatever happened (restore replicas after a probe).
        let finally = run_actions(ctx, &step.finally).await;
        if result.is_ok() {
            result = finally;
        }
    }
    let ok = result.is_ok();
    if !ctx.opts.dry_run {
        let (status, error) = match &result {
            Ok(()) => (leaving, None),
            Err(e) => (StepStatus::Failed, Some(e.as_str())),
        };
        store
            .set_step_status(ctx.run, &step.id, status, error)
            .map_err(|e| format!("cannot checkpoint: {e}"))?;
        if ok && direction == Direction::Back {
            // A later apply of this step takes fresh snapshots.
            store
                .drop_snapshots(ctx.run, &step.id)
                .map_err(|e| format!("cannot checkpoint: {e}"))?;
        }
        failpoint::after_step(&step.id);
    }
    ctx.env
        .observer
        .step_finished(&step.id, ok, started.elapsed());
    result
}

async fn run_actions(ctx: &StepCtx, actions: &[Action]) -> Result<(), String> {
    let mut first_error = None;
    for (index, action) in actions.iter().enumerate() {
        let text = action.to_string();
        ctx.env.observer.action_started(&ctx.step, &text);
        match execute(ctx, action).await {
            Ok(()) => {
                if !ctx.opts.dry_run {
                    let _ = ctx.env.store.record_progress(
                        ctx.run,
                        NewEvent::new(EventKind::Action, Some(&ctx.step), text),
                    );
                    failpoint::after_action(&ctx.step, index + 1);
                }
            }
            Err(e) => {
                let message = crate::state::redact_text(&format!("{text}: {}", describe(&e)));
                first_error = Some(message);
                break;
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn describe(e: &ActionError) -> String {
    e.to_string()
}

/// A short account of how two plans differ, by step.
fn describe_changes(old: &[Step], new: &[Step]) -> String {
    let old_ids: BTreeMap<&str, &Step> = old.iter().map(|s| (s.id.as_str(), s)).collect();
    let new_ids: BTreeMap<&str, &Step> = new.iter().map(|s| (s.id.as_str(), s)).collect();
    let added: Vec<&str> = new_ids
        .keys()
        .filter(|k| !old_ids.contains_key(*k))
        .copied()
        .collect();
    let removed: Vec<&str> = old_ids
        .keys()
        .filter(|k| !new_ids.contains_key(*k))
        .copied()
        .collect();
    let changed: Vec<&str> = new_ids
        .iter()
        .filter(|(k, s)| {
            old_ids.get(*k).is_some_and(|o| {
                o.forward != s.forward || o.rollback != s.rollback || o.needs != s.needs
            })
        })
        .map(|(k, _)| *k)
        .collect();
    let mut parts = Vec::new();
    for (label, list) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !list.is_empty() {
            parts.push(format!("{label}: {}", list.join(", ")));
        }
    }
    if parts.is_empty() {
        "plan metadata changed".into()
    } else {
        parts.join("; ")
    }
}
