//! `migrate apply`: run the plan, checkpointing every step.

use super::session::{self, CliObserver};
use super::{ApplyArgs, GlobalArgs, exit};
use crate::cluster::ClusterTarget;
use crate::engine::{self, ApplyMode, EngineError, EngineOptions};
use crate::state::{MemoryStore, Outcome, Store};
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(global: &GlobalArgs, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let (loaded, plan) = match session::load_plan(&args.spec.file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let targets: Vec<ClusterTarget> = loaded
            .spec
            .spec
            .clusters
            .iter()
            .map(|c| ClusterTarget {
                name: c.name.clone(),
                context: c.context.clone(),
                kubeconfig: c.kubeconfig.clone(),
            })
            .collect();
        let default = session::default_kubeconfig(global);
        let (clusters, kubeconfigs) = session::connect_all(&targets, default.as_deref()).await?;
        // A dry run records nothing: an in-memory store stands in.
        let store: Arc<dyn Store> = if args.dry_run {
            Arc::new(MemoryStore::new())
        } else {
            Arc::new(session::open_store(&args.state.state_dir)?)
        };
        let observer = CliObserver::new();
        let env = session::environment(clusters, kubeconfigs, store, observer.clone());
        let opts = EngineOptions {
            parallelism: args.parallelism.max(1),
            dry_run: args.dry_run,
            ..Default::default()
        };
        let mode = if args.resume {
            ApplyMode::Resume { replan: args.replan }
        } else {
            ApplyMode::Start
        };
        let stop = session::stop_on_ctrl_c();
        let summary = match engine::apply(&plan, env, opts, mode, &stop).await {
            Ok(s) => s,
            Err(e @ (EngineError::UnfinishedRun { .. } | EngineError::SpecChanged { .. } | EngineError::NoRun(_))) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(exit::INVALID_INPUT));
            }
            Err(e) => return Err(e.into()),
        };
        let spec = args.spec.file.display();
        let state = if args.state.state_dir.as_os_str() == ".migrate" {
            String::new()
        } else {
            format!(" --state-dir {}", args.state.state_dir.display())
        };
        if summary.already_done {
            println!("run {} already applied this plan: nothing to do", summary.run);
            return Ok(ExitCode::SUCCESS);
        }
        let prefix = if args.dry_run { "dry run: " } else { "" };
        match summary.outcome {
            Outcome::Succeeded => {
                println!("{prefix}run {} succeeded: {} steps done", summary.run, summary.succeeded.len());
                Ok(ExitCode::SUCCESS)
            }
            _ => {
                for (step, error) in &summary.failed {
                    eprintln!("FAILED {step}: {error}");
                }
                if summary.stopped {
                    eprintln!("{prefix}run {} interrupted; {} steps not started", summary.run, summary.not_started.len());
                } else {
                    eprintln!("{prefix}run {} failed; {} steps not started", summary.run, summary.not_started.len());
                }
                if !args.dry_run {
                    eprintln!("resume with:   migrate apply -f {spec}{state} --resume");
                    eprintln!("or undo with:  migrate rollback{state} --to phase0   (or --to the last good phase)");
                }
                Ok(ExitCode::from(exit::FAILED))
            }
        }
    })
}
