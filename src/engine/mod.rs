//! The engine: runs a plan's steps against the clusters, checkpointing every
//! transition in the state store (write-ahead), and rolls them back.
//!
//! - `apply` marks a step running (flushed) before its first action and done
//!   (flushed, before it is reported) after its last; objects are snapshotted, per step, before the
//!   step first changes them, and a resumed step keeps its first snapshots.
//! - `rollback` walks the same DAG backwards over the steps of later phases
//!   that did anything, running their rollback actions.
//! - Independent steps run in parallel (`scheduler`); transient API errors
//!   are retried per action with capped, jittered backoff.

mod action;
mod backends;
mod blocking_store;
mod ca_files;
mod checks;
mod conditions;
mod config_edit;
mod context;
pub mod failpoint;
mod installer;
mod live_diff;
mod observer;
mod probe;
mod run;
pub mod scheduler;
mod secrets;

pub use blocking_store::OffloadedStore;
pub use context::{EngineOptions, Environment};
pub use live_diff::{Change, ObjectDiff, live_diff, render_text as render_live_diff};
pub use observer::{NullObserver, Observer, ProbeReport};
pub use run::{ApplyMode, EngineError, RunSummary, StoredPlan, apply, rollback, rollback_steps};
