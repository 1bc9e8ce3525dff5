//! `Store` in a namespace of a Kubernetes cluster (`--state kubernetes://CONTEXT/NAMESPACE`), for a team that
//! shares one run from several machines.
//!
//! - `log`: the records as an append-only log of Secrets, one per transaction, created never updated (the
//!   optimistic concurrency: two writers never both write entry N), chunked under the API server's size limit,
//!   compacted by checkpoint entries;
//! - `lease`: the lock, a `coordination.k8s.io/v1` Lease renewed by a heartbeat; every write is fenced by it;
//! - `pull`: copying the records into a new state directory (`migrate state pull`);
//! - `worker`: the runtime the blocking `Store` calls run their requests on;
//! - `retry`: requests sent again after a passing failure (429, 5xx, no connection);
//! - `location`: parsing `kubernetes://...`.
//!
//! The records live in a `MemoryStore` replica that applies the store's rules; each mutating method changes the
//! replica, then writes what changed (a `RunDelta`) as the next log entry, and returns `Ok` only once the API
//! server accepted it (the write-ahead contract). A write that fails leaves the replica ahead of the log, so the
//! replica is rebuilt from the log before anything else is read or written. Every call, reads included, waits
//! for the write under way: nothing not yet durable is ever seen.
//!
//! Nothing secret leaves the Secrets: snapshots (Secret data included) are only in log entries, which are Secrets.

mod lease;
mod location;
mod log;
mod pull;
mod retry;
mod worker;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::Store;
use super::delta::DeltaScope;
use super::error::StateError;
use super::holder::Holder;
use super::memory::MemoryStore;
use super::model::{
    Event, Left, LeftObject, NewEvent, NewRun, Outcome, RunId, RunInfo, Snapshot, SnapshotFilter,
    SnapshotKey, StepState, StepStatus,
};

pub use lease::{
    AfterConflict, DURATION_ENV as LEASE_DURATION_ENV, ForcedRelease, LeaseHolder, after_conflict,
};
pub use location::{KubeLocation, SCHEME as KUBE_SCHEME};
use log::{AppendError, Entry, EntryKind, Log};
pub use pull::{Pulled, pull};
use worker::Worker;

/// The Lease's name: one store per namespace.
const LEASE_NAME: &str = "migrate-state";

/// Entries written before a checkpoint is considered, whatever their size.
const MIN_ENTRIES_PER_CHECKPOINT: u64 = 32;

/// The store in a namespace. Holds its Lease while open for writing; dropping it gives the Lease up.
pub struct KubeStore {
    location: String,
    worker: Arc<Worker>,
    log: Log,
    leases: Api<Lease>,
    state: Mutex<Replica>,
    /// `None` when opened read-only.
    lease: Option<lease::HeldLease>,
    holder: Holder,
}

/// The replica and where the log stands.
struct Replica {
    store: MemoryStore,
    store_id: String,
    /// The sequence number of the next entry.
    next: u64,
    /// The first entry still in the log (the newest checkpoint).
    checkpoint: u64,
    checkpoint_bytes: usize,
    bytes_since_checkpoint: usize,
    /// The replica is ahead of the log (a write failed): rebuild it before use.
    stale: bool,
    /// Progress notes (`record_progress`) not written yet: per run, the newest event already in the log. The next
    /// write carries them.
    pending: BTreeMap<RunId, u64>,
    /// This holder's fence entry: the name an earlier holder still running writes next, so it is never freed
    /// by this holder's compaction (the next holder's open clears it).
    fence: Option<u64>,
}

