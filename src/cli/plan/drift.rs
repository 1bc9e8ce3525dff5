//! `migrate plan` beside a state directory holding a run: the drift of the
//! objects that run changed (what a rollback would refuse).

use crate::cli::rollback;
use crate::cli::session::{self, Session};
use crate::engine::{self, DriftReport, StoredPlan};
use crate::plan::Phase;
use crate::state::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The drift of every object the runs of `dir` still hold (as `rollback
/// --to phase0` would check it): `None` when `dir` holds no run; `Err` with
/// the reason when it could not be checked.
pub fn report(session: &Session, dir: &Path) -> Option<anyhow::Result<DriftReport>> {
    if !crate::state::is_state_dir(dir) {
        return None;
    }
    let check = || -> anyhow::Result<Option<DriftReport>> {
        let store = session::open_store(dir)?;
        let Some(run) = store.latest_run()? else {
            return Ok(None);
        };
        let stored = StoredPlan::load(&store, run.id)?;
        let store: Arc<dyn Store> = Arc::new(store);
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let targets = rollback::targets(session, store.as_ref(), &stored, &BTreeMap::new())?;
            let env = rollback::environment(session, store, &targets).await?;
            // Another cluster's objects would make a false drift report.
            let opts = rollback::identity_options(false);
            engine::check_identities(&env, &opts, Phase::Preflight)
                .await
                .map_err(|e| anyhow::anyhow!(rollback::identity_refusal(&e)))?;
            Ok(Some(engine::drift_report(&env, Phase::Preflight).await?))
        })
    };
    check().transpose()
}
