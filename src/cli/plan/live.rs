//! The live part of `migrate plan`: reach the spec's clusters, read the
//! mesh each runs, and dry-run every applied object against the reachable
//! ones.

use crate::cli::results::{Inventories, LiveDiff};
use crate::cli::session::{Session, spec_targets};
use crate::cluster::connect;
use crate::engine::live_diff;
use crate::plan::gateway_hostnames::{self, SeenAddresses};
use crate::plan::{ObjectRef, Phase, Plan};
use crate::spec::Loaded;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a cluster may take to answer before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long reading one cluster's mesh inventory may take.
const INVENTORY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the live read found: the diff, each cluster's mesh inventory, and
/// the load balancers of the clusters that hold an east-west gateway.
pub type Found = (LiveDiff, Inventories, BTreeMap<String, SeenAddresses>);

/// The live diff against every reachable cluster of the spec, the mesh
/// inventory of each, and the load-balancer addresses the plan's east-west
/// gateways have or will likely get.
pub fn diff(session: &Session, loaded: &Loaded, plan: &Plan, phase: Option<Phase>) -> Found {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return (LiveDiff::NoRuntime(e), Inventories::new(), BTreeMap::new()),
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
        let mut seen = BTreeMap::new();
        let gateway_clusters: std::collections::BTreeSet<String> =
            gateway_hostnames::gateway_uses(plan)
                .into_iter()
                .map(|u| u.cluster)
                .collect();
        for name in gateway_clusters {
            if let Some(cluster) = reachable.get(&name)
                && let Ok(Some(found)) =
                    tokio::time::timeout(INVENTORY_TIMEOUT, load_balancers(cluster)).await
            {
                seen.insert(name, found);
            }
        }
        let diff = if reachable.is_empty() {
            None
        } else {
            Some(live_diff(plan, phase, &reachable).await)
        };
        (LiveDiff::Tried { unreachable, diff }, inventory, seen)
    })
}

/// Every LoadBalancer Service of the cluster with its addresses; `None`
/// when they cannot be listed (then nothing is said of that cluster).
async fn load_balancers(cluster: &crate::cluster::Cluster) -> Option<SeenAddresses> {
    let services = cluster.list("v1", "Service", None, None).await.ok()?;
    let mut seen = SeenAddresses::default();
    for s in services {
        if s.pointer("/spec/type").and_then(|t| t.as_str()) != Some("LoadBalancer") {
            continue;
        }
        let ingress = gateway_hostnames::ingress_of(&s);
        let (Some(ns), Some(name)) = (
            s.pointer("/metadata/namespace").and_then(|n| n.as_str()),
            s.pointer("/metadata/name").and_then(|n| n.as_str()),
        ) else {
            continue;
        };
        seen.load_balancers
            .insert(ObjectRef::service(ns, name), ingress);
    }
    Some(seen)
}
