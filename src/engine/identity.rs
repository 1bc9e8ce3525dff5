//! Is each context still the cluster a run changed? Apply records every
//! cluster's identity (`cluster::ClusterIdentity`) with the run; resume,
//! rollback and a new apply over a run that holds changes compare it with
//! the live one before their first change (pending restores included), and
//! refuse a context that now reaches another cluster: snapshots written
//! into the wrong cluster cannot be taken back.

use super::context::Environment;
use crate::cluster::{Backoff, ClusterIdentity, retry};
use crate::plan::ClusterInfo;
use crate::state::RunId;
use std::collections::BTreeMap;

/// What one run recorded: its clusters and which cluster each context reached.
pub(crate) struct Recorded<'a> {
    /// The run.
    pub run: RunId,
    /// Its plan's clusters.
    pub clusters: &'a [ClusterInfo],
    /// Their identities when it started (empty: an older migrate started it).
    pub identities: &'a BTreeMap<String, ClusterIdentity>,
}

/// A context that now reaches another cluster than the run changed.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// The cluster, as the plan names it.
    pub cluster: String,
    /// The context that reaches it now.
    pub context: String,
    /// The run that recorded the identity.
    pub run: RunId,
    /// What the run recorded.
    pub recorded: ClusterIdentity,
    /// What the context reaches now.
    pub live: ClusterIdentity,
}

/// The step name warnings about identities are shown under.
const SUBJECT: &str = "cluster identity";

/// Every connected cluster's identity, read now, all clusters at once. A
/// cluster whose `kube-system` cannot be read keeps an unknown uid (its CA
/// part is local). When `checking`, transient errors are retried as any
/// API call is and an unreadable uid is a warning; otherwise (a new run
/// only records) a few attempts are made, and preflight reports a cluster
/// that cannot be reached.
pub(crate) async fn live(env: &Environment, checking: bool) -> BTreeMap<String, ClusterIdentity> {
    let backoff = if checking {
        Backoff::default()
    } else {
        Backoff {
            max_attempts: 3,
            ..Backoff::default()
        }
    };
    let mut reads = tokio::task::JoinSet::new();
    for (name, cluster) in &env.clusters {
        let (name, cluster) = (name.clone(), cluster.clone());
        reads.spawn(async move {
            let read = retry(backoff, || cluster.identity(), |_, _| {}).await;
            (name, cluster, read)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let Ok((name, cluster, read)) = joined else {
            continue;
        };
        let identity = match read {
            Ok((identity, _)) => identity,
            Err(e) => {
                if checking {
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
        out.insert(name, identity);
    }
    out
}

/// Compares the identities each of `runs` recorded with `live`, for every
/// cluster both know. The first cluster that is provably another is an
/// error naming it, its context and both identities. Runs that recorded no
/// identity (older `migrate`) are named once in a warning.
pub(crate) fn check(
    env: &Environment,
    runs: &[Recorded<'_>],
    live: &BTreeMap<String, ClusterIdentity>,
) -> Result<(), Box<Mismatch>> {
    let mut unchecked: Vec<String> = Vec::new();
    for r in runs {
        for c in r.clusters {
            let Some(now) = live.get(&c.name) else {
                continue;
            };
            let recorded = r.identities.get(&c.name).cloned().unwrap_or_default();
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
                return Err(Box::new(Mismatch {
                    cluster: c.name.clone(),
                    context,
                    run: r.run,
                    recorded,
                    live: now.clone(),
                }));
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
    use crate::state::MemoryStore;
    use std::sync::Arc;

    fn id(uid: &str, ca: &str) -> ClusterIdentity {
        ClusterIdentity {
            namespace_uid: Some(uid.into()),
            ca_fingerprint: Some(ca.into()),
        }
    }

    fn clusters() -> Vec<ClusterInfo> {
        ["c1", "c2"]
            .iter()
            .map(|n| ClusterInfo {
                name: (*n).into(),
                context: format!("ctx-{n}"),
                network: None,
                role: "primary".into(),
                source: *n == "c1",
            })
            .collect()
    }

    fn identities(list: &[(&str, ClusterIdentity)]) -> BTreeMap<String, ClusterIdentity> {
        list.iter()
            .map(|(n, i)| (n.to_string(), i.clone()))
            .collect()
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
    fn another_cluster_behind_a_context_is_refused_naming_it() {
        let clusters = clusters();
        let recorded = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u3", "sha256:c"))]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        let err = check(&env(), &runs, &live).unwrap_err();
        assert_eq!(err.cluster, "c2");
        assert_eq!(err.context, "ctx-c2");
        assert_eq!(err.recorded, id("u2", "sha256:b"));
        assert_eq!(err.live, id("u3", "sha256:c"));
    }

    #[test]
    fn the_same_clusters_and_unrecorded_ones_pass() {
        let clusters = clusters();
        let recorded = identities(&[("c1", id("u1", "sha256:a"))]);
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u9", "sha256:z"))]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        check(&env(), &runs, &live).unwrap();
    }

    /// Remembers the warnings it is given.
    #[derive(Default)]
    struct Warnings(std::sync::Mutex<Vec<String>>);

    impl crate::engine::Observer for Warnings {
        fn warning(&self, _step: &str, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn runs_that_recorded_no_identity_are_named_once() {
        let clusters = clusters();
        let none = BTreeMap::new();
        let warnings = Arc::new(Warnings::default());
        let env = Environment {
            observer: warnings.clone(),
            ..env()
        };
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let runs = [1, 2].map(|n| Recorded {
            run: RunId(n),
            clusters: &clusters,
            identities: &none,
        });
        check(&env, &runs, &live).unwrap();
        let said = warnings.0.lock().unwrap().clone();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("c1, c2") && said[0].contains("cannot check"),
            "{said:?}"
        );
    }

    #[test]
    fn recording_keeps_what_was_recorded_and_fills_the_rest() {
        let recorded = identities(&[(
            "c1",
            ClusterIdentity {
                namespace_uid: None,
                ca_fingerprint: Some("sha256:a".into()),
            },
        )]);
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let out = to_record(&recorded, &live);
        assert_eq!(out["c1"], id("u1", "sha256:a"));
        assert_eq!(out["c2"], id("u2", "sha256:b"));
    }
}
