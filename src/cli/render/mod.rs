//! Output formats of `migrate plan`: a text listing, JSON/YAML documents
//! (the schema in `crate::plan`), and the DAG for Graphviz and Mermaid.

mod graph;
mod text;

pub use graph::{dot, mermaid};
pub use text::{Style, text};

use crate::plan::{Phase, Plan};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot serialise the plan as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot serialise the plan as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

pub fn json(plan: &Plan, phase: Option<Phase>) -> Result<String, RenderError> {
    let mut out = serde_json::to_string_pretty(&plan.document(phase))?;
    out.push('\n');
    Ok(out)
}

/// The JSON document as YAML. Through a JSON value, so enums come out as
/// the same maps as in JSON rather than serde_yaml's `!tags`.
pub fn yaml(plan: &Plan, phase: Option<Phase>) -> Result<String, RenderError> {
    let value = serde_json::to_value(plan.document(phase))?;
    Ok(serde_yaml::to_string(&value)?)
}
