//! `migrate validate`: every diagnostic on stderr, one per line, in file
//! order; exit 0 when the spec is valid (warnings allowed), 2 otherwise.

use super::view::validate as view;
use super::{GlobalArgs, SpecArgs, exit};
use crate::spec::{self, Diagnostic, Severity, SpecError, Topology};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// `migrate validate`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Output format: text diagnostics on stderr, or one JSON report on stdout.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ValidateFormat::Text)]
    pub output: ValidateFormat,
}

/// How `migrate validate` reports: diagnostics on stderr with the verdict
/// after them, or one JSON report on stdout. (The variants carry no doc
/// comments: clap would list them in `--help`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

/// What validating a spec found.
pub enum Validation {
    /// The file could not be read.
    Unreadable(SpecError),
    /// The file was checked.
    Checked {
        /// Every error and warning, in file order.
        diagnostics: Vec<Diagnostic>,
        /// For a valid spec: how many clusters, and the topology's name.
        valid: Option<(usize, &'static str)>,
    },
}

/// The report: the file and what was found in it.
pub struct Report {
    /// The spec's path as given.
    pub file: PathBuf,
    /// What was found.
    pub validation: Validation,
}

impl Report {
    /// 0 for a valid spec, 2 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self.validation {
            Validation::Checked { valid: Some(_), .. } => ExitCode::SUCCESS,
            _ => ExitCode::from(exit::INVALID_INPUT),
        }
    }
}

/// Runs `migrate validate`.
pub fn run(_global: &GlobalArgs, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let report = validate(&args.spec.file);
    view::show(&report, args.output)?;
    Ok(report.exit_code())
}

/// Checks the spec in `file`.
pub fn validate(file: &std::path::Path) -> Report {
    let validation = match spec::load_file(file) {
        Ok(loaded) => {
            let s = &loaded.spec.spec;
            Validation::Checked {
                diagnostics: loaded.warnings,
                valid: Some((s.clusters.len(), topology_name(s.topology))),
            }
        }
        Err(SpecError::Invalid { diagnostics, .. }) => Validation::Checked {
            diagnostics,
            valid: None,
        },
        Err(err) => Validation::Unreadable(err),
    };
    Report {
        file: file.to_path_buf(),
        validation,
    }
}

fn topology_name(t: Topology) -> &'static str {
    match t {
        Topology::MultiPrimary => "multi-primary",
        Topology::PrimaryRemote => "primary-remote",
    }
}

/// Errors among `diagnostics`.
pub fn errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}
