//! Is each context still the cluster a run changed? Apply records every
//! cluster's identity (`cluster::ClusterIdentity`) with the run; resume,
//! rollback and a new apply over a run that holds changes compare it with
//! the live one before their first change (pending restores included), and
//! refuse a context that now reaches another cluster: snapshots written
//! into the wrong cluster cannot be taken back.

use super::context::Environment;
use super::run::{EngineError, StoredPlan, undo_candidates};
use crate::cluster::{Backoff, ClusterIdentity, retry};
use crate::plan::Phase;
use crate::state::{RunId, RunInfo, Store};
use std::collections::BTreeMap;

/// The step name warnings about identities are shown under.
const SUBJECT: &str = "cluster identity";

/// Every connected cluster's identity, read now. A cluster whose
/// `kube-system` cannot be read keeps an unknown uid (its CA part is
/// local); `warn` says so on the observer.
pub(crate) async fn live(env: &Environment, warn: bool) -> BTreeMap<String, ClusterIdentity> {
    let mut out = BTreeMap::new();
    for (name, cluster) in &env.clusters {
        let read = retry(Backoff::default(), || cluster.identity(), |_, _| {}).await;
        let identity = match read {
            Ok((identity, _)) => identity,
            Err(e) => {
                if warn {
                    env.observer.warning(
                        SUBJECT,
                        &crate::state::redact_text(&format!(
                            "cannot read the kube-system namespace of {name} (context {}) to check it is the cluster the run changed; only its CA is compared: {e}",
                            cluster.context
                        )),
                    );
                }
                ClusterIdentity {
                    namespace_uid: None,
                    ca_fingerprint: cluster.ca_fingerprint().map(str::to_string),
                }
            }
        };
        out.insert(name.clone(), identity);
    }
    out
}

/// Compares the identities each of `runs` recorded with `live`, for every
/// cluster both know. The first cluster that is provably another is an
/// error naming it, its context and both identities. Runs that recorded no
/// identity (older `migrate`) are named once in a warning.
pub(crate) fn check(
    env: &Environment,
    runs: &[(RunId, &StoredPlan)],
    live: &BTreeMap<String, ClusterIdentity>,
) -> Result<(), EngineError> {
    let mut unchecked: Vec<String> = Vec::new();
    for (run, stored) in runs {
        for c in &stored.header.clusters {
            let Some(now) = live.get(&c.name) else {
                continue;
            };
            let recorded = stored.identities.get(&c.name).cloned().unwrap_or_default();
            if recorded.is_unknown() {
                if !unchecked.contains(&c.name) {
                    unchecked.push(c.name.clone());
                }
                continue;
            }
            if recorded.differs_from(now) {
                let context = env
                    .clusters
                    .get(&c.name)
                    .map_or_else(|| c.context.clone(), |cl| cl.context.clone());
                return Err(EngineError::ClusterChanged {
                    cluster: c.name.clone(),
                    context,
                    run: *run,
                    recorded: Box::new(recorded),
                    live: Box::new(now.clone()),
                });
            }
        }
    }
    if !unchecked.is_empty() {
        env.observer.warning(
            SUBJECT,
            &format!(
                "the run did not record which cluster {} reached (an older migrate started it): cannot check that the contexts still reach the clusters it changed",
                unchecked.join(", ")
            ),
        );
    }
    Ok(())
}

/// Reads the live identities and checks them against those `runs`
/// recorded; the live ones are returned for recording.
pub(crate) async fn verify(
    env: &Environment,
    runs: &[RunId],
) -> Result<BTreeMap<String, ClusterIdentity>, EngineError> {
    let live = live(env, !runs.is_empty()).await;
    let mut stored = Vec::new();
    for run in runs {
        stored.push((*run, StoredPlan::load(env.store.as_ref(), *run)?));
    }
    let refs: Vec<(RunId, &StoredPlan)> = stored.iter().map(|(r, s)| (*r, s)).collect();
    check(env, &refs, &live)?;
    Ok(live)
}

