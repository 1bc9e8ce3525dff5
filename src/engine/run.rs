//! Apply and rollback: the run's life cycle in the store, and each step's.

use super::access_gate::Work;
use super::action::execute;
use super::context::{EngineOptions, Environment, StepCtx};
use super::failpoint;
use super::first_change::{self, holds_changes};
use super::mesh_lease::MeshClaim;
use super::scheduler::{Limits, StopFlag, Task, walk};
use super::step_history::StepHistory;
use crate::cluster::ClusterIdentity;
use crate::plan::{Action, Phase, Plan, PlanHeader, Step};
use crate::state::{
    EventKind, NewEvent, NewRun, Outcome, RunId, RunInfo, RunKind, StateError, StepStatus, Store,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
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
    /// Which cluster each context reached when the run started (absent in
    /// runs of an older migrate: unknown, not checked).
    #[serde(default)]
    pub identities: BTreeMap<String, ClusterIdentity>,
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
            identities: BTreeMap::new(),
        }
    }

    /// The same, recording which cluster each context reaches.
    pub fn with_identities(mut self, identities: BTreeMap<String, ClusterIdentity>) -> StoredPlan {
        self.identities = identities;
        self
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

/// What the identity check reads of a stored plan: its header and the identities, parsed from the plan's text
/// with its steps skipped unbuilt (a resume of a plan of thousands of steps takes its steps from the spec).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredHead {
    #[serde(default = "StoredPlan::first_format")]
    format: u32,
    #[serde(default)]
    written_by: Option<String>,
    header: PlanHeader,
    #[serde(default)]
    identities: BTreeMap<String, ClusterIdentity>,
}

impl StoredHead {
    /// The head of `run`'s stored plan, refused as `StoredPlan::load` refuses a newer format.
    fn load(store: &dyn Store, run: RunId) -> Result<StoredHead, EngineError> {
        let head: StoredHead = serde_json::from_str(&store.plan_json(run)?)
            .map_err(|e| EngineError::BadStoredPlan(e.to_string()))?;
        if head.format > StoredPlan::FORMAT {
            return Err(EngineError::BadStoredPlan(format!(
                "it was written in plan format {} by migrate {}; this migrate ({}) reads formats up to {}; \
                 nothing was changed",
                head.format,
                head.written_by
                    .as_deref()
                    .unwrap_or("a version not recorded"),
                env!("CARGO_PKG_VERSION"),
                StoredPlan::FORMAT
            )));
        }
        Ok(head)
    }
}

/// Whether `apply` starts a new run or continues the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// A new run; refused while an unfinished one exists, or while an earlier
    /// run of another plan holds steps not rolled back.
    Start,
    /// Continue the latest run; `replan` accepts a changed spec.
    Resume { replan: bool },
}

