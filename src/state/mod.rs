//! The run's checkpoint: a `Store` trait, its sled implementation and an in-memory twin.
//!
//! What is kept, per state directory (default `./.migrate`, mode 0700):
//! - runs, oldest first, each with its spec fingerprint, plan (opaque JSON), kind and outcome;
//! - per run, each step's status, attempts, times and last error;
//! - per run, the first snapshot of every object the run touched (or the fact that it was absent);
//! - per run, an append-only journal of events numbered from 1;
//! - per run and step, what the step left of every object it changed once it was done (`LeftObject`: a hash of
//!   the content, the content itself except for Secrets), so rollback can tell drift from its own changes.
//!
//! Durability contract (the sled store; the memory store keeps the same rules but nothing survives the process):
//! - When a method that changes something returns `Ok`, the change is on disk (sled `flush`, i.e. fsync, of a
//!   commit that includes it): `begin_run`, `resume_run`, `finish_run`, `pause_run`, `set_step_status` (every status, `Done`
//!   and `RolledBack` included), `begin_step`, `finish_step` (its records and its status with one flush), `record_event`, `put_snapshot(s)_if_absent`, `drop_snapshots` and
//!   `replace_plan`. A crash at any later moment, of the process or of the OS, loses none of it.
//! - The one exception is `record_progress`: committed, but only made durable by the next durable write of any
//!   thread, so a crash may lose the newest progress notes (nothing acknowledged depends on them).
//! - A step's start and its snapshots are two commits made durable by one flush before `begin_step` returns
//!   (a crash between them leaves the step started with fewer snapshots, before any side effect: harmless).
//! - Changes that span records (a step status and its journal entry) are one
//!   sled transaction: after a crash either all of it is there or none. A call cut short by the crash (it had
//!   not returned) may be there or not, never half.
//! - Group commit: concurrent callers share one fsync when their transactions committed before it started; each
//!   still returns only once its own change is durable. `SledStore::fsyncs` counts the flushes that wrote.
//!
//! So the engine marks a step running, takes its snapshots, then acts, then marks it done and only then reports
//! it done: after a crash the store shows every acknowledged transition and nothing half-written, and `--resume`
//! never repeats a step that was reported done. (sled keeps a commit in its own buffer, not the kernel's, until a
//! flush or its background flusher: without the flush a SIGKILL loses it, as a state directory written by the
//! first release showed; see tests/fixtures/state-v1-killed-in-install.)
//!
//! Runs: `begin_run` starts one (refused while the latest is still marked running: resume it, or finish it as
//! interrupted first). `apply --resume` continues the latest run whatever its outcome (`resume_run`: after a
//! crash, an interruption, a failure, a rollback, or with a new plan after success). Steps and snapshots only change while their run is `Running`; events may
//! be journalled on any run. Snapshots belong to the run that took them: a rollback run reads the snapshots of
//! the apply run(s) it undoes by their run ids.
//!
//! Layout of a state directory: `migrate-state.json` (format, schema, store id, the migrate version that wrote
//! it; see `SCHEMA_VERSION`), `db/` (sled), `lock` (flock),
//! `lock.json` (holder record), `high-water.json` (how far the database had got at the last run boundary or clean
//! close). Opening checks permissions (0700, our uid), the marker, the schema, that the database is the one the
//! marker names, each run's journal (its end, and the journal's index: a summary kept in the journal's own
//! transactions, with a digest of the step records) against the step and snapshot records, and the high-water
//! mark: sled reads a damaged log as an earlier, self-consistent state without complaint, and that must not
//! pass for a fresh start. Damage that sled reads as a consistent state newer than the last boundary cannot be
//! told from a crash.
//!
//! One writer: `SledStore::open` holds an OS lock on the directory and a `lock.json` holder record; a second
//! opener gets `StateError::Locked` naming the holder. A holder that died on this host is taken over with a
//! `LockNotice` for the CLI to print; one on another host (or a live reused pid) needs `force_unlock`. sled 0.34
//! cannot open a database read-only, so `migrate status` also needs the lock: while a run is going it fails with
//! the holder named (`read_holder` shows who without opening).
//!
//! Secrets: snapshots keep Secret data verbatim for rollback, but `Snapshot` is not `Serialize` and its `Debug`
//! redacts; event details are redacted and messages and step errors scrubbed (`redact_text`) when recorded;
//! `redact_object` serves any other export. Every file in the directory is 0600 and every directory 0700, sled's
//! included (`modes`: umask 0077 while a store is open, tightened at open and close). `forget_snapshots` removes
//! every payload after sign-off, leaving tombstones that make a rollback fail with `SnapshotForgotten`, and
//! rewrites the database so no old segment keeps them (`compaction`: crash-safe swap finished by the next open).

