//! The live part of `migrate plan`: reach the spec's clusters, read the
//! mesh each runs, and dry-run every applied object against the reachable
//! ones.

use crate::cli::results::{Inventories, LiveDiff};
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

/// How long reading one cluster's mesh inventory may take.
const INVENTORY_TIMEOUT: Duration = Duration::from_secs(20);

/// The live diff against every reachable cluster of the spec, and the mesh
/// inventory of each.
pub fn diff(
    session: &Session,
    loaded: &Loaded,
    plan: &Plan,
    phase: Option<Phase>,
) -> (LiveDiff, Inventories) {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return (LiveDiff::NoRuntime(e), Inventories::new()),
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
        let mut inventory = Inventories::new();
        for (name, cluster) in &reachable {
            let found = tokio::time::timeout(
                INVENTORY_TIMEOUT,
                crate::cluster::inventory::read(
                    cluster,
                    crate::phases::ISTIO_SYSTEM,
                    crate::cluster::Backoff::default(),
                    &|_, _| {},
                ),
            )
            .await;
            let found = match found {
                Ok(read) => read.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {}s", INVENTORY_TIMEOUT.as_secs())),
            };
            inventory.insert(name.clone(), found);
        }
        let diff = if reachable.is_empty() {
            None
        } else {
            Some(live_diff(plan, phase, &reachable).await)
        };
        (LiveDiff::Tried { unreachable, diff }, inventory)
    })
}
