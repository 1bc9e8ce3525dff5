//! `migrate status --timeline FILE`: where the time of a run went, as a
//! picture. One row per step grouped by phase and cluster, a bar per
//! attempt (retries dashed, failures red, rollbacks purple), the critical
//! path in orange, total and per-phase times, a time axis. `.svg` writes the
//! picture; `.html` a page holding it inline (hover a bar for its details).

pub mod model;
pub mod svg;

use crate::cli::results::RunReport;
use std::path::Path;

/// What `--timeline` writes, by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.svg`.
    Svg,
    /// `.html` or `.htm`.
    Html,
}

impl Format {
    /// The format `path` asks for, or `None` for another extension.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "svg" => Some(Format::Svg),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

/// The timeline of the run `report` holds (its journal must have been read).
pub fn of(report: &RunReport) -> model::Timeline {
    model::build(&report.run, &report.plan.steps, &report.events)
}

/// The file's text in `format`.
pub fn render(timeline: &model::Timeline, format: Format) -> String {
    let picture = svg::document(timeline);
    match format {
        Format::Svg => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{picture}"),
        Format::Html => html(timeline, &picture),
    }
}

/// A page with the picture inline.
fn html(timeline: &model::Timeline, picture: &str) -> String {
    let title = svg::escape(&timeline.title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>body{{font-family:Helvetica,Arial,sans-serif;margin:16px}}\
         svg rect.bar:hover{{opacity:.75}}</style>\n</head>\n<body>\n\
         <p>Hover a bar for the step, attempt, times and outcome; bold steps are on the critical \
         path (the chain of needs that decided when the run ended).</p>\n{picture}</body>\n</html>\n"
    )
}

/// The one line `status --timeline` prints once the file is written.
pub fn written(path: &Path, timeline: &model::Timeline) {
    tell!(
        "timeline of {} written to {}: {} steps, apply {}{}",
        timeline.title,
        path.display(),
        timeline.rows.len(),
        svg::duration(timeline.forward_seconds),
        timeline
            .rollback_seconds
            .map(|s| format!(", rollback {}", svg::duration(s)))
            .unwrap_or_default()
    );
}
