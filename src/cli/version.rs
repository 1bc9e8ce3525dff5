//! `migrate version`: this build and the Istio releases it plans for.

use super::VersionArgs;
use super::results::{IstioRange, VersionInfo};
use super::view::version as view;
use crate::spec::version::{MAX_SUPPORTED_MINOR, MIN_SUPPORTED, supported_range};
use std::process::ExitCode;

/// This build's version information.
pub fn info() -> VersionInfo {
    VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: option_env!("MIGRATE_GIT_COMMIT"),
        istio: IstioRange {
            min: format!("{}.{}", MIN_SUPPORTED.major, MIN_SUPPORTED.minor),
            max: format!("{}.{MAX_SUPPORTED_MINOR}", MIN_SUPPORTED.major),
            supported: supported_range(),
        },
    }
}

/// Runs `migrate version`.
pub fn run(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    view::show(&info(), args.output);
    Ok(ExitCode::SUCCESS)
}
