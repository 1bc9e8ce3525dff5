//! `apply --until PHASE` on plans/demo.yaml: the run stops after the phase
//! (exit 0, paused, checked with the real kubectl), goes on with `--resume`
//! (with or without `--until` a later phase) and ends as an uninterrupted run
//! leaves the clusters, every effect once; a SIGKILL between the phase's last
//! step and the pause record repeats nothing; a phase that names none is
//! refused before anything is read or changed.

use crate::crash::{Effects, demo_spec, effects, world};
use crate::sim_support::{Dump, Run, SimEnv};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The uninterrupted run's settled dump and effects, made once for the
/// tests of this file.
fn reference() -> &'static (Dump, Effects) {
    static REFERENCE: OnceLock<(Dump, Effects)> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let env = world();
        let spec = demo_spec(&env);
        apply(&env, &spec, &[]).expect_ok();
        (env.settled_dump(), effects(&env))
    })
}

fn apply(env: &SimEnv, spec: &Path, more: &[&str]) -> Run {
    let spec = spec.to_string_lossy();
    let mut args = vec!["apply", "-f", spec.as_ref()];
    args.extend_from_slice(more);
    env.migrate(&args)
}

fn status_json(env: &SimEnv) -> Value {
    let run = env.migrate(&["status", "-o", "json"]).expect_ok();
    serde_json::from_str(&run.stdout).expect("status -o json parses")
}

/// Each step's status, by phase name.
fn statuses_by_phase(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in doc["steps"].as_array().expect("steps") {
        out.entry(s["phase"].as_str().unwrap().to_string())
            .or_default()
            .push(s["status"].as_str().unwrap().to_string());
    }
    out
}

/// Every step of `phases` is `want`.
fn assert_phases(doc: &Value, phases: &[&str], want: &str, context: &str) {
    let by_phase = statuses_by_phase(doc);
    for phase in phases {
        let statuses = by_phase.get(*phase).expect("the demo plan has the phase");
        assert!(
            statuses.iter().all(|s| s == want),
            "{context}: {phase} should be all {want}: {by_phase:?}"
        );
    }
}

/// The run is paused after `after`, with `next` the first phase left.
fn assert_paused(env: &SimEnv, after: &str, next: &str, context: &str) {
    let doc = status_json(env);
    assert_eq!(doc["run"]["outcome"], "interrupted", "{context}: {doc}");
    assert_eq!(doc["run"]["pausedAfter"], after, "{context}: {doc}");
    assert_eq!(doc["run"]["next"]["phase"], next, "{context}: {doc}");
    let text = env.migrate(&["status"]).expect_ok();
    let header = text.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("paused after phase")
            && header.contains(&format!(" {after} (started"))
            && header.contains(", paused 20"),
        "{context}: {}",
        text.stdout
    );
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("next: phase") && l.contains(&format!(" {next}, "))),
        "{context}: {}",
        text.stdout
    );
}

/// Whether `cluster` holds `kind name` in istio-system, asked with the real kubectl.
fn exists(env: &SimEnv, cluster: &str, kind: &str, name: &str) -> bool {
    let out = env.kubectl(
        cluster,
        &["get", kind, name, "-n", "istio-system", "-o", "name"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("NotFound"),
        "kubectl get {kind} {name} on {cluster}: {stderr}"
    );
    out.status.success()
}

/// The remote secrets the discovery phase creates.
fn remote_secrets(env: &SimEnv) -> [bool; 2] {
    [
        exists(env, "cluster1", "secret", "istio-remote-secret-cluster2"),
        exists(env, "cluster2", "secret", "istio-remote-secret-cluster1"),
    ]
}

/// Steps that started in this output (the progress lines on stderr).
fn started(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.get(1) == Some(&"start"))
                .then(|| words.get(2).map(|w| w.trim_end_matches(':').to_string()))
                .flatten()
        })
        .collect()
}

