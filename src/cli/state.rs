//! `migrate state ...`: operations on the state itself: `forget-snapshots` (a directory), `push` (a directory into a
//! Kubernetes store), `pull` (a Kubernetes store into a new directory).

use super::session;
use super::view::state as view;
use super::{ForgetSnapshotsArgs, GlobalArgs, PullArgs, PushArgs, StateCommand, exit};
use crate::state::{KubeStore, MemoryStore};
use std::process::ExitCode;

/// Runs `migrate state SUBCOMMAND`.
pub fn run(global: &GlobalArgs, command: &StateCommand) -> anyhow::Result<ExitCode> {
    match command {
        StateCommand::ForgetSnapshots(args) => forget_snapshots(args),
        StateCommand::Push(args) => push(global, args),
        StateCommand::Pull(args) => pull(global, args),
    }
}

/// Copies a Kubernetes store into a new state directory, then reads it back and compares every record.
fn pull(global: &GlobalArgs, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let from = match args
        .state
        .state
        .as_deref()
        .map(session::StateLocation::parse)
        .transpose()?
    {
        Some(session::StateLocation::Kubernetes(k)) => k,
        _ => {
            super::view::invalid(
                "state pull copies a Kubernetes store: name it with --state kubernetes://CONTEXT/NAMESPACE",
            );
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let kubeconfig = session::Session::new(global, None, None).kubeconfig;
    let pulled = crate::state::pull_kube(&from, kubeconfig.as_deref(), &args.to)?;
    view::pulled(&from.to_string(), &args.to, pulled.runs, &pulled.digest);
    Ok(ExitCode::SUCCESS)
}

/// Copies a state directory into an empty Kubernetes store, then reads it back and compares every record.
fn push(global: &GlobalArgs, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let dir = match session::StateLocation::of(&args.state, None)? {
        session::StateLocation::Dir(dir) => dir,
        session::StateLocation::Kubernetes(_) => {
            super::view::invalid("state push copies a state directory: name it with --state-dir");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    if !crate::state::is_state_dir(&dir) {
        super::view::invalid(&format!(
            "no state directory at {}: nothing to push",
            dir.display()
        ));
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let to = match session::StateLocation::parse(&args.to)? {
        session::StateLocation::Kubernetes(k) => k,
        session::StateLocation::Dir(_) => {
            super::view::invalid("--to: expected kubernetes://CONTEXT/NAMESPACE");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let kubeconfig = session::Session::new(global, None, None).kubeconfig;
    let source = session::open_store(&dir)?;
    let want = MemoryStore::copied_from(&source)?.digest();
    let runs = KubeStore::open(&to, kubeconfig.as_deref())?.import(&source)?;
    let (back, _) = KubeStore::open_read_only(&to, kubeconfig.as_deref())?;
    let got = MemoryStore::copied_from(&back)?.digest();
    anyhow::ensure!(
        got == want,
        "{to} read back differs from {} (sha256 {got} against {want}); keep using the directory",
        dir.display()
    );
    view::pushed(&dir, &to.to_string(), runs, &got);
    Ok(ExitCode::SUCCESS)
}

/// Removes every snapshot payload once the migration is signed off; refused while a rollback could still need
/// one, unless `--yes`.
fn forget_snapshots(args: &ForgetSnapshotsArgs) -> anyhow::Result<ExitCode> {
    let location = session::StateLocation::of(&args.state, None)?;
    let Some(dir) = location.dir() else {
        super::view::invalid(&format!(
            "forget-snapshots works on a state directory; for {location}, delete the namespace's \
             migrate.meshops.dev/state Secrets once the migration is signed off"
        ));
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    };
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
