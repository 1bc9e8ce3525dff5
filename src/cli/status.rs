//! `migrate status`: where the run stands.

use super::view::status as view;
use super::{GlobalArgs, StatusArgs, exit};
use crate::engine::StoredPlan;
use crate::state::{Event, Holder, RunInfo, SledStore, StateError, StepState, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the state directory says.
pub enum Status {
    /// The directory does not exist: no run has started there.
    NoState(PathBuf),
    /// The store holds no run yet.
    NoRun(PathBuf),
    /// Another process holds the store, and what it keeps for us cannot be
    /// read (`copy` says why), or it names no holder (`copy` is None).
    Unreadable {
        /// The refusal to open the store.
        locked: StateError,
        /// Why the status copy cannot be read.
        copy: Option<StateError>,
    },
    /// The latest run.
    Run(Box<RunReport>),
}

/// The latest run, its plan and where each step stands.
pub struct RunReport {
    /// The run.
    pub run: RunInfo,
    /// Its plan.
    pub plan: StoredPlan,
    /// Where each step stands (steps not yet recorded are pending).
    pub states: BTreeMap<String, StepState>,
    /// The journal, when asked for and readable.
    pub events: Vec<Event>,
    /// The process running it now, when another one holds the store: then
    /// this comes from the copy it keeps, and has no journal.
    pub live: Option<Holder>,
}

impl Status {
    /// 2 without a state directory, 1 when it cannot be read, else 0.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Status::NoState(_) => ExitCode::from(exit::INVALID_INPUT),
            Status::Unreadable { .. } => ExitCode::from(exit::FAILED),
            Status::NoRun(_) | Status::Run(_) => ExitCode::SUCCESS,
        }
    }
}

/// Runs `migrate status`.
pub fn run(_global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let status = read(&args.state.state_dir, args.events)?;
    view::show(&status, args.output, args.events)?;
    Ok(status.exit_code())
}

/// Reads where the latest run in `dir` stands, with its journal if `events`.
pub fn read(dir: &Path, events: bool) -> anyhow::Result<Status> {
    if !dir.exists() {
        return Ok(Status::NoState(dir.to_path_buf()));
    }
    let store = match SledStore::open(dir) {
        Ok(o) => {
            if let Some(notice) = &o.notice {
                super::view::takeover_note(notice);
            }
            o.store
        }
        Err(locked @ StateError::Locked { .. }) => return read_copy(dir, locked),
        Err(e) => return Err(e.into()),
    };
    let Some(run) = store.latest_run()? else {
        return Ok(Status::NoRun(dir.to_path_buf()));
    };
    let plan = StoredPlan::load(&store, run.id)?;
    let states = store.step_states(run.id)?;
    let events = if events {
        store.events(run.id, 0)?
    } else {
        Vec::new()
    };
    Ok(Status::Run(Box::new(RunReport {
        run,
        plan,
        states,
        events,
        live: None,
    })))
}

/// Another process runs the plan and holds the store: the copy it keeps
/// for us, and whose it is.
fn read_copy(dir: &Path, locked: StateError) -> anyhow::Result<Status> {
    let StateError::Locked {
        holder: Some(holder),
        ..
    } = &locked
    else {
        return Ok(Status::Unreadable { locked, copy: None });
    };
    let holder = (**holder).clone();
    let (plan, copy) = match crate::state::mirror::read(dir) {
        Ok(found) => found,
        Err(e) => {
            return Ok(Status::Unreadable {
                locked,
                copy: Some(e),
            });
        }
    };
    Ok(Status::Run(Box::new(RunReport {
        run: copy.run,
        plan: serde_json::from_value(plan)?,
        states: copy.states,
        events: Vec::new(),
        live: Some(holder),
    })))
}
