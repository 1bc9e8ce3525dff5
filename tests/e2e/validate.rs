//! Tests for `migrate validate`, through the real binary.
//!
//! The invalid corpus documents itself: each file in tests/invalid/ starts
//! with one `# expect: LINE:COL PATH: PHRASE` line per error it must produce,
//! where PATH is `(document)` for whole-file errors and ` ... ` in PHRASE
//! stands for any text.

use crate::support::{migrate, repo_root};
use std::path::{Path, PathBuf};

const INVALID_INPUT: i32 = 2;

struct Expect {
    line: usize,
    column: usize,
    path: String,
    phrase: String,
}

fn parse_expect(file: &Path, line: &str) -> Expect {
    let rest = line.strip_prefix("# expect: ").unwrap();
    let (pos, rest) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("{}: bad expect line {line:?}", file.display()));
    let (l, c) = pos.split_once(':').unwrap();
    let (path, phrase) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("{}: expect line has no `path: phrase`", file.display()));
    Expect {
        line: l.parse().unwrap(),
        column: c.parse().unwrap(),
        path: path.to_string(),
        phrase: phrase.to_string(),
    }
}

/// The phrase's parts appear in order in `text`.
fn contains_in_order(text: &str, phrase: &str) -> bool {
    let mut rest = text;
    for part in phrase.split(" ... ") {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap()
        .display()
        .to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn invalid_corpus_is_rejected_with_located_messages() {
    let files = files_in("tests/invalid");
    assert!(files.len() >= 30, "only {} invalid specs", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let rel = relative(file);
        let text = std::fs::read_to_string(file).unwrap();
        let expects: Vec<Expect> = text
            .lines()
            .take_while(|l| l.starts_with("# expect: "))
            .map(|l| parse_expect(file, l))
            .collect();
        assert!(!expects.is_empty(), "{rel} has no `# expect:` line");
        let out = migrate(&["validate", "-f", &rel]);
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
        let mut problems = Vec::new();
        if out.status.code() != Some(INVALID_INPUT) {
            problems.push(format!("exit code {:?}, want 2", out.status.code()));
        }
        if errors.len() != expects.len() {
            problems.push(format!(
                "{} error(s), want {} (one concern per file)",
                errors.len(),
                expects.len()
            ));
        }
        for e in &expects {
            let path = if e.path == "(document)" {
                String::new()
            } else {
                format!("{}: ", e.path)
            };
            let prefix = format!("{rel}:{}:{}: error: {path}", e.line, e.column);
            let found = errors.iter().any(|l| {
                l.strip_prefix(&prefix)
                    .is_some_and(|rest| contains_in_order(rest, &e.phrase))
            });
            if !found {
                problems.push(format!("no line `{prefix}...{}`", e.phrase));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{rel}: {}\n{err}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_plan_validates_without_warnings() {
    let plans = files_in("plans");
    assert!(plans.len() >= 6);
    for plan in plans {
        let rel = relative(&plan);
        let out = migrate(&["validate", "-f", &rel]);
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{rel} has warnings");
        let ok = stdout(&out);
        assert!(
            ok.starts_with(&format!("ok: {rel} is a valid MeshMigration (")),
            "{ok}"
        );
    }
    let out = migrate(&["validate", "-f", "plans/three-cluster.yaml"]);
    assert_eq!(
        stdout(&out).trim(),
        "ok: plans/three-cluster.yaml is a valid MeshMigration (3 clusters, multi-primary)"
    );
    let out = migrate(&["validate", "-f", "plans/primary-remote.yaml"]);
    assert!(stdout(&out).contains("(2 clusters, primary-remote)"));
}

/// Writes a variant of plans/two-cluster.yaml with `edits` applied.
fn variant(dir: &Path, name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join("plans/two-cluster.yaml")).unwrap();
    for (old, new) in edits {
        assert!(text.contains(old), "{old:?} not in the plan");
        text = text.replacen(old, new, 1);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn warnings_print_and_still_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = variant(
        dir.path(),
        "warnings.yaml",
        &[(
            "outlierDetection: { consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s }",
            "outlierDetection: { consecutiveErrors: 3, interval: 30s }\n      - host: ratings.bookinfo.svc.cluster.local\n        localityLb: { failover: [{ from: us-west, to: us-east }] }",
        )],
    );
    let out = migrate(&["validate", "-f", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].starts_with(&format!("{file}:43:29:"))
            && warnings[0].contains(": warning: spec.routing.destinationRules[0].outlierDetection.consecutiveErrors: `consecutiveErrors` is deprecated and ignored by Istio since 1.7")
            && warnings[0].contains("the plan emits `consecutive5xxErrors: 3` instead"),
        "{err}"
    );
    assert!(
        warnings[1].starts_with(&format!("{file}:45:21:"))
            && warnings[1].contains(": warning: spec.routing.destinationRules[1].localityLb: failover without `outlierDetection` does nothing")
            && warnings[1].contains("outlier detection policy must be provided for failover"),
        "{err}"
    );
    assert!(stdout(&out).starts_with(&format!(
        "ok: {file} is a valid MeshMigration (2 clusters, multi-primary)"
    )));
}

#[test]
fn shared_network_and_missing_locality_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = variant(
        dir.path(),
        "shared.yaml",
        &[(
            "    - { name: cluster2, context: kind-cluster2, network: network2,\n        locality: { region: us-east, zone: us-east-1a } }",
            "    - { name: cluster2, context: kind-cluster2, network: network2,\n        locality: { region: us-east, zone: us-east-1a } }\n    - { name: cluster3, context: kind-cluster3, network: network1 }",
        )],
    );
    let out = migrate(&["validate", "-f", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: spec.clusters[2].network: `cluster3` shares network `network1` with `cluster1` in a multi-network mesh"),
        "{err}"
    );
    assert!(
        err.contains("warning: spec.routing.destinationRules[0].localityLb: fails over by region, but cluster(s) cluster3 have no locality"),
        "{err}"
    );
}

#[test]
fn several_errors_in_one_file_are_all_reported_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Structural: three independent mistakes.
    let file = variant(
        dir.path(),
        "structural.yaml",
        &[
            ("topology: multi-primary", "topology: multi-primery"),
            ("network: network2,", "netwrok: network2,"),
            ("requests: 20", "requests: twenty"),
        ],
    );
    let out = migrate(&["validate", "-f", &file]);
    assert_eq!(out.status.code(), Some(INVALID_INPUT));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(
        errors[0].contains("spec.topology: expected one of"),
        "{err}"
    );
    assert!(
        errors[1].contains("spec.clusters[1].netwrok: unknown field"),
        "{err}"
    );
    assert!(
        errors[2].contains("spec.failoverTest.requests: expected a whole number"),
        "{err}"
    );
    assert!(
        err.ends_with("3 error(s), 0 warning(s); nothing was done\n"),
        "{err}"
    );

    // Semantic: three more, in another file.
    let file = variant(
        dir.path(),
        "semantic.yaml",
        &[
            ("context: kind-cluster2", "context: kind-cluster1"),
            ("root: { adopt: cluster1 }", "root: { adopt: cluster2 }"),
            ("requests: 20", "requests: 0"),
        ],
    );
    let out = migrate(&["validate", "-f", &file]);
    let err = stderr(&out);
    let lines: Vec<usize> = err
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(|l| {
            let rest = l.strip_prefix(&format!("{file}:")).unwrap();
            rest.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "not in file order: {err}"
    );
}

#[test]
fn unreadable_spec_exits_2() {
    let out = migrate(&["validate", "-f", "plans/no-such-plan.yaml"]);
    assert_eq!(out.status.code(), Some(INVALID_INPUT));
    assert!(stderr(&out).contains("cannot read plans/no-such-plan.yaml"));
}

#[test]
fn json_output_reports_validity_and_diagnostics() {
    let out = migrate(&["validate", "-f", "plans/two-cluster.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["clusters"], 2);
    assert_eq!(v["topology"], "multi-primary");
    assert_eq!(v["diagnostics"], serde_json::json!([]));

    let out = migrate(&[
        "validate",
        "-f",
        "tests/invalid/unknown-field-netwrok.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(INVALID_INPUT));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 24);
    assert_eq!(d["column"], 7);
    assert_eq!(d["path"], "spec.clusters[1].netwrok");
    assert_eq!(d["hint"], "did you mean `network`?");
}