mod compaction;
mod delta;
mod error;
mod holder;
mod kube_store;
mod layout;
mod lock;
mod memory;
pub mod mirror;
mod model;
mod modes;
mod redact;
mod rules;
mod sled_store;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

pub use compaction::FAILPOINT_ENV as FORGET_FAILPOINT_ENV;
pub use error::{HeldBy, StateError};
pub use holder::{Holder, LockNotice};
pub use kube_store::{AfterConflict, ForcedRelease, after_conflict as after_lease_conflict};
pub use kube_store::{
    KUBE_SCHEME, KubeLocation, KubeStore, LEASE_DURATION_ENV, LeaseHolder, Pulled,
    force_unlock as force_unlock_kube, pull as pull_kube,
};
pub use lock::{force_unlock, read_holder};
pub use memory::MemoryStore;
pub use model::{
    Event, EventKind, Left, LeftObject, NewEvent, NewRun, Outcome, RunId, RunInfo, RunKind,
    Snapshot, SnapshotFilter, SnapshotKey, StepState, StepStatus, Timestamp,
};
pub use redact::{redact_object, redact_text};
pub use sled_store::{Forgotten, HeldSnapshot, Opened, SledStore};

/// The on-disk schema this build writes: the state directory's layout and the format of its records.
///
/// - 1: the first release. Records carry no version.
/// - 2: every record carries `"_v": 2` (a plan is wrapped as `{"_v": 2, "plan": ...}`), the marker names the
///   migrate version that wrote it (`written_by`). Otherwise as 1: this build reads both, and upgrades a schema 1
///   directory (its marker and schema record; records stay as they are until rewritten) when it opens one.
///
/// A directory or record of a newer schema is refused before anything is written, naming who wrote it.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema this build reads.
pub const OLDEST_SCHEMA: u32 = 1;

/// Where the engine checkpoints. Every mutating method but `record_progress` is durable and atomic when it
/// returns `Ok` (the contract above).
/// Implementations are shared between the engine's parallel steps (`Arc<dyn Store>`).
pub trait Store: Send + Sync {
    /// The id this store was created with, the same wherever it is opened from (and kept by `state push` and
    /// `state pull`'s copies only as their own new ids); `None` for a store with no lasting identity (memory).
    fn store_id(&self) -> Result<Option<String>, StateError> {
        Ok(None)
    }

    /// The id of this process's hold on the store's lock (what `migrate unlock --force ID` takes); `None` for a
    /// store without one (memory). The mesh's Lease names it too, so one id frees all a dead process held.
    fn holder_id(&self) -> Option<String> {
        None
    }

    /// Starts a run with every step `Pending`, journals `run-started` (event 1).
    /// Fails with `RunInProgress` while the latest run is still `Running`.
    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError>;

    /// The latest run unless it succeeded: the one `apply --resume` continues.
    fn current_run(&self) -> Result<Option<RunInfo>, StateError>;

    /// The latest run, whatever its outcome.
    fn latest_run(&self) -> Result<Option<RunInfo>, StateError>;

    /// The run with this id.
    fn run(&self, run: RunId) -> Result<RunInfo, StateError>;

    /// Every run, oldest first.
    fn runs(&self) -> Result<Vec<RunInfo>, StateError>;

    /// The plan given to `begin_run`, unchanged.
    fn plan(&self, run: RunId) -> Result<Value, StateError>;

    /// `plan` as JSON text, for a reader that needs only part of a large plan (it can skip the rest unparsed).
    fn plan_json(&self, run: RunId) -> Result<String, StateError> {
        self.plan(run).map(|plan| plan.to_string())
    }

    /// Sets the latest run back to `Running` whatever its outcome (failed, interrupted, crashed while running,
    /// rolled back, or succeeded and continued with a new plan); journals `run-resumed`.
    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError>;

