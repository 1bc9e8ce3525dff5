//! `migrate check`'s output: one block per finding (severity, code,
//! cluster, object, what is wrong; then the fix), a summary line; or the
//! report as JSON.

use crate::check::{Report, Severity};
use clap::ValueEnum;

/// `migrate check -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One block per finding, then a summary.
    Text,
    /// The report as one JSON document.
    Json,
}

/// Prints `report` on stdout.
pub fn show(report: &Report, format: CheckFormat) -> anyhow::Result<()> {
    match format {
        CheckFormat::Json => {
            tell!("{}", serde_json::to_string_pretty(report)?);
        }
        CheckFormat::Text => {
            for f in &report.findings {
                // `-` stands for the cluster as a whole: no object to name.
                let object = match f.object.as_str() {
                    "-" => String::new(),
                    o => format!(" {o}"),
                };
                tell!(
                    "{:<7} {} {}{object}: {}",
                    f.severity.to_string(),
                    f.code,
                    f.cluster,
                    f.message
                );
                tell!("        fix: {}", f.fix);
            }
            tell!("{}", summary(report));
        }
    }
    Ok(())
}

/// `checked cluster1, cluster2 (12 groups): 1 error, 0 warnings, 2 info`.
pub fn summary(report: &Report) -> String {
    let n = |s| report.count(s);
    let plural = |k: usize, word: &str| format!("{k} {word}{}", if k == 1 { "" } else { "s" });
    let verdict = if report.has_errors() {
        "the mesh has errors"
    } else {
        "no errors"
    };
    format!(
        "checked {} ({}): {}, {}, {} info; {verdict}",
        report.clusters.join(", "),
        plural(report.groups.len(), "group"),
        plural(n(Severity::Error), "error"),
        plural(n(Severity::Warning), "warning"),
        n(Severity::Info),
    )
}