/// Why a run could not start or go on; the state store's errors pass through.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "run {} is unfinished ({}, started {}): resume it, or roll it back, before starting another",
        .run.id, .run.standing(), .run.started
    )]
    UnfinishedRun { run: Box<RunInfo> },
    #[error(
        "run {} ({}) of another plan still holds {held} step(s) not rolled back; a new run would hide its \
         snapshots: continue it with this plan, or undo it, before starting another",
        .run.id, .run.outcome
    )]
    EarlierRunHolds {
        /// The run whose steps are not rolled back.
        run: Box<RunInfo>,
        /// How many of its steps `rollback --to phase0` would undo.
        held: usize,
        /// It is the latest run, so `--resume --replan` can continue it.
        latest: bool,
    },
    #[error(
        "the new plan drops step(s) {} that run {run} has not rolled back; their changes would have no plan to undo them",
        .steps.join(", ")
    )]
    ReplanDropsHeldSteps {
        /// The run being continued.
        run: RunId,
        /// Its steps the new plan lacks, not rolled back.
        steps: Vec<String>,
    },
    #[error(
        "run {run} stopped while it was being rolled back: step(s) {} are half undone; going forward from there \
         would record their half-undone state as what a rollback restores. Nothing was changed",
        .steps.join(", ")
    )]
    RollbackUnfinished {
        run: RunId,
        /// The steps left rolling back (gates aside: they change nothing).
        steps: Vec<String>,
        /// The phase before the earliest of them: `rollback --to` it finishes undoing them.
        to: Phase,
    },
    #[error("there is no run to {0} in this state directory")]
    NoRun(&'static str),
    #[error(
        "the spec changed since run {run} started ({changes}); resuming needs a replan (done steps stay done)"
    )]
    SpecChanged { run: RunId, changes: String },
    #[error(
        "cluster {cluster} (context {context}) is not the cluster run {run} changed: it was {recorded}, \
         it is now {live}; nothing was changed"
    )]
    ClusterChanged {
        /// The cluster, as the plan names it.
        cluster: String,
        /// The context that reaches it now.
        context: String,
        /// The run that recorded the identity.
        run: RunId,
        /// What the run recorded.
        recorded: Box<ClusterIdentity>,
        /// What the context reaches now.
        live: Box<ClusterIdentity>,
    },
    #[error(
        "cannot tell whether the contexts still reach the clusters run {run} changed: {clusters}; \
         the API server's CA alone cannot tell apart two clusters behind one proxy. Nothing was changed. \
         Allow reading Namespace kube-system, or pass --accept-unknown-identity if you know they are the same clusters"
    )]
    IdentityUnknown {
        /// The first run concerned.
        run: RunId,
        /// Each undecided cluster with the cause.
        clusters: String,
    },
    #[error("{0}")]
    PermissionsMissing(String),
    #[error("the run's stored plan cannot be read: {0}")]
    BadStoredPlan(String),
    #[error("a workload scaled down could not be restored: {0}")]
    RestoreFailed(String),
    #[error(
        "{} object(s) changed since migrate left them; nothing was changed (rollback --force overwrites them)",
        .0.drifted().count()
    )]
    Drifted(Box<super::drift::DriftReport>),
    #[error(transparent)]
    DriftCheck(#[from] super::drift::DriftError),
    #[error(transparent)]
    State(#[from] StateError),
    /// The state store itself failed (unreachable, an I/O error, its Lease
    /// lost) once run `run` was under way: what it checkpointed stands, and
    /// the run is taken up again once the store answers.
    #[error("run {run} stopped: its state store failed")]
    StoreFailed {
        run: RunId,
        /// The phase a rollback was undoing down to; `None` in an apply.
        rollback_to: Option<Phase>,
        /// This process's hold on the store (what `migrate unlock --force` takes).
        holder: Option<String>,
        #[source]
        source: StateError,
    },
    #[error(transparent)]
    MeshLease(#[from] super::mesh_lease::MeshLeaseError),
}

impl EngineError {
    /// A failure of the store itself while `run` is under way, as
    /// `StoreFailed`; any other error as it is (its own message says what
    /// to do, and the run may not be the thing to take up again).
    fn under_way(self, store: &dyn Store, run: RunId, rollback_to: Option<Phase>) -> EngineError {
        match self {
            EngineError::State(
                source @ (StateError::Io { .. }
                | StateError::Db { .. }
                | StateError::Kube { .. }
                | StateError::LostLease { .. }),
            ) => EngineError::StoreFailed {
                run,
                rollback_to,
                holder: store.holder_id(),
                source,
            },
            e => e,
        }
    }
}

/// What `rollback` does with objects changed since `migrate` left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftPolicy {
    /// Refuse the rollback before any change (`EngineError::Drifted`).
    #[default]
    Refuse,
    /// Restore or delete them as planned; the journal records each one.
    Force,
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
    /// Objects changed since `migrate` left them that a forced rollback put back anyway.
    pub overwritten: Vec<String>,
    /// `apply --until` stopped after its phase, as asked (the outcome is `Interrupted`); with
    /// `already_done`, every step up to it was done before.
    pub paused: Option<super::until::Paused>,
}

impl RunSummary {
    fn nothing_to_do(run: RunId) -> RunSummary {
        RunSummary {
            run,
            outcome: Outcome::Succeeded,
            succeeded: Vec::new(),
            failed: Vec::new(),
            not_started: Vec::new(),
            stopped: false,
            already_done: true,
            overwritten: Vec::new(),
            paused: None,
        }
    }
}

/// One apply run of a state directory, oldest first in [`lineage`].
#[derive(Debug, Clone)]
pub struct RunLineage {
    /// The run.
    pub run: RunInfo,
    /// How many of its steps `rollback --to phase0` would still undo.
    pub held: usize,
}

/// Every apply run of the state directory, oldest first, with the steps
/// each still holds (not rolled back).
pub fn lineage(store: &dyn Store) -> Result<Vec<RunLineage>, EngineError> {
    let mut out = Vec::new();
    for run in store.runs()? {
        if run.kind != RunKind::Apply {
            continue;
        }
        let stored = StoredPlan::load(store, run.id)?;
        let states = store.step_states(run.id)?;
        let untouched = first_change::untouched_steps(store, run.id)?;
        let held = undo_candidates(&stored.steps, &states, &untouched, Phase::Preflight).count();
        out.push(RunLineage { run, held });
    }
    Ok(out)
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
    let clusters = plan.header.clusters.iter().map(|c| c.name.clone());
    let claim = MeshClaim::new(&env, &opts, clusters.collect(), unfinished);
    let store = env.store.clone();
    let mut under_way = None;
    let result = apply_claimed(plan, env, opts, mode, stop, &claim, &mut under_way).await;
    claim.end().await;
    result.map_err(|e| match under_way {
        Some(run) => e.under_way(store.as_ref(), run, None),
        None => e,
    })
}

/// Refuses to go forward from a rollback that stopped half way through a step
/// (killed, or a step's undo failed): that step's changes are half undone,
/// and a forward run would snapshot them as the state to restore. Gates are
/// let through: they change nothing (`gate::finish_interrupted_resets`).
fn rollback_finished(
    run: RunId,
    steps: &[Step],
    states: &BTreeMap<String, crate::state::StepState>,
) -> Result<(), EngineError> {
    let half: Vec<&Step> = steps
        .iter()
        .filter(|s| !super::checks::gate::is_gate(s))
        .filter(|s| {
            states
                .get(&s.id)
                .is_some_and(|st| st.status == StepStatus::RollingBack)
        })
        .collect();
    let Some(earliest) = half.iter().map(|s| s.phase).min() else {
        return Ok(());
    };
    Err(EngineError::RollbackUnfinished {
        run,
        steps: half.iter().map(|s| s.id.clone()).collect(),
        to: Phase::from_number(earliest.number().saturating_sub(1)).unwrap_or(Phase::Preflight),
    })
}

/// Whether `store` leaves changes in the mesh that a later invocation carries on (the mesh's claim is then
/// kept): its latest run did not succeed and some run still holds a step. Unknown counts as unfinished.
fn unfinished(store: &dyn Store) -> bool {
    let found = || -> Result<bool, EngineError> {
        match store.latest_run()? {
            None => Ok(false),
            Some(latest) if latest.outcome == Outcome::Succeeded => Ok(false),
            Some(_) => Ok(lineage(store)?.iter().any(|r| r.held > 0)),
        }
    };
    found().unwrap_or_else(|e| {
        tracing::warn!("cannot tell whether the run is finished ({e}); the mesh stays claimed");
        true
    })
}

/// `apply`, claiming the mesh (`claim`) before the run's first change;
/// `under_way` is set to the run once it exists (begun, or found to resume).
async fn apply_claimed(
    plan: &Plan,
    env: Arc<Environment>,
    opts: EngineOptions,
    mode: ApplyMode,
    stop: &StopFlag,
    claim: &MeshClaim,
    under_way: &mut Option<RunId>,
) -> Result<RunSummary, EngineError> {
    let store = env.store.clone();
    let plan_json = |identities| {
        serde_json::to_value(
            StoredPlan::new(plan, env.kubeconfigs.clone()).with_identities(identities),
        )
        .map_err(|e| EngineError::BadStoredPlan(e.to_string()))
    };
    let (run, states) = match mode {
        ApplyMode::Start => {
            // Before anything, even a refusal: a run holding changes names
            // the clusters they are in.
            let held: Vec<RunId> = lineage(store.as_ref())?
                .iter()
                .filter(|r| r.held > 0)
                .map(|r| r.run.id)
                .collect();
            let live = verify_identities(&env, &opts, &held).await?;
            if let Some(done) = may_start(store.as_ref(), plan)? {
                return Ok(RunSummary::nothing_to_do(done));
            }
            let plan_json = plan_json(live)?;
            let next = store.latest_run()?.map_or(1, |r| r.id.0 + 1);
            claim.take(next, None).await?;
            let run = store.begin_run(NewRun {
                fingerprint: plan.fingerprint.clone(),
                spec_name: plan.header.name.clone(),
                kind: RunKind::Apply,
                plan: plan_json,
                steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            })?;
            *under_way = Some(run.id);
            claim.started(&run).await?;
            let states = store.step_states(run.id)?;
            (run, states)
        }
        ApplyMode::Resume { replan } => {
            // The latest run, whatever its outcome: resuming one that already
            // applied this plan is "nothing to do" (a CI job may always pass
            // --resume); `--replan` continues even a succeeded run.
            let current = store.latest_run()?.ok_or(EngineError::NoRun("resume"))?;
            *under_way = Some(current.id);
            if current.fingerprint == plan.fingerprint && current.outcome == Outcome::Succeeded {
                return Ok(RunSummary::nothing_to_do(current.id));
            }
            let done = store.step_states(current.id)?;
            rollback_finished(current.id, &plan.steps, &done)?;
            if current.fingerprint == plan.fingerprint
                && let Some(paused) =
                    super::until::nothing_to_do(&current, &plan.steps, &done, opts.until)
            {
                // `--until` a phase already behind the run: the run stays as it is.
                return Ok(RunSummary {
                    paused: Some(paused),
                    ..RunSummary::nothing_to_do(current.id)
                });
            }
            let live = verify_identities(&env, &opts, &[current.id]).await?;
            // Gates a replan gives other expectations run again (they only read).
            let rerun = match replan && current.fingerprint != plan.fingerprint {
                true => super::checks::gate::changed_by_replan(
                    &StoredPlan::load(store.as_ref(), current.id)?.steps,
                    &plan.steps,
                ),
                false => Vec::new(),
            };
            // Preflight's permission check is done and will not run again:
            // ask again for what is about to run, before any change.
            let todo: Vec<&Step> = plan
                .steps
                .iter()
                .filter(|s| {
                    rerun.contains(&s.id)
                        || done
                            .get(&s.id)
                            .is_none_or(|st| st.status != StepStatus::Done)
                })
                .filter(|s| super::until::within(s, opts.until))
                .collect();
            let clusters = Arc::new(
                plan.header
                    .clusters
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            );
            super::access_gate::check(&env, &opts, current.id, clusters, Work::Forward(&todo))
                .await
                .map_err(EngineError::PermissionsMissing)?;
            claim.take(current.id.0, Some(current.started)).await?;
            let mut resumed = None;
            if current.fingerprint != plan.fingerprint {
                let old = StoredPlan::load(store.as_ref(), current.id)?;
                let plan_json = plan_json(super::identity::to_record(&old.identities, &live))?;
                let changes = describe_changes(&old.steps, &plan.steps);
                if !replan {
                    return Err(EngineError::SpecChanged {
                        run: current.id,
                        changes,
                    });
                }
                // A step the new plan drops would keep its changes with no
                // plan left to undo them: roll it back first.
                let states = store.step_states(current.id)?;
                let untouched = first_change::untouched_steps(store.as_ref(), current.id)?;
                let dropped: Vec<String> = old
                    .steps
                    .iter()
                    .filter(|s| !plan.steps.iter().any(|n| n.id == s.id))
                    .filter(|s| holds(&states, &untouched, &s.id))
                    .map(|s| s.id.clone())
                    .collect();
                if !dropped.is_empty() {
                    return Err(EngineError::ReplanDropsHeldSteps {
                        run: current.id,
                        steps: dropped,
                    });
                }
                // Steps change status only in a running run; the old plan
                // stays recorded until they did, so a crash in between
                // leaves the next `--replan` the same gates to set back.
                if !rerun.is_empty() {
                    store.resume_run(current.id)?;
                    super::checks::gate::rerun(store.as_ref(), current.id, &rerun)?;
                }
                let replaced = store.replace_plan(
                    current.id,
                    &plan.fingerprint,
                    plan_json,
                    &plan.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                )?;
                store.record_event(
                    current.id,
                    NewEvent::new(EventKind::Note, None, format!("replanned: {changes}")),
                )?;
                if !rerun.is_empty() {
                    resumed = Some(replaced);
                }
            }
            let run = match resumed {
                Some(running) => running,
                None => store.resume_run(current.id)?,
            };
            // Only a replan changes step states (steps added, gates set back); the store is ours alone.
            let states = match current.fingerprint == plan.fingerprint {
                true => done,
                false => store.step_states(run.id)?,
            };
            (run, states)
        }
    };
    // A rollback (or a replan's reset) killed at a gate left it rolling
    // back: it runs again when the walk reaches it.
    let states = match matches!(mode, ApplyMode::Resume { .. })
        && super::checks::gate::finish_interrupted_resets(
            store.as_ref(),
            run.id,
            &plan.steps,
            &states,
        )? {
        true => store.step_states(run.id)?,
        false => states,
    };
    let todo: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| {
            states
                .get(&s.id)
                .is_none_or(|st| st.status != StepStatus::Done)
        })
        .collect();
    let (todo, held_back) = super::until::select(todo, opts.until);
    let in_reach = plan
        .steps
        .iter()
        .filter(|s| super::until::within(s, opts.until))
        .count();
    let walked: Vec<String> = todo.iter().map(|s| s.id.clone()).collect();
    env.observer.run_started(&super::observer::RunStart {
        run: run.id,
        kind: &run.kind,
        plan,
        title: &super::until::title(&plan.header.name, opts.until),
        total: in_reach,
        done: in_reach.saturating_sub(todo.len() + held_back.blocked().len()),
        steps: &walked,
    });
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
        &held_back,
        stop,
    )
    .await?;
    Ok(summary)
}

