//! The mesh's claim: a `coordination.k8s.io/v1` Lease `migrate-mesh` in `kube-system` of every cluster a run
//! changes, so two teams with two state stores cannot change the same mesh at once.
//!
//! - Taken before a run's first change (after the identity checks), renewed by a heartbeat while the process
//!   runs; a Lease another store holds and has not let lapse refuses the run, naming the holder.
//! - Held by a store and a run: the same store takes it over (a resume, a rollback, another machine on a shared
//!   store), and so does a copy of that store (`state push`/`pull`: it holds the claimed run, same id and start).
//! - At the end of an invocation it is deleted when the store leaves nothing unfinished in the mesh (the latest
//!   run succeeded, or no run holds a step any more); otherwise (paused with `--until`, failed, stopped) it is
//!   kept for `KEPT_SECONDS` without renewal: a half-migrated mesh stays claimed between invocations, since
//!   another team's run would build on changes it does not know of. A killed process leaves the running Lease,
//!   which lapses after its duration like the state store's.
//! - The claim names the holder id of the process's hold on its store (`Store::holder_id`), so
//!   `migrate unlock --force ID` frees what a dead process held, store and mesh alike (`force_release`: only a
//!   Lease naming that id, deleted only if unchanged since read).
//! - `kube-system`, not the control plane's namespace: it exists on every cluster, also on one the mesh is
//!   being extended to, and creating `istio-system` there first would be a change outside the plan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use serde::{Deserialize, Serialize};

use super::context::{EngineOptions, Environment};
use crate::state::{AfterConflict, RunInfo, Store, Timestamp};

/// The Lease's name.
pub const LEASE_NAME: &str = "migrate-mesh";
/// Its namespace on every cluster.
pub const LEASE_NAMESPACE: &str = crate::plan::permissions::MESH_LEASE_NAMESPACE;
/// How long a claim kept between invocations (a paused or failed run) holds without renewal.
pub const KEPT_SECONDS: i32 = 7 * 24 * 3600;
/// The annotation holding the claim's record (JSON).
const RECORD_ANNOTATION: &str = "migrate.meshops.dev/claim";
/// The Lease's duration while a process renews it, unless `MIGRATE_STATE_LEASE_SECONDS` says otherwise.
const DEFAULT_SECONDS: i32 = 30;

/// Why the mesh could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum MeshLeaseError {
    /// Another store's run holds the Lease.
    #[error(
        "cluster {cluster}: the mesh is claimed by another state store: {holder} (Lease {LEASE_NAMESPACE}/{LEASE_NAME}, \
         renewed {renewed}, held {seconds}s past it); nothing was changed. Work from that store (`--state` its \
         location), or wait for its run to finish or be rolled back; if that store is gone for good, {}",
        unlock_advice(.id)
    )]
    Claimed {
        /// The cluster, as the plan names it.
        cluster: String,
        /// Who: the holder's identity.
        holder: String,
        /// The holder id `migrate unlock --force` takes (empty for a claim written by an older migrate).
        id: String,
        /// Its last renewal.
        renewed: String,
        /// How long it holds past that.
        seconds: i32,
    },
    /// The Lease could not be read or written.
    #[error("cluster {cluster}: cannot {op} Lease {LEASE_NAMESPACE}/{LEASE_NAME}: {source}")]
    Api {
        cluster: String,
        op: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    /// The store could not say what it is.
    #[error("cannot claim the mesh: {0}")]
    Store(#[from] crate::state::StateError),
}

/// How the refusal says to free the mesh from a store gone for good.
fn unlock_advice(id: &str) -> String {
    if id.is_empty() {
        // Written by a migrate that named no holder id: only the Lease's deletion frees it.
        format!("`kubectl delete lease {LEASE_NAME} -n {LEASE_NAMESPACE}` frees the mesh")
    } else {
        format!("`migrate unlock --force {id} -f SPEC` (this spec) frees the mesh")
    }
}

/// Who holds a claim: the store and its run, and the process that took it (for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimRecord {
    /// The holder id of the process's hold on its store (`migrate unlock --force` takes it); empty in a claim
    /// written by an older migrate.
    #[serde(default)]
    id: String,
    store: String,
    /// Where the store is, as this process named it (a directory path or `kubernetes://...`): for the refusal.
    location: String,
    run: u64,
    /// The run's start; `None` before a new run began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_started: Option<Timestamp>,
    user: String,
    host: String,
    pid: u32,
}

