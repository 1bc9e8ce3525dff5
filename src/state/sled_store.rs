//! `Store` on sled 0.34: one tree per record type, every change in one transaction across the trees it touches,
//! flushed (fsync) before the call returns.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{Transactional, Tree};

use super::error::StateError;
use super::holder::{Holder, LockNotice};
use super::layout::{self, DB_DIR};
use super::lock::{self, DirLock};
use super::model::{
    Event, EventKind, NewEvent, NewRun, Outcome, RunId, RunInfo, Snapshot, SnapshotFilter,
    SnapshotKey, StepState, StepStatus, Timestamp,
};
use super::rules;
use super::{SCHEMA_VERSION, Store, mirror};

const META_SCHEMA: &[u8] = b"schema";
const META_STORE_ID: &[u8] = b"store_id";
const META_NEXT_RUN: &[u8] = b"next_run";

/// A store opened on a state directory, and what to tell the user about the lock (a takeover).
#[derive(Debug)]
pub struct Opened {
    pub store: SledStore,
    pub notice: Option<LockNotice>,
}

/// The durable store. Holds the directory's lock until dropped.
pub struct SledStore {
    dir: PathBuf,
    // Dropped in this order: the database (and sled's own file lock) before our lock record and OS lock.
    db: sled::Db,
    meta: Tree,
    runs: Tree,
    plans: Tree,
    steps: Tree,
    events: Tree,
    snapshots: Tree,
    /// Set once the open checks passed: only then may closing record a high-water mark.
    checked: bool,
    /// Group commit: one fsync serves every write committed before it started.
    commits: GroupCommit,
    /// Held by the one thread writing the status copy (`mirror`).
    mirror_lock: std::sync::Mutex<()>,
    /// What the status copy still has to show.
    mirror_pending: std::sync::Mutex<MirrorPending>,
    lock: DirLock,
}

/// A refresh of the status copy not written yet: the run, and its plan when that changed.
#[derive(Default)]
struct MirrorPending {
    run: Option<RunId>,
    plan: Option<Value>,
}

/// Tickets for group commit. A writer takes a ticket after its transaction
/// committed, then needs a flush that began after that: whoever holds
/// `lock` reads the newest ticket, flushes, and publishes it as `flushed`,
/// so writers queued behind it find their ticket covered and return
/// without an fsync of their own.
#[derive(Default)]
struct GroupCommit {
    issued: std::sync::atomic::AtomicU64,
    flushed: std::sync::atomic::AtomicU64,
    lock: std::sync::Mutex<()>,
}

/// How a snapshot is stored; `Snapshot` itself is deliberately not `Serialize`.
#[derive(Serialize, serde::Deserialize)]
struct SnapshotRecord {
    key: SnapshotKey,
    step: String,
    taken: Timestamp,
    object: Option<Value>,
}

type TxResult<T> = ConflictableTransactionResult<T, StateError>;

