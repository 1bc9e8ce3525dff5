//! Tests for `migrate plan`: golden outputs of every example plan and
//! fixture, exit codes, phase filtering, formats, and that no secret ever
//! reaches the output.
//!
//! Golden files live beside their spec's directory under tests/golden:
//! `plans/x.yaml` -> `tests/golden/plans/x.{txt,json}`,
//! `tests/golden/specs/y.yaml` -> `tests/golden/specs/y.{txt,json}`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test e2e plan`.

use crate::support::{migrate, repo_root};
use std::path::{Path, PathBuf};

/// Every spec with golden outputs: the example plans and our fixtures.
fn specs() -> Vec<PathBuf> {
    let root = repo_root();
    let mut out = Vec::new();
    for dir in ["plans", "tests/golden/specs"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        found.sort();
        out.extend(found);
    }
    assert!(
        out.len() >= 4,
        "expected example plans and fixtures, found {out:?}"
    );
    out
}

/// `plans/x.yaml` -> `tests/golden/plans/x.<ext>`; fixtures keep their directory.
fn golden_path(spec: &Path, ext: &str) -> PathBuf {
    let root = repo_root();
    let stem = spec.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = if spec.parent() == Some(root.join("plans").as_path()) {
        root.join("tests/golden/plans")
    } else {
        root.join("tests/golden/specs")
    };
    dir.join(format!("{stem}.{ext}"))
}