impl ClaimRecord {
    fn identity(&self) -> String {
        format!(
            "store {} ({}) run {}, {}@{} pid {} id {}",
            self.store, self.location, self.run, self.user, self.host, self.pid, self.id
        )
    }
}

/// A run's claim on its clusters' mesh: taken once (`take`), renewed while held, given up or kept at `end`.
pub(crate) struct MeshClaim {
    env: Arc<Environment>,
    clusters: Vec<String>,
    location: String,
    /// The holder id the claim names: the store's hold's, else one of this claim's own.
    id: String,
    enabled: bool,
    seconds: i32,
    /// Whether a store leaves changes in the mesh that a later invocation carries on (then the claim is kept).
    unfinished: fn(&dyn Store) -> bool,
    held: tokio::sync::Mutex<Option<Held>>,
}

struct Held {
    record: ClaimRecord,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl MeshClaim {
    /// The claim a run on `clusters` (the plan's) makes, when `opts` asks for one (not in a dry run);
    /// `unfinished` tells whether the store leaves changes a later invocation carries on.
    pub(crate) fn new(
        env: &Arc<Environment>,
        opts: &EngineOptions,
        clusters: Vec<String>,
        unfinished: fn(&dyn Store) -> bool,
    ) -> Self {
        let seconds = std::env::var(crate::state::LEASE_DURATION_ENV)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|s| *s >= 2)
            .unwrap_or(DEFAULT_SECONDS);
        MeshClaim {
            env: env.clone(),
            clusters,
            location: opts.mesh_lease.clone().unwrap_or_default(),
            id: env.store.holder_id().unwrap_or_else(fresh_id),
            enabled: opts.mesh_lease.is_some() && !opts.dry_run,
            seconds,
            unfinished,
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// Claims every cluster for run `run` of this store (`started`: its start, once it began), before the
    /// run's first change. Refused when another store holds any of them; what this call took is then kept
    /// only if the store already held it.
    pub(crate) async fn take(
        &self,
        run: u64,
        started: Option<Timestamp>,
    ) -> Result<(), MeshLeaseError> {
        if !self.enabled {
            return Ok(());
        }
        let store = self.env.store.clone();
        let record = ClaimRecord {
            id: self.id.clone(),
            store: store.store_id()?.unwrap_or_default(),
            location: self.location.clone(),
            run,
            run_started: started,
            user: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            host: hostname(),
            pid: std::process::id(),
        };
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_mut()
            && h.record == record
        {
            return Ok(());
        }
        let mut taken = Vec::new();
        let mut pending = Vec::new();
        for (cluster, api) in self.apis() {
            match claim(&api, &cluster, &record, self.seconds, store.as_ref()).await {
                Ok(()) => taken.push((cluster, api)),
                // Down now: its steps fail by name, as without a claim; the heartbeat claims it once it answers.
                Err(MeshLeaseError::Api { source, .. })
                    if !matches!(*source, kube::Error::Api(_)) =>
                {
                    tracing::warn!(
                        "cluster {cluster}: cannot reach it to claim the mesh ({source}); claimed once it answers"
                    );
                    pending.push((cluster, api));
                }
                Err(e) => {
                    // Refused part-way: what this call took is settled as the end of an invocation would.
                    settle(
                        &taken,
                        &record.identity(),
                        (self.unfinished)(store.as_ref()),
                    )
                    .await;
                    return Err(e);
                }
            }
        }
        if let Some(old) = held.take() {
            old.heartbeat.abort();
        }
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            Beat {
                taken,
                pending,
                record: record.clone(),
                seconds: self.seconds,
                store,
            },
            lost.clone(),
        ));
        *held = Some(Held {
            record,
            heartbeat,
            lost,
        });
        Ok(())
    }

