//! `migrate apply`: run the plan, checkpointing every step.

use super::results::Applied;
use super::session::{self, Session};
use super::view::apply as view;
use super::view::saved_plan as saved_view;
use super::{ApplyArgs, GlobalArgs, StateArgs, exit};
use crate::cluster::ClusterTarget;
use crate::engine::saved_plan;
use crate::engine::{self, ApplyMode, EngineError, EngineOptions, StoredPlan};
use crate::plan::{Phase, Plan};
use crate::spec::Loaded;
use crate::state::{MemoryStore, Store};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// How to apply, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Start a run, or resume the current one.
    pub mode: ApplyMode,
    /// Server-side dry run: change nothing, record nothing.
    pub dry_run: bool,
    /// Steps running at once (at least 1).
    pub parallelism: usize,
    /// `--accept-unknown-identity`.
    pub accept_unknown_identity: bool,
    /// `--until`: the phase to stop after.
    pub until: Option<Phase>,
    /// Claim the mesh with its Lease (not `--no-mesh-lease`).
    pub mesh_lease: bool,
}

/// Runs `migrate apply`.
pub fn run(global: &GlobalArgs, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    // A phase that names none is refused before anything is read or changed.
    let until = match args.until.as_deref().map(str::parse::<Phase>).transpose() {
        Ok(until) => until,
        Err(e) => {
            super::view::invalid(&format!("--until: {e}"));
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let request = Request {
        mode: if args.resume {
            ApplyMode::Resume {
                replan: args.replan,
            }
        } else {
            ApplyMode::Start
        },
        dry_run: args.dry_run,
        parallelism: args.parallelism,
        accept_unknown_identity: args.accept_unknown_identity,
        until,
        mesh_lease: !args.no_mesh_lease,
    };
    let file = match (&args.file, &args.plan) {
        (Some(file), _) => file,
        (None, Some(saved)) => {
            return apply_saved(global, &args.state, saved, request);
        }
        (None, None) => {
            super::view::invalid("name a spec (-f SPEC) or a saved plan (--plan FILE)");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let mut session = Session::new(global, Some(&args.state.state_dir), Some(file));
    let (loaded, plan) = match session::load_plan(file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let targets = session::spec_targets(&loaded);
    let location = session::StateLocation::of(&args.state, Some(&loaded))?;
    session.hints = session.hints.clone().with_state(location.shared());
    let runtime = tokio::runtime::Runtime::new()?;
    let applied = runtime.block_on(apply(
        &session,
        &targets,
        (&plan, Some(&loaded)),
        &location,
        request,
    ))?;
    Ok(finish(&session, &plan, &applied))
}

/// Shows how an apply of `plan` went and returns its exit code.
pub fn finish(session: &Session, plan: &Plan, applied: &Applied) -> ExitCode {
    if let Some(events) = super::view::events::sink() {
        events.apply_finished(applied, &session.hints);
    }
    view::show(applied, &session.hints);
    if let (Applied::Ran { dry_run: false, .. }, Some((_, key))) =
        (applied, engine::generated_root_key(&plan.steps))
        && key.exists()
    {
        view::root_key_only_here(&key);
    }
    applied.exit_code()
}

/// `migrate apply --plan FILE`: refuses a file that is not an unedited saved
/// plan, and a plan whose objects moved since it was saved; else runs it as
/// `apply -f` would run the spec's plan.
fn apply_saved(
    global: &GlobalArgs,
    state: &StateArgs,
    file: &Path,
    request: Request,
) -> anyhow::Result<ExitCode> {
    let saved = match saved_plan::load(file) {
        Ok(saved) => saved,
        Err(e) => {
            super::view::invalid(&e.to_string());
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let mut session = Session::new(global, Some(&state.state_dir), Some(&saved.spec_file));
    let location = session::StateLocation::of(state, None)?;
    session.hints = session.hints.clone().with_state(location.shared());
    let targets: Vec<ClusterTarget> = saved.targets.iter().map(ClusterTarget::from).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let applied: Option<Applied> = runtime.block_on(async {
        let connected = session.connect(&targets).await?;
        let moved = saved_plan::moved_since(&saved, connected.clusters())
            .await
            .context("cannot check what the saved plan read")?;
        if !moved.is_empty() {
            saved_view::moved(file, &saved, &moved);
            return anyhow::Ok(None);
        }
        saved_view::unchanged(file, &saved);
        let applied = apply(&session, &targets, (&saved.plan, None), &location, request);
        Ok(Some(applied.await?))
    })?;
    match applied {
        None => Ok(ExitCode::from(exit::INVALID_INPUT)),
        Some(applied) => Ok(finish(&session, &saved.plan, &applied)),
    }
}

/// Applies `plan` (of the spec `loaded`, when read from a file) to
/// `targets`, checkpointing at `state` (in memory for a dry run);
/// progress is shown as it goes, the outcome returned.
pub async fn apply(
    session: &Session,
    targets: &[ClusterTarget],
    (plan, loaded): (&Plan, Option<&Loaded>),
    state: &session::StateLocation,
    mut request: Request,
) -> anyhow::Result<Applied> {
    // A dry run records nothing: an in-memory store stands in.
    let store: Arc<dyn Store> = if request.dry_run {
        Arc::new(MemoryStore::new())
    } else {
        session::open_any(state, session.kubeconfig.as_deref())?
    };
    // A resumed run is reached as it was, unless told otherwise (typed flag,
    // the spec's per-cluster kubeconfig).
    let resumed = match (request.mode, store.latest_run()?) {
        (ApplyMode::Resume { .. }, Some(run)) => Some(StoredPlan::load(store.as_ref(), run.id)?),
        _ => None,
    };
    if let (Some(stored), Some(loaded), ApplyMode::Resume { replan: false }) =
        (&resumed, loaded, request.mode)
        && stored.fingerprint != plan.fingerprint
        && recorded_with_relative_cert_dir(loaded, &stored.fingerprint)
    {
        // The same plan in the older convention: the recorded one is
        // replaced by the absolute one; done steps stay done.
        request.mode = ApplyMode::Resume { replan: true };
    }
    let targets = match &resumed {
        Some(stored) => {
            let targets = session::resume_targets(
                targets,
                stored,
                session.given_kubeconfig.as_deref(),
                session.kubeconfig.as_deref(),
            );
            super::view::rollback::reached_by(&targets, session);
            targets
        }
        None => targets.to_vec(),
    };
    let clusters = session.connect(&targets).await?;
    let opts = EngineOptions {
        parallelism: request.parallelism.max(1),
        dry_run: request.dry_run,
        accept_unknown_identity: request.accept_unknown_identity,
        until: request.until,
        mesh_lease: request.mesh_lease.then(|| state.claim_name()),
        ..Default::default()
    };
    let stop = session::stop_on_signals(store.clone());
    match engine::apply(plan, clusters.environment(store), opts, request.mode, &stop).await {
        Ok(summary) => Ok(Applied::Ran {
            summary,
            dry_run: request.dry_run,
        }),
        Err(
            e @ (EngineError::UnfinishedRun { .. }
            | EngineError::EarlierRunHolds { .. }
            | EngineError::SpecChanged { .. }
            | EngineError::NoRun(_)
            | EngineError::ClusterChanged { .. }),
        ) => Ok(Applied::Refused(e)),
        Err(e) => Err(e.into()),
    }
}

/// Whether a run an older migrate started recorded this spec's plan with
/// certDir as written (then relative to the working directory) and that
/// directory, taken from here, is the one the spec's directory gives: then
/// the plans differ only in how the same paths are spelt.
fn recorded_with_relative_cert_dir(loaded: &Loaded, recorded_fingerprint: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(&loaded.file) else {
        return false;
    };
    let Ok(as_written) = crate::spec::parse_str(&text, &loaded.file) else {
        return false;
    };
    let written = &as_written.spec.spec.trust.cert_dir;
    let Ok(cwd) = std::env::current_dir() else {
        return false;
    };
    let from_here: std::path::PathBuf = cwd
        .join(written)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    !written.is_absolute()
        && from_here == loaded.spec.spec.trust.cert_dir
        && crate::phases::plan(&as_written.spec)
            .is_ok_and(|p| p.fingerprint == recorded_fingerprint)
}
