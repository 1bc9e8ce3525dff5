//! `migrate plan`: the DAG of phases and steps, every action and its
//! rollback, computed from the spec; unless `--offline`, with a live diff of
//! every applied object against the reachable clusters.

mod live;

use super::render::{self, Style};
use super::{GlobalArgs, PlanArgs, PlanFormat, exit};
use crate::plan::Phase;
use crate::spec::{self, SpecError};
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

pub fn run(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let phase = match args.phase.as_deref().map(str::parse::<Phase>).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --phase: {e}");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let loaded = match spec::load_file(&args.spec.file) {
        Ok(loaded) => loaded,
        Err(SpecError::Invalid { diagnostics, file }) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!("error: {} is not a valid MeshMigration", file.display());
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
        Err(other) => {
            eprintln!("error: {other}");
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let plan = crate::phases::plan(&loaded.spec)
        .with_context(|| format!("cannot build a plan from {}", args.spec.file.display()))?;
    let diff = if args.offline {
        None
    } else {
        live::diff(global, &loaded, &plan, phase)
    };
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut text = match args.output {
        PlanFormat::Text => render::text(&plan, phase, Style { colour }),
        PlanFormat::Json => render::json(&plan, phase)?,
        PlanFormat::Yaml => render::yaml(&plan, phase)?,
        PlanFormat::Dot => render::dot(&plan, phase),
        PlanFormat::Mermaid => render::mermaid(&plan, phase),
    };
    if let Some(diff) = &diff {
        text = live::attach(text, args.output, diff)?;
    }
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `migrate plan | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write the plan to stdout"),
    }
}