/// Reads every cluster's identity and checks it against those `runs`
/// recorded (`identity`), before any change; the live ones are returned
/// for recording.
async fn verify_identities(
    env: &Environment,
    opts: &EngineOptions,
    runs: &[RunId],
) -> Result<BTreeMap<String, ClusterIdentity>, EngineError> {
    // The recorded identities are read (parsing the stored plans' heads, CPU
    // bound) while the clusters answer: `live` has sent its reads by then.
    let (live, stored) = tokio::join!(super::identity::live(env, !runs.is_empty()), async {
        runs.iter()
            .map(|run| Ok((*run, StoredHead::load(env.store.as_ref(), *run)?)))
            .collect::<Result<Vec<_>, EngineError>>()
    });
    let stored = stored?;
    let recorded: Vec<_> = stored
        .iter()
        .map(|(run, s)| super::identity::Recorded {
            run: *run,
            clusters: &s.header.clusters,
            identities: &s.identities,
        })
        .collect();
    super::identity::check(env, &recorded, &live, opts.accept_unknown_identity).map_err(
        |r| match r {
            super::identity::Refusal::Mismatch(m) => EngineError::ClusterChanged {
                cluster: m.cluster,
                context: m.context,
                run: m.run,
                recorded: Box::new(m.recorded),
                live: Box::new(m.live),
            },
            super::identity::Refusal::Undecided(list) => EngineError::IdentityUnknown {
                run: list.first().map_or(RunId(0), |u| u.run),
                clusters: super::identity::describe_undecided(&list),
            },
        },
    )?;
    Ok(live)
}

/// The runs whose clusters a rollback to `to` touches: the latest, and every
/// earlier apply run with steps to undo or restores pending; newest first.
fn runs_touched(store: &dyn Store, to: Phase) -> Result<Vec<RunId>, EngineError> {
    let latest = store.latest_run()?.ok_or(EngineError::NoRun("roll back"))?;
    let mut checked = Vec::new();
    for run in runs_to_undo(store)? {
        let stored = StoredPlan::load(store, run)?;
        let states = store.step_states(run)?;
        let untouched = first_change::untouched_steps(store, run)?;
        if run == latest.id
            || undo_candidates(&stored.steps, &states, &untouched, to)
                .next()
                .is_some()
            || !super::restores::pending(store, run)?.is_empty()
        {
            checked.push(run);
        }
    }
    Ok(checked)
}

