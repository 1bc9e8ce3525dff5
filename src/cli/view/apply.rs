//! `migrate apply`'s outcome: one line when the plan is applied; otherwise
//! the failed steps, the verdict, and how to go on.

use super::hints::{self, Hints};
use crate::cli::results::Applied;
use crate::engine::{EngineError, Paused, RunSummary};
use crate::state::Outcome;

/// Shows how the apply ended: success on stdout, the rest on stderr.
pub fn show(applied: &Applied, hints: &Hints) {
    let (summary, dry_run) = match applied {
        Applied::Refused(e @ EngineError::EarlierRunHolds { latest, .. }) => {
            say!("error: {e}");
            for line in hints.after_refused_start(*latest) {
                say!("{line}");
            }
            return;
        }
        Applied::Refused(e) => {
            say!(
                "error: {}",
                hints::with_hint(e.to_string(), hints::for_engine(e, hints))
            );
            return;
        }
        Applied::Ran { summary, dry_run } => (summary, *dry_run),
    };
    let prefix = if dry_run { "dry run: " } else { "" };
    if let Some(paused) = &summary.paused {
        return show_pause(summary, paused, prefix, hints);
    }
    if summary.already_done {
        tell!(
            "run {} already applied this plan: nothing to do",
            summary.run
        );
        return;
    }
    if summary.outcome == Outcome::Succeeded {
        tell!(
            "{prefix}run {} succeeded: {} steps done",
            summary.run,
            summary.succeeded.len()
        );
        return;
    }
    super::failed_steps(summary);
    let verdict = if summary.stopped {
        "interrupted"
    } else {
        "failed"
    };
    say!(
        "{prefix}run {} {verdict}; {} steps not started",
        summary.run,
        summary.not_started.len()
    );
    if !dry_run {
        for line in hints.after_failed_apply() {
            say!("{line}");
        }
    }
}

/// `apply --until` stopped after its phase (or had nothing to do up to it):
/// where the run stands and the commands on. A dry run changed nothing, so
/// it names no command.
fn show_pause(summary: &RunSummary, paused: &Paused, prefix: &str, hints: &Hints) {
    if summary.already_done {
        tell!(
            "run {}: every step up to {} is done already: nothing to do",
            summary.run,
            paused.after
        );
    } else {
        tell!(
            "{prefix}run {} paused after {}: {} step(s) done now",
            summary.run,
            paused.after,
            summary.succeeded.len()
        );
    }
    tell!(
        "{prefix}next: {} ({} step(s) left in it and later phases)",
        paused.next,
        paused.remaining
    );
    if prefix.is_empty() {
        for line in hints.after_pause(paused.next) {
            tell!("{line}");
        }
    }
}

/// The mesh root's key was generated into certDir and is nowhere else.
pub fn root_key_only_here(key: &std::path::Path) {
    say!(
        "note: the mesh's root key exists only in {} (no cluster holds it): back it up and keep it offline; \
         signing an intermediate for another cluster, or rotating, needs it",
        key.display()
    );
}
