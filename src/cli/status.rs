//! `migrate status`: where the run stands.

use super::results::{RunReport, Status};
use super::view::status as view;
use super::view::timeline as timeline_view;
use super::{GlobalArgs, StatusArgs};
use crate::engine::{GateRecord, StoredPlan};
use crate::state::{KubeLocation, KubeStore, SledStore, StateError, Store};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs `migrate status`.
pub fn run(global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    // A timeline needs the journal; a name that is neither .svg nor .html is refused before any read.
    let timeline_to = match &args.timeline {
        Some(path) => match timeline_view::Format::of(path) {
            Some(format) => Some((path, format)),
            None => {
                super::view::invalid(&format!(
                    "--timeline {}: name a .svg or .html file",
                    path.display()
                ));
                return Ok(ExitCode::from(super::exit::INVALID_INPUT));
            }
        },
        None => None,
    };
    let events = args.events || timeline_to.is_some();
    let mut session = super::session::Session::new(global, Some(&args.state.state_dir), None);
    let location = super::session::StateLocation::of(&args.state, None)?;
    session.hints = session.hints.clone().with_state(location.shared());
    let status = match location {
        super::session::StateLocation::Dir(dir) => read(&dir, events)?,
        super::session::StateLocation::Kubernetes(location) => {
            read_kube(&location, session.kubeconfig.as_deref(), events)?
        }
    };
    if let Some((path, format)) = timeline_to {
        return timeline(status, path, format);
    }
    view::show(&status, args.output, args.events, &session.hints)?;
    Ok(status.exit_code())
}

/// `status --timeline PATH`: the latest run's timeline, written to `path`.
fn timeline(
    status: Status,
    path: &Path,
    format: timeline_view::Format,
) -> anyhow::Result<ExitCode> {
    let report = match status {
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
    report(&store, run, events, None)
}

/// Reads where the latest run in a Kubernetes store stands, without taking its Lease: while a run goes on
/// elsewhere, its holder is named and the records are those it had written when read.
pub fn read_kube(
    location: &KubeLocation,
    kubeconfig: Option<&Path>,
    events: bool,
) -> anyhow::Result<Status> {
    let (store, holder) = KubeStore::open_read_only(location, kubeconfig)?;
    let Some(run) = store.latest_run()? else {
        return Ok(Status::NoRun(PathBuf::from(location.to_string())));
    };
    let live = holder.map(|h| {
        h.holder.unwrap_or_else(|| crate::state::Holder {
            id: h.identity.clone(),
            pid: 0,
            host: h.identity.clone(),
            command: String::new(),
            since: crate::state::Timestamp::now(),
        })
    });
    report(&store, run, events, live)
}

/// The report of `run` in `store`; `live`: who runs it now, elsewhere.
fn report(
    store: &dyn Store,
    run: crate::state::RunInfo,
    events: bool,
    live: Option<crate::state::Holder>,
) -> anyhow::Result<Status> {
    let plan = StoredPlan::load(store, run.id)?;
    let states = store.step_states(run.id)?;
    let journal = store.events(run.id, 0)?;
    let inventory = journalled_inventory(&journal);
    let gates = journalled_gates(&plan, &journal);
    let events = if events { journal } else { Vec::new() };
    let lineage = crate::engine::lineage(store)?;
    let untouched = crate::engine::untouched_steps(store, run.id)?;
    let mut pending_restores = Vec::new();
    for past in &lineage {
        pending_restores.extend(crate::engine::pending_restores(store, past.run.id)?);
    }
    Ok(Status::Run(Box::new(RunReport {
        run,
        plan,
        states,
        events,
        live,
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