/// Checks, changing nothing, that every context reaches the cluster the
/// runs a rollback to `to` would touch changed (`rollback --dry-run` and
/// `plan`'s drift report read those clusters: another cluster's objects
/// would make a false report).
pub async fn check_identities(
    env: &Environment,
    opts: &EngineOptions,
    to: Phase,
) -> Result<(), EngineError> {
    let runs = runs_touched(env.store.as_ref(), to)?;
    verify_identities(env, opts, &runs).await.map(|_| ())
}

/// Set when the process is about to exit at once (a second stop signal).
static HALTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The process is about to exit at once: from now on no step records its
/// end, so the checkpoint keeps the running ones `running` (as the caller
/// journals them) instead of `failed` because their installer was killed.
/// Resume runs them again either way; this keeps the record true.
pub fn halt() {
    HALTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn halted() -> bool {
    HALTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether `apply` (without `--resume`) may start a run of `plan`: `Some(run)`
/// when `run` already applied it (nothing to do), `None` to start one.
///
/// Why refuse rather than let a rollback walk several runs: every run's
/// snapshots are the record of the clusters before it, and a new run of a
/// different plan over an earlier run's unrolled-back steps takes its
/// snapshots of an already-migrated mesh. Two runs holding changes make
/// `rollback` depend on undoing both in the right order across plans. One
/// run at a time keeps one lineage: continue the earlier run with the new
/// plan (`--resume --replan`, where done steps stay done and snapshots stay
/// reachable), or undo it first. A new run may start once every earlier run
/// is fully rolled back or never changed anything. (State written by older
/// binaries may still hold several such runs; `rollback` undoes them all.)
fn may_start(store: &dyn Store, plan: &Plan) -> Result<Option<RunId>, EngineError> {
    let Some(latest) = store.latest_run()? else {
        return Ok(None);
    };
    if latest.outcome == Outcome::Succeeded && latest.fingerprint == plan.fingerprint {
        return Ok(Some(latest.id));
    }
    let runs = lineage(store)?;
    let unfinished = matches!(
        latest.outcome,
        Outcome::Running | Outcome::Failed | Outcome::Interrupted
    );
    let latest_held = runs
        .iter()
        .find(|r| r.run.id == latest.id)
        .map_or(0, |r| r.held);
    if latest.outcome == Outcome::Running || (unfinished && latest_held > 0) {
        return Err(EngineError::UnfinishedRun {
            run: Box::new(latest),
        });
    }
    if let Some(holder) = runs.iter().rev().find(|r| r.held > 0) {
        // The same plan, partly rolled back: that run is to be resumed, not replaced.
        if holder.run.id == latest.id && latest.fingerprint == plan.fingerprint {
            return Err(EngineError::UnfinishedRun {
                run: Box::new(latest),
            });
        }
        return Err(EngineError::EarlierRunHolds {
            run: Box::new(holder.run.clone()),
            held: holder.held,
            latest: holder.run.id == latest.id,
        });
    }
    Ok(None)
}

/// Undoes every step of the phases after `to` that did anything, newest
/// first, in parallel where independent: of the latest run, then of every
/// earlier apply run that still holds such steps (state from older binaries),
/// newest run first. Restores still pending are performed before anything.
pub async fn rollback(
    env: Arc<Environment>,
    opts: EngineOptions,
    to: Phase,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
    rollback_with(env, opts, to, DriftPolicy::Refuse, stop).await
}

/// `rollback`, with drifted objects refused or overwritten (`drift`). The
/// check runs before any change, the pending restores included.
pub async fn rollback_with(
    env: Arc<Environment>,
    opts: EngineOptions,
    to: Phase,
    drift: DriftPolicy,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
    let latest = env
        .store
        .latest_run()?
        .ok_or(EngineError::NoRun("roll back"))?;
    let clusters = plan_clusters_of(env.store.as_ref(), latest.id)?;
    let claim = MeshClaim::new(&env, &opts, clusters.to_vec(), unfinished);
    let store = env.store.clone();
    let result = rollback_claimed(env, opts, to, drift, stop, &claim).await;
    claim.end().await;
    result.map_err(|e| e.under_way(store.as_ref(), latest.id, Some(to)))
}

/// `rollback_with`, claiming the mesh (`claim`) before the first change.
async fn rollback_claimed(
    env: Arc<Environment>,
    opts: EngineOptions,
    to: Phase,
    drift: DriftPolicy,
    stop: &StopFlag,
    claim: &MeshClaim,
) -> Result<RunSummary, EngineError> {
    let store = env.store.clone();
    let latest = store.latest_run()?.ok_or(EngineError::NoRun("roll back"))?;
    let mut runs: Vec<RunInfo> = store
        .runs()?
        .into_iter()
        .filter(|r| r.kind == RunKind::Apply && r.id != latest.id)
        .collect();
    runs.push(latest.clone());
    runs.reverse();
    // Before any change, pending restores included: the clusters are the
    // ones the runs changed, every snapshot to put back is still held, and
    // nothing `migrate` left was changed since (unless forced).
    let mut checked = Vec::new();
    let mut to_undo: Vec<(RunId, String)> = Vec::new();
    for info in &runs {
        let stored = StoredPlan::load(store.as_ref(), info.id)?;
        let states = store.step_states(info.id)?;
        let untouched = first_change::untouched_steps(store.as_ref(), info.id)?;
        let undo: Vec<&Step> = undo_candidates(&stored.steps, &states, &untouched, to).collect();
        if info.id == latest.id
            || !undo.is_empty()
            || !super::restores::pending(store.as_ref(), info.id)?.is_empty()
        {
            checked.push(info.id);
        }
        to_undo.extend(undo.iter().map(|s| (info.id, s.id.clone())));
    }
    verify_identities(&env, &opts, &checked).await?;
    for (run, step) in &to_undo {
        // A snapshot `forget-snapshots` removed reads as an error naming it.
        let filter = crate::state::SnapshotFilter {
            step: Some(step.clone()),
            ..Default::default()
        };
        store.snapshots(*run, &filter)?;
    }
    if !opts.dry_run {
        // Preflight never runs in a rollback: ask for what its undo needs.
        for info in &runs {
            let stored = StoredPlan::load(store.as_ref(), info.id)?;
            let steps: Vec<&Step> = stored
                .steps
                .iter()
                .filter(|s| to_undo.iter().any(|(r, id)| *r == info.id && *id == s.id))
                .collect();
            if steps.is_empty() {
                continue;
            }
            let clusters = plan_clusters_of(store.as_ref(), info.id)?;
            super::access_gate::check(&env, &opts, info.id, clusters, Work::Back(&steps))
                .await
                .map_err(EngineError::PermissionsMissing)?;
        }
    }
    claim.take(latest.id.0, Some(latest.started)).await?;
    let mut overwritten = Vec::new();
    if !opts.dry_run {
        let report = drift_report(&env, to).await?;
        if report.has_drift() {
            if drift == DriftPolicy::Refuse {
                return Err(EngineError::Drifted(Box::new(report)));
            }
            for (step, object) in report.drifted() {
                store.record_event(step.run, forced_event(step, object))?;
                overwritten.push(object.key.to_string());
            }
        }
    }
    if !opts.dry_run {
        for run in &runs {
            let ctx = bare_ctx(
                &env,
                &opts,
                run.id,
                plan_clusters_of(store.as_ref(), run.id)?,
            );
            super::restores::perform_pending(&ctx)
                .await
                .map_err(|e| EngineError::RestoreFailed(e.to_string()))?;
        }
    }
    let mut total: Option<RunSummary> = None;
    for info in runs {
        let stored = StoredPlan::load(store.as_ref(), info.id)?;
        let plan = Plan::new(stored.header.clone(), stored.steps.clone())
            .map_err(|e| EngineError::BadStoredPlan(e.to_string()))?;
        let states = store.step_states(info.id)?;
        let untouched = first_change::untouched_steps(store.as_ref(), info.id)?;
        let selected = rollback_steps(&plan, &states, &untouched, to);
        let is_latest = info.id == latest.id;
        if !is_latest && selected.is_empty() {
            continue;
        }
        let run = if is_latest {
            store.resume_run(info.id)?
        } else {
            store.reopen_for_rollback(info.id)?
        };
        store.record_event(
            run.id,
            NewEvent::new(EventKind::Note, None, format!("rollback to {to}")),
        )?;
        let part = rollback_run(&env, &opts, &plan, selected, to, run.id, stop).await?;
        let go_on = part.failed.is_empty() && !part.stopped;
        total = Some(match total {
            None => part,
            Some(mut sum) => {
                sum.succeeded.extend(part.succeeded);
                sum.failed.extend(part.failed);
                sum.not_started.extend(part.not_started);
                sum.stopped |= part.stopped;
                if !go_on {
                    sum.outcome = part.outcome;
                }
                sum
            }
        });
        if !go_on {
            break;
        }
    }
    let mut total = total.ok_or(EngineError::NoRun("roll back"))?;
    total.overwritten = overwritten;
    Ok(total)
}

/// Undoes `selected` (of `plan`, run `run`) newest first.
async fn rollback_run(
    env: &Arc<Environment>,
    opts: &EngineOptions,
    plan: &Plan,
    selected: Vec<&Step>,
    to: Phase,
    run: RunId,
    stop: &StopFlag,
) -> Result<RunSummary, EngineError> {
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
    let walked: Vec<String> = selected.iter().map(|s| s.id.clone()).collect();
    env.observer.run_started(&super::observer::RunStart {
        run,
        kind: &RunKind::Rollback {
            to_phase: format!("phase{}", to.number()),
        },
        plan,
        title: &format!("rollback run {run} to {to}"),
        total: nodes.len(),
        done: 0,
        steps: &walked,
    });
    let steps: Vec<Step> = selected.into_iter().cloned().collect();
    let nothing_held = super::until::HeldBack::default();
    drive(
        env,
        opts,
        run,
        plan,
        nodes,
        steps,
        Direction::Back,
        &nothing_held,
        stop,
    )
    .await
}

/// The clusters of `run`'s plan, in plan order.
fn plan_clusters_of(store: &dyn Store, run: RunId) -> Result<Arc<Vec<String>>, EngineError> {
    let stored = StoredPlan::load(store, run)?;
    Ok(Arc::new(
        stored
            .header
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    ))
}

/// A context for work of the run outside any step (pending restores).
fn bare_ctx(
    env: &Arc<Environment>,
    opts: &EngineOptions,
    run: RunId,
    plan_clusters: Arc<Vec<String>>,
) -> StepCtx {
    StepCtx {
        env: env.clone(),
        opts: Arc::new(opts.clone()),
        run,
        step: "pending-restores".into(),
        plan_clusters,
        cycle: 0,
        restores_scale: false,
    }
}

/// The steps a rollback to `to` undoes, newest first: those of later phases
/// that may have changed something (`untouched`: steps whose current
/// execution changed nothing, from [`first_change::untouched_steps`]).
pub fn rollback_steps<'a>(
    plan: &'a Plan,
    states: &BTreeMap<String, crate::state::StepState>,
    untouched: &BTreeSet<String>,
    to: Phase,
) -> Vec<&'a Step> {
    undo_candidates(&plan.steps, states, untouched, to).collect()
}

