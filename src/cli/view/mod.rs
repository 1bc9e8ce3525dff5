//! Views: everything the command line prints, one module per command's
//! output (as Terraform's `internal/command/views`). Commands compute
//! values; views word them, for a person (text) or a program (JSON).
//!
//! Errors are printed as `error: MESSAGE`, followed by the hint for their
//! kind (see [`hints`]) when the library's message does not give it.

pub mod apply;
#[cfg(feature = "sim")]
pub mod demo;
pub mod hints;
pub mod observer;
pub mod plan;
pub mod progress;
pub mod rollback;
pub mod spec;
pub mod status;
pub mod validate;

use crate::engine::RunSummary;
use crate::state::LockNotice;

/// An error that ends the command, with the hint for its kind.
pub fn error(err: &anyhow::Error) {
    eprintln!(
        "error: {}",
        hints::with_hint(format!("{err:#}"), hints::for_any(err))
    );
}

/// Input refused before anything was done (a flag's value, a missing run).
pub fn invalid(message: &str) {
    eprintln!("error: {message}");
}

/// The state directory was taken over from a holder that died.
pub fn takeover_note(notice: &LockNotice) {
    eprintln!("note: {notice}");
}

/// The first Ctrl-C.
pub fn interrupted() {
    eprintln!(
        "\ninterrupted: starting no new step; running steps finish and are checkpointed (Ctrl-C again to quit now)"
    );
}

/// The second Ctrl-C.
pub fn quitting() {
    eprintln!("quitting; the checkpoint shows every step that finished");
}

/// One `FAILED STEP: ERROR` line per failed step of a run (apply or rollback).
fn failed_steps(summary: &RunSummary) {
    for (step, error) in &summary.failed {
        eprintln!("FAILED {step}: {error}");
    }
}

/// `migrate unlock`: whose lock was released.
pub fn unlocked(holder: &crate::state::Holder) {
    println!(
        "released the lock of pid {} on {} (held since {})",
        holder.pid, holder.host, holder.since
    );
}
