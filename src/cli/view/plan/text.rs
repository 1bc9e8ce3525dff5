//! The readable listing: phase, step, one line per action, rollback, summary.

use crate::plan::{Action, Phase, Plan, Step, Summary};
use std::fmt::Write;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Paint with ANSI escapes (a terminal that did not ask for NO_COLOR).
    pub colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn phase(&self, t: &str) -> String {
        self.paint("1;4", t)
    }
    fn step(&self, t: &str) -> String {
        self.paint("1;36", t)
    }
    fn risk(&self, t: &str) -> String {
        self.paint("1;33", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

fn duration(seconds: u64) -> String {
    match (seconds / 3600, (seconds % 3600) / 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

fn actions(out: &mut String, title: Option<&str>, list: &[Action], style: Style) {
    if list.is_empty() {
        return;
    }
    let indent = match title {
        Some(t) => {
            let _ = writeln!(out, "    {}", style.dim(&format!("{t}:")));
            "      "
        }
        None => "    ",
    };
    for a in list {
        let line = format!("{indent}- {a}");
        let _ = if title == Some("rollback") {
            writeln!(out, "{}", style.dim(&line))
        } else {
            writeln!(out, "{line}")
        };
    }
}

fn step(out: &mut String, s: &Step, style: Style) {
    let mut head = format!("  {}", style.step(&s.id));
    if !s.clusters.is_empty() {
        let _ = write!(head, "  [{}]", s.clusters.join(", "));
    }
    if !s.risks.is_empty() {
        let risks: Vec<&str> = s.risks.iter().map(|r| r.name()).collect();
        let _ = write!(
            head,
            "  {}",
            style.risk(&format!("RISK {}", risks.join(", ")))
        );
    }
    let _ = writeln!(out, "{head}");
    if !s.needs.is_empty() {
        let _ = writeln!(out, "    needs {}", s.needs.join(", "));
    }
    if !s.description.is_empty() {
        let _ = writeln!(out, "    {}", s.description);
    }
    actions(out, None, &s.forward, style);
    actions(out, Some("finally"), &s.finally, style);
    actions(out, Some("rollback"), &s.rollback, style);
}

/// The plan (or one phase of it) as the readable listing.
pub fn text(plan: &Plan, phase: Option<Phase>, style: Style) -> String {
    let mut out = String::new();
    let h = &plan.header;
    let clusters: Vec<String> = h
        .clusters
        .iter()
        .map(|c| {
            let mut notes = Vec::new();
            if c.source {
                notes.push("source".to_string());
            }
            if c.role == "remote" {
                notes.push("remote".to_string());
            }
            if let Some(n) = &c.network {
                notes.push(n.clone());
            }
            notes.push(format!("context {}", c.context));
            format!("{} ({})", c.name, notes.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "plan {}: {}, {} clusters",
        h.name,
        h.topology,
        h.clusters.len()
    );
    let _ = writeln!(out, "  clusters: {}", clusters.join("; "));
    let _ = writeln!(out, "  fingerprint: {}", plan.fingerprint);
    if let Some(p) = phase {
        let _ = writeln!(out, "  showing {p} only");
    }
    let steps = plan.select(phase);
    let mut current: Option<Phase> = None;
    for s in &steps {
        if current != Some(s.phase) {
            current = Some(s.phase);
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", style.phase(&s.phase.to_string()));
        }
        step(&mut out, s, style);
    }
    if steps.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "no steps");
    }
    summary(&mut out, plan, &Summary::of(&steps), style);
    out
}

fn summary(out: &mut String, plan: &Plan, sum: &Summary, style: Style) {
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", style.phase("summary"));
    let per_phase: Vec<String> = sum
        .steps_per_phase
        .iter()
        .map(|(p, n)| format!("phase{} {n}", p.number()))
        .collect();
    let _ = writeln!(out, "  steps: {} ({})", sum.steps, per_phase.join(", "));
    let per_cluster: Vec<String> = sum
        .actions_per_cluster
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let _ = writeln!(out, "  actions per cluster: {}", per_cluster.join(", "));
    let cp = &plan.critical_path;
    let _ = writeln!(
        out,
        "  critical path: {} steps: {}",
        cp.steps.len(),
        cp.steps.join(" -> ")
    );
    let _ = writeln!(
        out,
        "  longest by estimate: ~{}: {}",
        duration(cp.estimated_seconds),
        cp.by_duration.join(" -> ")
    );
    if sum.risky_steps.is_empty() {
        let _ = writeln!(out, "  risky steps: none");
    } else {
        let _ = writeln!(out, "  risky steps: {}", sum.risky_steps.len());
        for r in &sum.risky_steps {
            let risks: Vec<&str> = r.risks.iter().map(|x| x.name()).collect();
            let _ = writeln!(
                out,
                "    {} {}",
                r.id,
                style.risk(&format!("({})", risks.join(", ")))
            );
        }
    }
}