/// The apply runs a rollback undoes, newest first: the latest, then every
/// earlier one (those holding no step add nothing).
fn runs_to_undo(store: &dyn Store) -> Result<Vec<RunId>, EngineError> {
    let Some(latest) = store.latest_run()? else {
        return Ok(Vec::new());
    };
    let mut runs: Vec<RunId> = store
        .runs()?
        .into_iter()
        .filter(|r| r.kind == RunKind::Apply && r.id != latest.id)
        .map(|r| r.id)
        .collect();
    runs.push(latest.id);
    runs.reverse();
    Ok(runs)
}

/// Classifies every object a rollback to `to` would undo (restore, delete,
/// unchanged, DRIFTED), comparing what each done step left with the live
/// objects. Changes nothing.
pub async fn drift_report(
    env: &Environment,
    to: Phase,
) -> Result<super::drift::DriftReport, EngineError> {
    let store = env.store.as_ref();
    let mut plans = Vec::new();
    for run in runs_to_undo(store)? {
        let stored = StoredPlan::load(store, run)?;
        let states = store.step_states(run)?;
        let untouched = first_change::untouched_steps(store, run)?;
        plans.push((run, stored, states, untouched));
    }
    let steps: Vec<super::drift::UndoStep<'_>> = plans
        .iter()
        .flat_map(|(run, stored, states, untouched)| {
            undo_candidates(&stored.steps, states, untouched, to).map(move |step| {
                super::drift::UndoStep {
                    run: *run,
                    step,
                    status: states.get(&step.id).map(|s| s.status),
                }
            })
        })
        .collect();
    Ok(super::drift::report(env, to, &steps).await?)
}

