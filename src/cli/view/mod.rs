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

/// The first stop signal (Ctrl-C, SIGTERM or SIGHUP).
pub fn interrupted(signal: &str) {
    say(&format!(
        "\ninterrupted ({signal}): starting no new step; running steps finish and are checkpointed \
         (a second Ctrl-C, SIGTERM or SIGHUP quits at once)"
    ));
}

/// A second stop signal: what was killed, and what the journal now says was running.
pub fn quitting(signal: &str, killed: usize, running: &str) {
    say(&format!(
        "quitting at once ({signal}): {killed} installer process group(s) killed; {running}"
    ));
}

/// Signals cannot be watched here.
pub fn no_signals(error: &std::io::Error) {
    say(&format!(
        "warning: cannot watch for signals ({error}); Ctrl-C stops at once"
    ));
}

/// One line on stderr; a closed terminal (SIGHUP) is no reason to panic.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
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
