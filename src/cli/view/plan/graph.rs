//! The DAG for Graphviz (`-o dot`) and Mermaid (`-o mermaid`), phases as
//! clusters / subgraphs.

use crate::plan::{Phase, Plan, Step};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

fn by_phase<'a>(steps: &[&'a Step]) -> BTreeMap<Phase, Vec<&'a Step>> {
    let mut out: BTreeMap<Phase, Vec<&Step>> = BTreeMap::new();
    for s in steps {
        out.entry(s.phase).or_default().push(s);
    }
    out
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The DAG in Graphviz's language, one cluster per phase.
pub fn dot(plan: &Plan, phase: Option<Phase>) -> String {
    let steps = plan.select(phase);
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_quote(&plan.header.name));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"Helvetica\"];");
    for (p, list) in by_phase(&steps) {
        let _ = writeln!(out, "  subgraph cluster_phase{} {{", p.number());
        let _ = writeln!(out, "    label={};", dot_quote(&p.to_string()));
        for s in list {
            let attrs = if s.risks.is_empty() {
                String::new()
            } else {
                " [color=red, penwidth=2]".into()
            };
            let _ = writeln!(out, "    {}{attrs};", dot_quote(&s.id));
        }
        let _ = writeln!(out, "  }}");
    }
    let shown: HashMap<&str, ()> = steps.iter().map(|s| (s.id.as_str(), ())).collect();
    for s in &steps {
        for need in &s.needs {
            if shown.contains_key(need.as_str()) {
                let _ = writeln!(out, "  {} -> {};", dot_quote(need), dot_quote(&s.id));
            }
        }
    }
    let _ = writeln!(out, "}}");
    out
}

fn mermaid_label(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// The DAG as a Mermaid flowchart, one subgraph per phase.
pub fn mermaid(plan: &Plan, phase: Option<Phase>) -> String {
    let steps = plan.select(phase);
    let ids: HashMap<&str, String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), format!("s{i}")))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "flowchart LR");
    for (p, list) in by_phase(&steps) {
        let _ = writeln!(out, "  subgraph phase{}[\"{}\"]", p.number(), p);
        for s in list {
            let _ = writeln!(
                out,
                "    {}[\"{}\"]",
                ids[s.id.as_str()],
                mermaid_label(&s.id)
            );
        }
        let _ = writeln!(out, "  end");
    }
    for s in &steps {
        for need in &s.needs {
            if let Some(from) = ids.get(need.as_str()) {
                let _ = writeln!(out, "  {from} --> {}", ids[s.id.as_str()]);
            }
        }
    }
    let risky: Vec<&str> = steps
        .iter()
        .filter(|s| !s.risks.is_empty())
        .map(|s| ids[s.id.as_str()].as_str())
        .collect();
    if !risky.is_empty() {
        let _ = writeln!(out, "  classDef risky stroke:#d00,stroke-width:3px");
        let _ = writeln!(out, "  class {} risky", risky.join(","));
    }
    out
}