/// The journal entry of one drifted object a forced rollback overwrites
/// (field names only: the values stay out of the journal).
fn forced_event(step: &super::drift::StepDrift, object: &super::drift::ObjectDrift) -> NewEvent {
    use super::drift::{Class, DriftChange};
    let fields: Vec<String> = match &object.class {
        Class::Drifted {
            change: DriftChange::Fields(f),
            ..
        } => f.iter().map(|c| c.path.clone()).collect(),
        Class::Drifted {
            change: DriftChange::SecretContent { .. },
            ..
        } => vec!["content".into()],
        Class::Drifted {
            change: DriftChange::Recreated,
            ..
        } => vec!["recreated".into()],
        Class::Drifted {
            change: DriftChange::Deleted,
            ..
        } => vec!["deleted".into()],
        _ => Vec::new(),
    };
    NewEvent::new(
        EventKind::Warning,
        Some(&step.step),
        format!(
            "rollback --force overwrites drift of {}: {}",
            object.key,
            fields.join(", ")
        ),
    )
    .with_details(serde_json::json!({ "forcedOverwrite": object.key, "fields": fields }))
}

fn undo_candidates<'a: 'b, 'b>(
    steps: &'a [Step],
    states: &'b BTreeMap<String, crate::state::StepState>,
    untouched: &'b BTreeSet<String>,
    to: Phase,
) -> impl Iterator<Item = &'a Step> + 'b {
    steps
        .iter()
        .rev()
        .filter(move |s| s.phase > to)
        .filter(move |s| holds(states, untouched, &s.id))
}

/// Whether step `id` may hold changes a rollback undoes.
fn holds(
    states: &BTreeMap<String, crate::state::StepState>,
    untouched: &BTreeSet<String>,
    id: &str,
) -> bool {
    states
        .get(id)
        .is_some_and(|st| holds_changes(st.status, untouched.contains(id)))
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
    held_back: &super::until::HeldBack,
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
    let history = Arc::new(super::step_history::Shared::new());
    let outcome = walk(
        &nodes,
        limits,
        stop,
        |i| {
            let step = &steps[i];
            let ctx = StepCtx {
                env: env.clone(),
                opts: opts.clone(),
                run,
                step: step.id.clone(),
                plan_clusters: plan_clusters.clone(),
                cycle: 0,
                // Only a step that puts back what it scales in its own
                // `finally` owes a restore while it runs.
                restores_scale: step
                    .finally
                    .iter()
                    .any(|a| matches!(a, Action::RestoreScale { .. })),
            };
            let (steps, history) = (steps.clone(), history.clone());
            async move { run_step(ctx, &steps[i], direction, &history).await }
        },
        |id| format!("step {id} panicked"),
    )
    .await;
    env.observer.run_finished();
    let mut outcome = outcome;
    if !opts.dry_run {
        // Whatever ended the run (success, failure, Ctrl-C), no workload the
        // drain scaled down stays so once the command exits.
        let ctx = bare_ctx(env, &opts, run, plan_clusters.clone());
        if let Err(e) = super::restores::perform_pending(&ctx).await {
            outcome.failed.push((
                "pending-restores".into(),
                crate::state::redact_text(&e.to_string()),
            ));
        }
    }
    outcome
        .not_started
        .extend(held_back.blocked().iter().cloned());
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
    // `--until`: a clean walk with later steps left is a pause, recorded
    // only now that every step up to the phase is checkpointed.
    let paused = held_back.pause(run_outcome);
    let run_outcome = match &paused {
        Some(p) => env.store.pause_run(run, p.after.name())?.outcome,
        None => env.store.finish_run(run, run_outcome)?.outcome,
    };
    Ok(RunSummary {
        run,
        outcome: run_outcome,
        succeeded: outcome.succeeded,
        failed: outcome.failed,
        not_started: outcome.not_started,
        stopped: outcome.stopped,
        already_done: false,
        overwritten: Vec::new(),
        paused,
    })
}

