//! `migrate apply`: run the plan, checkpointing every step.

use super::results::Applied;
use super::session::{self, Session};
use super::view::apply as view;
use super::{ApplyArgs, GlobalArgs};
use crate::cluster::ClusterTarget;
use crate::engine::{self, ApplyMode, EngineError, EngineOptions, StoredPlan};
use crate::plan::Plan;
use crate::state::{MemoryStore, Store};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// How to apply, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Start a run, or resume the current one.
    pub mode: ApplyMode,
    /// Server-side dry run: change nothing, record nothing.
    pub dry_run: bool,
    /// Steps running at once (at least 1).
    pub parallelism: usize,
}

/// Runs `migrate apply`.
pub fn run(global: &GlobalArgs, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let session = Session::new(global, Some(&args.state.state_dir), Some(&args.spec.file));
    let (loaded, plan) = match session::load_plan(&args.spec.file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let request = Request {
        mode: if args.resume {
            ApplyMode::Resume {
                replan: args.replan,
            }
        } else {
            ApplyMode::Start
        },
        dry_run: args.dry_run,
        parallelism: args.parallelism,
    };
    let targets = session::spec_targets(&loaded);
    let runtime = tokio::runtime::Runtime::new()?;
    let applied = runtime.block_on(apply(
        &session,
        &targets,
        &plan,
        &args.state.state_dir,
        request,
    ))?;
    view::show(&applied, &session.hints);
    if let (Applied::Ran { dry_run: false, .. }, Some((_, key))) =
        (&applied, engine::generated_root_key(&plan.steps))
        && key.exists()
    {
        view::root_key_only_here(&key);
    }
    Ok(applied.exit_code())
}

/// Applies `plan` to `targets`, checkpointing in `state_dir` (in memory for
/// a dry run); progress is shown as it goes, the outcome returned.
pub async fn apply(
    session: &Session,
    targets: &[ClusterTarget],
    plan: &Plan,
    state_dir: &Path,
    request: Request,
) -> anyhow::Result<Applied> {
    // A dry run records nothing: an in-memory store stands in.
    let store: Arc<dyn Store> = if request.dry_run {
        Arc::new(MemoryStore::new())
    } else {
        Arc::new(session::open_store(state_dir)?)
    };
    // A resumed run is reached as it was, unless told otherwise (typed flag,
    // the spec's per-cluster kubeconfig).
    let resumed = match (request.mode, store.latest_run()?) {
        (ApplyMode::Resume { .. }, Some(run)) => Some(StoredPlan::load(store.as_ref(), run.id)?),
        _ => None,
    };
    let targets = match &resumed {
        Some(stored) => {
            let targets = session::resume_targets(
                targets,
                stored,
                session.given_kubeconfig.as_deref(),
                session.kubeconfig.as_deref(),
            );
            super::view::rollback::reached_by(&targets, session);
            targets
        }
        None => targets.to_vec(),
    };
    let clusters = session.connect(&targets).await?;
    let opts = EngineOptions {
        parallelism: request.parallelism.max(1),
        dry_run: request.dry_run,
        ..Default::default()
    };
    let stop = session::stop_on_signals(store.clone());
    match engine::apply(plan, clusters.environment(store), opts, request.mode, &stop).await {
        Ok(summary) => Ok(Applied::Ran {
            summary,
            dry_run: request.dry_run,
        }),
        Err(
            e @ (EngineError::UnfinishedRun { .. }
            | EngineError::EarlierRunHolds { .. }
            | EngineError::SpecChanged { .. }
            | EngineError::NoRun(_)
            | EngineError::ClusterChanged { .. }),
        ) => Ok(Applied::Refused(e)),
        Err(e) => Err(e.into()),
    }
}