impl SledStore {
    /// Opens (creating if needed) the state directory `dir` and takes its lock.
    pub fn open(dir: &Path) -> Result<Opened, StateError> {
        layout::prepare_dir(dir)?;
        layout::read_marker(dir)?;
        let (lock, notice) = lock::acquire(dir)?;
        // Re-read under the lock: the marker may have been written by the previous holder meanwhile.
        let marker = layout::read_marker(dir)?;
        let store = catch_panics(dir, || Self::open_db(dir, marker.as_ref(), lock))?;
        Ok(Opened { store, notice })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This process's lock record on the directory.
    pub fn holder(&self) -> &Holder {
        self.lock.holder()
    }

    fn open_db(
        dir: &Path,
        marker: Option<&layout::Marker>,
        lock: DirLock,
    ) -> Result<SledStore, StateError> {
        let db_err = |op| {
            let dir = dir.to_path_buf();
            move |source| StateError::Db { dir, op, source }
        };
        let db = sled::Config::new()
            .path(dir.join(DB_DIR))
            .cache_capacity(64 << 20)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                    StateError::Locked {
                        dir: dir.to_path_buf(),
                        holder: None,
                    }
                }
                sled::Error::Corruption { .. } => StateError::Damaged {
                    dir: dir.to_path_buf(),
                    detail: format!("sled finds its files corrupt ({e})"),
                },
                other => db_err("open the database")(other),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err("open a tree"));
        let mut store = SledStore {
            dir: dir.to_path_buf(),
            meta: tree("meta")?,
            runs: tree("runs")?,
            plans: tree("plans")?,
            steps: tree("steps")?,
            events: tree("events")?,
            snapshots: tree("snapshots")?,
            db,
            checked: false,
            commits: GroupCommit::default(),
            mirror_lock: std::sync::Mutex::new(()),
            mirror_pending: std::sync::Mutex::new(MirrorPending::default()),
            lock,
        };
        match marker {
            Some(m) => store.check_existing(m)?,
            None => store.initialise()?,
        }
        store.checked = true;
        Ok(store)
    }

    fn damaged(&self, detail: impl Into<String>) -> StateError {
        StateError::Damaged {
            dir: self.dir.clone(),
            detail: detail.into(),
        }
    }

    fn db_err(&self, op: &'static str) -> impl FnOnce(sled::Error) -> StateError + '_ {
        move |source| StateError::Db {
            dir: self.dir.clone(),
            op,
            source,
        }
    }

    fn meta_value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        match self.meta.get(key).map_err(self.db_err("read metadata"))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| {
                self.damaged(format!(
                    "metadata {:?} is unreadable: {e}",
                    String::from_utf8_lossy(key)
                ))
            }),
        }
    }

    /// First open, or one whose initialisation was cut short before the marker was written.
    fn initialise(&self) -> Result<(), StateError> {
        if !self.runs.is_empty() {
            return Err(self.damaged(format!(
                "the database holds runs but {} is missing",
                layout::MARKER
            )));
        }
        let store_id = match self.meta_value::<String>(META_STORE_ID)? {
            Some(id) => id,
            None => {
                let salt = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                format!("{:016x}{:08x}", salt, std::process::id())
            }
        };
        let put = |k: &[u8], v: Value| {
            self.meta
                .insert(k, v.to_string().into_bytes())
                .map_err(self.db_err("write metadata"))
        };
        put(META_SCHEMA, Value::from(SCHEMA_VERSION))?;
        put(META_STORE_ID, Value::from(store_id.clone()))?;
        put(META_NEXT_RUN, Value::from(1u64))?;
        self.flush()?;
        self.save_high_water()?;
        layout::write_marker(&self.dir, &layout::new_marker(store_id))
    }

    /// The database must be the one the marker describes, and its runs readable and whole.
    fn check_existing(&self, marker: &layout::Marker) -> Result<(), StateError> {
        let schema: u32 = self.meta_value(META_SCHEMA)?.ok_or_else(|| {
            self.damaged(format!(
                "the database has no schema record although {} exists (was the db directory replaced or truncated?)",
                layout::MARKER
            ))
        })?;
        layout::check_schema(&self.dir, schema)?;
        let id: Option<String> = self.meta_value(META_STORE_ID)?;
        if id.as_deref() != Some(marker.store_id.as_str()) {
            return Err(self.damaged(format!(
                "the database does not belong to this directory's {} (store id {:?}, expected {:?})",
                layout::MARKER,
                id,
                marker.store_id
            )));
        }
        let next: u64 = self
            .meta_value(META_NEXT_RUN)?
            .ok_or_else(|| self.damaged("the run counter is missing"))?;
        let mark = layout::read_high_water(&self.dir)?.unwrap_or_default();
        let now = self.high_water()?;
        if now.next_run < mark.next_run
            || (now.next_run == mark.next_run && now.events < mark.events)
        {
            return Err(self.damaged(format!(
                "the database ends at run #{} event {} but had reached run #{} event {} (data was lost)",
                now.next_run.saturating_sub(1),
                now.events,
                mark.next_run.saturating_sub(1),
                mark.events
            )));
        }
        for item in self.runs.iter() {
            let (k, v) = item.map_err(self.db_err("read runs"))?;
            let run: RunInfo = decode(&self.dir, &v, "a run record")?;
            if k.as_ref() != run.id.0.to_be_bytes() || run.id.0 >= next {
                return Err(self.damaged(format!("run record {} is out of place", run.id)));
            }
            self.verify_run(&run)?;
        }
        Ok(())
    }

    /// Checks that every store holds: run, steps, snapshots and journal agree. Run on every open (a full read
    /// of the journal), because sled may recover a damaged file to a mixture of old and new pages without error.
    pub fn verify(&self) -> Result<(), StateError> {
        for run in self.runs()? {
            self.verify_run(&run)?;
        }
        Ok(())
    }

    fn verify_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let mut expected: BTreeMap<String, StepStatus> = BTreeMap::new();
        let mut snapshot_events = 0usize;
        let mut seq = 0u64;
        for item in self.events.scan_prefix(run.id.0.to_be_bytes()) {
            let (k, v) = item.map_err(self.db_err("read events"))?;
            let e: Event = decode(&self.dir, &v, &format!("an event of run {}", run.id))?;
            seq += 1;
            if e.seq != seq || seq_of(&k) != seq {
                return Err(self.damaged(format!(
                    "run {} journal skips from event {} to {}",
                    run.id,
                    seq - 1,
                    e.seq
                )));
            }
            match (e.kind, &e.step) {
                (EventKind::StepStatus, Some(step)) => {
                    let to = e
                        .details
                        .as_ref()
                        .and_then(|d| serde_json::from_value::<StepStatus>(d["to"].clone()).ok())
                        .ok_or_else(|| {
                            self.damaged(format!("run {} event {seq} lacks its status", run.id))
                        })?;
                    expected.insert(step.clone(), to);
                }
                (EventKind::Snapshot, _) => {
                    match e
                        .details
                        .as_ref()
                        .and_then(|d| d.get("dropped"))
                        .and_then(Value::as_u64)
                    {
                        Some(n) => snapshot_events = snapshot_events.saturating_sub(n as usize),
                        None => snapshot_events += 1,
                    }
                }
                _ => {}
            }
        }
        if seq != run.last_event_seq {
            return Err(self.damaged(format!(
                "run {} records {} events but its journal ends at {seq}",
                run.id, run.last_event_seq
            )));
        }
        for (step, state) in self.step_states(run.id)? {
            let journalled = expected.remove(&step).unwrap_or(StepStatus::Pending);
            if state.status != journalled {
                return Err(self.damaged(format!(
                    "run {} step {step} is {} but its journal says {journalled}",
                    run.id, state.status
                )));
            }
        }
        if let Some(step) = expected.keys().next() {
            return Err(self.damaged(format!(
                "run {} journals step {step}, which has no record",
                run.id
            )));
        }
        let snapshots = self.snapshots.scan_prefix(run.id.0.to_be_bytes()).count();
        if snapshots != snapshot_events {
            return Err(self.damaged(format!(
                "run {} holds {snapshots} snapshots but journals {snapshot_events}",
                run.id
            )));
        }
        Ok(())
    }

    fn high_water(&self) -> Result<layout::HighWater, StateError> {
        let next_run = self.next_run_id()?;
        let events = match next_run.checked_sub(1).filter(|&n| n > 0) {
            Some(n) => self.read_run(RunId(n))?.last_event_seq,
            None => 0,
        };
        Ok(layout::HighWater { next_run, events })
    }

    /// The mark must never run ahead of what is on disk: read it, then flush (which covers everything read,
    /// including another thread's commit not yet flushed), then write it.
    fn save_high_water(&self) -> Result<(), StateError> {
        let mark = self.high_water()?;
        self.flush()?;
        layout::write_high_water(&self.dir, mark)
    }

    fn journal(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let dir = self.dir.as_path();
        (&self.runs, &self.events)
            .transaction(|(runs, events)| {
                let mut info = tx_run(dir, runs, run)?;
                tx_journal(runs, events, &mut info, event.clone(), Timestamp::now())
            })
            .map_err(self.tx_err("record an event"))
    }

    /// Refreshes the copy `migrate status` reads while this process holds
    /// the store. Advisory: a failure is logged, never fatal to the run.
    ///
    /// Coalesced: callers record what to write and return if another thread
    /// is writing; that writer writes again until nothing is pending, so the
    /// last state always lands and parallel steps do not queue behind it.
    fn mirror(&self, run: RunId, plan: Option<&Value>) {
        {
            let mut pending = self
                .mirror_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.run = Some(run);
            if let Some(plan) = plan {
                pending.plan = Some(plan.clone());
            }
        }
        loop {
            let Ok(_writer) = self.mirror_lock.try_lock() else {
                // The writer will see what we recorded.
                return;
            };
            loop {
                let (run, plan) = {
                    let mut pending = self
                        .mirror_pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    match pending.run.take() {
                        Some(run) => (run, pending.plan.take()),
                        None => break,
                    }
                };
                self.write_mirror(run, plan.as_ref());
            }
            drop(_writer);
            // Something recorded between our last look and the unlock is ours to write.
            let again = self
                .mirror_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .run
                .is_some();
            if !again {
                return;
            }
        }
    }

    fn write_mirror(&self, run: RunId, plan: Option<&Value>) {
        let result = (|| -> Result<(), String> {
            if let Some(plan) = plan {
                mirror::write_plan(&self.dir, plan).map_err(|e| e.to_string())?;
            }
            let info = self.read_run(run).map_err(|e| e.to_string())?;
            let states = self.step_states(run).map_err(|e| e.to_string())?;
            mirror::write_state(&self.dir, &info, &states).map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(
                "cannot refresh the status copy in {}: {e}",
                self.dir.display()
            );
        }
    }

    /// Makes every write committed so far durable (fsync), sharing one
    /// fsync among concurrent callers (see `GroupCommit`).
    /// A step transition committed (and journalled) but not yet flushed.
    fn transition(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        let dir = self.dir.as_path();
        let key = step_key(run, step);
        let state = (&self.runs, &self.steps, &self.events)
            .transaction(|(runs, steps, events)| {
                let mut info = tx_run(dir, runs, run)?;
                let old: StepState = match steps.get(&key)? {
                    Some(v) => tx_decode(dir, &v, "a step record")?,
                    None => {
                        return abort(StateError::UnknownStep {
                            run,
                            step: step.to_string(),
                        });
                    }
                };
                let now = Timestamp::now();
                let (new, event) = rules::step_transition(&info, step, &old, status, error, now)
                    .map_err(ConflictableTransactionError::Abort)?;
                steps.insert(key.as_slice(), tx_encode(&new)?)?;
                tx_journal(runs, events, &mut info, event, now)?;
                Ok(new)
            })
            .map_err(self.tx_err("change a step's status"))?;
        Ok(state)
    }

    fn flush(&self) -> Result<(), StateError> {
        use std::sync::atomic::Ordering::SeqCst;
        let c = &self.commits;
        let ticket = c.issued.fetch_add(1, SeqCst) + 1;
        let _turn = c.lock.lock().unwrap_or_else(|e| e.into_inner());
        if c.flushed.load(SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket up to here belongs to a write committed before this flush starts.
        let covered = c.issued.load(SeqCst);
        self.db
            .flush()
            .map(|_| ())
            .map_err(self.db_err("flush to disk"))?;
        c.flushed.store(covered, SeqCst);
        Ok(())
    }

    fn tx_err(
        &self,
        op: &'static str,
    ) -> impl FnOnce(TransactionError<StateError>) -> StateError + '_ {
        move |e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(source) => StateError::Db {
                dir: self.dir.clone(),
                op,
                source,
            },
        }
    }

    fn read_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        let v = self
            .runs
            .get(run.0.to_be_bytes())
            .map_err(self.db_err("read a run"))?
            .ok_or(StateError::UnknownRun { run })?;
        decode(&self.dir, &v, "a run record")
    }

    fn next_run_id(&self) -> Result<u64, StateError> {
        self.meta_value(META_NEXT_RUN)?
            .ok_or_else(|| self.damaged("the run counter is missing"))
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .field("holder", self.lock.holder())
            .finish_non_exhaustive()
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // The high-water mark lets the next open notice a database that lost what this session wrote.
        let result = self.flush().and_then(|()| {
            if self.checked {
                self.save_high_water()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::warn!("closing the state store: {e}");
        }
    }
}

fn decode<T: DeserializeOwned>(dir: &Path, bytes: &[u8], what: &str) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is unreadable: {e}"),
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value)
        .map_err(|e| StateError::InvalidInput(format!("cannot encode a record: {e}")))
}