/// One step: checkpoint, actions in order (then `finally`), checkpoint.
/// `history`: the walk's `StepHistory`, read when a step first needs it.
async fn run_step(
    mut ctx: StepCtx,
    step: &Step,
    direction: Direction,
    history: &super::step_history::Shared,
) -> Result<(), String> {
    let mut forward_done = false;
    let ctx = {
        if (needs_cycle(step) || !step.finally.is_empty()) && !ctx.opts.dry_run {
            let store = ctx.env.store.clone();
            let read = history
                .get_or_try_init(|| async move { StepHistory::read(store.as_ref(), ctx.run) })
                .await
                .map_err(|e| format!("cannot read the checkpoint: {e}"))?;
            ctx.cycle = read.cycle(&step.id);
            // A step with `finally` actions (the drill's drain) that already got
            // past its forward actions in this execution runs only its `finally`
            // when a crash makes it run again: its forward effects (scaling down, the
            // probe) must not repeat.
            forward_done = direction == Direction::Forward
                && !step.finally.is_empty()
                && read.forward_completed(&step.id, ctx.cycle);
        }
        &ctx
    };
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
    // Whether this attempt's first change is marked (see `first_change`);
    // a rollback marks nothing.
    let mut marked = direction == Direction::Back || ctx.opts.dry_run;
    // A remote's istiod address that is a DNS name: refused (by reading)
    // before the step's first change, so its attempt began with none.
    // Nothing of it runs, `finally` included.
    let mut refused = false;
    if direction == Direction::Forward
        && let Err(e) = super::installer::remote_pilot::refuse_hostname(ctx, step).await
    {
        result = Err(crate::state::redact_text(&e.to_string()));
        refused = true;
    }
    if !ctx.opts.dry_run {
        // Write-ahead: the step's start and the live state of what it will
        // change reach the disk together, before its first side effect.
        let snapshots = match direction {
            Direction::Forward => ctx.read_snapshots(actions).await,
            Direction::Back => Ok(Vec::new()),
        };
        if direction == Direction::Forward {
            // Rides on the durable start below: no flush of its own.
            marked = result.is_ok() && snapshots.is_ok() && first_change::changes_at_once(actions);
            let attempt = store
                .step_state(ctx.run, &step.id)
                .map_err(|e| format!("cannot read the checkpoint: {e}"))?
                .attempts
                + 1;
            first_change::note_began(store.as_ref(), ctx.run, &step.id, attempt, marked)
                .map_err(|e| format!("cannot checkpoint: {e}"))?;
        }
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
    if result.is_ok() && !forward_done {
        let part = match direction {
            Direction::Forward => "forward",
            Direction::Back => "rollback",
        };
        result = run_actions(ctx, actions, part, &mut marked).await;
        if result.is_ok() && direction == Direction::Forward && !step.finally.is_empty() {
            super::step_history::mark_forward_completed(
                store.as_ref(),
                ctx.run,
                &step.id,
                ctx.cycle,
            )
            .map_err(|e| format!("cannot checkpoint: {e}"))?;
        }
    }
    if direction == Direction::Forward && !refused {
        // `finally` runs whatever happened (restore replicas after a probe).
        let finally = run_actions(ctx, &step.finally, "finally", &mut marked).await;
        if result.is_ok() {
            result = finally;
        }
    }
    // What the step left of each object it changed or its rollback restores,
    // written with its Done mark: the yardstick a rollback measures drift
    // against. Its effects are all made: a read that fails (after the
    // engine's retries) must not fail the step, or a resume repeats them; it
    // is done with no records (rollback says "not recorded") and a warning,
    // journalled without a flush of its own (the Done mark's flush covers it).
    let mut left = None;
    if result.is_ok() && direction == Direction::Forward && !ctx.opts.dry_run {
        match super::drift::record(ctx, step).await {
            Ok(records) => left = Some(records),
            Err(e) => {
                let why = crate::state::redact_text(&e.to_string());
                let message = format!(
                    "what the step left was not recorded (drift will not be checked): {why}"
                );
                ctx.env.observer.warning(&step.id, &message);
                let warning = NewEvent::new(EventKind::Warning, Some(&step.id), message);
                store
                    .record_progress(ctx.run, warning)
                    .map_err(|e| format!("cannot checkpoint: {e}"))?;
                left = Some(Vec::new());
            }
        }
    }
    let ok = result.is_ok();
    if halted() {
        return Err("stopped at once".into());
    }
    if !ctx.opts.dry_run {
        let marked = match (&result, left) {
            (Ok(()), Some(left)) => store.finish_step(ctx.run, &step.id, leaving, left),
            (Ok(()), None) => store.set_step_status(ctx.run, &step.id, leaving, None),
            (Err(e), _) => store.set_step_status(ctx.run, &step.id, StepStatus::Failed, Some(e)),
        };
        marked.map_err(|e| format!("cannot checkpoint: {e}"))?;
        if ok && direction == Direction::Back {
            // A later apply of this step takes fresh snapshots.
            store
                .drop_snapshots(ctx.run, &step.id)
                .map_err(|e| format!("cannot checkpoint: {e}"))?;
        }
        failpoint::after_step(&step.id);
    }
    if let Err(e) = &result {
        ctx.env.observer.step_failed(&step.id, e);
    }
    ctx.env
        .observer
        .step_finished(&step.id, ok, started.elapsed());
    result
}

/// Runs `actions` in order up to the first error; `marked` says whether the
/// attempt's first change is durably marked, and is marked before it if not.
async fn run_actions(
    ctx: &StepCtx,
    actions: &[Action],
    part: &str,
    marked: &mut bool,
) -> Result<(), String> {
    let mut first_error = None;
    for (index, action) in actions.iter().enumerate() {
        if !*marked && first_change::changes(action) {
            first_change::mark_durably(ctx.env.store.as_ref(), ctx.run, &ctx.step)
                .map_err(|e| format!("cannot checkpoint: {e}"))?;
            *marked = true;
        }
        let text = action.to_string();
        ctx.env.observer.action_started(&ctx.step, &text);
        match execute(ctx, action, &format!("{part}.{index}")).await {
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
                let message = crate::state::redact_text(&format!("{text}: {e}"));
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

/// Whether the step restarts anything (only then is its cycle needed).
fn needs_cycle(step: &Step) -> bool {
    step.forward
        .iter()
        .chain(&step.finally)
        .chain(&step.rollback)
        .any(|a| matches!(a, Action::Restart { .. } | Action::RestartWorkloads { .. }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NullObserver;
    use crate::state::MemoryStore;

    /// A plan of two install steps without actions (no cluster needed),
    /// named `name` so two names are two plans.
    fn plan(name: &str) -> Plan {
        let header = PlanHeader {
            name: name.into(),
            topology: "multi-primary".into(),
            clusters: Vec::new(),
        };
        let steps = vec![
            Step::new(Phase::Preflight, "preflight/a", "check"),
            Step::new(Phase::Install, "install/a", "install"),
            Step::new(Phase::Install, "install/b", "install"),
        ];
        Plan::new(header, steps).unwrap()
    }

    fn env(store: Arc<dyn Store>) -> Arc<Environment> {
        Arc::new(Environment {
            clusters: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            store,
            observer: Arc::new(NullObserver),
        })
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn start(store: &Arc<dyn Store>, plan: &Plan) -> Result<RunSummary, EngineError> {
        let stop = StopFlag::default();
        run(apply(
            plan,
            env(store.clone()),
            EngineOptions::default(),
            ApplyMode::Start,
            &stop,
        ))
    }

    #[test]
    fn only_a_failure_of_the_store_itself_stops_a_run_as_store_failed() {
        let store = MemoryStore::new();
        let io = EngineError::State(StateError::Io {
            dir: PathBuf::from("/tmp/st"),
            op: "write",
            path: PathBuf::from("/tmp/st/db"),
            source: std::io::Error::other("disk full"),
        });
        let failed = io.under_way(&store, RunId(4), Some(Phase::Install));
        assert!(
            matches!(
                &failed,
                EngineError::StoreFailed {
                    run: RunId(4),
                    rollback_to: Some(Phase::Install),
                    source: StateError::Io { .. },
                    ..
                }
            ),
            "{failed:?}"
        );
        // A refusal by the store's rules says what to do itself: left as it is.
        let refused = EngineError::State(StateError::RunInProgress { run: RunId(4) });
        let refused = refused.under_way(&store, RunId(4), None);
        assert!(
            matches!(
                refused,
                EngineError::State(StateError::RunInProgress { .. })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_run_of_another_plan_waits_until_the_earlier_run_is_undone() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let first = start(&store, &plan("one")).unwrap();
        assert_eq!(first.outcome, Outcome::Succeeded);
        assert!(start(&store, &plan("one")).unwrap().already_done);
        let refused = start(&store, &plan("two")).unwrap_err();
        assert!(
            matches!(
                &refused,
                EngineError::EarlierRunHolds {
                    held: 2,
                    latest: true,
                    ..
                }
            ),
            "{refused}"
        );
        assert_eq!(store.runs().unwrap().len(), 1, "nothing was started");
        let stop = StopFlag::default();
        let undone = run(rollback(
            env(store.clone()),
            EngineOptions::default(),
            Phase::Preflight,
            &stop,
        ))
        .unwrap();
        assert_eq!(undone.succeeded.len(), 2);
        let second = start(&store, &plan("two")).unwrap();
        assert_eq!(second.run, RunId(2));
        let held: Vec<usize> = lineage(store.as_ref())
            .unwrap()
            .iter()
            .map(|l| l.held)
            .collect();
        assert_eq!(held, [0, 2]);
    }

    #[test]
    fn rollback_undoes_every_run_an_older_binary_left_newest_first() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        start(&store, &plan("one")).unwrap();
        // An older binary started run #2 over run #1's steps.
        let two = plan("two");
        let stored = serde_json::to_value(StoredPlan::new(&two, BTreeMap::new())).unwrap();
        let r2 = store
            .begin_run(NewRun {
                fingerprint: two.fingerprint.clone(),
                spec_name: "two".into(),
                kind: RunKind::Apply,
                plan: stored,
                steps: two.steps.iter().map(|s| s.id.clone()).collect(),
            })
            .unwrap()
            .id;
        store
            .set_step_status(r2, "preflight/a", StepStatus::Running, None)
            .unwrap();
        store
            .set_step_status(r2, "preflight/a", StepStatus::Failed, Some("x"))
            .unwrap();
        store.finish_run(r2, Outcome::Failed).unwrap();
        let stop = StopFlag::default();
        let undone = run(rollback(
            env(store.clone()),
            EngineOptions::default(),
            Phase::Preflight,
            &stop,
        ))
        .unwrap();
        assert_eq!(undone.succeeded.len(), 2, "run #1's steps were undone");
        assert!(
            lineage(store.as_ref()).unwrap().iter().all(|l| l.held == 0),
            "no run holds steps"
        );
        assert_eq!(
            store.step_state(RunId(1), "install/a").unwrap().status,
            StepStatus::RolledBack
        );
    }

    /// An installer that cannot start: a change that fails at once.
    fn failing_install() -> Action {
        Action::Exec {
            cluster: "x".into(),
            program: "/nonexistent/istioctl".into(),
            args: vec!["install".into()],
            file: None,
            timeout_seconds: 5,
        }
    }

    #[test]
    fn rollback_skips_failed_steps_that_never_reached_their_first_change() {
        use crate::plan::{Check, Condition, ObjectRef};
        let header = PlanHeader {
            name: "marks".into(),
            topology: "multi-primary".into(),
            clusters: Vec::new(),
        };
        // Fails in a wait, before its first change.
        let mut waits = Step::new(Phase::Install, "install/waits", "wait, then install");
        waits.forward(Action::Wait {
            cluster: "x".into(),
            object: ObjectRef::config_map("ns", "cm"),
            condition: Condition::Present,
            timeout_seconds: 1,
        });
        waits.forward(failing_install());
        // Fails at its first change (the mark rides on its start).
        let mut installs = Step::new(Phase::Install, "install/installs", "install");
        installs.forward(failing_install());
        // A check passes, then the change fails: marked before it on its own.
        let mut checks = Step::new(Phase::Install, "install/checks", "check, then install");
        checks.forward(Action::Check {
            cluster: None,
            check: Check::InstallerVersion {
                program: "echo".into(),
                expected: "version".into(),
            },
        });
        checks.forward(failing_install());
        let plan = Plan::new(header, vec![waits, installs, checks]).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let summary = start(&store, &plan).unwrap();
        assert_eq!(summary.failed.len(), 3, "{:?}", summary.failed);
        let states = store.step_states(summary.run).unwrap();
        let untouched = first_change::untouched_steps(store.as_ref(), summary.run).unwrap();
        assert_eq!(
            untouched.iter().map(String::as_str).collect::<Vec<_>>(),
            ["install/waits"]
        );
        let mut undo: Vec<&str> = rollback_steps(&plan, &states, &untouched, Phase::Preflight)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        undo.sort_unstable();
        assert_eq!(undo, ["install/checks", "install/installs"]);
        let held: Vec<usize> = lineage(store.as_ref())
            .unwrap()
            .iter()
            .map(|l| l.held)
            .collect();
        assert_eq!(held, [2]);
    }

    #[test]
    fn a_stored_plan_without_identities_reads_as_unknown_and_round_trips_them() {
        let mut value =
            serde_json::to_value(StoredPlan::new(&plan("one"), BTreeMap::new())).unwrap();
        value.as_object_mut().unwrap().remove("identities");
        assert!(StoredPlan::from_value(value).unwrap().identities.is_empty());
        let known = ClusterIdentity {
            namespace_uid: Some("uid".into()),
            ca_fingerprint: Some("sha256:ab".into()),
        };
        let stored = StoredPlan::new(&plan("one"), BTreeMap::new())
            .with_identities([("c1".to_string(), known.clone())].into());
        let back = StoredPlan::from_value(serde_json::to_value(&stored).unwrap()).unwrap();
        assert_eq!(back.identities["c1"], known);
    }

    #[test]
    fn resume_of_a_finished_run_has_nothing_to_do() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        start(&store, &plan("one")).unwrap();
        let stop = StopFlag::default();
        let again = run(apply(
            &plan("one"),
            env(store.clone()),
            EngineOptions::default(),
            ApplyMode::Resume { replan: false },
            &stop,
        ))
        .unwrap();
        assert!(again.already_done);
        assert_eq!(store.run(RunId(1)).unwrap().resumed, 0, "not reopened");
    }

    /// An API server that answers every request 403 Forbidden, until dropped.
    async fn forbidding_server() -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Requests here are GETs: the head is all there is.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#;
                    let reply = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, server)
    }

    #[test]
    fn a_step_whose_records_cannot_be_read_is_done_not_recorded_with_a_warning() {
        run(async {
            let (url, server) = forbidding_server().await;
            let config = kube::Config::new(url.parse().unwrap());
            let client = kube::Client::try_from(config).unwrap();
            let cluster = crate::cluster::Cluster::new("c1", "ctx", url, client);
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let env = Arc::new(Environment {
                clusters: BTreeMap::from([("c1".to_string(), Arc::new(cluster))]),
                kubeconfigs: BTreeMap::new(),
                store: store.clone(),
                observer: Arc::new(NullObserver),
            });
            // No forward action reads anything; the rollback restores a
            // ConfigMap, so the Done path reads it: 403.
            let mut step = Step::new(Phase::Install, "install/c1", "install");
            step.rollback.push(Action::Restore {
                cluster: "c1".into(),
                object: crate::plan::ObjectRef::config_map("istio-system", "istio"),
            });
            let header = PlanHeader {
                name: "records".into(),
                topology: "multi-primary".into(),
                clusters: Vec::new(),
            };
            let plan = Plan::new(header, vec![step]).unwrap();
            let stop = StopFlag::default();
            let summary = apply(
                &plan,
                env,
                EngineOptions::default(),
                ApplyMode::Start,
                &stop,
            )
            .await
            .unwrap();
            server.abort();
            assert!(summary.failed.is_empty(), "{:?}", summary.failed);
            let state = store.step_state(summary.run, "install/c1").unwrap();
            assert_eq!(
                state.status,
                StepStatus::Done,
                "a resume must not repeat its effects"
            );
            assert!(
                store
                    .left_objects(summary.run, "install/c1")
                    .unwrap()
                    .is_empty()
            );
            let warned = store.events(summary.run, 0).unwrap().into_iter().any(|e| {
                e.kind == EventKind::Warning
                    && e.step.as_deref() == Some("install/c1")
                    && e.message.contains("not recorded")
            });
            assert!(warned, "the journal warns that drift will not be checked");
        });
    }
}
