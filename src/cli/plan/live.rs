//! The live part of `migrate plan`: reach the spec's clusters and dry-run
//! every applied object against the reachable ones.

use crate::cli::results::LiveDiff;
use crate::cli::session::{Session, spec_targets};
use crate::cluster::connect;
use crate::engine::live_diff;
use crate::plan::{Phase, Plan};
use crate::spec::Loaded;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a cluster may take to answer before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The live diff against every reachable cluster of the spec.
pub fn diff(session: &Session, loaded: &Loaded, plan: &Plan, phase: Option<Phase>) -> LiveDiff {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return LiveDiff::NoRuntime(e),
    };
    runtime.block_on(async {
        let mut reachable = BTreeMap::new();
        let mut unreachable = Vec::new();
        for target in spec_targets(loaded) {
            let cluster = match connect(&target, session.kubeconfig.as_deref()).await {
                Ok(cluster) => cluster,
                Err(e) => {
                    unreachable.push(format!("{}: {e}", target.name));
                    continue;
                }
            };
            match tokio::time::timeout(REACH_TIMEOUT, cluster.server_version()).await {
                Ok(Ok(_)) => {
                    reachable.insert(target.name.clone(), Arc::new(cluster));
                }
                Ok(Err(e)) => unreachable.push(format!("{}: {e}", target.name)),
                Err(_) => unreachable.push(format!(
                    "{}: no answer within {}s",
                    target.name,
                    REACH_TIMEOUT.as_secs()
                )),
            }
        }
        let diff = if reachable.is_empty() {
            None
        } else {
            Some(live_diff(plan, phase, &reachable).await)
        };
        LiveDiff::Tried { unreachable, diff }
    })
}
