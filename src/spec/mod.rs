//! The `MeshMigration` document: types, parsing, validation.
//!
//! `load_file` is the one entry point the rest of the program uses: it returns
//! a validated spec plus warnings, or every error found, each located.

pub mod types;

pub use types::*;

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a spec, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the finding concerns the whole document.
    pub line: usize,
    pub column: usize,
    /// Field path such as `spec.clusters[1].network`.
    pub path: String,
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
    pub spec: MeshMigration,
    pub warnings: Vec<Diagnostic>,
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid MeshMigration ({} error(s))", file.display(), diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid {
        file: PathBuf,
        /// Every error and warning, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads, parses and validates a spec file.
pub fn load_file(path: &Path) -> Result<Loaded, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

/// Parses and validates spec text; `file` names it in diagnostics.
///
/// Interim implementation (plain serde, first error only) until the located
/// parser lands.
pub fn parse_str(text: &str, file: &Path) -> Result<Loaded, SpecError> {
    match serde_yaml::from_str::<MeshMigration>(text) {
        Ok(spec) => Ok(Loaded {
            spec,
            warnings: Vec::new(),
            file: file.to_path_buf(),
        }),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            Err(SpecError::Invalid {
                file: file.to_path_buf(),
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    file: file.to_path_buf(),
                    line,
                    column,
                    path: String::new(),
                    message: e.to_string(),
                    hint: None,
                }],
            })
        }
    }
}
