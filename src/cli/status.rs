//! `migrate status`: where the run stands.

use super::results::{RunReport, Status};
use super::view::status as view;
use super::{GlobalArgs, StatusArgs};
use crate::engine::{GateRecord, StoredPlan};
use crate::state::{SledStore, StateError, Store};
use std::path::Path;
use std::process::ExitCode;

/// Runs `migrate status`.
pub fn run(global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let status = read(&args.state.state_dir, args.events)?;
    let session = super::session::Session::new(global, Some(&args.state.state_dir), None);
    view::show(&status, args.output, args.events, &session.hints)?;
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
    let journal = store.events(run.id, 0)?;
    let inventory = journalled_inventory(&journal);
    let gates = journalled_gates(&plan, &journal);
    let events = if events { journal } else { Vec::new() };
    let lineage = crate::engine::lineage(&store)?;
    let untouched = crate::engine::untouched_steps(&store, run.id)?;
    let mut pending_restores = Vec::new();
    for past in &lineage {
        pending_restores.extend(crate::engine::pending_restores(&store, past.run.id)?);
    }
    Ok(Status::Run(Box::new(RunReport {
        run,
        plan,
        states,
        events,
        live: None,
        lineage,
        pending_restores,
        untouched,
        inventory,
        gates,
    })))
}

/// The mesh inventory preflight journalled: the details of its notes
/// (`{"inventory": {"cluster": C, "mesh": {...}}}`), the latest per cluster.
fn journalled_inventory(journal: &[crate::state::Event]) -> super::results::Inventories {
    journal
        .iter()
        .filter_map(|e| {
            let found = e.details.as_ref()?.get("inventory")?;
            let cluster = found.get("cluster")?.as_str()?.to_string();
            let mesh = serde_json::from_value(found.get("mesh")?.clone()).ok()?;
            Some((cluster, Ok(mesh)))
        })
        .collect()
}

/// Each gate step's latest journalled result.
fn journalled_gates(
    plan: &StoredPlan,
    journal: &[crate::state::Event],
) -> std::collections::BTreeMap<String, GateRecord> {
    plan.steps
        .iter()
        .filter(|s| crate::phases::gates::is_gate(&s.id))
        .filter_map(|s| Some((s.id.clone(), GateRecord::latest(journal.iter(), &s.id)?)))
        .collect()
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
        plan: StoredPlan::from_value(plan)?,
        states: copy.states,
        events: Vec::new(),
        live: Some(holder),
        lineage: Vec::new(),
        pending_restores: Vec::new(),
        untouched: Default::default(),
        inventory: Default::default(),
        gates: Default::default(),
    })))
}