    /// Run `run` began: its claim names it (its start is what a copy of the store is recognised by).
    pub(crate) async fn started(&self, run: &RunInfo) -> Result<(), MeshLeaseError> {
        self.take(run.id.0, Some(run.started)).await
    }

    /// The invocation ends: gives the claim up when the store leaves nothing unfinished in the mesh, else keeps
    /// it for `KEPT_SECONDS` (see the module docs). Failures are warnings: a kept Lease lapses on its own.
    pub(crate) async fn end(&self) {
        let Some(held) = self.held.lock().await.take() else {
            return;
        };
        held.heartbeat.abort();
        // Wait for it to stop, so no renewal of its own is on its way while the claim is settled.
        let _ = held.heartbeat.await;
        if held.lost.load(Ordering::SeqCst) {
            tracing::warn!(
                "another store took the mesh's Lease on some cluster while this run went on; see the warnings above"
            );
        }
        let keep = (self.unfinished)(self.env.store.as_ref());
        settle(&self.apis(), &held.record.identity(), keep).await;
    }

    /// The Lease of every cluster of the plan (all connected: the run reached them for their identity).
    fn apis(&self) -> Vec<(String, Api<Lease>)> {
        self.clusters
            .iter()
            .filter_map(|c| {
                let client = self.env.clusters.get(c)?.client().clone();
                Some((c.clone(), Api::namespaced(client, LEASE_NAMESPACE)))
            })
            .collect()
    }
}

/// Keeps the Leases `identity` holds in `apis` for `KEPT_SECONDS` (`keep`), or gives them up.
async fn settle(apis: &[(String, Api<Lease>)], identity: &str, keep: bool) {
    for (cluster, api) in apis {
        let result = if keep {
            keep_claim(api, identity).await
        } else {
            release(api, identity).await
        };
        if let Err(e) = result {
            tracing::warn!(
                "cluster {cluster}: Lease {LEASE_NAMESPACE}/{LEASE_NAME} not {}: {e}; it lapses on its own",
                if keep { "kept" } else { "released" }
            );
        }
    }
}

fn api_err(cluster: &str, op: &'static str) -> impl FnOnce(kube::Error) -> MeshLeaseError {
    let cluster = cluster.to_string();
    move |e| MeshLeaseError::Api {
        cluster,
        op,
        source: Box::new(e),
    }
}

/// The claim a Lease carries, and whether it lapsed.
fn current(lease: &Lease) -> Option<(ClaimRecord, String, bool)> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let record = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECORD_ANNOTATION))
        .and_then(|r| serde_json::from_str(r).ok())?;
    let seconds = spec.lease_duration_seconds.unwrap_or(DEFAULT_SECONDS);
    let lapsed = spec.renew_time.as_ref().is_none_or(|t| {
        jiff::Timestamp::now().duration_since(t.0)
            > jiff::SignedDuration::from_secs(i64::from(seconds))
    });
    Some((record, identity, lapsed))
}

/// Whether `store` may take over `theirs`: it is the same store, or a copy holding the claimed run.
fn ours(theirs: &ClaimRecord, mine: &ClaimRecord, store: &dyn Store) -> bool {
    if !mine.store.is_empty() && theirs.store == mine.store {
        return true;
    }
    theirs.run_started.is_some_and(|started| {
        store
            .run(crate::state::RunId(theirs.run))
            .is_ok_and(|r| r.started == started)
    })
}

