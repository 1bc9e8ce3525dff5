//! `migrate unlock --force ID`: frees what a process gone for good held under holder id ID: the state store's
//! lock (a directory's lock record, or a Kubernetes store's Lease) and the mesh's Lease on every cluster of
//! the run (the spec's clusters with `-f`, else those the store's latest run recorded).
//!
//! Nothing another holder holds is touched: every lock is compared with ID first, and a Lease is cleared only
//! if unchanged since it was read (resourceVersion), so one renewed meanwhile (its holder is alive) or taken
//! over stays as it is.

use super::session::{self, Session, StateLocation};
use super::view::unlock as view;
use super::view::unlock::{ClusterOutcome, StoreOutcome, Unlocked};
use super::{GlobalArgs, UnlockArgs, exit};
use crate::cluster::{ClusterTarget, connect};
use crate::engine::StoredPlan;
use crate::engine::mesh_lease::{self, ForcedRelease};
use crate::state::{KubeStore, SledStore, StateError, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How long one cluster may take to answer before it is reported unreachable.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(20);

/// Runs `migrate unlock`.
pub fn run(global: &GlobalArgs, args: &UnlockArgs) -> anyhow::Result<ExitCode> {
    let id = args.force.trim();
    if id.is_empty() {
        super::view::invalid("--force: give the holder id the lock's error names");
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let session = Session::new(global, Some(&args.state.state_dir), args.file.as_deref());
    let loaded = match &args.file {
        Some(file) => match session::load_spec(file) {
            Ok(loaded) => Some(loaded),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let location = StateLocation::of(&args.state, loaded.as_ref())?;
    let store = store_lock(&location, session.kubeconfig.as_deref(), id);
    let targets = match &loaded {
        Some(loaded) => Ok(session::spec_targets(loaded)),
        None => recorded_targets(&session, &location),
    };
    let (clusters, no_clusters) = match targets {
        Ok(targets) => (mesh_leases(&session, &targets, id)?, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let unlocked = Unlocked {
        id: id.to_string(),
        location: location.to_string(),
        store,
        clusters,
        no_clusters,
    };
    view::show(&unlocked);
    Ok(ExitCode::from(exit_code(&unlocked)))
}

/// 0: something held by ID was freed and every place was read; `PARTIAL`: some place could not be read (what
/// could be freed was); 1: every place was read and none was held by ID.
fn exit_code(u: &Unlocked) -> u8 {
    let unread = matches!(u.store, StoreOutcome::Failed(_))
        || u.no_clusters.is_some()
        || u.clusters
            .iter()
            .any(|(_, o)| matches!(o, ClusterOutcome::Unreachable(_)));
    let freed = matches!(u.store, StoreOutcome::Released(_))
        || u.clusters
            .iter()
            .any(|(_, o)| matches!(o, ClusterOutcome::Lease(ForcedRelease::Released(_))));
    if unread {
        exit::PARTIAL
    } else if freed {
        0
    } else {
        exit::FAILED
    }
}

/// The state store's own lock: cleared if held by `id`.
fn store_lock(location: &StateLocation, kubeconfig: Option<&Path>, id: &str) -> StoreOutcome {
    match location {
        StateLocation::Dir(dir) if !dir.exists() => StoreOutcome::NotHeld(None),
        StateLocation::Dir(dir) => match crate::state::force_unlock(dir, id) {
            Ok(holder) => StoreOutcome::Released(format!(
                "pid {} on {} (held since {})",
                holder.pid, holder.host, holder.since
            )),
            Err(StateError::NotLocked { .. }) => StoreOutcome::NotHeld(None),
            Err(StateError::HolderMismatch { found, .. }) => {
                StoreOutcome::NotHeld(Some(format!("holder id {found}")))
            }
            Err(StateError::Locked { holder, .. }) => {
                StoreOutcome::NotHeld(Some(holder.map_or_else(
                    || "a live process".to_string(),
                    |h| format!("live pid {} on {}, holder id {}", h.pid, h.host, h.id),
                )))
            }
            Err(e) => StoreOutcome::Failed(e.to_string()),
        },
        StateLocation::Kubernetes(k) => match crate::state::force_unlock_kube(k, kubeconfig, id) {
            Ok(crate::state::ForcedRelease::Released(h)) => StoreOutcome::Released(h.identity),
            Ok(crate::state::ForcedRelease::NotHeld) => StoreOutcome::NotHeld(None),
            Ok(crate::state::ForcedRelease::HeldByOther(h)) => {
                StoreOutcome::NotHeld(Some(format!("{} (holder id {})", h.identity, h.id())))
            }
            Ok(crate::state::ForcedRelease::Changed(h)) => StoreOutcome::Changed(h.identity),
            Err(e) => StoreOutcome::Failed(e.to_string()),
        },
    }
}

/// The clusters of the store's latest run (and of earlier runs still holding steps), as rollback reaches
/// them; none when the store holds no run.
fn recorded_targets(
    session: &Session,
    location: &StateLocation,
) -> anyhow::Result<Vec<ClusterTarget>> {
    let store: Box<dyn Store> = match location {
        StateLocation::Dir(dir) if !dir.exists() => return Ok(Vec::new()),
        StateLocation::Dir(dir) => Box::new(SledStore::open(dir)?.store),
        StateLocation::Kubernetes(k) => {
            Box::new(KubeStore::open_read_only(k, session.kubeconfig.as_deref())?.0)
        }
    };
    let Some(run) = store.latest_run()? else {
        return Ok(Vec::new());
    };
    let stored = StoredPlan::load(store.as_ref(), run.id)?;
    super::rollback::targets(session, store.as_ref(), &stored, &BTreeMap::new())
}

/// The mesh's Lease on every target, cleared where it names `id`; each cluster answers within
/// `CLUSTER_DEADLINE`, all at once.
fn mesh_leases(
    session: &Session,
    targets: &[ClusterTarget],
    id: &str,
) -> anyhow::Result<Vec<(String, ClusterOutcome)>> {
    let runtime = tokio::runtime::Runtime::new()?;
    Ok(runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, target) in targets.iter().enumerate() {
            let (target, id) = (target.clone(), id.to_string());
            let kubeconfig = session.kubeconfig.clone();
            set.spawn(async move {
                let outcome = tokio::time::timeout(CLUSTER_DEADLINE, async {
                    let cluster = connect(&target, kubeconfig.as_deref())
                        .await
                        .map_err(|e| e.to_string())?;
                    mesh_lease::force_release(cluster.client().clone(), &id)
                        .await
                        .map_err(|e| e.to_string())
                })
                .await;
                let outcome = match outcome {
                    Ok(Ok(lease)) => ClusterOutcome::Lease(lease),
                    Ok(Err(e)) => ClusterOutcome::Unreachable(e),
                    Err(_) => ClusterOutcome::Unreachable(format!(
                        "no answer within {}s",
                        CLUSTER_DEADLINE.as_secs()
                    )),
                };
                (i, target.name, outcome)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(one) => done.push(one),
                Err(e) => tracing::warn!("a cluster's unlock task ended early: {e}"),
            }
        }
        done.sort_by_key(|(i, _, _)| *i);
        done.into_iter().map(|(_, name, o)| (name, o)).collect()
    }))
}
