//! `migrate version`'s output: two lines for people, one object for programs.

use crate::cli::StatusFormat;
use crate::cli::results::VersionInfo;

/// Prints `info` on stdout.
pub fn show(info: &VersionInfo, format: StatusFormat) {
    match format {
        StatusFormat::Json => match serde_json::to_string_pretty(info) {
            Ok(json) => tell!("{json}"),
            Err(e) => say!("error: {e}"),
        },
        StatusFormat::Text => {
            match info.commit {
                Some(commit) => tell!("migrate {} (commit {commit})", info.version),
                None => tell!("migrate {}", info.version),
            }
            tell!(
                "Istio {} to {} supported ({})",
                info.istio.min,
                info.istio.max,
                info.istio.supported
            );
        }
    }
}
