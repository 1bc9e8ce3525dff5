//! The timeline drawn as SVG: a time axis, a header per phase (with its
//! time), a label and bars per step, the critical path highlighted, and a
//! legend. Every bar has a hover title. Styles are attributes, not CSS, so
//! any viewer draws it the same.

use super::model::{Bar, Direction, Ended, Row, Timeline};
use std::fmt::Write;

const WIDTH: f64 = 1280.0;
const LABEL_X: f64 = 12.0;
const CHART_X: f64 = 360.0;
/// Room right of the chart for the last bar's duration.
const RIGHT_MARGIN: f64 = 90.0;
const TOP: f64 = 84.0;
const ROW: f64 = 20.0;
const BAR: f64 = 12.0;
const PHASE_ROW: f64 = 24.0;
const GROUP_ROW: f64 = 16.0;
const LEGEND: f64 = 56.0;
const FONT: &str = "font-family=\"Helvetica, Arial, sans-serif\"";

/// Bar colours: done, on the critical path, failed, interrupted, running,
/// rolled back.
const DONE: &str = "#4e79a7";
const CRITICAL: &str = "#f28e2b";
const FAILED: &str = "#e15759";
const INTERRUPTED: &str = "#bab0ac";
const RUNNING: &str = "#a0cbe8";
const ROLLBACK: &str = "#b07aa1";

/// `text` safe inside an XML element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no place for other control characters.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A duration as people read it: `850 ms`, `4.2 s`, `3m05s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A tick step giving about eight ticks over `span` seconds: 1, 2 or 5
/// times a power of ten.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(1e-3);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The whole picture.
pub fn document(timeline: &Timeline) -> String {
    let span = timeline.end.max(tick_step(0.0));
    let chart_w = WIDTH - CHART_X - RIGHT_MARGIN;
    let x = |t: f64| CHART_X + t / span * chart_w;
    let layout = layout(timeline);
    let body_end = layout.last().map_or(TOP, |l| l.y + l.height);
    let height = body_end + LEGEND;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" {FONT} font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        escape(&timeline.title)
    );
    let _ = writeln!(
        out,
        "<text x=\"{LABEL_X}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        escape(&timeline.title)
    );
    let _ = writeln!(
        out,
        "<text x=\"{LABEL_X}\" y=\"44\" id=\"totals\">{}</text>",
        escape(&totals(timeline))
    );
    axis(&mut out, span, body_end, &x);
    for line in &layout {
        match line.what {
            Line::Phase(i) => {
                let p = &timeline
                    .phases
                    .iter()
                    .find(|s| s.phase == timeline.rows[i].phase);
                let time = p.map(|p| format!(" — {}", duration(p.end - p.start)));
                let _ = writeln!(
                    out,
                    "<rect x=\"0\" y=\"{}\" width=\"{WIDTH}\" height=\"{PHASE_ROW}\" fill=\"#eef1f5\"/>\
                     <text x=\"{LABEL_X}\" y=\"{}\" font-weight=\"bold\">{}{}</text>",
                    line.y,
                    line.y + 16.0,
                    escape(&timeline.rows[i].phase.to_string()),
                    escape(&time.unwrap_or_default())
                );
                if let Some(p) = p {
                    // The phase's span on the axis, under its header.
                    let _ = writeln!(
                        out,
                        "<rect x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"3\" fill=\"#7f8c9d\"/>",
                        x(p.start),
                        line.y + PHASE_ROW - 4.0,
                        (x(p.end) - x(p.start)).max(1.0)
                    );
                }
            }
            Line::Group(i) => {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" font-size=\"11\" font-style=\"italic\" fill=\"#666666\">{}</text>",
                    LABEL_X + 8.0,
                    line.y + 12.0,
                    escape(&timeline.rows[i].clusters)
                );
            }
            Line::Step(i) => row(&mut out, &timeline.rows[i], line.y, &x),
        }
    }
    legend(&mut out, body_end + 20.0);
    out.push_str("</svg>\n");
    out
}

/// The line of totals under the title.
fn totals(timeline: &Timeline) -> String {
    let mut text = format!("apply {}", duration(timeline.forward_seconds));
    if let Some(back) = timeline.rollback_seconds {
        let _ = write!(text, " · rollback {}", duration(back));
    }
    let _ = write!(
        text,
        " · {} steps · critical path: {} step(s)",
        timeline.rows.len(),
        timeline.critical.len()
    );
    let retries: usize = timeline
        .rows
        .iter()
        .flat_map(|r| &r.bars)
        .filter(|b| b.retry)
        .count();
    if retries > 0 {
        let _ = write!(text, " · {retries} retried attempt(s)");
    }
    text
}

/// What one line of the picture shows.
enum Line {
    /// A phase's header (the index of its first row).
    Phase(usize),
    /// A cluster group's header within a phase of several groups.
    Group(usize),
    /// A step's row.
    Step(usize),
}

struct Placed {
    what: Line,
    y: f64,
    height: f64,
}