fn abort<T>(e: StateError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_decode<T: DeserializeOwned>(dir: &Path, bytes: &[u8], what: &str) -> TxResult<T> {
    decode(dir, bytes, what).map_err(ConflictableTransactionError::Abort)
}

fn tx_encode<T: Serialize>(value: &T) -> TxResult<Vec<u8>> {
    encode(value).map_err(ConflictableTransactionError::Abort)
}

fn step_key(run: RunId, step: &str) -> Vec<u8> {
    let mut k = run.0.to_be_bytes().to_vec();
    k.extend_from_slice(step.as_bytes());
    k
}

fn event_key(run: RunId, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&run.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(key: &[u8]) -> u64 {
    key.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Length-prefixed parts, so no name can collide with another by containing a separator.
/// Run, then step, then the object: a step's snapshots share a prefix.
fn snapshot_key(run: RunId, step: &str, key: &SnapshotKey) -> Vec<u8> {
    let mut k = snapshot_prefix(run, step);
    let mut part = |s: &str| {
        k.extend_from_slice(&(s.len() as u32).to_be_bytes());
        k.extend_from_slice(s.as_bytes());
    };
    part(&key.cluster);
    part(&key.object.api_version);
    part(&key.object.kind);
    part(key.object.namespace.as_deref().unwrap_or(""));
    part(&key.object.name);
    k
}

fn snapshot_prefix(run: RunId, step: &str) -> Vec<u8> {
    let mut k = run.0.to_be_bytes().to_vec();
    k.extend_from_slice(&(step.len() as u32).to_be_bytes());
    k.extend_from_slice(step.as_bytes());
    k
}

/// Reads a run inside a transaction.
fn tx_run(dir: &Path, runs: &TransactionalTree, run: RunId) -> TxResult<RunInfo> {
    match runs.get(run.0.to_be_bytes())? {
        Some(v) => tx_decode(dir, &v, "a run record"),
        None => abort(StateError::UnknownRun { run }),
    }
}

/// Appends `event` to the journal and saves the run whose counter it advanced.
fn tx_journal(
    runs: &TransactionalTree,
    events: &TransactionalTree,
    info: &mut RunInfo,
    event: NewEvent,
    now: Timestamp,
) -> TxResult<u64> {
    let e = rules::next_event(info, event, now);
    events.insert(&event_key(info.id, e.seq), tx_encode(&e)?)?;
    runs.insert(&info.id.0.to_be_bytes(), tx_encode(info)?)?;
    Ok(e.seq)
}

impl Store for SledStore {
    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError> {
        rules::validate_new_run(&new)?;
        let plan = encode(&new.plan)?;
        let dir = self.dir.as_path();
        let info = (
            &self.meta,
            &self.runs,
            &self.plans,
            &self.steps,
            &self.events,
        )
            .transaction(|(meta, runs, plans, steps, events)| {
                let next: u64 = match meta.get(META_NEXT_RUN)? {
                    Some(v) => tx_decode(dir, &v, "the run counter")?,
                    None => {
                        return abort(StateError::Damaged {
                            dir: dir.to_path_buf(),
                            detail: "the run counter is missing".into(),
                        });
                    }
                };
                let latest = match next.checked_sub(1).filter(|&n| n > 0) {
                    Some(n) => Some(tx_run(dir, runs, RunId(n))?),
                    None => None,
                };
                rules::check_can_begin(latest.as_ref())
                    .map_err(ConflictableTransactionError::Abort)?;
                let id = RunId(next);
                let now = Timestamp::now();
                let mut info = rules::new_run_info(id, &new, now);
                meta.insert(META_NEXT_RUN, tx_encode(&(next + 1))?)?;
                plans.insert(&id.0.to_be_bytes(), plan.clone())?;
                let pending = tx_encode(&StepState::pending())?;
                for step in &new.steps {
                    steps.insert(step_key(id, step), pending.clone())?;
                }
                tx_journal(runs, events, &mut info, rules::run_started_event(&new), now)?;
                Ok(info)
            })
            .map_err(self.tx_err("start a run"))?;
        self.flush()?;
        self.save_high_water()?;
        self.mirror(info.id, Some(&new.plan));
        Ok(info)
    }

    fn current_run(&self) -> Result<Option<RunInfo>, StateError> {
        Ok(rules::current(self.latest_run()?))
    }

    fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        match self.runs.last().map_err(self.db_err("read runs"))? {
            None => Ok(None),
            Some((_, v)) => decode(&self.dir, &v, "a run record").map(Some),
        }
    }

    fn run(&self, run: RunId) -> Result<RunInfo, StateError> {
        self.read_run(run)
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        self.runs
            .iter()
            .values()
            .map(|v| {
                decode(
                    &self.dir,
                    &v.map_err(self.db_err("read runs"))?,
                    "a run record",
                )
            })
            .collect()
    }

    fn plan(&self, run: RunId) -> Result<Value, StateError> {
        let v = self
            .plans
            .get(run.0.to_be_bytes())
            .map_err(self.db_err("read a plan"))?
            .ok_or(StateError::UnknownRun { run })?;
        decode(&self.dir, &v, "a plan")
    }

    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        let dir = self.dir.as_path();
        let latest = RunId(self.next_run_id()?.saturating_sub(1));
        let info = (&self.runs, &self.events)
            .transaction(|(runs, events)| {
                let old = tx_run(dir, runs, run)?;
                let (mut info, event) =
                    rules::resume(&old, latest).map_err(ConflictableTransactionError::Abort)?;
                tx_journal(runs, events, &mut info, event, Timestamp::now())?;
                Ok(info)
            })
            .map_err(self.tx_err("resume a run"))?;
        self.flush()?;
        self.save_high_water()?;
        self.mirror(run, self.plan(run).ok().as_ref());
        Ok(info)
    }

    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError> {
        let dir = self.dir.as_path();
        let info = (&self.runs, &self.events)
            .transaction(|(runs, events)| {
                let old = tx_run(dir, runs, run)?;
                let now = Timestamp::now();
                let (mut info, event) = rules::finish(&old, outcome, now)
                    .map_err(ConflictableTransactionError::Abort)?;
                tx_journal(runs, events, &mut info, event, now)?;
                Ok(info)
            })
            .map_err(self.tx_err("finish a run"))?;
        self.flush()?;
        self.save_high_water()?;
        self.mirror(run, None);
        Ok(info)
    }

    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError> {
        self.read_run(run)?;
        let mut out = BTreeMap::new();
        for item in self.steps.scan_prefix(run.0.to_be_bytes()) {
            let (k, v) = item.map_err(self.db_err("read steps"))?;
            let id = String::from_utf8_lossy(&k[8..]).into_owned();
            let state = decode(&self.dir, &v, &format!("the record of step {id}"))?;
            out.insert(id, state);
        }
        Ok(out)
    }

    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError> {
        self.read_run(run)?;
        let v = self
            .steps
            .get(step_key(run, step))
            .map_err(self.db_err("read a step"))?
            .ok_or_else(|| StateError::UnknownStep {
                run,
                step: step.to_string(),
            })?;
        decode(&self.dir, &v, &format!("the record of step {step}"))
    }

    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        let state = self.transition(run, step, status, error)?;
        // A completion mark announces no side effect, so it need not be on
        // disk before the caller goes on: the next durable write (the next
        // step's start, the end of the run) carries it. If a crash loses it,
        // the step reads as started and `--resume` re-runs it (actions are
        // idempotent) or `rollback` undoes it: both safe. Every other
        // transition precedes a side effect and is fsynced first.
        if !matches!(status, StepStatus::Done | StepStatus::RolledBack) {
            self.flush()?;
        }
        self.mirror(run, None);
        Ok(state)
    }

    fn begin_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        snapshots: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<StepState, StateError> {
        let state = self.transition(run, step, status, None)?;
        // Recording a snapshot flushes, which covers the transition committed
        // just before; with nothing recorded, flush here.
        let stored = if snapshots.is_empty() {
            0
        } else {
            self.put_snapshots_if_absent(run, step, snapshots)?
        };
        if stored == 0 {
            self.flush()?;
        }
        self.mirror(run, None);
        Ok(state)
    }

    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let seq = self.journal(run, event)?;
        self.flush()?;
        Ok(seq)
    }

    fn record_progress(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        // Announces nothing: sled keeps it in memory until the next flush
        // (the next durable write), so a crash may lose the newest ones.
        self.journal(run, event)
    }

    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError> {
        self.read_run(run)?;
        let start = event_key(run, since.saturating_add(1));
        let end = event_key(RunId(run.0.saturating_add(1)), 0);
        let mut out = Vec::new();
        for item in self.events.range(start..end) {
            let (_, v) = item.map_err(self.db_err("read events"))?;
            out.push(decode(&self.dir, &v, "an event")?);
        }
        Ok(out)
    }

    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError> {
        rules::validate_key(key)?;
        let dir = self.dir.as_path();
        let skey = snapshot_key(run, step, key);
        let now = Timestamp::now();
        let record = encode(&SnapshotRecord {
            key: key.clone(),
            step: step.to_string(),
            taken: now,
            object,
        })?;
        let present =
            serde_json::from_slice::<SnapshotRecord>(&record).is_ok_and(|r| r.object.is_some());
        let stored = (&self.runs, &self.steps, &self.snapshots, &self.events)
            .transaction(|(runs, steps, snapshots, events)| {
                let mut info = tx_run(dir, runs, run)?;
                rules::require_running(&info).map_err(ConflictableTransactionError::Abort)?;
                if steps.get(step_key(run, step))?.is_none() {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                }
                if snapshots.get(skey.as_slice())?.is_some() {
                    return Ok(false);
                }
                snapshots.insert(skey.as_slice(), record.clone())?;
                tx_journal(
                    runs,
                    events,
                    &mut info,
                    rules::snapshot_event(step, key, present),
                    now,
                )?;
                Ok(true)
            })
            .map_err(self.tx_err("record a snapshot"))?;
        if stored {
            self.flush()?;
        }
        Ok(stored)
    }

    fn put_snapshots_if_absent(
        &self,
        run: RunId,
        step: &str,
        objects: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<usize, StateError> {
        let dir = self.dir.as_path();
        let now = Timestamp::now();
        let mut records = Vec::with_capacity(objects.len());
        for (key, object) in objects {
            rules::validate_key(&key)?;
            let present = object.as_ref().is_some_and(|v| !v.is_null());
            let record = encode(&SnapshotRecord {
                key: key.clone(),
                step: step.to_string(),
                taken: now,
                object,
            })?;
            records.push((snapshot_key(run, step, &key), key, present, record));
        }
        let stored = (&self.runs, &self.steps, &self.snapshots, &self.events)
            .transaction(|(runs, steps, snapshots, events)| {
                let mut info = tx_run(dir, runs, run)?;
                rules::require_running(&info).map_err(ConflictableTransactionError::Abort)?;
                if steps.get(step_key(run, step))?.is_none() {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                }
                let mut stored = 0;
                for (skey, key, present, record) in &records {
                    if snapshots.get(skey.as_slice())?.is_some() {
                        continue;
                    }
                    snapshots.insert(skey.as_slice(), record.clone())?;
                    tx_journal(
                        runs,
                        events,
                        &mut info,
                        rules::snapshot_event(step, key, *present),
                        now,
                    )?;
                    stored += 1;
                }
                Ok(stored)
            })
            .map_err(self.tx_err("record snapshots"))?;
        if stored > 0 {
            self.flush()?;
        }
        Ok(stored)
    }

    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError> {
        self.read_run(run)?;
        match self
            .snapshots
            .get(snapshot_key(run, step, key))
            .map_err(self.db_err("read a snapshot"))?
        {
            None => Ok(None),
            Some(v) => decode::<SnapshotRecord>(&self.dir, &v, &format!("the snapshot of {key}"))
                .map(|r| Some(r.into())),
        }
    }

    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError> {
        self.read_run(run)?;
        let prefix = match &filter.step {
            Some(step) => snapshot_prefix(run, step),
            None => run.0.to_be_bytes().to_vec(),
        };
        let mut out = Vec::new();
        for item in self.snapshots.scan_prefix(prefix) {
            let (_, v) = item.map_err(self.db_err("read snapshots"))?;
            let r: SnapshotRecord = decode(&self.dir, &v, "a snapshot")?;
            if filter.cluster.as_ref().is_none_or(|c| *c == r.key.cluster) {
                out.push(Snapshot::from(r));
            }
        }
        // Keys are stored length-prefixed; return them in the same order as the memory store.
        out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.step.cmp(&b.step)));
        Ok(out)
    }

    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError> {
        rules::require_running(&self.read_run(run)?)?;
        // Only this step's own task writes its snapshots, so the keys read here are all there are.
        let keys: Vec<sled::IVec> = self
            .snapshots
            .scan_prefix(snapshot_prefix(run, step))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(self.db_err("read snapshots"))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let dir = self.dir.as_path();
        let dropped = keys.len();
        (&self.runs, &self.snapshots, &self.events)
            .transaction(|(runs, snapshots, events)| {
                let mut info = tx_run(dir, runs, run)?;
                for k in &keys {
                    snapshots.remove(k)?;
                }
                tx_journal(
                    runs,
                    events,
                    &mut info,
                    rules::snapshots_dropped_event(step, dropped),
                    Timestamp::now(),
                )?;
                Ok(())
            })
            .map_err(self.tx_err("forget a step's snapshots"))?;
        self.flush()?;
        Ok(dropped)
    }

    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError> {
        rules::check_can_replace_plan(self.latest_run()?.map(|r| r.id), run)?;
        let dir = self.dir.as_path();
        let plan = encode(&plan)?;
        let pending = encode(&StepState::pending())?;
        let info = (&self.runs, &self.plans, &self.steps, &self.events)
            .transaction(|(runs, plans, step_tree, events)| {
                let mut info = tx_run(dir, runs, run)?;
                let mut added = 0;
                for s in steps {
                    let key = step_key(run, s);
                    if step_tree.get(&key)?.is_none() {
                        step_tree.insert(key.as_slice(), pending.clone())?;
                        added += 1;
                    }
                }
                plans.insert(&run.0.to_be_bytes(), plan.clone())?;
                info.fingerprint = fingerprint.to_string();
                tx_journal(
                    runs,
                    events,
                    &mut info,
                    rules::plan_replaced_event(fingerprint, added),
                    Timestamp::now(),
                )?;
                Ok(info)
            })
            .map_err(self.tx_err("replace the plan"))?;
        self.flush()?;
        self.save_high_water()?;
        self.mirror(run, self.plan(run).ok().as_ref());
        Ok(info)
    }
}

impl From<SnapshotRecord> for Snapshot {
    fn from(r: SnapshotRecord) -> Self {
        Snapshot {
            key: r.key,
            step: r.step,
            taken: r.taken,
            object: r.object,
        }
    }
}

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic (sled panics on some corrupt files) into `Damaged`. The panic message is kept
/// for the error instead of being printed by the default hook.
pub(super) fn catch_panics<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, StateError>,
) -> Result<T, StateError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                CAUGHT.with(|c| *c.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.unwrap_or_else(|payload| {
        let message = CAUGHT
            .with(|c| c.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("the database could not be read ({message})"),
        })
    })
}
