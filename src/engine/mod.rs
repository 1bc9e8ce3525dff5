//! The engine: runs a plan's steps against the clusters, checkpointing every
//! transition in the state store (write-ahead), and rolls them back.
//!
//! - `apply` marks a step running (flushed) before its first action and done
//!   (flushed, before it is reported) after its last; objects are snapshotted, per step, before the
//!   step first changes them, and a resumed step keeps its first snapshots.
//! - `rollback` walks the same DAG backwards over the steps of later phases
//!   that did anything, running their rollback actions.
//! - One lineage: `apply` refuses a new run of another plan while an earlier
//!   run holds steps not rolled back (`run::may_start` says why); `rollback`
//!   undoes every apply run that still does, newest first.
//! - Effects at most once: a restart stamps a value derived from the run, step,
//!   action and the step's cycle; the drain's scale is preceded by a durable
//!   restore-pending record (`restores`), performed at the end of every run.
//! - Drift: a done step records what it left of each object it changed
//!   (`drift`); rollback compares before any change and refuses objects
//!   changed since, unless forced.
//! - `apply --until PHASE` leaves later phases' steps out of the walk and
//!   records the pause once the walk ends cleanly (`until`).
//! - Independent steps run in parallel (`scheduler`); transient API errors
//!   are retried per action with capped, jittered backoff.

mod access_gate;
mod action;
mod backends;
mod blocking_store;
mod ca_files;
mod checks;
mod conditions;
mod config_edit;
mod context;
pub mod drift;
pub mod failpoint;
mod first_change;
mod gate_record;
mod identity;
mod installer;
mod live_diff;
pub mod mesh_lease;
mod observer;
mod probe;
mod restart_condition;
mod restart_stamp;
mod restores;
mod run;
pub mod saved_plan;
pub mod scheduler;
mod secrets;
mod step_history;
mod until;

pub use blocking_store::OffloadedStore;
pub use ca_files::generated_root_key;
pub use checks::gate::verifier_expect;
pub use context::{EngineOptions, Environment};
pub use drift::DriftReport;
pub use first_change::untouched_steps;
pub use gate_record::{GateRecord, finding_line};
pub use live_diff::{Change, ObjectDiff, live_diff, render_text as render_live_diff};
pub use observer::{NullObserver, Observer, ProbeReport, RunStart};
pub use restores::{PendingRestore, pending as pending_restores};
pub use run::{
    ApplyMode, DriftPolicy, EngineError, RunLineage, RunSummary, StoredPlan, apply,
    check_identities, drift_report, halt, lineage, rollback, rollback_steps, rollback_with,
};
pub use until::Paused;
