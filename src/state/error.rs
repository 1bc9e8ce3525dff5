//! The one error type of the state store: every variant says what happened and where.

use std::path::PathBuf;

use super::holder::Holder;
use super::model::{Outcome, RunId, SnapshotKey, StepStatus, Timestamp};

/// The one error type of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {}: cannot {op} {}: {source}", dir.display(), path.display())]
    Io {
        dir: PathBuf,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state directory {}: it exists but is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },

    #[error(
        "state directory {}: permissions are {mode:04o}, but it holds resource snapshots (Secrets included) and must be \
         private to its owner; run `chmod 700 {}`",
        dir.display(), dir.display()
    )]
    InsecurePermissions { dir: PathBuf, mode: u32 },

    #[error(
        "state directory {}: owned by uid {owner}, but this process runs as uid {uid}; only its owner may use it",
        dir.display()
    )]
    NotOwner { dir: PathBuf, owner: u32, uid: u32 },

    #[error(
        "{} is not a migrate state directory (it holds {found} and no migrate-state.json); a state directory must \
         be new or empty when first used",
        dir.display()
    )]
    NotAStateDir { dir: PathBuf, found: String },

    #[error(
        "state directory {}: written by a newer migrate ({}, state schema {found}); this migrate ({}) reads state \
         schemas up to {supported}; nothing was changed",
        dir.display(), written_by.as_deref().unwrap_or("version not recorded"), env!("CARGO_PKG_VERSION")
    )]
    NewerSchema {
        dir: PathBuf,
        found: u32,
        supported: u32,
        /// The migrate version the directory's marker names, when it names one.
        written_by: Option<String>,
    },

    #[error(
        "state directory {}: {what} was written in state format {found} by a newer migrate ({}); this migrate ({}) \
         reads formats up to {supported}; nothing was changed",
        dir.display(), written_by.as_deref().unwrap_or("version not recorded"), env!("CARGO_PKG_VERSION")
    )]
    NewerRecord {
        dir: PathBuf,
        what: String,
        found: u32,
        supported: u32,
        /// The migrate version the directory's marker names, when it names one.
        written_by: Option<String>,
    },

    #[error(
        "state directory {}: schema {found} is unknown to this migrate (it reads schemas {} to {supported}); nothing \
         was changed",
        dir.display(), crate::state::OLDEST_SCHEMA
    )]
    UnknownSchema {
        dir: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "state directory {} is damaged: {detail}; its snapshots may still be needed for \
         rollback, so keep it until they are not",
        dir.display()
    )]
    Damaged { dir: PathBuf, detail: String },

    #[error("state directory {}: database error while trying to {op}: {source}", dir.display())]
    Db {
        dir: PathBuf,
        op: &'static str,
        #[source]
        source: sled::Error,
    },

    #[error("state directory {}: {}", dir.display(), describe_lock(holder.as_deref()))]
    Locked {
        dir: PathBuf,
        holder: Option<Box<Holder>>,
    },

    #[error(
        "state directory {}: the lock record names pid {} on host {} (`{}`) since {}, holder id {}, and {reason}; only \
         removing the lock by force with that holder id frees it",
        dir.display(), holder.pid, holder.host, holder.command, holder.since, holder.id
    )]
    StaleLock {
        dir: PathBuf,
        holder: Box<Holder>,
        reason: String,
    },

    #[error("state directory {}: no lock record to remove", dir.display())]
    NotLocked { dir: PathBuf },

    #[error(
        "state directory {}: the lock is held by holder id {found}, not {given}; nothing was changed",
        dir.display()
    )]
    HolderMismatch {
        dir: PathBuf,
        given: String,
        found: String,
    },

    #[error("run {run} does not exist")]
    UnknownRun { run: RunId },

    #[error("run {run} has no step {step:?}")]
    UnknownStep { run: RunId, step: String },

    #[error("run {run} is {outcome}; resume it before changing its steps or snapshots")]
    RunNotRunning { run: RunId, outcome: Outcome },

    #[error(
        "run {run} is still marked running (its process stopped without finishing it); resume it, or finish it as \
         interrupted, before starting another"
    )]
    RunInProgress { run: RunId },

    #[error("run {run} cannot be resumed: {reason}")]
    CannotResume { run: RunId, reason: String },

    #[error("run {run}, step {step}: cannot go from {from} to {to}")]
    InvalidTransition {
        run: RunId,
        step: String,
        from: StepStatus,
        to: StepStatus,
    },

    #[error(
        "run {run}, step {step}: snapshot forgotten on {on} by forget-snapshots (`migrate state forget-snapshots`): \
         rollback cannot restore {key}; put it back by hand or from a backup"
    )]
    SnapshotForgotten {
        run: RunId,
        step: String,
        key: Box<SnapshotKey>,
        on: Timestamp,
    },

    #[error("state store {location}: {detail}")]
    KubeConfig { location: String, detail: String },

    #[error("state store {location}: cannot {op}: {source}")]
    Kube {
        location: String,
        op: &'static str,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(
        "state store {location} is damaged: {detail}; its snapshots may still be needed for rollback, so keep its \
         Secrets until they are not"
    )]
    LogDamaged { location: String, detail: String },

    #[error(
        "state store {location}: in use by {} (Lease {}, renewed {}, held for {}s past each renewal); wait for it \
         to finish, or stop it (its checkpoint lets its run be resumed); if it is gone for good, \
         `migrate unlock --force {}` frees it",
        by.holder, by.lease, by.renewed, by.duration, by.id
    )]
    LeaseHeld { location: String, by: Box<HeldBy> },

    #[error(
        "state store {location}: this process lost its Lease {lease}{}; it wrote nothing more and stops: whoever \
         holds the Lease now carries on, or `apply --resume` resumes the run",
        holder.as_deref().map(|h| format!(" (now held by {h})")).unwrap_or_default()
    )]
    LostLease {
        location: String,
        lease: String,
        holder: Option<String>,
    },

    #[error("invalid input to the state store: {0}")]
    InvalidInput(String),
}

fn describe_lock(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!(
            "in use by pid {} on host {} (`{}`) since {}, holder id {}; wait for it to finish, or stop it \
             (its checkpoint lets its run be resumed)",
            h.pid, h.host, h.command, h.since, h.id
        ),
        None => "in use by another process, which has not (yet) written its lock record; wait for it to finish"
            .to_string(),
    }
}

/// Who holds a store's Lease (`StateError::LeaseHeld`).
#[derive(Debug, Clone)]
pub struct HeldBy {
    /// The Lease's name.
    pub lease: String,
    /// Its `holderIdentity`: `user@host pid N id ID`.
    pub holder: String,
    /// The holder id `migrate unlock --force` takes.
    pub id: String,
    /// Its `renewTime`, or `never`.
    pub renewed: String,
    /// `leaseDurationSeconds`.
    pub duration: i32,
}