fn relative(spec: &Path) -> String {
    spec.strip_prefix(repo_root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Runs `migrate plan` and returns stdout; fails on a non-zero exit.
fn plan(args: &[&str]) -> String {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    let out = migrate(&all);
    assert!(
        out.status.success(),
        "migrate {all:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Output that does not depend on where the repository is checked out: a
/// spec's relative certDir is made absolute from the spec's directory, so
/// paths (and the plan's fingerprint, which covers them) carry the checkout.
fn normalise(output: &str) -> String {
    let root = repo_root().display().to_string();
    let text = output.replace(&root, "<repo>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("fingerprint") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        match tail.find("sha256:") {
            Some(j) if j < 20 => {
                let end = j + "sha256:".len();
                out.push_str(&tail[..end]);
                out.push_str("<fingerprint>");
                let after = &tail[end..];
                let hex = after.chars().take_while(char::is_ascii_hexdigit).count();
                rest = &after[hex..];
            }
            _ => {
                out.push_str("fingerprint");
                rest = &tail["fingerprint".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A readable diff: the lines between the common prefix and suffix.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let prefix = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = e[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = format!(
        "first difference at line {} (expected {} lines, got {}):\n",
        prefix + 1,
        e.len(),
        a.len()
    );
    const MAX: usize = 30;
    let context = prefix.saturating_sub(3);
    for line in &e[context..prefix] {
        out.push_str(&format!("   {line}\n"));
    }
    let removed = &e[prefix..e.len() - suffix];
    let added = &a[prefix..a.len() - suffix];
    for line in removed.iter().take(MAX) {
        out.push_str(&format!(" - {line}\n"));
    }
    if removed.len() > MAX {
        out.push_str(&format!(" - ... {} more\n", removed.len() - MAX));
    }
    for line in added.iter().take(MAX) {
        out.push_str(&format!(" + {line}\n"));
    }
    if added.len() > MAX {
        out.push_str(&format!(" + ... {} more\n", added.len() - MAX));
    }
    out
}

#[test]
fn golden_text_and_json_of_every_plan() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0");
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for spec in specs() {
        let rel = relative(&spec);
        for (format, ext) in [("text", "txt"), ("json", "json")] {
            let actual = normalise(&plan(&["-f", &rel, "--offline", "-o", format]));
            let path = golden_path(&spec, ext);
            expected_files.push(path.clone());
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &actual).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{} differs from `migrate plan -f {rel} -o {format}`; {}",
                    path.display(),
                    diff(&expected, &actual)
                )),
                Err(_) => failures.push(format!(
                    "{} is missing (run with UPDATE_GOLDEN=1 to create it)",
                    path.display()
                )),
            }
        }
    }
    // Golden files whose spec is gone.
    for dir in ["tests/golden/plans", "tests/golden/specs"] {
        let Ok(entries) = std::fs::read_dir(repo_root().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if (ext == "txt" || ext == "json") && !expected_files.contains(&path) {
                if update {
                    std::fs::remove_file(&path).unwrap();
                } else {
                    failures.push(format!("{} has no spec any more", path.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test e2e plan",
        failures.join("\n\n")
    );
}

#[test]
fn the_same_spec_gives_byte_identical_output() {
    for format in ["text", "json", "dot"] {
        let a = plan(&["-f", "plans/two-cluster.yaml", "--offline", "-o", format]);
        let b = plan(&["-f", "plans/two-cluster.yaml", "--offline", "-o", format]);
        assert_eq!(a, b, "{format}");
    }
}

#[test]
fn the_text_listing_shows_steps_actions_rollbacks_and_a_summary() {
    let text = plan(&["-f", "plans/two-cluster.yaml", "--offline"]);
    for expected in [
        "phase0 preflight",
        "phase1 install",
        "phase6 failover",
        "  install/cluster1  [cluster1]  RISK source-reconfigure",
        "- apply Secret istio-system/cacerts @cluster2 data [",
        "- restart Deployment istio-system/istiod @cluster1",
        "  discovery/cluster1<-cluster2  [cluster1]",
        "    rollback:",
        "summary",
        "  critical path: ",
        "  risky steps: ",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "colour on a pipe");
}

#[test]
fn phase_filter_accepts_number_name_and_phase_n() {
    let a = plan(&["-f", "plans/two-cluster.yaml", "--offline", "--phase", "3"]);
    let b = plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "--phase",
        "phase3",
    ]);
    let c = plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "--phase",
        "discovery",
    ]);
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert!(a.contains("phase3 discovery"));
    assert!(!a.contains("phase1 install") && !a.contains("phase2 trust"));
    let json: serde_json::Value = serde_json::from_str(&plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "-o",
        "json",
        "--phase",
        "trust",
    ]))
    .unwrap();
    assert_eq!(json["phase"], "trust");
    let steps = json["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| s["phase"] == "trust"));
    assert_eq!(json["summary"]["steps"], steps.len());
}

#[test]
fn json_follows_the_documented_schema() {
    let json: serde_json::Value = serde_json::from_str(&plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["schemaVersion"], 1);
    assert_eq!(json["kind"], "MigrationPlan");
    assert_eq!(json["topology"], "multi-primary");
    assert!(json["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    assert!(json["criticalPath"]["steps"].as_array().unwrap().len() > 3);
    let steps = json["steps"].as_array().unwrap();
    let mut seen = std::collections::HashSet::new();
    for s in steps {
        for key in [
            "id",
            "phase",
            "clusters",
            "needs",
            "description",
            "forward",
            "rollback",
            "estimatedSeconds",
        ] {
            assert!(s.get(key).is_some(), "step without {key}: {s}");
        }
        for need in s["needs"].as_array().unwrap() {
            assert!(
                seen.contains(need.as_str().unwrap()),
                "{} needs a later step",
                s["id"]
            );
        }
        seen.insert(s["id"].as_str().unwrap().to_string());
        for a in s["forward"]
            .as_array()
            .unwrap()
            .iter()
            .chain(s["rollback"].as_array().unwrap())
        {
            assert!(a["type"].is_string(), "action without type: {a}");
        }
    }
    // YAML carries the same document.
    let yaml: serde_json::Value = serde_yaml::from_str(&plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "-o",
        "yaml",
    ]))
    .unwrap();
    assert_eq!(yaml, json);
}

#[test]
fn dot_and_mermaid_draw_phases_as_groups() {
    let dot = plan(&["-f", "plans/two-cluster.yaml", "--offline", "-o", "dot"]);
    assert!(dot.starts_with("digraph "));
    for n in 0..=6 {
        assert!(
            dot.contains(&format!("subgraph cluster_phase{n} {{")),
            "{dot}"
        );
    }
    assert!(dot.contains("\"install/cluster1\" -> \"install/cluster1/eastwest\";"));
    assert!(dot.contains("\"discovery/cluster2/reader\" -> \"discovery/cluster1<-cluster2\";"));
    let mermaid = plan(&["-f", "plans/two-cluster.yaml", "--offline", "-o", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(mermaid.contains("subgraph phase3[\"phase3 discovery\"]"));
    assert!(mermaid.contains("[\"discovery/cluster1#lt;-cluster2\"]"));
    assert!(mermaid.contains(" --> "));
    let only = plan(&[
        "-f",
        "plans/two-cluster.yaml",
        "--offline",
        "-o",
        "mermaid",
        "--phase",
        "2",
    ]);
    assert!(only.contains("phase2 trust") && !only.contains("phase1 install"));
}

#[test]
fn no_secret_material_in_any_format() {
    for spec in specs() {
        let rel = relative(&spec);
        for format in ["text", "json", "yaml", "dot", "mermaid"] {
            let out = plan(&["-f", &rel, "--offline", "-o", format]);
            for needle in ["BEGIN", "PRIVATE KEY", "-----"] {
                assert!(!out.contains(needle), "`{needle}` in {rel} -o {format}");
            }
            for line in out.lines() {
                let t = line.trim_start().trim_start_matches('"');
                assert!(
                    !t.starts_with("token:") && !t.starts_with("token\":"),
                    "a token value in {rel} -o {format}: {line}"
                );
            }
        }
    }
}

#[test]
fn spec_errors_print_diagnostics_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let good = std::fs::read_to_string(repo_root().join("plans/two-cluster.yaml")).unwrap();
    std::fs::write(
        &bad,
        good.replacen("network: network2", "netwrk: network2", 1),
    )
    .unwrap();
    let out = migrate(&["plan", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:"), "{stderr}");
    assert!(stderr.contains("netwrk"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = migrate(&["plan", "-f", "plans/does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.yaml"));

    let out = migrate(&["plan", "-f", "plans/two-cluster.yaml", "--phase", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown phase `9`"));
}
