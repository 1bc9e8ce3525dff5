//! `migrate validate`: every diagnostic on stderr, one per line, in file
//! order; exit 0 when the spec is valid (warnings allowed), 2 otherwise.

use super::results::{Report, ValidateFormat, Validation};
use super::view::validate as view;
use super::{GlobalArgs, SpecArgs};
use crate::spec::{self, SpecError, Topology};
use clap::Args;
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
