//! `migrate validate`'s output: diagnostics and a verdict as text, or one
//! JSON report on stdout.

use crate::cli::results::{Report, ValidateFormat, Validation, errors};
use crate::spec::Diagnostic;

/// The `-o json` report of a file that was checked.
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

/// Shows the report in `format`.
pub fn show(report: &Report, format: ValidateFormat) -> anyhow::Result<()> {
    let file = report.file.display().to_string();
    let (diagnostics, valid) = match &report.validation {
        Validation::Unreadable(err) => {
            if format == ValidateFormat::Json {
                let doc = serde_json::json!({
                    "file": file,
                    "valid": false,
                    "error": err.to_string(),
                });
                tell!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                say!("error: {err}");
            }
            return Ok(());
        }
        Validation::Checked { diagnostics, valid } => (diagnostics, *valid),
    };
    let errors = errors(diagnostics);
    let warnings = diagnostics.len() - errors;
    match format {
        ValidateFormat::Json => {
            let doc = JsonReport {
                file,
                valid: valid.is_some(),
                errors,
                warnings,
                clusters: valid.map(|s| s.0),
                topology: valid.map(|s| s.1),
                diagnostics,
            };
            tell!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ValidateFormat::Text => {
            for d in diagnostics {
                say!("{d}");
            }
            match valid {
                Some((clusters, topology)) => {
                    tell!("ok: {file} is a valid MeshMigration ({clusters} clusters, {topology})")
                }
                None => {
                    say!("{file}: {errors} error(s), {warnings} warning(s); nothing was done")
                }
            }
        }
    }
    Ok(())
}