/// Where every line goes, top to bottom.
fn layout(timeline: &Timeline) -> Vec<Placed> {
    let mut out = Vec::new();
    let mut y = TOP;
    let mut push = |what: Line, height: f64| {
        out.push(Placed { what, y, height });
        y += height;
    };
    let rows = &timeline.rows;
    for (i, r) in rows.iter().enumerate() {
        let new_phase = i == 0 || rows[i - 1].phase != r.phase;
        if new_phase {
            push(Line::Phase(i), PHASE_ROW);
        }
        let groups = rows
            .iter()
            .filter(|o| o.phase == r.phase)
            .map(|o| &o.clusters)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if groups > 1 && (new_phase || rows[i - 1].clusters != r.clusters) {
            push(Line::Group(i), GROUP_ROW);
        }
        push(Line::Step(i), ROW);
    }
    out
}

/// The time axis on top and its grid lines down to `bottom`.
fn axis(out: &mut String, span: f64, bottom: f64, x: &dyn Fn(f64) -> f64) {
    let step = tick_step(span);
    let _ = writeln!(
        out,
        "<line x1=\"{CHART_X}\" y1=\"{}\" x2=\"{:.1}\" y2=\"{}\" stroke=\"#333333\"/>",
        TOP - 6.0,
        x(span),
        TOP - 6.0
    );
    let mut t = 0.0;
    while t <= span + step * 1e-6 {
        let tx = x(t);
        let _ = writeln!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#333333\">{}</text>",
            TOP - 6.0,
            TOP - 12.0,
            escape(&duration(t))
        );
        t += step;
    }
}

/// One step's label and bars.
fn row(out: &mut String, row: &Row, y: f64, x: &dyn Fn(f64) -> f64) {
    let weight = if row.critical { "bold" } else { "normal" };
    let attempts = row
        .bars
        .iter()
        .filter(|b| b.direction == Direction::Forward)
        .count();
    let _ = writeln!(
        out,
        "<g class=\"step\" data-step=\"{}\"><text x=\"{}\" y=\"{}\" font-weight=\"{weight}\">{}</text>",
        escape(&row.step),
        LABEL_X + 16.0,
        y + 14.0,
        escape(&row.step)
    );
    for bar in &row.bars {
        let (fill, stroke) = colours(bar, row.critical);
        let x0 = x(bar.start);
        let w = (x(bar.end) - x0).max(2.0);
        let dash = if bar.retry {
            " stroke-dasharray=\"3 2\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"2\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.2\"{dash}><title>{}</title></rect>",
            y + (ROW - BAR) / 2.0,
            escape(&hover(row, bar))
        );
    }
    if let Some(last) = row
        .bars
        .iter()
        .rev()
        .find(|b| b.direction == Direction::Forward)
    {
        let mut note = duration(last.seconds());
        if attempts > 1 {
            let _ = write!(note, " ({attempts} attempts)");
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"#444444\">{}</text>",
            x(last.end) + 4.0,
            y + 14.0,
            escape(&note)
        );
    }
    out.push_str("</g>\n");
}

/// Fill and outline of a bar.
fn colours(bar: &Bar, critical: bool) -> (&'static str, &'static str) {
    match (&bar.ended, bar.direction) {
        (Ended::Failed(_), _) => (FAILED, "#9c2f32"),
        (Ended::Interrupted, _) => (INTERRUPTED, "#7d7570"),
        (Ended::Running, _) => (RUNNING, DONE),
        (Ended::Done, Direction::Rollback) => (ROLLBACK, "#7a4f71"),
        (Ended::Done, Direction::Forward) if critical => (CRITICAL, "#a85a12"),
        (Ended::Done, Direction::Forward) => (DONE, "#2f4f72"),
    }
}

/// The hover title of a bar.
fn hover(row: &Row, bar: &Bar) -> String {
    let what = match bar.direction {
        Direction::Forward => "apply",
        Direction::Rollback => "rollback",
    };
    let ended = match &bar.ended {
        Ended::Done => "done".to_string(),
        Ended::Failed(e) => format!("failed: {e}"),
        Ended::Interrupted => "interrupted".to_string(),
        Ended::Running => "running".to_string(),
    };
    let mut text = format!(
        "{} ({}) — {what}, attempt {}: {} from +{} to +{} ({})",
        row.step,
        row.clusters,
        bar.attempt,
        ended,
        duration(bar.start),
        duration(bar.end),
        duration(bar.seconds())
    );
    if row.critical && bar.direction == Direction::Forward {
        text.push_str(" · critical path");
    }
    text
}

/// The legend under the rows.
fn legend(out: &mut String, y: f64) {
    let items = [
        (DONE, "done", ""),
        (CRITICAL, "critical path", ""),
        (DONE, "retry", " stroke-dasharray=\"3 2\""),
        (FAILED, "failed", ""),
        (INTERRUPTED, "interrupted", ""),
        (RUNNING, "running", ""),
        (ROLLBACK, "rolled back", ""),
    ];
    let mut lx = LABEL_X;
    out.push_str("<g class=\"legend\">\n");
    for (fill, label, dash) in items {
        let _ = writeln!(
            out,
            "<rect x=\"{lx}\" y=\"{y}\" width=\"18\" height=\"{BAR}\" rx=\"2\" fill=\"{fill}\" \
             stroke=\"#333333\" stroke-width=\"1\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            lx + 24.0,
            y + 10.0,
            escape(label)
        );
        lx += 24.0 + 8.0 * label.len() as f64 + 24.0;
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt; "
        );
    }

    #[test]
    fn durations_and_ticks_read_well() {
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(4.24), "4.2 s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(tick_step(40.0), 5.0);
        assert_eq!(tick_step(8.0), 1.0);
        assert_eq!(tick_step(0.8), 0.1);
    }
}