    /// Reopens any run (not only the latest) to roll it back, like `resume_run`; refused while a later run is
    /// still `Running`. See `rules::reopen_for_rollback`.
    fn reopen_for_rollback(&self, run: RunId) -> Result<RunInfo, StateError>;

    /// Records how a `Running` run ended (any outcome but `Running`); journals `run-finished`.
    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError>;

    /// Ends a `Running` run that stopped, as asked, after the phase named `after` (`apply --until`): like
    /// `finish_run(Interrupted)` with `RunInfo::paused_after` set, in one durable transaction with its journal
    /// entry. `resume_run` clears it. A crash before it returns leaves the run `Running`, as after any crash.
    fn pause_run(&self, run: RunId, after: &str) -> Result<RunInfo, StateError>;

    /// Every step of the run, by id.
    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError>;

    /// One step of the run.
    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError>;

    /// Moves a step to `status` (see `transition_allowed`) and journals it, atomically and durably (every status:
    /// a step is reported done only once its `Done` is on disk). Entering `Running` or `RollingBack` counts an
    /// attempt; `error` becomes `last_error` (scrubbed with `redact_text`).
    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError>;

    /// Starts a step: `set_step_status(status)` and `put_snapshots_if_absent`
    /// made durable together, before the step's first side effect. Stores
    /// that can should do it with one flush.
    fn begin_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        snapshots: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<StepState, StateError> {
        let state = self.set_step_status(run, step, status, None)?;
        if !snapshots.is_empty() {
            self.put_snapshots_if_absent(run, step, snapshots)?;
        }
        Ok(state)
    }

    /// Ends a step: replaces every `LeftObject` of `step` with `left` (what it left of the objects it changed)
    /// and moves it to `status` (as `set_step_status`), made durable together by one flush. The records are
    /// committed first: a crash between the two leaves them beside a step not marked, which its next
    /// execution replaces.
    fn finish_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        left: Vec<(SnapshotKey, Left)>,
    ) -> Result<StepState, StateError>;

    /// What `step` left of each object it changed when it was last done (see `finish_step`), ordered by key.
    fn left_objects(&self, run: RunId, step: &str) -> Result<Vec<LeftObject>, StateError>;

    /// Appends to the run's journal (any run, finished or not); returns the event's sequence number.
    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError>;

    /// Like `record_event`, for progress notes whose loss in an OS crash changes nothing (the engine's per-action
    /// log: step statuses and snapshots are the truth): journalled atomically, but not forced to disk on its own;
    /// the next durable write covers it, and a crash before that may lose it.
    fn record_progress(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        self.record_event(run, event)
    }

    /// The run's events with a sequence number above `since` (0 for all), in order.
    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError>;

    /// Records `object` (`None`: the object did not exist) as `step`'s snapshot of `key`, unless the step already
    /// has one. Returns whether it was recorded; a step's first snapshot is never overwritten (a resumed attempt
    /// must not replace it with its own half-applied change).
    ///
    /// Snapshots are per step because rollback goes back one step at a time: an object changed in phase 1 and again
    /// in phase 4 is put back to its post-phase-3 state by phase 4's rollback, and to its original by phase 1's.
    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError>;

    /// `put_snapshot_if_absent` for several objects at once (one durable write); returns how many were recorded.
    fn put_snapshots_if_absent(
        &self,
        run: RunId,
        step: &str,
        objects: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<usize, StateError> {
        let mut stored = 0;
        for (key, object) in objects {
            stored += usize::from(self.put_snapshot_if_absent(run, step, &key, object)?);
        }
        Ok(stored)
    }

    /// `step`'s snapshot of `key`.
    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError>;

    /// Forgets `step`'s snapshots once it is rolled back, so applying it again takes fresh ones. Journalled.
    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError>;

    /// Continues the latest run with a new plan (`apply --resume --replan`): the fingerprint and plan are replaced,
    /// steps new to the plan start `Pending`, steps already recorded keep their state. Journalled.
    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError>;

    /// The run's snapshots matching `filter`, ordered by key.
    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError>;
}

pub use rules::transition_allowed;

/// Whether `dir` holds a state directory (its marker), without opening or creating anything.
pub fn is_state_dir(dir: &std::path::Path) -> bool {
    dir.join(layout::MARKER).is_file()
}