/// The runs a rollback to `to` may change something for: the latest, every
/// run with steps after `to` still holding changes, and every run with a
/// restore still pending.
pub(crate) fn rollback_runs(
    store: &dyn Store,
    runs: &[RunInfo],
    latest: RunId,
    to: Phase,
) -> Result<Vec<RunId>, EngineError> {
    let mut out = Vec::new();
    for info in runs {
        let stored = StoredPlan::load(store, info.id)?;
        let states = store.step_states(info.id)?;
        let holds = undo_candidates(&stored.steps, &states, to).next().is_some();
        if info.id == latest || holds || !super::restores::pending(store, info.id)?.is_empty() {
            out.push(info.id);
        }
    }
    Ok(out)
}

/// The identities to record for a run: those it recorded, completed from
/// `live` (clusters new to the run, parts unknown until now).
pub(crate) fn to_record(
    recorded: &BTreeMap<String, ClusterIdentity>,
    live: &BTreeMap<String, ClusterIdentity>,
) -> BTreeMap<String, ClusterIdentity> {
    let mut out = live.clone();
    for (name, id) in recorded {
        let merged = match live.get(name) {
            Some(now) => id.clone().or(now),
            None => id.clone(),
        };
        out.insert(name.clone(), merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NullObserver;
    use crate::plan::{ClusterInfo, Plan, PlanHeader};
    use crate::state::MemoryStore;
    use std::sync::Arc;

    fn id(uid: &str, ca: &str) -> ClusterIdentity {
        ClusterIdentity {
            namespace_uid: Some(uid.into()),
            ca_fingerprint: Some(ca.into()),
        }
    }

    fn stored(identities: &[(&str, ClusterIdentity)]) -> StoredPlan {
        let header = PlanHeader {
            name: "p".into(),
            topology: "multi-primary".into(),
            clusters: ["c1", "c2"]
                .iter()
                .map(|n| ClusterInfo {
                    name: (*n).into(),
                    context: format!("ctx-{n}"),
                    network: None,
                    role: "primary".into(),
                    source: *n == "c1",
                })
                .collect(),
        };
        let plan = Plan::new(header, Vec::new()).unwrap();
        StoredPlan::new(&plan, BTreeMap::new()).with_identities(
            identities
                .iter()
                .map(|(n, i)| (n.to_string(), i.clone()))
                .collect(),
        )
    }

    fn env() -> Environment {
        Environment {
            clusters: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            store: Arc::new(MemoryStore::new()),
            observer: Arc::new(NullObserver),
        }
    }

    #[test]
    fn another_cluster_behind_a_context_is_refused_naming_both() {
        let run = stored(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let live: BTreeMap<_, _> = [
            ("c1".to_string(), id("u1", "sha256:a")),
            ("c2".to_string(), id("u3", "sha256:c")),
        ]
        .into();
        let err = check(&env(), &[(RunId(1), &run)], &live).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, EngineError::ClusterChanged { ref cluster, .. } if cluster == "c2"),
            "{text}"
        );
        assert!(text.contains("ctx-c2"), "{text}");
        assert!(text.contains("uid u2") && text.contains("uid u3"), "{text}");
        assert!(
            text.contains("sha256:b") && text.contains("sha256:c"),
            "{text}"
        );
    }

    #[test]
    fn the_same_clusters_and_unrecorded_ones_pass() {
        let run = stored(&[("c1", id("u1", "sha256:a"))]);
        let live: BTreeMap<_, _> = [
            ("c1".to_string(), id("u1", "sha256:a")),
            ("c2".to_string(), id("u9", "sha256:z")),
        ]
        .into();
        check(&env(), &[(RunId(1), &run)], &live).unwrap();
    }

    #[test]
    fn recording_keeps_what_was_recorded_and_fills_the_rest() {
        let recorded: BTreeMap<_, _> = [(
            "c1".to_string(),
            ClusterIdentity {
                namespace_uid: None,
                ca_fingerprint: Some("sha256:a".into()),
            },
        )]
        .into();
        let live: BTreeMap<_, _> = [
            ("c1".to_string(), id("u1", "sha256:a")),
            ("c2".to_string(), id("u2", "sha256:b")),
        ]
        .into();
        let out = to_record(&recorded, &live);
        assert_eq!(out["c1"], id("u1", "sha256:a"));
        assert_eq!(out["c2"], id("u2", "sha256:b"));
    }
}
