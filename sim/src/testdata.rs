//! Where tests find Istio's own files (its CRDs and samples).
//!
//! They are not part of this repository: the workspace lays them out in
//! `shared/istio` beside it, and `MIGRATE_ISTIO_DIR` can point elsewhere. A
//! clone without them still passes its tests: the tests that need them say
//! that they skipped and why. CI sets `MIGRATE_REQUIRE_ISTIO_DIR=1`, so there
//! a missing directory fails loudly instead of skipping.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Names another directory holding Istio's `crds/` and `samples/`.
pub const DIR_VAR: &str = "MIGRATE_ISTIO_DIR";
/// When `1`, a missing directory is a test failure, never a skip.
pub const REQUIRE_VAR: &str = "MIGRATE_REQUIRE_ISTIO_DIR";

/// Istio's files: `$MIGRATE_ISTIO_DIR`, else `shared/istio` beside the
/// repository, else `None` (a panic instead when `MIGRATE_REQUIRE_ISTIO_DIR=1`).
pub fn istio_dir() -> Option<PathBuf> {
    let found = match std::env::var_os(DIR_VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            // Set but wrong is a mistake to report, not a reason to skip.
            assert!(
                dir.join("crds").is_dir(),
                "{DIR_VAR}={} has no crds/ directory",
                dir.display()
            );
            Some(dir)
        }
        None => {
            let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/istio");
            beside.join("crds").is_dir().then_some(beside)
        }
    };
    if found.is_none() && std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!(
            "{REQUIRE_VAR}=1 but Istio's files were not found: set {DIR_VAR} or lay out shared/istio beside the repository"
        );
    }
    found
}

/// A file under Istio's directory (`rel` like `crds/crd-all.gen.yaml`), or
/// `None` after telling the person running the tests that `test` skipped.
pub fn istio_file(rel: &str, test: &str) -> Option<PathBuf> {
    let found = istio_dir().map(|dir| dir.join(rel)).filter(|p| p.exists());
    if found.is_none() && std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!("{REQUIRE_VAR}=1 but Istio's {rel} was not found (test {test})");
    }
    match found {
        Some(path) => Some(path),
        None => {
            // Straight to stderr: the test harness captures print macros of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "skipped {test}: needs Istio's {rel} (set {DIR_VAR}, or lay out shared/istio beside the repository)"
            );
            None
        }
    }
}