/// The Kubernetes clients of a location: for the log's Secrets and the Lease.
fn apis(
    worker: &Worker,
    location: &KubeLocation,
    kubeconfig: Option<&Path>,
) -> Result<(Api<Secret>, Api<Lease>), StateError> {
    let text = location.to_string();
    let bad = |detail: String| StateError::KubeConfig {
        location: text.clone(),
        detail,
    };
    let config = match kubeconfig {
        Some(p) => Kubeconfig::read_from(p)
            .map_err(|e| bad(format!("cannot read kubeconfig {}: {e}", p.display())))?,
        None => Kubeconfig::read().map_err(|e| bad(format!("cannot read the kubeconfig: {e}")))?,
    };
    let opts = KubeConfigOptions {
        context: location.context.clone(),
        ..Default::default()
    };
    let client = worker
        .run(async move {
            let mut config = kube::Config::from_custom_kubeconfig(config, &opts).await?;
            config.connect_timeout = Some(std::time::Duration::from_secs(5));
            config.read_timeout = Some(std::time::Duration::from_secs(30));
            kube::Client::try_from(config)
        })
        .ok_or_else(|| bad("the store's runtime stopped".into()))?
        .map_err(|e| bad(format!("cannot reach the cluster: {e}")))?;
    Ok((
        Api::namespaced(client.clone(), &location.namespace),
        Api::namespaced(client, &location.namespace),
    ))
}

impl KubeStore {
    /// Opens the store at `location` for writing: takes its Lease (`LeaseHeld` names the holder), replays the
    /// log, writes a fence entry (so an earlier holder still running can write nothing more) and clears what
    /// killed writers left. `kubeconfig`: the file to read (else kube's default lookup).
    /// The Lease lasts `MIGRATE_STATE_LEASE_SECONDS` (default 30) past each renewal.
    pub fn open(
        location: &KubeLocation,
        kubeconfig: Option<&Path>,
    ) -> Result<KubeStore, StateError> {
        Self::open_with_lease(location, kubeconfig, lease::duration_seconds())
    }

    /// `open` with a Lease of `seconds` (at least 2).
    pub fn open_with_lease(
        location: &KubeLocation,
        kubeconfig: Option<&Path>,
        seconds: i32,
    ) -> Result<KubeStore, StateError> {
        let mut store = Self::connect(location, kubeconfig)?;
        let held = lease::HeldLease::acquire(
            &store.worker,
            store.leases.clone(),
            &store.location,
            LEASE_NAME,
            store.holder.clone(),
            seconds.max(2),
        )?;
        store.lease = Some(held);
        let garbage = store.fence()?;
        let log = store.log.clone();
        store.worker.spawn(async move { log.delete(garbage).await });
        Ok(store)
    }

    /// Opens the store at `location` to read: no Lease is taken, nothing is written; what it shows is the log
    /// as it was when opened. Also says who holds the Lease, if anyone does.
    pub fn open_read_only(
        location: &KubeLocation,
        kubeconfig: Option<&Path>,
    ) -> Result<(KubeStore, Option<LeaseHolder>), StateError> {
        let store = Self::connect(location, kubeconfig)?;
        {
            let mut r = store.replica();
            store.reload(&mut r)?;
        }
        let holder = store.lease_holder()?;
        Ok((store, holder))
    }

    fn connect(
        location: &KubeLocation,
        kubeconfig: Option<&Path>,
    ) -> Result<KubeStore, StateError> {
        let text = location.to_string();
        let worker = Arc::new(Worker::start().map_err(|e| StateError::KubeConfig {
            location: text.clone(),
            detail: format!("cannot start a runtime: {e}"),
        })?);
        let (secrets, leases) = apis(&worker, location, kubeconfig)?;
        Ok(KubeStore {
            log: Log::new(secrets, &text),
            location: text,
            worker,
            leases,
            state: Mutex::new(Replica {
                store: MemoryStore::new(),
                store_id: String::new(),
                next: 1,
                checkpoint: 1,
                checkpoint_bytes: 0,
                bytes_since_checkpoint: 0,
                stale: true,
                pending: BTreeMap::new(),
                fence: None,
            }),
            lease: None,
            holder: super::lock::this_process(),
        })
    }

