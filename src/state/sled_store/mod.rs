//! `Store` on sled 0.34: one tree per record type, every change in one transaction across the trees it touches,
//! flushed (fsync) before the call returns.
//!
//! - `open`: opening a state directory and verifying it (marker, schema, store id, high-water mark, journal
//!   against step and snapshot records through the journal's index), and turning sled's panics on corrupt
//!   files into errors;
//! - `index`, `digest`: the journal's index, one summary per run that lets opening check a run without reading
//!   its journal;
//! - `records`: the `Store` operations on runs, steps, events and snapshots;
//! - `encoding`: how keys and records are laid out in the trees (a contract with existing state directories);
//! - `journal`: appending an event with its run record and the journal's index (`index`), in one transaction;
//! - `status_copy`: the copy of the run's status that `migrate status` reads while the store is held.

mod digest;
mod encoding;
mod forget;
mod import;
mod index;
mod journal;
mod open;

#[cfg(test)]
pub(crate) use open::open_sled;
mod records;
mod status_copy;

#[cfg(test)]
pub(in crate::state) use open::catch_panics;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
};
use sled::{Transactional, Tree};

use super::error::StateError;
use super::holder::{Holder, LockNotice};
use super::lock::DirLock;
use super::model::{NewEvent, RunId, RunInfo, StepState, StepStatus, Timestamp};
use super::rules;
pub use forget::{Forgotten, HeldSnapshot};

use digest::Digest;
use encoding::{abort, decode, step_key, tx_decode, tx_encode, tx_run};
use journal::{TxJournal, tx_journal, tx_journal_with};

const META_SCHEMA: &[u8] = b"schema";
const META_STORE_ID: &[u8] = b"store_id";
const META_NEXT_RUN: &[u8] = b"next_run";

/// A store opened on a state directory, and what to tell the user about the lock (a takeover).
#[derive(Debug)]
pub struct Opened {
    /// The open store, holding the directory's lock.
    pub store: SledStore,
    /// Set when the lock was taken over from a holder that is gone.
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
    /// What each step left of the objects it changed (`LeftObject`), keyed as snapshots are.
    left: Tree,
    /// The journal's index (`index`), kept in the same transactions as the journal.
    index: Tree,
    /// Set once the open checks passed: only then may closing record a high-water mark.
    checked: bool,
    /// Group commit: one fsync serves every write committed before it started.
    commits: GroupCommit,
    /// The copy of the run's status that `migrate status` reads while the store is held (`status_copy`).
    status: status_copy::StatusCopy,
    lock: DirLock,
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
    /// Database flushes that wrote something (sled fsyncs only then).
    fsyncs: std::sync::atomic::AtomicU64,
}

type TxResult<T> = ConflictableTransactionResult<T, StateError>;

impl SledStore {
    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many flushes of the database reached the disk since it was opened
    /// (sled skips the fsync when nothing was written since the last one;
    /// its background flusher is off). Excludes the small files of the
    /// directory (marker, high-water mark, lock record).
    pub fn fsyncs(&self) -> u64 {
        self.commits
            .fsyncs
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the status copy shows every change made so far (a resume rewrites it on the side; see
    /// `status_copy`).
    pub fn status_copy_written(&self) {
        self.status.finish_deferred();
    }

    /// This process's lock record on the directory.
    pub fn holder(&self) -> &Holder {
        self.lock.holder()
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

    fn journal(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let dir = self.dir.as_path();
        (&self.runs, &self.events, &self.index)
            .transaction(|(runs, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                tx_journal(dir, &j, &mut info, event.clone(), Timestamp::now())
            })
            .map_err(self.tx_err("record an event"))
    }

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
        let state = (&self.runs, &self.steps, &self.events, &self.index)
            .transaction(|(runs, steps, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                let Some(old_bytes) = steps.get(&key)? else {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                };
                let old: StepState = tx_decode(dir, &old_bytes, "a step record")?;
                let now = Timestamp::now();
                let (new, event) = rules::step_transition(&info, step, &old, status, error, now)
                    .map_err(ConflictableTransactionError::Abort)?;
                let bytes = tx_encode(&new)?;
                // The record replaced leaves the steps' digest, the new one joins it (`index`).
                let moved = Digest::of(&key, &bytes).sub(Digest::of(&key, &old_bytes));
                steps.insert(key.as_slice(), bytes)?;
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                tx_journal_with(dir, &j, &mut info, event, now, moved)?;
                Ok(new)
            })
            .map_err(self.tx_err("change a step's status"))?;
        Ok(state)
    }

    /// Makes every write committed so far durable (fsync), sharing one
    /// fsync among concurrent callers (see `GroupCommit`).
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
        let bytes = self.db.flush().map_err(self.db_err("flush to disk"))?;
        if bytes > 0 {
            c.fsyncs.fetch_add(1, SeqCst);
        }
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
        read_run(&self.dir, &self.runs, run)
    }

    fn next_run_id(&self) -> Result<u64, StateError> {
        self.meta_value(META_NEXT_RUN)?
            .ok_or_else(|| self.damaged("the run counter is missing"))
    }
}

/// Run `run`'s record in `runs` (shared with the status copy's writer, see `records::read_steps`).
fn read_run(dir: &Path, runs: &Tree, run: RunId) -> Result<RunInfo, StateError> {
    let v = runs
        .get(run.0.to_be_bytes())
        .map_err(|source| StateError::Db {
            dir: dir.to_path_buf(),
            op: "read a run",
            source,
        })?
        .ok_or(StateError::UnknownRun { run })?;
    decode(dir, &v, "a run record")
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
        // A deferred rewrite of the status copy reads the trees: done before the database goes.
        self.status.finish_deferred();
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
