//! A spec that cannot be run: its diagnostics, and why it cannot be planned.

use crate::spec::{Loaded, SpecError};
use std::fmt::Display;
use std::path::Path;

/// The warnings of a spec that loaded, one per line on stderr.
pub fn warnings(loaded: &Loaded) {
    for w in &loaded.warnings {
        say!("{w}");
    }
}

/// A spec that did not load: every diagnostic, then the verdict.
pub fn refused(err: &SpecError) {
    match err {
        SpecError::Invalid { diagnostics, file } => {
            for d in diagnostics {
                say!("{d}");
            }
            say!("error: {} is not a valid MeshMigration", file.display());
        }
        other => say!("error: {other}"),
    }
}

/// A valid spec the phases cannot turn into a plan.
pub fn unplannable(file: &Path, err: &impl Display) {
    say!("error: cannot plan {}: {err}", file.display());
}