    /// Where the store is (`kubernetes://CONTEXT/NAMESPACE`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// This process's holder record (its id is what `unlock --force` takes).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    fn replica(&self) -> MutexGuard<'_, Replica> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gone(&self) -> StateError {
        StateError::KubeConfig {
            location: self.location.clone(),
            detail: "the store's runtime stopped".into(),
        }
    }

    /// Rebuilds the replica from the log; returns the garbage the listing found.
    fn reload(&self, r: &mut Replica) -> Result<Vec<String>, StateError> {
        let log = self.log.clone();
        let listed = self
            .worker
            .run(async move { log.list().await })
            .ok_or_else(|| self.gone())??;
        let mut listed = listed;
        let store = MemoryStore::new();
        let mut store_id = String::new();
        let next = listed.next_seq();
        let checkpoint = listed.entries.first().map_or(1, |e| e.seq);
        // Replayed by value: a checkpoint holds every record, copying it first would double the work.
        for entry in std::mem::take(&mut listed.entries) {
            if store_id.is_empty() {
                store_id = entry.store.clone();
            }
            for delta in entry.runs {
                store
                    .apply_delta(delta)
                    .map_err(|e| StateError::LogDamaged {
                        location: self.location.clone(),
                        detail: format!("entry {} does not apply: {e}", entry.seq),
                    })?;
            }
        }
        *r = Replica {
            store,
            store_id,
            next,
            checkpoint,
            checkpoint_bytes: listed.checkpoint_bytes,
            bytes_since_checkpoint: listed.bytes_since_checkpoint,
            stale: false,
            pending: BTreeMap::new(),
            fence: r.fence,
        };
        Ok(listed.garbage)
    }

    /// Writes the fence entry (creating the store first when the namespace has none), rebuilding the replica
    /// and trying again when another writer took the number.
    fn fence(&self) -> Result<Vec<String>, StateError> {
        let mut r = self.replica();
        for _ in 0..5 {
            let garbage = self.reload(&mut r)?;
            let entry = if r.next == 1 {
                r.store_id = super::lock::this_process().id;
                Entry::new(
                    &r.store_id,
                    1,
                    &self.holder.id,
                    EntryKind::Checkpoint,
                    Vec::new(),
                )
            } else {
                Entry::new(
                    &r.store_id,
                    r.next,
                    &self.holder.id,
                    EntryKind::Fence,
                    Vec::new(),
                )
            };
            match self.append(&entry, None) {
                Ok(size) => {
                    r.fence = Some(r.next);
                    r.next += 1;
                    r.bytes_since_checkpoint += size;
                    return Ok(garbage);
                }
                Err(AppendError::Taken) => continue,
                Err(AppendError::Failed(e)) => return Err(e),
            }
        }
        Err(StateError::KubeConfig {
            location: self.location.clone(),
            detail: "the log keeps growing under this process although it holds the Lease; another writer is \
                     still running: stop it"
                .into(),
        })
    }

    fn append(&self, entry: &Entry, run: Option<u64>) -> Result<usize, AppendError> {
        let (log, entry) = (self.log.clone(), entry.clone());
        self.worker
            .run(async move { log.append(&entry, run).await })
            .unwrap_or_else(|| Err(AppendError::Failed(self.gone())))
    }

    /// Runs a read against an up-to-date replica.
    fn read<T>(
        &self,
        f: impl FnOnce(&MemoryStore) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut r = self.replica();
        if r.stale {
            self.reload(&mut r)?;
        }
        f(&r.store)
    }

    /// Runs `op` on the replica and writes what it changed in `run` (`scope`, from the value `op` returned) as
    /// one entry; `Ok` only once the API server accepted it.
    fn write<T>(
        &self,
        run: Option<RunId>,
        op: impl FnOnce(&MemoryStore) -> Result<T, StateError>,
        scope: impl FnOnce(&T) -> (RunId, DeltaScope),
    ) -> Result<T, StateError> {
        let Some(lease) = &self.lease else {
            return Err(StateError::InvalidInput(format!(
                "{} was opened read-only",
                self.location
            )));
        };
        let mut r = self.replica();
        if r.stale {
            self.reload(&mut r)?;
        }
        lease.check(&self.worker)?;
        let before = run
            .and_then(|id| r.store.run(id).ok())
            .map_or(0, |i| i.last_event_seq);
        let value = match op(&r.store) {
            Ok(v) => v,
            Err(e) => {
                // The memory store changes nothing on a refusal, but a compound operation may have done half
                // (it journalled): then the replica is ahead of the log.
                if let Some(id) = run
                    && r.store.run(id).map_or(0, |i| i.last_event_seq) != before
                {
                    r.stale = true;
                }
                return Err(e);
            }
        };
        let (id, mut scope) = scope(&value);
        let after = r.store.run(id)?.last_event_seq;
        if after == before && run.is_some() {
            // Every change journals: nothing changed, nothing to write.
            return Ok(value);
        }
        scope.events_after = r.pending.get(&id).map_or(before, |p| (*p).min(before));
        let mut deltas = vec![r.store.delta(id, &scope)?];
        // Progress notes of other runs ride along.
        for (other, since) in r.pending.iter().filter(|(other, _)| **other != id) {
            let scope = DeltaScope {
                events_after: *since,
                ..Default::default()
            };
            deltas.push(r.store.delta(*other, &scope)?);
        }
        let entry = Entry::new(
            &r.store_id,
            r.next,
            &self.holder.id,
            EntryKind::Changes,
            deltas,
        );
        match self.append(&entry, Some(id.0)) {
            Ok(size) => {
                r.next += 1;
                r.bytes_since_checkpoint += size;
                r.pending.clear();
            }
            Err(failed) => {
                r.stale = true;
                return Err(match failed {
                    AppendError::Taken => {
                        let now = lease.current_holder(&self.worker);
                        lease.lost(now)
                    }
                    AppendError::Failed(e) => e,
                });
            }
        }
        self.maybe_checkpoint(&mut r);
        Ok(value)
    }

    /// Writes a checkpoint once the entries since the last one outweigh it (so replay costs at most about twice
    /// the records' size), then deletes the older entries. A failure here costs nothing but open time.
    fn maybe_checkpoint(&self, r: &mut Replica) {
        let entries = r.next - r.checkpoint;
        if entries < MIN_ENTRIES_PER_CHECKPOINT || r.bytes_since_checkpoint < r.checkpoint_bytes {
            return;
        }
        let seq = r.next;
        let entry = Entry::new(
            &r.store_id,
            seq,
            &self.holder.id,
            EntryKind::Checkpoint,
            r.store.image(),
        );
        match self.append(&entry, None) {
            Ok(size) => {
                // Freeing the fence's name would let an earlier holder's next write land and succeed.
                let fence = r.fence.map(log::head_name);
                let old: Vec<String> = Log::heads_between(r.checkpoint, seq)
                    .into_iter()
                    .filter(|name| Some(name) != fence.as_ref())
                    .collect();
                r.next += 1;
                r.checkpoint = seq;
                r.checkpoint_bytes = size;
                r.bytes_since_checkpoint = 0;
                let log = self.log.clone();
                self.worker.spawn(async move { log.delete(old).await });
            }
            Err(AppendError::Taken) => r.stale = true,
            Err(AppendError::Failed(e)) => {
                tracing::warn!("{}: no checkpoint written: {e}", self.location)
            }
        }
    }
}

