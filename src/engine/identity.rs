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
    let mut names = std::collections::HashMap::new();
    for (name, cluster) in &env.clusters {
        let (task_name, cluster) = (name.clone(), cluster.clone());
        let handle = reads.spawn(async move {
            let read = retry(backoff, || cluster.identity(), |_, _| {}).await;
            (task_name, cluster, read)
        });
        names.insert(handle.id(), name.clone());
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = reads.join_next_with_id().await {
        let (name, cluster, read) = match joined {
            Ok((_, done)) => done,
            Err(e) => {
                // A read that panicked tells nothing: unknown, said aloud, so
                // that the check refuses it like any unreadable uid.
                let name = names.get(&e.id()).cloned().unwrap_or_default();
                env.observer.warning(
                    SUBJECT,
                    &format!(
                        "reading the identity of cluster {name} failed ({e}); it counts as unknown"
                    ),
                );
                let ca = env
                    .clusters
                    .get(&name)
                    .and_then(|c| c.ca_fingerprint().map(str::to_string));
                out.insert(
                    name,
                    ClusterIdentity {
                        namespace_uid: None,
                        ca_fingerprint: ca,
                    },
                );
                continue;
            }
        };
        let identity = match read {
            Ok((identity, _)) => identity,
            Err(e) => {
                if checking {
                    env.observer.warning(
                        SUBJECT,
                        &crate::state::redact_text(&format!(
                            "cannot read the kube-system namespace of {name} (context {}), so its uid is unknown: {e}",
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

/// Why a cluster's identity cannot be decided: its `kube-system` uid is
/// unknown on one side, and the CA alone cannot tell apart two clusters
/// behind one proxy (or one CA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecided {
    /// The cluster, as the plan names it.
    pub cluster: String,
    /// The run that recorded it.
    pub run: RunId,
    /// Why, in words: no identity recorded, or the uid unreadable then or now.
    pub cause: String,
}

/// Why `check` refuses.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A context now reaches another cluster.
    Mismatch(Box<Mismatch>),
    /// Some clusters cannot be told to be the same (and that was not accepted).
    Undecided(Vec<Undecided>),
}

/// Compares the identities each of `runs` recorded with `live`, for every
/// cluster both know. The `kube-system` uid decides when known on both
/// sides: equal is the same cluster (a changed CA fingerprint is a warning:
/// CA rotation, a proxy), different is a refusal naming the cluster, its
/// context and both identities. A uid unknown on either side is undecided:
/// refused, unless `accept_unknown` (`--accept-unknown-identity`), then a
/// warning naming the cause.
pub(crate) fn check(
    env: &Environment,
    runs: &[Recorded<'_>],
    live: &BTreeMap<String, ClusterIdentity>,
    accept_unknown: bool,
) -> Result<(), Refusal> {
    let mut undecided: Vec<Undecided> = Vec::new();
    for r in runs {
        for c in r.clusters {
            let Some(now) = live.get(&c.name) else {
                continue;
            };
            let recorded = r.identities.get(&c.name).cloned().unwrap_or_default();
            let context = || {
                env.clusters
                    .get(&c.name)
                    .map_or_else(|| c.context.clone(), |cl| cl.context.clone())
            };
            match (&recorded.namespace_uid, &now.namespace_uid) {
                (Some(then), Some(uid)) if then == uid => {
                    if let (Some(a), Some(b)) = (&recorded.ca_fingerprint, &now.ca_fingerprint)
                        && a != b
                    {
                        env.observer.warning(
                            SUBJECT,
                            &format!(
                                "cluster {} (context {}) is the cluster run {} changed (same kube-system uid), but the CA its kubeconfig trusts changed ({} then, {} now): a CA rotation, or a proxy in between",
                                c.name,
                                context(),
                                r.run,
                                recorded.short(),
                                now.short()
                            ),
                        );
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(Refusal::Mismatch(Box::new(Mismatch {
                        cluster: c.name.clone(),
                        context: context(),
                        run: r.run,
                        recorded,
                        live: now.clone(),
                    })));
                }
                (then, _) => {
                    let cause = if recorded.is_unknown() {
                        "the run recorded no identity for it (an older migrate started it)"
                            .to_string()
                    } else if then.is_none() {
                        "the run could not read its kube-system namespace when it started"
                            .to_string()
                    } else {
                        format!(
                            "its kube-system namespace cannot be read now through context {}",
                            context()
                        )
                    };
                    if !undecided.iter().any(|u| u.cluster == c.name) {
                        undecided.push(Undecided {
                            cluster: c.name.clone(),
                            run: r.run,
                            cause,
                        });
                    }
                }
            }
        }
    }
    if undecided.is_empty() {
        return Ok(());
    }
    if !accept_unknown {
        return Err(Refusal::Undecided(undecided));
    }
    env.observer.warning(
        SUBJECT,
        &format!(
            "--accept-unknown-identity: going on without knowing that {} still reach the clusters the run changed",
            describe_undecided(&undecided)
        ),
    );
    Ok(())
}

/// `c1 (why), c2 (why)`.
pub(crate) fn describe_undecided(list: &[Undecided]) -> String {
    list.iter()
        .map(|u| format!("{} ({})", u.cluster, u.cause))
        .collect::<Vec<_>>()
        .join(", ")
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

    /// Remembers the warnings it is given.
    #[derive(Default)]
    struct Warnings(std::sync::Mutex<Vec<String>>);

    impl crate::engine::Observer for Warnings {
        fn warning(&self, _step: &str, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    fn watched() -> (Environment, Arc<Warnings>) {
        let warnings = Arc::new(Warnings::default());
        let env = Environment {
            observer: warnings.clone(),
            ..env()
        };
        (env, warnings)
    }

    fn said(w: &Warnings) -> Vec<String> {
        w.0.lock().unwrap().clone()
    }

    fn undecided(r: Result<(), Refusal>) -> Vec<Undecided> {
        match r {
            Err(Refusal::Undecided(list)) => list,
            other => panic!("expected undecided, got {other:?}"),
        }
    }

    #[test]
    fn another_uid_behind_a_context_is_refused_naming_it() {
        let clusters = clusters();
        let recorded = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        // Same CA (one proxy in front of both), another uid: another cluster.
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u3", "sha256:b"))]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        let Err(Refusal::Mismatch(err)) = check(&env(), &runs, &live, true) else {
            panic!("a different uid must be refused, even with --accept-unknown-identity");
        };
        assert_eq!(err.cluster, "c2");
        assert_eq!(err.context, "ctx-c2");
        assert_eq!(err.recorded, id("u2", "sha256:b"));
        assert_eq!(err.live, id("u3", "sha256:b"));
    }

    #[test]
    fn the_same_uid_under_another_ca_is_the_same_cluster_with_a_warning() {
        let clusters = clusters();
        let recorded = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let live = identities(&[
            ("c1", id("u1", "sha256:rotated")),
            ("c2", id("u2", "sha256:b")),
        ]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        let (env, warnings) = watched();
        check(&env, &runs, &live, false).unwrap();
        let said = said(&warnings);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("c1") && said[0].contains("CA rotation"),
            "{said:?}"
        );
    }

    #[test]
    fn an_unknown_uid_is_refused_by_its_cause_unless_accepted() {
        let clusters = clusters();
        let ca_only = |ca: &str| ClusterIdentity {
            namespace_uid: None,
            ca_fingerprint: Some(ca.into()),
        };
        // c1: uid unreadable at apply; c2: unreadable now. The CAs agree,
        // which proves nothing: one proxy can front two clusters.
        let recorded = identities(&[("c1", ca_only("sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", ca_only("sha256:b"))]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        let list = undecided(check(&env(), &runs, &live, false));
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(
            list[0].cluster == "c1" && list[0].cause.contains("when it started"),
            "{list:?}"
        );
        assert!(
            list[1].cluster == "c2" && list[1].cause.contains("cannot be read now"),
            "{list:?}"
        );
        let (env, warnings) = watched();
        check(&env, &runs, &live, true).unwrap();
        let said = said(&warnings);
        assert!(
            said.len() == 1
                && said[0].contains("--accept-unknown-identity")
                && said[0].contains("c1 (the run could not read"),
            "{said:?}"
        );
    }

    #[test]
    fn runs_that_recorded_no_identity_are_named_once_by_that_cause() {
        let clusters = clusters();
        let none = BTreeMap::new();
        let live = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let runs = [1, 2].map(|n| Recorded {
            run: RunId(n),
            clusters: &clusters,
            identities: &none,
        });
        let list = undecided(check(&env(), &runs, &live, false));
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(
            list.iter()
                .all(|u| u.cause.contains("recorded no identity")),
            "{list:?}"
        );
        let (env, warnings) = watched();
        check(&env, &runs, &live, true).unwrap();
        let said = said(&warnings);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("c1 (") && said[0].contains("c2 ("),
            "{said:?}"
        );
    }

    #[test]
    fn clusters_the_run_did_not_have_are_not_checked() {
        let clusters = clusters();
        let recorded = identities(&[("c1", id("u1", "sha256:a")), ("c2", id("u2", "sha256:b"))]);
        let live = identities(&[("c1", id("u1", "sha256:a"))]);
        let runs = [Recorded {
            run: RunId(1),
            clusters: &clusters,
            identities: &recorded,
        }];
        check(&env(), &runs, &live, false).unwrap();
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
