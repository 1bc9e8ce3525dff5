//! Saved plans at the command line: `migrate plan --out FILE` fingerprints
//! what the plan reads or changes and writes the file; `migrate apply --plan
//! FILE` checks those objects again and applies exactly that plan, or
//! refuses, naming each object and field that moved.

use crate::cli::apply::{self, Request};
use crate::cli::exit;
use crate::cli::results::Applied;
use crate::cli::session::{Session, spec_targets};
use crate::cli::view::saved_plan as view;
use crate::cli::{GlobalArgs, view::invalid};
use crate::cluster::ClusterTarget;
use crate::engine::saved_plan;
use crate::plan::Plan;
use crate::spec::Loaded;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

/// Fingerprints the live objects `plan` reads or changes (every cluster of
/// the spec must answer) and writes the saved plan to `out`.
pub fn save(session: &Session, loaded: &Loaded, plan: &Plan, out: &Path) -> anyhow::Result<()> {
    let spec_file = std::path::absolute(&loaded.file)
        .with_context(|| format!("cannot resolve {}", loaded.file.display()))?;
    let targets = spec_targets(loaded);
    let runtime = tokio::runtime::Runtime::new()?;
    let saved = runtime.block_on(async {
        let connected = session.connect(&targets).await?;
        let saved = saved_plan::save(plan, &spec_file, &targets, connected.clusters())
            .await
            .context("cannot fingerprint what the plan reads (every cluster must answer)")?;
        anyhow::Ok(saved)
    })?;
    saved_plan::write(&saved, out)?;
    view::saved(out, &saved);
    Ok(())
}

/// `migrate apply --plan FILE`: refuses a file that is not an unedited saved
/// plan, and a plan whose objects moved since it was saved; else runs it as
/// `apply -f` would run the spec's plan.
pub fn apply(
    global: &GlobalArgs,
    state_dir: &Path,
    file: &Path,
    request: Request,
) -> anyhow::Result<ExitCode> {
    let saved = match saved_plan::load(file) {
        Ok(saved) => saved,
        Err(e) => {
            invalid(&e.to_string());
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let session = Session::new(global, Some(state_dir), Some(&saved.spec_file));
    let targets: Vec<ClusterTarget> = saved.targets.iter().map(ClusterTarget::from).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let applied: Option<Applied> = runtime.block_on(async {
        let connected = session.connect(&targets).await?;
        let moved = saved_plan::moved_since(&saved, connected.clusters())
            .await
            .context("cannot check what the saved plan read")?;
        if !moved.is_empty() {
            view::moved(file, &saved, &moved);
            return anyhow::Ok(None);
        }
        view::unchanged(file, &saved);
        let applied = apply::apply(&session, &targets, (&saved.plan, None), state_dir, request);
        Ok(Some(applied.await?))
    })?;
    match applied {
        None => Ok(ExitCode::from(exit::INVALID_INPUT)),
        Some(applied) => Ok(apply::finish(&session, &saved.plan, &applied)),
    }
}