impl KubeStore {
    /// Writes every record of `from` into this store, which must hold no run yet (`migrate state push`), as one
    /// checkpoint entry: all of it is there, or none. Returns how many runs it copied.
    pub fn import(&self, from: &dyn Store) -> Result<usize, StateError> {
        let copy = MemoryStore::copied_from(from)?;
        let Some(lease) = &self.lease else {
            return Err(StateError::InvalidInput(format!(
                "{} was opened read-only",
                self.location
            )));
        };
        let mut r = self.replica();
        if r.stale {
            self.reload(&mut r)?;
        }
        if let Some(run) = r.store.latest_run()? {
            return Err(StateError::InvalidInput(format!(
                "{} already holds runs (the latest is {}); push only into an empty store",
                self.location, run.id
            )));
        }
        lease.check(&self.worker)?;
        let image = copy.image();
        let runs = image.len();
        let entry = Entry::new(
            &r.store_id,
            r.next,
            &self.holder.id,
            EntryKind::Checkpoint,
            image,
        );
        match self.append(&entry, None) {
            Ok(size) => {
                r.checkpoint = r.next;
                r.next += 1;
                r.checkpoint_bytes = size;
                r.bytes_since_checkpoint = 0;
                r.store = copy;
                Ok(runs)
            }
            Err(AppendError::Taken) => {
                r.stale = true;
                Err(lease.lost(lease.current_holder(&self.worker)))
            }
            Err(AppendError::Failed(e)) => {
                r.stale = true;
                Err(e)
            }
        }
    }
}

