//! `migrate plan`'s output: a text listing, JSON/YAML documents (the schema
//! in `crate::plan`), the DAG for Graphviz and Mermaid, and the live diff
//! attached to whichever of them was chosen.

mod graph;
mod text;

pub use graph::{dot, mermaid};
pub use text::{Style, text};

use crate::cli::PlanFormat;
use crate::cli::results::{LiveDiff, Planned};
use crate::engine::{ObjectDiff, render_live_diff};
use crate::plan::{Phase, Plan};

/// A plan that cannot be written in the chosen format.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// serde_json refused the document.
    #[error("cannot serialise the plan as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// serde_yaml refused the document.
    #[error("cannot serialise the plan as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The plan document (`crate::plan`'s schema) as pretty JSON.
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

/// The plan in `format`; `colour` paints the text listing.
pub fn render(
    plan: &Plan,
    phase: Option<Phase>,
    format: PlanFormat,
    colour: bool,
) -> Result<String, RenderError> {
    Ok(match format {
        PlanFormat::Text => text(plan, phase, Style { colour }),
        PlanFormat::Json => json(plan, phase)?,
        PlanFormat::Yaml => yaml(plan, phase)?,
        PlanFormat::Dot => dot(plan, phase),
        PlanFormat::Mermaid => mermaid(plan, phase),
    })
}

/// The plan in `format` with its live diff attached, for stdout; notes on
/// the live diff (clusters not reached) go to stderr.
pub fn document(planned: &Planned, format: PlanFormat, colour: bool) -> anyhow::Result<String> {
    let text = render(&planned.plan, planned.phase, format, colour)?;
    let text = with_inventory(text, format, &planned.inventory)?;
    match &planned.live {
        LiveDiff::Offline => Ok(text),
        LiveDiff::NoRuntime(e) => {
            no_runtime_note(e);
            Ok(text)
        }
        LiveDiff::Tried { unreachable, diff } => {
            live_diff_notes(unreachable, diff.is_some());
            match diff {
                Some(diff) => with_live_diff(text, format, diff),
                None => Ok(text),
            }
        }
    }
}

/// `text` with the mesh inventory of the reachable clusters: a section
/// for text, a `meshInventory` member for JSON and YAML, stderr for graphs.
fn with_inventory(
    text: String,
    format: PlanFormat,
    inventory: &crate::cli::results::Inventories,
) -> anyhow::Result<String> {
    use crate::cli::view::inventory as words;
    if inventory.is_empty() {
        return Ok(text);
    }
    Ok(match format {
        PlanFormat::Text => format!("{text}\n{}:\n{}", words::TITLE, words::text(inventory)),
        PlanFormat::Json => {
            let mut doc: serde_json::Value = serde_json::from_str(&text)?;
            doc["meshInventory"] = words::json(inventory);
            let mut out = serde_json::to_string_pretty(&doc)?;
            out.push('\n');
            out
        }
        PlanFormat::Yaml => {
            let mut doc: serde_json::Value = serde_yaml::from_str(&text)?;
            doc["meshInventory"] = words::json(inventory);
            serde_yaml::to_string(&doc)?
        }
        PlanFormat::Dot | PlanFormat::Mermaid => {
            say!("{}:\n{}", words::TITLE, words::text(inventory).trim_end());
            text
        }
    })
}

/// Why a plan has no live diff, or which clusters it could not reach: one
/// note per line on stderr.
fn live_diff_notes(unreachable: &[String], reachable_any: bool) {
    for why in unreachable {
        say!(
            "note: cluster unreachable, no live diff for it: {}",
            crate::state::redact_text(why)
        );
    }
    if !reachable_any {
        say!(
            "note: no cluster reachable: this plan comes from the spec alone (`--offline` skips the attempt)"
        );
    }
}

/// The note for a live diff that could not even start.
fn no_runtime_note(error: &std::io::Error) {
    say!(
        "note: no live diff (cannot start an async runtime: {error}); this plan comes from the spec alone"
    );
}

/// `text` (the plan in `format`) with the diff added: a section for text,
/// a `liveDiff` member for JSON and YAML; the graph formats stay pure and
/// the diff goes to stderr.
fn with_live_diff(text: String, format: PlanFormat, diff: &[ObjectDiff]) -> anyhow::Result<String> {
    const TITLE: &str = "live diff (server-side dry run against the clusters as they are now)";
    Ok(match format {
        PlanFormat::Text => format!("{text}\n{TITLE}:\n{}", render_live_diff(diff)),
        PlanFormat::Json => {
            let mut doc: serde_json::Value = serde_json::from_str(&text)?;
            doc["liveDiff"] = serde_json::to_value(diff)?;
            let mut out = serde_json::to_string_pretty(&doc)?;
            out.push('\n');
            out
        }
        PlanFormat::Yaml => {
            let mut doc: serde_json::Value = serde_yaml::from_str(&text)?;
            doc["liveDiff"] = serde_json::to_value(diff)?;
            serde_yaml::to_string(&doc)?
        }
        PlanFormat::Dot | PlanFormat::Mermaid => {
            say!("{TITLE}:\n{}", render_live_diff(diff).trim_end());
            text
        }
    })
}
