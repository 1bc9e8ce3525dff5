//! `migrate rollback --to PHASE`: undo the later phases, newest first.

use super::results::{UndoList, completed};
use super::session::{self, Session};
use super::view::drift as drift_view;
use super::view::rollback as view;
use super::{GlobalArgs, RollbackArgs, exit};
use crate::cluster::ClusterTarget;
use crate::engine::{
    self, DriftPolicy, EngineError, EngineOptions, Environment, RunSummary, StoredPlan,
};
use crate::plan::{Phase, Plan};
use crate::state::{RunKind, StepStatus, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs `migrate rollback`.
pub fn run(global: &GlobalArgs, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let to: Phase = match args.to.parse() {
        Ok(p) => p,
        Err(e) => {
            super::view::invalid(&format!("--to: {e}"));
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let mut session = Session::new(global, Some(&args.state.state_dir), args.file.as_deref());
    // A spec given now lends its per-cluster kubeconfigs (nothing else), and where its state lives.
    let loaded = match &args.file {
        Some(file) => match session::load_spec(file) {
            Ok(loaded) => Some(loaded),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let spec_kubeconfigs = loaded
        .as_ref()
        .map(session::spec_kubeconfigs)
        .unwrap_or_default();
    let location = session::StateLocation::of(&args.state, loaded.as_ref())?;
    session.hints = session.hints.clone().with_state(location.shared());
    session.mesh_claim = (!args.no_mesh_lease).then(|| location.claim_name());
    let store = session::open_any(&location, session.kubeconfig.as_deref())?;
    let Some(run) = store.latest_run()? else {
        super::view::invalid(&format!("no run in {location}: nothing to roll back"));
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    };
    let stored = StoredPlan::load(store.as_ref(), run.id)?;
    let targets = targets(&session, store.as_ref(), &stored, &spec_kubeconfigs)?;
    view::reached_by(&targets, &session);
    let runtime = tokio::runtime::Runtime::new()?;
    if args.dry_run {
        undo_lists(store.as_ref(), run.id, to)?;
        // What each undo would change, object by object: needs the clusters.
        // The clusters first: another cluster's objects would make a
        // report of drift that is not there (or hide drift that is).
        let opts = identity_options(args.accept_unknown_identity);
        let report = runtime.block_on(async {
            let env = environment(&session, store.clone(), &targets).await?;
            engine::check_identities(&env, &opts, to).await?;
            Ok::<_, anyhow::Error>(engine::drift_report(&env, to).await?)
        });
        match report {
            Ok(report) => drift_view::dry_run(&report),
            Err(e) if is_wrong_cluster(&e) => {
                let refusal = e
                    .downcast_ref::<EngineError>()
                    .map_or_else(|| format!("{e:#}"), identity_refusal);
                super::view::invalid(&refusal);
                return Ok(ExitCode::from(exit::FAILED));
            }
            Err(e) => drift_view::not_checked(&format!("{e:#}")),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let policy = if args.force {
        DriftPolicy::Force
    } else {
        DriftPolicy::Refuse
    };
    let result = runtime.block_on(rollback_with(
        &session,
        store,
        &targets,
        to,
        args.parallelism,
        (policy, args.accept_unknown_identity),
    ));
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => match e.downcast_ref::<EngineError>() {
            Some(e @ EngineError::Drifted(report)) => {
                if let Some(events) = super::view::events::sink() {
                    events.refused(e, &session.hints);
                }
                let force = format!("{} --force", session.hints.continue_rollback(&args.to));
                drift_view::refused(report, &force);
                return Ok(ExitCode::from(exit::FAILED));
            }
            _ => return Err(e),
        },
    };
    if let Some(events) = super::view::events::sink() {
        events.rollback_finished(&summary, &args.to, &session.hints);
    }
    view::show(&summary, to, &args.to, &session.hints);
    Ok(exit_code(&summary))
}

/// Every step a rollback to `to` would undo, run by run, newest first: the
/// latest, then every earlier apply run still holding steps after `to`;
/// with the steps that stopped before their first change (nothing to undo).
fn undo_lists(store: &dyn Store, latest: crate::state::RunId, to: Phase) -> anyhow::Result<()> {
    let mut runs = store.runs()?;
    runs.retain(|r| r.kind == RunKind::Apply || r.id == latest);
    for info in runs.into_iter().rev() {
        let stored = StoredPlan::load(store, info.id)?;
        let plan = Plan::new(stored.header.clone(), stored.steps.clone())?;
        let states = store.step_states(info.id)?;
        let untouched = engine::untouched_steps(store, info.id)?;
        let steps: Vec<_> = engine::rollback_steps(&plan, &states, &untouched, to)
            .into_iter()
            .cloned()
            .collect();
        if info.id != latest && steps.is_empty() {
            continue;
        }
        let nothing_to_undo = plan
            .steps
            .iter()
            .filter(|s| s.phase > to && untouched.contains(&s.id))
            .filter(|s| {
                states
                    .get(&s.id)
                    .is_some_and(|st| matches!(st.status, StepStatus::Failed | StepStatus::Running))
            })
            .map(|s| s.id.clone())
            .collect();
        view::undo_list(&UndoList {
            run: info.id,
            to,
            steps,
            states,
            nothing_to_undo,
        });
    }
    Ok(())
}

/// The clusters of `stored`'s run, and those of any earlier run the
/// rollback also undoes (state from older binaries can hold several), each
/// with the kubeconfig to reach it by (`session::run_targets`).
pub fn targets(
    session: &Session,
    store: &dyn Store,
    stored: &StoredPlan,
    spec: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<Vec<ClusterTarget>> {
    let given = session.given_kubeconfig.as_deref();
    let fallback = session.kubeconfig.as_deref();
    let mut targets = session::run_targets(stored, given, spec, fallback);
    for earlier in engine::lineage(store)? {
        if earlier.held == 0 {
            continue;
        }
        let plan = StoredPlan::load(store, earlier.run.id)?;
        for t in session::run_targets(&plan, given, spec, fallback) {
            if !targets.iter().any(|have| have.name == t.name) {
                targets.push(t);
            }
        }
    }
    Ok(targets)
}

/// Undoes every phase after `to` of the runs `targets` reach, newest first;
/// progress is shown as it goes. Drift is refused.
pub async fn rollback(
    session: &Session,
    store: Arc<dyn Store>,
    targets: &[ClusterTarget],
    to: Phase,
    parallelism: usize,
) -> anyhow::Result<RunSummary> {
    rollback_with(
        session,
        store,
        targets,
        to,
        parallelism,
        (DriftPolicy::Refuse, false),
    )
    .await
}

/// `rollback`, with objects changed since `migrate` left them refused or
/// overwritten (`policy`), and clusters whose identity cannot be decided
/// refused or accepted (`accept_unknown_identity`).
pub async fn rollback_with(
    session: &Session,
    store: Arc<dyn Store>,
    targets: &[ClusterTarget],
    to: Phase,
    parallelism: usize,
    (policy, accept_unknown_identity): (DriftPolicy, bool),
) -> anyhow::Result<RunSummary> {
    let env = environment(session, store.clone(), targets).await?;
    let opts = EngineOptions {
        parallelism: parallelism.max(1),
        mesh_lease: session.mesh_claim.clone(),
        ..identity_options(accept_unknown_identity)
    };
    let stop = session::stop_on_signals(store);
    Ok(engine::rollback_with(env, opts, to, policy, &stop).await?)
}

/// Engine options that only decide how cluster identities are checked.
pub fn identity_options(accept_unknown_identity: bool) -> EngineOptions {
    EngineOptions {
        accept_unknown_identity,
        ..Default::default()
    }
}

/// Whether `e` says a context reaches another cluster, or one that cannot
/// be told to be the same.
pub fn is_wrong_cluster(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<EngineError>(),
        Some(EngineError::ClusterChanged { .. } | EngineError::IdentityUnknown { .. })
    )
}

/// An identity refusal in words: `wrong cluster: ...` when a context
/// reaches another cluster.
pub fn identity_refusal(e: &EngineError) -> String {
    match e {
        EngineError::ClusterChanged { .. } => format!("wrong cluster: {e}"),
        other => other.to_string(),
    }
}

/// `targets` connected, over `store`.
pub async fn environment(
    session: &Session,
    store: Arc<dyn Store>,
    targets: &[ClusterTarget],
) -> anyhow::Result<Arc<Environment>> {
    let clusters = session.connect(targets).await?;
    Ok(clusters.environment(store))
}

/// 0 when every step was undone, 1 otherwise.
pub fn exit_code(summary: &RunSummary) -> ExitCode {
    if completed(summary) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    }
}
