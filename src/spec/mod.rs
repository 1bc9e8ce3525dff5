//! The `MeshMigration` document: types, parsing, validation.
//!
//! `load_file` is the one entry point the rest of the program uses: it returns
//! a validated spec plus warnings, or every error found, each located.

// Every public item is documented: the compiler keeps it so.
#![deny(missing_docs)]

mod check;
mod decode;
mod formats;
pub mod mesh_migration;
mod report;
mod suggest;
pub mod version;
mod yaml;

pub use mesh_migration::*;

use report::Report;

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a finding is: an error stops the spec from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The spec cannot be used.
    Error,
    /// The spec loads, but likely not as meant.
    Warning,
}

/// One finding about a spec, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The spec file.
    pub file: PathBuf,
    /// 1-based; 0 when the finding concerns the whole document.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Field path such as `spec.clusters[1].network`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// A suggested fix ("did you mean `network`?").
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: ",
            self.file.display(),
            self.line,
            self.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// A spec that parsed and passed validation, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated document.
    pub spec: MeshMigration,
    /// Warnings found, in file order.
    pub warnings: Vec<Diagnostic>,
    /// The file it was read from.
    pub file: PathBuf,
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file was read but is not a valid spec.
    #[error("{} is not a valid MeshMigration ({} error(s))", file.display(), diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every error and warning, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads, parses and validates a spec file. A relative `certDir` is taken
/// relative to the file's directory, and made absolute.
pub fn load_file(path: &Path) -> Result<Loaded, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut loaded = parse_str(&text, path)?;
    decode::resolve_cert_dir(&mut loaded.spec, &decode::spec_dir(path));
    Ok(loaded)
}

/// Parses and validates spec text; `file` names it in diagnostics.
///
/// Three stages, each reporting every problem it finds: YAML syntax (stops
/// at the first, as a YAML parser must), structure (fields, types, enum
/// values), then meaning (references, counts, formats, Istio's rules). The
/// meaning checks run only on a structurally clean spec, so a misspelt field
/// does not also show up as its consequences.
pub fn parse_str(text: &str, file: &Path) -> Result<Loaded, SpecError> {
    let mut report = Report::default();
    let spec = decode_text(text, &mut report);
    let diagnostics = report.into_diagnostics(file);
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    match spec {
        Some(spec) if !has_errors => Ok(Loaded {
            spec,
            warnings: diagnostics,
            file: file.to_path_buf(),
        }),
        _ => Err(SpecError::Invalid {
            file: file.to_path_buf(),
            diagnostics,
        }),
    }
}

fn decode_text(text: &str, report: &mut Report) -> Option<MeshMigration> {
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            report.error_hint(
                yaml::Pos { line: 1, column: 1 },
                "",
                "the file holds no YAML document",
                Some(format!(
                    "a spec starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`"
                )),
            );
            return None;
        }
        Err(e) => {
            report.error_hint(e.pos, "", e.message, e.hint);
            return None;
        }
    };
    let mut decoder = decode::Decoder {
        report,
        locs: Default::default(),
    };
    let spec = decode::document(&mut decoder, &root);
    let locs = decoder.locs;
    let spec = spec.filter(|_| !report.has_errors())?;
    check::check(&spec, &locs, report);
    Some(spec)
}

#[cfg(test)]
mod tests;
