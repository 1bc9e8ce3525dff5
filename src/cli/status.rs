//! `migrate status`: where the run stands.

use super::results::{RunReport, Status};
use super::view::status as view;
use super::view::timeline as timeline_view;
use super::{GlobalArgs, StatusArgs};
use crate::engine::StoredPlan;
use crate::state::{SledStore, StateError, Store};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

/// Runs `migrate status`.
pub fn run(global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.timeline {
        return timeline(&args.state.state_dir, path);
    }
    let status = read(&args.state.state_dir, args.events)?;
    let session = super::session::Session::new(global, Some(&args.state.state_dir), None);
    view::show(&status, args.output, args.events, &session.hints)?;
    Ok(status.exit_code())
}

/// `status --timeline PATH`: the latest run's timeline, written to `path`.
fn timeline(dir: &Path, path: &Path) -> anyhow::Result<ExitCode> {
    let Some(format) = timeline_view::Format::of(path) else {
        super::view::invalid(&format!(
            "--timeline {}: name a .svg or .html file",
            path.display()
        ));
        return Ok(ExitCode::from(super::exit::INVALID_INPUT));
    };
    let report = match read(dir, true)? {
        Status::Run(report) if report.live.is_none() => report,
        Status::Run(_) => {
            super::view::invalid(
                "--timeline: another process runs the plan; its journal can be read once it ends",
            );
            return Ok(ExitCode::from(super::exit::FAILED));
        }
        other => {
            view::show(
                &other,
                super::StatusFormat::Text,
                false,
                &Default::default(),
            )?;
            return Ok(other.exit_code());
        }
    };
    let drawn = timeline_view::of(&report);
    std::fs::write(path, timeline_view::render(&drawn, format))
        .with_context(|| format!("cannot write the timeline to {}", path.display()))?;
    timeline_view::written(path, &drawn);
    Ok(ExitCode::SUCCESS)
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
    })))
}
