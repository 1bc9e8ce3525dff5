//! `migrate status --timeline`: after an apply and a rollback against
//! meshsim, the SVG is well-formed XML with a row and a bar for every step
//! the run ran, the critical path marked, per-phase times written; the HTML
//! page holds the same picture inline.

use crate::apply::{apply, seeded_with_spec};
use serde_json::Value;

/// The step ids of the run, from `status -o json`.
fn step_ids(env: &crate::sim_support::SimEnv) -> Vec<String> {
    let run = env.migrate(&["status", "-o", "json"]).expect_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_timeline_of_an_applied_and_rolled_back_run_holds_every_step() {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    let ids = step_ids(&env);
    assert!(ids.len() > 10, "{ids:?}");

    let svg_path = env.path("run.svg");
    let svg_arg = svg_path.to_string_lossy().into_owned();
    let run = env.migrate(&["status", "--timeline", &svg_arg]).expect_ok();
    assert!(run.stdout.contains("written to"), "{}", run.stdout);
    let text = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let rows: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("step"))
        .collect();
    let drawn: Vec<&str> = rows
        .iter()
        .filter_map(|n| n.attribute("data-step"))
        .collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    let mut got = drawn.clone();
    got.sort();
    assert_eq!(got, want, "one row per step");
    for row in &rows {
        let bars: Vec<roxmltree::Node> = row
            .children()
            .filter(|n| n.attribute("class") == Some("bar"))
            .collect();
        assert_eq!(
            bars.len(),
            1,
            "one bar for {:?}",
            row.attribute("data-step")
        );
        let title = bars[0]
            .first_element_child()
            .and_then(|t| t.text())
            .unwrap_or("");
        assert!(title.contains("attempt 1: done"), "{title}");
    }
    let critical: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .filter_map(|n| n.first_element_child()?.text())
        .filter(|t| t.ends_with("critical path"))
        .collect();
    assert!(
        critical.len() >= 5,
        "the critical path spans the phases: {critical:?}"
    );
    for phase in [
        "phase0 preflight — ",
        "phase1 install — ",
        "phase6 failover — ",
    ] {
        assert!(text.contains(phase), "per-phase time for {phase}");
    }

    // Rolled back to phase3: the undone steps get a rollback bar too.
    env.migrate(&["rollback", "--to", "phase3"]).expect_ok();
    let html_path = env.path("run.html");
    let html_arg = html_path.to_string_lossy().into_owned();
    env.migrate(&["status", "--timeline", &html_arg])
        .expect_ok();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let start = html.find("<svg").unwrap();
    let end = html.rfind("</svg>").unwrap() + "</svg>".len();
    let doc = roxmltree::Document::parse(&html[start..end]).expect("the inline SVG is XML");
    let rolled_back = doc
        .descendants()
        .filter_map(|n| {
            n.first_element_child()
                .filter(|_| n.attribute("class") == Some("bar"))?
                .text()
        })
        .filter(|t| t.contains("rollback, attempt"))
        .count();
    assert!(
        rolled_back >= 3,
        "routing, observability and failover undone"
    );
    assert!(html.contains("rollback "), "the rollback's time is written");

    // Any other extension is refused before anything is read.
    let bad = env.migrate(&["status", "--timeline", "run.png"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains(".svg or .html"), "{}", bad.stderr);
}