/// Creates or takes over the Lease on one cluster for `record`.
async fn claim(
    api: &Api<Lease>,
    cluster: &str,
    record: &ClaimRecord,
    seconds: i32,
    store: &dyn Store,
) -> Result<(), MeshLeaseError> {
    let text = serde_json::to_string(record).unwrap_or_default();
    let mut pause = Duration::from_millis(100);
    for attempt in 0..8 {
        if attempt > 0 {
            // A conflict (read again at once) or a transient error (backed off).
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        let existing = match api.get_opt(LEASE_NAME).await {
            Ok(existing) => existing,
            Err(e) if transient(&e) && attempt < 7 => continue,
            Err(e) => return Err(api_err(cluster, "read")(e)),
        };
        let mut lease = match existing {
            None => Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_string(),
                        "migrate".to_string(),
                    )])),
                    ..Default::default()
                },
                spec: None,
            },
            Some(lease) => {
                if let Some((theirs, identity, lapsed)) = current(&lease)
                    && !lapsed
                    && !ours(&theirs, record, store)
                {
                    let spec = lease.spec.clone().unwrap_or_default();
                    return Err(MeshLeaseError::Claimed {
                        cluster: cluster.to_string(),
                        holder: identity,
                        id: theirs.id,
                        renewed: spec
                            .renew_time
                            .map_or_else(|| "never".into(), |t| t.0.to_string()),
                        seconds: spec.lease_duration_seconds.unwrap_or(DEFAULT_SECONDS),
                    });
                }
                lease
            }
        };
        let now = MicroTime(jiff::Timestamp::now());
        let transitions = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let same_holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(record.identity().as_str());
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(RECORD_ANNOTATION.into(), text.clone());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(record.identity()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(if same_holder {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        });
        let written = if lease.metadata.resource_version.is_none() {
            api.create(&PostParams::default(), &lease).await
        } else {
            api.replace(LEASE_NAME, &PostParams::default(), &lease)
                .await
        };
        match written {
            Ok(_) => return Ok(()),
            // Written by someone else since it was read: read it again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) if transient(&e) && attempt < 7 => continue,
            Err(e) => return Err(api_err(cluster, "write")(e)),
        }
    }
    Err(MeshLeaseError::Api {
        cluster: cluster.to_string(),
        op: "take",
        source: Box::new(kube::Error::Service(
            "the Lease keeps changing; try again".into(),
        )),
    })
}

/// What the heartbeat renews, and what it has still to claim.
struct Beat {
    taken: Vec<(String, Api<Lease>)>,
    /// Clusters that did not answer when the claim was taken.
    pending: Vec<(String, Api<Lease>)>,
    record: ClaimRecord,
    seconds: i32,
    store: Arc<dyn Store>,
}

/// Renews every cluster's Lease a quarter of its duration apart, and claims the clusters that were down; a
/// Lease another store took is left alone and said.
async fn heartbeat(mut beat: Beat, lost: Arc<AtomicBool>) {
    let identity = beat.record.identity();
    let duration = Duration::from_secs(u64::try_from(beat.seconds).unwrap_or(30));
    let mut every = tokio::time::interval(duration / 4);
    every.tick().await;
    loop {
        every.tick().await;
        for (cluster, api) in &beat.taken {
            match update_own(api, &identity, None).await {
                Ok(true) => {}
                Ok(false) => {
                    lost.store(true, Ordering::SeqCst);
                    tracing::warn!(
                        "cluster {cluster}: Lease {LEASE_NAMESPACE}/{LEASE_NAME} was taken over by another store"
                    );
                }
                Err(e) => tracing::warn!(
                    "cluster {cluster}: renewing Lease {LEASE_NAMESPACE}/{LEASE_NAME}: {e}"
                ),
            }
        }
        let mut still = Vec::new();
        for (cluster, api) in std::mem::take(&mut beat.pending) {
            match claim(
                &api,
                &cluster,
                &beat.record,
                beat.seconds,
                beat.store.as_ref(),
            )
            .await
            {
                Ok(()) => beat.taken.push((cluster, api)),
                Err(e @ MeshLeaseError::Claimed { .. }) => {
                    lost.store(true, Ordering::SeqCst);
                    tracing::warn!("{e}");
                }
                Err(_) => still.push((cluster, api)),
            }
        }
        beat.pending = still;
    }
}

