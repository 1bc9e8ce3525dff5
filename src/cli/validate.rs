//! `migrate validate`: every diagnostic on stderr, one per line, in file
//! order; exit 0 when the spec is valid (warnings allowed), 2 otherwise.

use super::{GlobalArgs, SpecArgs, exit};
use crate::spec::{self, Diagnostic, Severity, SpecError, Topology};
use clap::{Args, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Output format: text diagnostics on stderr, or one JSON report on stdout.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ValidateFormat::Text)]
    pub output: ValidateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

/// The `-o json` report.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    clusters: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topology: Option<&'static str>,
    diagnostics: &'a [Diagnostic],
}

pub fn run(_global: &GlobalArgs, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let file = &args.spec.file;
    let (diagnostics, summary) = match spec::load_file(file) {
        Ok(loaded) => {
            let s = &loaded.spec.spec;
            let summary = (s.clusters.len(), topology_name(s.topology));
            (loaded.warnings, Some(summary))
        }
        Err(SpecError::Invalid { diagnostics, .. }) => (diagnostics, None),
        Err(err @ SpecError::Read { .. }) => {
            if args.output == ValidateFormat::Json {
                let report = serde_json::json!({
                    "file": file.display().to_string(),
                    "valid": false,
                    "error": err.to_string(),
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                eprintln!("error: {err}");
            }
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    match args.output {
        ValidateFormat::Json => {
            let report = JsonReport {
                file: file.display().to_string(),
                valid: summary.is_some(),
                errors,
                warnings,
                clusters: summary.map(|s| s.0),
                topology: summary.map(|s| s.1),
                diagnostics: &diagnostics,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        ValidateFormat::Text => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            match summary {
                Some((clusters, topology)) => println!(
                    "ok: {} is a valid MeshMigration ({clusters} clusters, {topology})",
                    file.display()
                ),
                None => eprintln!(
                    "{}: {errors} error(s), {warnings} warning(s); nothing was done",
                    file.display()
                ),
            }
        }
    }
    Ok(if summary.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::INVALID_INPUT)
    })
}

fn topology_name(t: Topology) -> &'static str {
    match t {
        Topology::MultiPrimary => "multi-primary",
        Topology::PrimaryRemote => "primary-remote",
    }
}