#[test]
fn until_trust_pauses_before_discovery_then_resume_equals_an_uninterrupted_run() {
    let (want, want_effects) = reference();
    let env = world();
    let spec = demo_spec(&env);
    let paused = apply(&env, &spec, &["--until", "trust"]).expect_ok();
    assert!(
        paused.stdout.contains("paused after phase2 trust")
            && paused.stdout.contains("next: phase3 discovery"),
        "{}",
        paused.describe("the pause is said")
    );
    // The next command, with this invocation's spec and state directory.
    let state = env.state_dir.display();
    let go_on = format!("apply -f {} --state-dir {state} --resume", spec.display());
    assert!(
        paused.stdout.contains(&go_on)
            && paused
                .stdout
                .contains(&format!("{go_on} --until discovery")),
        "{}",
        paused.describe(&format!("the next command names {go_on}"))
    );
    let started = started(&paused);
    assert!(
        started.iter().all(|s| s.starts_with("preflight/")
            || s.starts_with("install/")
            || s.starts_with("trust/")
            || s == "gate/trust"),
        "only phases 0-2 (and trust's gate) started: {started:?}"
    );
    assert_paused(&env, "trust", "discovery", "after --until trust");
    let doc = status_json(&env);
    assert_phases(
        &doc,
        &["preflight", "install", "trust"],
        "done",
        "--until trust",
    );
    // discovery/cluster1/reader needs only install/cluster1: met, yet not started.
    assert_phases(
        &doc,
        &["discovery", "routing", "observability", "failover"],
        "pending",
        "--until trust",
    );
    assert_eq!(
        remote_secrets(&env),
        [false, false],
        "discovery did not run"
    );

    let rest = apply(&env, &spec, &["--resume"]).expect_ok();
    assert!(rest.stdout.contains("succeeded"), "{}", rest.stdout);
    assert_eq!(remote_secrets(&env), [true, true]);
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "succeeded");
    assert!(doc["run"].get("pausedAfter").is_none(), "{doc}");
    env.settled_dump()
        .assert_eq(want, "--until trust, then --resume");
    assert_eq!(&effects(&env), want_effects, "every effect happened once");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn until_twice_with_a_sigkill_before_the_pause_then_resume_equals_an_uninterrupted_run() {
    let (want, want_effects) = reference();
    let env = world();
    let spec = demo_spec(&env);
    // Killed right after the 11th step of this process is checkpointed
    // done: the last of phases 0-2, before the pause is recorded.
    let plan = env.migrate(&[
        "plan",
        "-f",
        &spec.to_string_lossy(),
        "--offline",
        "-o",
        "json",
    ]);
    let plan: Value = serde_json::from_str(&plan.expect_ok().stdout).unwrap();
    let up_to_trust = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| matches!(s["phase"].as_str(), Some("preflight" | "install" | "trust")))
        .count();
    let failpoint = format!("after-step:{up_to_trust}");
    let spec_arg = spec.to_string_lossy();
    let killed = env.migrate_env(
        &["apply", "-f", &spec_arg, "--until", "trust"],
        &[(migrate::engine::failpoint::ENV, failpoint.as_str())],
    );
    assert_eq!(
        killed.signal,
        Some(9),
        "{}",
        killed.describe("the failpoint")
    );
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "running", "no pause recorded: {doc}");
    assert_phases(&doc, &["preflight", "install", "trust"], "done", "killed");

    // The resume records the pause and starts nothing again.
    let resumed = apply(&env, &spec, &["--resume", "--until", "trust"]).expect_ok();
    assert_eq!(
        started(&resumed),
        Vec::<String>::new(),
        "{}",
        resumed.stderr
    );
    assert_paused(&env, "trust", "discovery", "resumed after the kill");
    assert_eq!(remote_secrets(&env), [false, false]);

    // An earlier phase than the run is past: nothing to do, nothing changed.
    let before = status_json(&env);
    let again = apply(&env, &spec, &["--resume", "--until", "install"]).expect_ok();
    assert!(
        again.stdout.contains("nothing to do"),
        "{}",
        again.describe("--until install after trust")
    );
    assert_eq!(status_json(&env), before, "the run stays as it was");

    let routing = apply(&env, &spec, &["--resume", "--until", "routing"]).expect_ok();
    assert!(
        routing.stdout.contains("paused after phase4 routing"),
        "{}",
        routing.stdout
    );
    assert_paused(&env, "routing", "observability", "--until routing");
    let doc = status_json(&env);
    assert_phases(&doc, &["discovery", "routing"], "done", "--until routing");
    assert_phases(
        &doc,
        &["observability", "failover"],
        "pending",
        "--until routing",
    );
    assert_eq!(remote_secrets(&env), [true, true]);

    apply(&env, &spec, &["--resume"]).expect_ok();
    env.settled_dump().assert_eq(
        want,
        "--until trust (killed), trust, routing, then --resume",
    );
    assert_eq!(&effects(&env), want_effects, "every effect happened once");
}

#[test]
fn a_paused_run_rolls_back_and_a_new_apply_is_refused_while_it_is_paused() {
    let env = world();
    let spec = demo_spec(&env);
    let before = env.settled_dump();
    apply(&env, &spec, &["--until", "trust"]).expect_ok();
    let refused = apply(&env, &spec, &[]);
    assert_eq!(
        refused.code,
        Some(2),
        "{}",
        refused.describe("a second start")
    );
    assert!(
        refused.stderr.contains("paused after trust"),
        "{}",
        refused.stderr
    );
    env.migrate(&["rollback", "--to", "phase0"]).expect_ok();
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "rolled-back", "{doc}");
    assert!(doc["run"].get("pausedAfter").is_none(), "{doc}");
    env.settled_dump()
        .assert_eq(&before, "--until trust, then rollback --to phase0");
}

#[test]
fn an_unknown_phase_is_refused_with_exit_2_and_nothing_changed() {
    let env = world();
    let spec = demo_spec(&env);
    let before = env.settled_dump();
    let run = apply(&env, &spec, &["--until", "nowhere"]);
    assert_eq!(run.code, Some(2), "{}", run.describe("--until nowhere"));
    assert!(
        run.stderr.contains("--until: unknown phase `nowhere`") && run.stderr.contains("discovery"),
        "{}",
        run.stderr
    );
    assert!(!env.state_dir.exists(), "no state directory was made");
    env.settled_dump()
        .assert_eq(&before, "no cluster was touched");
}

#[test]
fn until_with_dry_run_goes_no_further_and_changes_nothing() {
    let env = world();
    let spec = demo_spec(&env);
    let before = env.settled_dump();
    let run = apply(&env, &spec, &["--dry-run", "--until", "install"]).expect_ok();
    assert!(
        run.stdout
            .contains("dry run: run #1 paused after phase1 install")
            && run.stdout.contains("next: phase2 trust"),
        "{}",
        run.describe("the dry run says where it stops")
    );
    let started = started(&run);
    assert!(
        !started.is_empty()
            && started
                .iter()
                .all(|s| s.starts_with("preflight/") || s.starts_with("install/")),
        "{started:?}"
    );
    assert!(
        !run.stdout.contains("--resume"),
        "a dry run recorded nothing to resume: {}",
        run.stdout
    );
    assert!(!env.state_dir.exists(), "a dry run records nothing");
    env.settled_dump()
        .assert_eq(&before, "a dry run changes nothing");
}