impl KubeStore {
    /// Writes the progress notes no write carried yet (closing the store).
    fn flush_progress(&self) {
        let Some(lease) = &self.lease else {
            return;
        };
        let mut r = self.replica();
        if r.pending.is_empty() || r.stale || lease.check(&self.worker).is_err() {
            return;
        }
        let mut deltas = Vec::new();
        for (run, since) in &r.pending {
            let scope = DeltaScope {
                events_after: *since,
                ..Default::default()
            };
            match r.store.delta(*run, &scope) {
                Ok(d) => deltas.push(d),
                Err(_) => return,
            }
        }
        let entry = Entry::new(
            &r.store_id,
            r.next,
            &self.holder.id,
            EntryKind::Changes,
            deltas,
        );
        match self.append(&entry, None) {
            Ok(_) => {
                r.next += 1;
                r.pending.clear();
            }
            Err(AppendError::Taken) => tracing::warn!(
                "{}: progress notes not written: the log moved on",
                self.location
            ),
            Err(AppendError::Failed(e)) => {
                tracing::warn!("{}: progress notes not written: {e}", self.location)
            }
        }
    }
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("location", &self.location)
            .field("holder", &self.holder.id)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeStore {
    fn drop(&mut self) {
        self.flush_progress();
        if let Some(lease) = self.lease.take() {
            lease.release(&self.worker);
        }
    }
}

/// Clears the Lease of the store at `location` if it names holder `id` (`migrate unlock --force ID`).
pub fn force_unlock(
    location: &KubeLocation,
    kubeconfig: Option<&Path>,
    id: &str,
) -> Result<ForcedRelease, StateError> {
    let store = KubeStore::connect(location, kubeconfig)?;
    let (leases, loc, id) = (store.leases.clone(), store.location.clone(), id.to_string());
    store
        .worker
        .run(async move { lease::force_release(&leases, &loc, LEASE_NAME, &id).await })
        .ok_or_else(|| store.gone())?
}

fn step_scope(run: RunId, step: &str) -> (RunId, DeltaScope) {
    (
        run,
        DeltaScope {
            step: Some(step.to_string()),
            ..Default::default()
        },
    )
}

fn snapshots_scope(run: RunId, step: &str) -> (RunId, DeltaScope) {
    (
        run,
        DeltaScope {
            snapshots_of: Some(step.to_string()),
            ..Default::default()
        },
    )
}

fn run_scope(run: RunId) -> (RunId, DeltaScope) {
    (run, DeltaScope::default())
}

impl Store for KubeStore {
    fn store_id(&self) -> Result<Option<String>, StateError> {
        let mut r = self.replica();
        if r.stale {
            self.reload(&mut r)?;
        }
        Ok(Some(r.store_id.clone()).filter(|id| !id.is_empty()))
    }

    fn holder_id(&self) -> Option<String> {
        Some(self.holder.id.clone())
    }

    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError> {
        self.write(
            None,
            |s| s.begin_run(new),
            |info| {
                (
                    info.id,
                    DeltaScope {
                        whole_plan: true,
                        ..Default::default()
                    },
                )
            },
        )
    }

    fn current_run(&self) -> Result<Option<RunInfo>, StateError> {
        self.read(|s| s.current_run())
    }

    fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        self.read(|s| s.latest_run())
    }

    fn run(&self, run: RunId) -> Result<RunInfo, StateError> {
        self.read(|s| s.run(run))
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        self.read(|s| s.runs())
    }

    fn plan(&self, run: RunId) -> Result<Value, StateError> {
        self.read(|s| s.plan(run))
    }

