//! `migrate plan`: the DAG of phases and steps, every action and its
//! rollback, computed from the spec; unless `--offline`, with a live diff of
//! every applied object against the reachable clusters.

mod drift;
mod live;
pub mod saved;

use super::results::{LiveDiff, Planned};

use super::session::{self, Session};
use super::view::drift as drift_view;
use super::view::plan as view;
use super::{GlobalArgs, PlanArgs, PlanFormat, exit};
use crate::plan::Phase;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Runs `migrate plan`.
pub fn run(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let phase = match args.phase.as_deref().map(str::parse::<Phase>).transpose() {
        Ok(p) => p,
        Err(e) => {
            super::view::invalid(&format!("--phase: {e}"));
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let loaded = match session::load_spec(&args.spec.file) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let plan = crate::phases::plan(&loaded.spec)
        .with_context(|| format!("cannot build a plan from {}", args.spec.file.display()))?;
    let session = (!args.offline).then(|| Session::new(global, None, Some(&args.spec.file)));
    let mut drift = None;
    let (live, inventory, seen) = match &session {
        None => (LiveDiff::Offline, Default::default(), Default::default()),
        Some(session) => {
            // A run recorded beside: has anyone changed what it left?
            drift = drift::report(session, &args.state.state_dir);
            live::diff(session, &loaded, &plan, phase)
        }
    };
    // East-west gateways whose address is a DNS name: judged against the plan.
    let hostnames = crate::plan::gateway_hostnames::judge(
        &crate::plan::gateway_hostnames::gateway_uses(&plan),
        &seen,
    );
    let refused = hostnames
        .iter()
        .any(|f| f.weight == crate::plan::gateway_hostnames::Weight::Refuse);
    // Saved only once judged: `apply --plan` must not run a plan refused here.
    // A refused plan leaves whatever FILE held as it was.
    if let (Some(out), Some(session), false) = (&args.out, &session, refused) {
        saved::save(session, &loaded, &plan, out)?;
    }
    let planned = Planned {
        plan,
        phase,
        live,
        inventory,
    };
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut text = view::document(&planned, args.output, colour)?;
    match drift {
        None => {}
        Some(Err(e)) => drift_view::not_checked(&format!("{e:#}")),
        // Other formats are for programs: the report goes beside them.
        Some(Ok(report)) if args.output == PlanFormat::Text => {
            text.push_str(&drift_view::plan_section(&report))
        }
        Some(Ok(report)) => drift_view::plan_note(&report),
    }
    let mut out = stdout.lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    drop(out);
    super::view::gateway_hostnames::show(&hostnames);
    if let (Some(out), true) = (&args.out, refused) {
        super::view::saved_plan::not_saved(out);
    }
    let code = if refused {
        ExitCode::from(exit::FAILED)
    } else {
        ExitCode::SUCCESS
    };
    match written {
        Ok(()) => Ok(code),
        // `migrate plan | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(e).context("cannot write the plan to stdout"),
    }
}
