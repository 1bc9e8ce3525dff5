//! `migrate rollback --to PHASE`: undo the later phases, newest first.

use super::session::{self, Session};
use super::view::rollback as view;
use super::{GlobalArgs, RollbackArgs, exit};
use crate::engine::{self, EngineOptions, RunSummary, StoredPlan};
use crate::plan::{Phase, Plan, Step};
use crate::state::{RunId, SledStore, StepState, Store};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

/// What `--dry-run` would undo.
pub struct UndoList {
    /// The run the steps belong to.
    pub run: RunId,
    /// The phase to return to.
    pub to: Phase,
    /// The steps to undo, in the order they would be undone.
    pub steps: Vec<Step>,
    /// Where each step of the run stands.
    pub states: BTreeMap<String, StepState>,
}

/// Runs `migrate rollback`.
pub fn run(global: &GlobalArgs, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let to: Phase = match args.to.parse() {
        Ok(p) => p,
        Err(e) => {
            super::view::invalid(&format!("--to: {e}"));
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let dir = &args.state.state_dir;
    let session = Session::new(global, Some(dir), None);
    let store = session::open_store(dir)?;
    let Some(run) = store.latest_run()? else {
        super::view::invalid(&format!(
            "no run in {}: nothing to roll back",
            dir.display()
        ));
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    };
    let stored = StoredPlan::load(&store, run.id)?;
    if args.dry_run {
        let plan = Plan::new(stored.header.clone(), stored.steps.clone())?;
        let states = store.step_states(run.id)?;
        let steps = engine::rollback_steps(&plan, &states, to)
            .into_iter()
            .cloned()
            .collect();
        view::undo_list(&UndoList {
            run: run.id,
            to,
            steps,
            states,
        });
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let summary = runtime.block_on(rollback(&session, store, &stored, to, args.parallelism))?;
    view::show(&summary, to, &args.to, &session.hints);
    Ok(exit_code(&summary))
}

/// Undoes every phase of `stored`'s run after `to`, newest first, on the
/// clusters the run reached; progress is shown as it goes.
pub async fn rollback(
    session: &Session,
    store: SledStore,
    stored: &StoredPlan,
    to: Phase,
    parallelism: usize,
) -> anyhow::Result<RunSummary> {
    let clusters = session.connect(&session::run_targets(stored)).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let opts = EngineOptions {
        parallelism: parallelism.max(1),
        ..Default::default()
    };
    let stop = session::stop_on_signals(store.clone());
    Ok(engine::rollback(clusters.environment(store), opts, to, &stop).await?)
}

/// The rollback undid every step and was not interrupted.
pub fn completed(summary: &RunSummary) -> bool {
    summary.failed.is_empty() && !summary.stopped
}

/// 0 when every step was undone, 1 otherwise.
pub fn exit_code(summary: &RunSummary) -> ExitCode {
    if completed(summary) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    }
}
