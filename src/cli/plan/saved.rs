//! `migrate plan --out FILE`: fingerprint what the plan reads or changes
//! and write the saved plan (`migrate apply --plan FILE` applies it: see
//! `cli::apply`).

use crate::cli::session::{Session, spec_targets};
use crate::cli::view::saved_plan as view;
use crate::engine::saved_plan;
use crate::plan::Plan;
use crate::spec::Loaded;
use anyhow::Context;
use std::path::Path;

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
