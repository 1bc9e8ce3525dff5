//! `migrate rollback --to PHASE`: undo the later phases, newest first.

use super::session::{self, CliObserver};
use super::{GlobalArgs, RollbackArgs, exit};
use crate::cluster::ClusterTarget;
use crate::engine::{self, EngineOptions, StoredPlan};
use crate::plan::{Phase, Plan};
use crate::state::{Outcome, Store};
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(global: &GlobalArgs, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let to: Phase = match args.to.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --to: {e}");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let store = session::open_store(&args.state.state_dir)?;
    let Some(run) = store.latest_run()? else {
        eprintln!(
            "error: no run in {}: nothing to roll back",
            args.state.state_dir.display()
        );
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    };
    let stored = StoredPlan::load(&store, run.id)?;
    if args.dry_run {
        let plan = Plan::new(stored.header.clone(), stored.steps.clone())?;
        let states = store.step_states(run.id)?;
        let steps = engine::rollback_steps(&plan, &states, to);
        if steps.is_empty() {
            println!("nothing to undo after {to} in run {}", run.id);
        }
        for step in steps {
            println!(
                "undo {} ({})",
                step.id,
                states
                    .get(&step.id)
                    .map(|s| s.status.to_string())
                    .unwrap_or_default()
            );
            for action in &step.rollback {
                println!("    {action}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let targets: Vec<ClusterTarget> = stored
            .header
            .clusters
            .iter()
            .map(|c| ClusterTarget {
                name: c.name.clone(),
                context: c.context.clone(),
                kubeconfig: stored.kubeconfigs.get(&c.name).cloned(),
            })
            .collect();
        let default = session::default_kubeconfig(global);
        let (clusters, kubeconfigs) = session::connect_all(&targets, default.as_deref()).await?;
        let observer = CliObserver::new();
        let store: Arc<dyn Store> = Arc::new(store);
        let env = session::environment(clusters, kubeconfigs, store, observer);
        let opts = EngineOptions {
            parallelism: args.parallelism.max(1),
            ..Default::default()
        };
        let stop = session::stop_on_ctrl_c();
        let summary = engine::rollback(env, opts, to, &stop).await?;
        let state = if args.state.state_dir.as_os_str() == ".migrate" {
            String::new()
        } else {
            format!(" --state-dir {}", args.state.state_dir.display())
        };
        if summary.failed.is_empty() && !summary.stopped {
            println!(
                "rolled back to {to}: {} steps undone",
                summary.succeeded.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        for (step, error) in &summary.failed {
            eprintln!("FAILED {step}: {error}");
        }
        let verdict = if summary.outcome == Outcome::Interrupted {
            "interrupted"
        } else {
            "failed"
        };
        eprintln!(
            "rollback {verdict}; run it again to continue: migrate rollback{state} --to {}",
            args.to
        );
        Ok(ExitCode::from(exit::FAILED))
    })
}