/// An answer worth asking again: the API server overloaded or failing for now (429, 5xx).
fn transient(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 429 || s.code >= 500)
}

/// Renews the Lease if `identity` holds it (with a new duration, if given); `false` when it does not. A 409
/// is a loss only if the holder or `leaseTransitions` changed (`state::after_lease_conflict`); otherwise
/// another renewal of this claim won the race, and the version read after it is renewed.
async fn update_own(
    api: &Api<Lease>,
    identity: &str,
    seconds: Option<i32>,
) -> Result<bool, kube::Error> {
    let mut lease = api.get_opt(LEASE_NAME).await?;
    for _ in 0..4 {
        let Some(mut renewed) = lease else {
            return Ok(false);
        };
        let spec = renewed.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(identity) {
            return Ok(false);
        }
        let read = spec.lease_transitions;
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        if let Some(s) = seconds {
            spec.lease_duration_seconds = Some(s);
        }
        match api
            .replace(LEASE_NAME, &PostParams::default(), &renewed)
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let now = api.get_opt(LEASE_NAME).await?;
                match crate::state::after_lease_conflict(identity, read, now.as_ref()) {
                    AfterConflict::Retry => lease = now,
                    AfterConflict::Lost(_) => return Ok(false),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(kube::Error::Service(
        "the Lease keeps changing under its renewals".into(),
    ))
}

/// Leaves the claim for the next invocation: renewed now, lasting `KEPT_SECONDS`.
async fn keep_claim(api: &Api<Lease>, identity: &str) -> Result<(), kube::Error> {
    update_own(api, identity, Some(KEPT_SECONDS))
        .await
        .map(|_| ())
}

/// Deletes the Lease if `identity` still holds it (the delete is conditional on the version read).
async fn release(api: &Api<Lease>, identity: &str) -> Result<(), kube::Error> {
    let Some(lease) = api.get_opt(LEASE_NAME).await? else {
        return Ok(());
    };
    if lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        != Some(identity)
    {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: lease.metadata.uid.clone(),
        }),
        ..Default::default()
    };
    match api.delete(LEASE_NAME, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `migrate unlock --force ID` found on one cluster's mesh Lease, and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForcedRelease {
    /// Held by `ID`: deleted. The holder it named.
    Released(String),
    /// No Lease (or one naming no holder): nothing to clear.
    Absent,
    /// Held by another holder: left alone. Its identity, and its id (empty if it names none).
    HeldByOther {
        /// The holder's identity.
        holder: String,
        /// Its holder id.
        id: String,
    },
    /// Held by `ID` but written since it was read (renewed: its holder is alive; or taken over): left alone.
    Changed(String),
}

/// Deletes the mesh Lease reached by `client` if its claim names holder id `id`, conditional on the version
/// read (`migrate unlock --force ID`): a Lease renewed or taken over in between is left as it is.
pub async fn force_release(client: kube::Client, id: &str) -> Result<ForcedRelease, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let Some(lease) = api.get_opt(LEASE_NAME).await? else {
        return Ok(ForcedRelease::Absent);
    };
    let Some(holder) = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
    else {
        return Ok(ForcedRelease::Absent);
    };
    let theirs = current(&lease)
        .map(|(record, _, _)| record.id)
        .unwrap_or_default();
    if id.is_empty() || theirs != id {
        return Ok(ForcedRelease::HeldByOther { holder, id: theirs });
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: lease.metadata.uid.clone(),
        }),
        ..Default::default()
    };
    match api.delete(LEASE_NAME, &params).await {
        Ok(_) => Ok(ForcedRelease::Released(holder)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(ForcedRelease::Absent),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(ForcedRelease::Changed(holder)),
        Err(e) => Err(e),
    }
}

/// A holder id for a claim whose store has no hold of its own (a store in memory).
fn fresh_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
