//! Views: everything the command line prints, one module per command's
//! output (as Terraform's `internal/command/views`). Commands compute
//! values; views word them, for a person (text) or a program (JSON).
//!
//! Errors are printed as `error: MESSAGE`, followed by the hint for their
//! kind (see [`hints`]) when the library's message does not give it.

pub mod apply;
pub mod check;
#[cfg(feature = "sim")]
pub mod demo;
pub mod drift;
pub mod events;
pub mod gateway_hostnames;
pub mod hints;
pub mod inventory;
pub mod observer;
pub mod plan;
pub mod progress;
pub mod rollback;
pub mod saved_plan;
pub mod spec;
pub mod state;
pub mod status;
pub mod timeline;
pub mod unlock;
pub mod validate;
pub mod version;

use crate::engine::RunSummary;
use crate::state::LockNotice;

/// An error that ends the command, with the hint for its kind.
pub fn error(err: &anyhow::Error, hints: &hints::Hints) {
    say!(
        "error: {}",
        // The last line of defence: a library error may quote a server's answer or a file.
        hints::with_hint(
            crate::state::redact_text(&format!("{err:#}")),
            hints::for_any(err, hints)
        )
    );
}

/// Input refused before anything was done (a flag's value, a missing run).
pub fn invalid(message: &str) {
    say!("error: {message}");
}

/// The state directory was taken over from a holder that died.
pub fn takeover_note(notice: &LockNotice) {
    say!("note: {notice}");
}

/// The first stop signal (Ctrl-C, SIGTERM or SIGHUP).
pub fn interrupted(signal: &str) {
    say_line(&format!(
        "\ninterrupted ({signal}): starting no new step; running steps finish and are checkpointed \
         (a second Ctrl-C, SIGTERM or SIGHUP quits at once)"
    ));
}

/// A second stop signal: what was killed, and what the journal now says was running.
pub fn quitting(signal: &str, killed: usize, running: &str) {
    say_line(&format!(
        "quitting at once ({signal}): {killed} installer process group(s) killed; {running}"
    ));
}

/// Signals cannot be watched here.
pub fn no_signals(error: &std::io::Error) {
    say_line(&format!(
        "warning: cannot watch for signals ({error}); Ctrl-C stops at once"
    ));
}

/// One line on stderr; a closed terminal (SIGHUP) is no reason to panic.
fn say_line(line: &str) {
    say!("{line}");
}

/// One `FAILED STEP: ERROR` line per failed step of a run (apply or rollback).
fn failed_steps(summary: &RunSummary) {
    for (step, error) in &summary.failed {
        say!("FAILED {step}: {error}");
    }
}
