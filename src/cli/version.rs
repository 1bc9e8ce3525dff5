//! `migrate version`: this build and the Istio releases it plans for.

use super::VersionArgs;
use super::view::version as view;
use crate::spec::version::{MAX_SUPPORTED_MINOR, MIN_SUPPORTED, supported_range};
use serde::Serialize;
use std::process::ExitCode;

/// What `migrate version` reports.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// migrate's own version (Cargo's).
    pub version: &'static str,
    /// The git commit built from, when the build could read it.
    pub commit: Option<&'static str>,
    /// The Istio releases `migrate` plans for.
    pub istio: IstioRange,
}

/// The supported Istio releases, from `spec::version`.
#[derive(Debug, Clone, Serialize)]
pub struct IstioRange {
    /// The oldest minor release, `1.24`.
    pub min: String,
    /// The newest minor release, `1.31` (every patch of it).
    pub max: String,
    /// The range in words, `1.24.0 to 1.31.x`.
    pub supported: String,
}

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