    fn plan_json(&self, run: RunId) -> Result<String, StateError> {
        self.read(|s| s.plan_json(run))
    }

    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        self.write(Some(run), |s| s.resume_run(run), |_| run_scope(run))
    }

    fn reopen_for_rollback(&self, run: RunId) -> Result<RunInfo, StateError> {
        self.write(
            Some(run),
            |s| s.reopen_for_rollback(run),
            |_| run_scope(run),
        )
    }

    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError> {
        self.write(
            Some(run),
            |s| s.finish_run(run, outcome),
            |_| run_scope(run),
        )
    }

    fn pause_run(&self, run: RunId, after: &str) -> Result<RunInfo, StateError> {
        self.write(Some(run), |s| s.pause_run(run, after), |_| run_scope(run))
    }

    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError> {
        self.read(|s| s.step_states(run))
    }

    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError> {
        self.read(|s| s.step_state(run, step))
    }

    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        self.write(
            Some(run),
            |s| s.set_step_status(run, step, status, error),
            |_| step_scope(run, step),
        )
    }

    fn begin_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        snapshots: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<StepState, StateError> {
        // One entry: the step's start and its snapshots are durable together.
        for (key, _) in &snapshots {
            super::rules::validate_key(key)?;
        }
        self.write(
            Some(run),
            |s| {
                let state = s.set_step_status(run, step, status, None)?;
                if !snapshots.is_empty() {
                    s.put_snapshots_if_absent(run, step, snapshots)?;
                }
                Ok(state)
            },
            |_| {
                let (id, mut scope) = step_scope(run, step);
                scope.snapshots_of = Some(step.to_string());
                (id, scope)
            },
        )
    }

    fn finish_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        left: Vec<(SnapshotKey, Left)>,
    ) -> Result<StepState, StateError> {
        self.write(
            Some(run),
            |s| s.finish_step(run, step, status, left),
            |_| {
                let (id, mut scope) = step_scope(run, step);
                scope.left_of = Some(step.to_string());
                (id, scope)
            },
        )
    }

    fn left_objects(&self, run: RunId, step: &str) -> Result<Vec<LeftObject>, StateError> {
        self.read(|s| s.left_objects(run, step))
    }

    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        self.write(
            Some(run),
            |s| s.record_event(run, event),
            |_| run_scope(run),
        )
    }

    /// Journalled in the replica only; the next write (of any run) carries it to the log, and closing the store
    /// writes what is left. A crash before either loses it, as the contract allows.
    fn record_progress(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let Some(lease) = &self.lease else {
            return Err(StateError::InvalidInput(format!(
                "{} was opened read-only",
                self.location
            )));
        };
        let mut r = self.replica();
        if r.stale {
            self.reload(&mut r)?;
        }
        lease.check(&self.worker)?;
        let before = r.store.run(run)?.last_event_seq;
        let seq = r.store.record_event(run, event)?;
        r.pending.entry(run).or_insert(before);
        Ok(seq)
    }

    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError> {
        self.read(|s| s.events(run, since))
    }

    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError> {
        self.put_snapshots_if_absent(run, step, vec![(key.clone(), object)])
            .map(|n| n > 0)
    }

    fn put_snapshots_if_absent(
        &self,
        run: RunId,
        step: &str,
        objects: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<usize, StateError> {
        for (key, _) in &objects {
            super::rules::validate_key(key)?;
        }
        self.write(
            Some(run),
            |s| s.put_snapshots_if_absent(run, step, objects),
            |_| snapshots_scope(run, step),
        )
    }

    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError> {
        self.read(|s| s.snapshot(run, step, key))
    }

    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError> {
        self.write(
            Some(run),
            |s| s.drop_snapshots(run, step),
            |_| snapshots_scope(run, step),
        )
    }

    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError> {
        self.write(
            Some(run),
            |s| s.replace_plan(run, fingerprint, plan, steps),
            |_| {
                (
                    run,
                    DeltaScope {
                        whole_plan: true,
                        ..Default::default()
                    },
                )
            },
        )
    }

    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError> {
        self.read(|s| s.snapshots(run, filter))
    }
}
