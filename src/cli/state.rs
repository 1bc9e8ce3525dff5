//! `migrate state ...`: operations on the state directory itself. Today `forget-snapshots`; room for more
//! (moving a state directory between machines).

use super::session;
use super::view::state as view;
use super::{ForgetSnapshotsArgs, GlobalArgs, StateCommand, exit};
use std::process::ExitCode;

/// Runs `migrate state SUBCOMMAND`.
pub fn run(_global: &GlobalArgs, command: &StateCommand) -> anyhow::Result<ExitCode> {
    match command {
        StateCommand::ForgetSnapshots(args) => forget_snapshots(args),
    }
}

/// Removes every snapshot payload once the migration is signed off; refused while a rollback could still need
/// one, unless `--yes`.
fn forget_snapshots(args: &ForgetSnapshotsArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.state.state_dir;
    if !dir.exists() {
        super::view::invalid(&format!(
            "no state directory at {}: nothing to forget",
            dir.display()
        ));
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let store = session::open_store(dir)?;
    let held = store.held_snapshots()?;
    let needed: Vec<_> = held
        .iter()
        .filter(|h| h.rollback_may_need())
        .cloned()
        .collect();
    if !needed.is_empty() && !args.yes {
        view::refused(dir, &needed);
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let done = store.forget_snapshots()?;
    view::forgotten(dir, &done.forgotten, &needed, done.on);
    Ok(ExitCode::SUCCESS)
}
