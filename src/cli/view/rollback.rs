//! `migrate rollback`'s output: what a dry run would undo, or how the
//! rollback ended and how to continue it.

use super::hints::Hints;
use crate::cli::results::{UndoList, completed};
use crate::cli::session::Session;
use crate::cluster::ClusterTarget;
use crate::engine::RunSummary;
use crate::plan::Phase;
use crate::state::Outcome;

/// Which kubeconfig and context reach each cluster, before a rollback or a
/// resume touches them (on stderr: the command's output stays its own).
pub fn reached_by(targets: &[ClusterTarget], session: &Session) {
    for t in targets {
        let file = session.kubeconfig_of(t).map_or_else(
            || "the default kubeconfig".to_string(),
            |p| p.display().to_string(),
        );
        say!("{}: context {} of {file}", t.name, t.context);
    }
}

/// Every step a dry run would undo, with its status and undo actions.
pub fn undo_list(list: &UndoList) {
    if list.steps.is_empty() {
        tell!("nothing to undo after {} in run {}", list.to, list.run);
    }
    for step in &list.steps {
        tell!(
            "undo {} ({})",
            step.id,
            list.states
                .get(&step.id)
                .map(|s| s.status.to_string())
                .unwrap_or_default()
        );
        for action in &step.rollback {
            tell!("    {action}");
        }
    }
    for id in &list.nothing_to_undo {
        tell!("skip {id}: nothing to undo (it stopped before its first change)");
    }
}

/// How the rollback to `to` (given on the command line as `to_arg`) ended.
pub fn show(summary: &RunSummary, to: Phase, to_arg: &str, hints: &Hints) {
    if !summary.overwritten.is_empty() {
        say!(
            "--force: {} object(s) changed since migrate left them were put back anyway (journalled): {}",
            summary.overwritten.len(),
            summary.overwritten.join("; ")
        );
    }
    if completed(summary) {
        tell!(
            "rolled back to {to}: {} steps undone",
            summary.succeeded.len()
        );
        return;
    }
    super::failed_steps(summary);
    let verdict = if summary.outcome == Outcome::Interrupted {
        "interrupted"
    } else {
        "failed"
    };
    say!(
        "rollback {verdict}; run it again to continue: {}",
        hints.continue_rollback(to_arg)
    );
}
