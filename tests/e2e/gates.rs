//! Gates between phases, on plans/demo.yaml against meshsim with the real
//! binary and the real kubectl: the demo passes every gate (`status` says so,
//! text and JSON, and `plan` shows what each checks); a mistake made by hand
//! between phases fails the next gate with its code (exit 1, the phase after
//! it not started), and once fixed `apply --resume` runs the gate again and
//! ends as an uninterrupted run leaves the clusters, every effect once; so
//! does `apply --resume` after a rollback killed as it set a gate back.

use crate::crash::{Effects, demo_spec, effects, world};
use crate::sim_support::{Dump, Run, SimEnv};
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const GATES: [&str; 3] = ["gate/trust", "gate/discovery", "gate/routing"];

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

/// The step `id` of a `status -o json` document.
fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

fn kubectl_ok(env: &SimEnv, cluster: &str, args: &[&str]) {
    let out = env.kubectl(cluster, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The status line of step `id` in `status`'s text.
fn line<'a>(text: &'a str, id: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{text}"))
}

#[test]
fn the_demo_passes_every_gate_and_status_and_plan_show_them() {
    let env = world();
    let spec = demo_spec(&env);
    let plan = env
        .migrate(&["plan", "-f", &spec.to_string_lossy(), "--offline"])
        .expect_ok();
    for (gate, checks) in [
        ("gate/trust", "check gate: roots across cluster1, cluster2"),
        (
            "gate/discovery",
            "check gate: names, remote-secrets across cluster1, cluster2",
        ),
        (
            "gate/routing",
            "check gate: gateway, destination-rules across cluster1, cluster2",
        ),
    ] {
        assert!(
            plan.stdout.contains(gate) && plan.stdout.contains(checks),
            "{}",
            plan.describe(&format!("the plan shows {gate}: {checks}"))
        );
    }

    let run = apply(&env, &spec, &[]).expect_ok();
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
    let doc = status_json(&env);
    for gate in GATES {
        let s = step(&doc, gate);
        assert_eq!(s["status"], "done", "{s}");
        assert_eq!(s["gate"]["result"], "passed", "{s}");
        assert_eq!(s["gate"]["errors"], 0, "{s}");
        assert!(
            s["gate"]["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .all(|f| f["severity"] != "error"),
            "{s}"
        );
    }
    assert_eq!(step(&doc, "gate/trust")["gate"]["groups"][0], "roots");
    let text = env.migrate(&["status"]).expect_ok().stdout;
    for gate in GATES {
        let l = line(&text, gate);
        assert!(
            l.starts_with("  done") && l.contains("gate passed"),
            "{gate}: {l}"
        );
    }
    // The journal keeps each gate's result for later.
    let events = env.migrate(&["status", "--events"]).expect_ok().stdout;
    assert!(
        events.contains("[gate/discovery] gate discovery passed"),
        "{events}"
    );
    env.assert_no_secrets_in_outputs();
}

/// A DestinationRule a user adds by hand: locality failover for curl,
/// without the outlier detection failover needs (MC601).
const FAILOVER_WITHOUT_OUTLIERS: &str = r#"{
  "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
  "metadata": { "name": "curl-failover", "namespace": "sample" },
  "spec": { "host": "curl.sample.svc.cluster.local",
    "trafficPolicy": { "loadBalancer": { "localityLbSetting": {
      "enabled": true, "failover": [{ "from": "us-west", "to": "us-east" }] } } } }
}"#;

#[test]
fn a_destination_rule_added_between_phases_fails_the_routing_gate_until_it_is_fixed() {
    let (want, want_effects) = reference();
    let env = world();
    let spec = demo_spec(&env);
    apply(&env, &spec, &["--until", "discovery"]).expect_ok();
    let doc = status_json(&env);
    for gate in ["gate/trust", "gate/discovery"] {
        assert_eq!(step(&doc, gate)["gate"]["result"], "passed", "{doc}");
    }

    let file = env.path("curl-failover.json");
    std::fs::write(&file, FAILOVER_WITHOUT_OUTLIERS).unwrap();
    kubectl_ok(&env, "cluster1", &["apply", "-f", &file.to_string_lossy()]);

    let failed = apply(&env, &spec, &["--resume", "-o", "json"]);
    assert_eq!(
        failed.code,
        Some(1),
        "{}",
        failed.describe("a failing gate fails the run")
    );
    // `-o json`: the gate's result as one event, with the finding's code.
    let gate_events: Vec<Value> = failed
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "gate")
        .collect();
    assert_eq!(gate_events.len(), 1, "{}", failed.stdout);
    let event = &gate_events[0];
    assert_eq!(event["step"], "gate/routing", "{event}");
    assert_eq!(event["phase"], "routing", "{event}");
    assert_eq!(event["passed"], false, "{event}");
    assert_eq!(event["errors"], 1, "{event}");
    assert_eq!(event["findings"][0]["code"], "MC601", "{event}");
    assert_eq!(event["findings"][0]["severity"], "error", "{event}");
    assert_eq!(
        event["findings"][0]["object"],
        "DestinationRule sample/curl-failover"
    );
    // The journal holds the gate's result, its findings within, as one event.
    let journal = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    let journal: Value = serde_json::from_str(&journal.stdout).unwrap();
    let gate_entries: Vec<&Value> = journal["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["step"] == "gate/routing")
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("gate "))
        })
        .collect();
    assert_eq!(gate_entries.len(), 1, "{gate_entries:?}");
    let said = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        said.contains("MC601 cluster1 DestinationRule sample/curl-failover"),
        "{}",
        failed.describe("the finding is named")
    );
    let doc = status_json(&env);
    let gate = step(&doc, "gate/routing");
    assert_eq!(gate["status"], "failed", "{gate}");
    assert_eq!(gate["gate"]["result"], "failed", "{gate}");
    assert_eq!(gate["gate"]["errors"], 1, "{gate}");
    let finding = &gate["gate"]["findings"][0];
    assert_eq!(finding["code"], "MC601", "{gate}");
    assert_eq!(finding["cluster"], "cluster1", "{gate}");
    assert_eq!(finding["object"], "DestinationRule sample/curl-failover");
    assert!(
        finding["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "{gate}"
    );
    // Routing's own steps ran; nothing built on the phase started.
    assert_eq!(step(&doc, "routing/cluster1")["status"], "done", "{doc}");
    for s in doc["steps"].as_array().unwrap() {
        if matches!(s["phase"].as_str(), Some("observability" | "failover")) {
            assert_eq!(s["status"], "pending", "{s}");
        }
    }
    let text = env.migrate(&["status"]).expect_ok().stdout;
    assert!(
        line(&text, "gate/routing").contains("gate failed with 1 error(s)"),
        "{text}"
    );
    assert!(
        text.contains("ERROR MC601 cluster1 DestinationRule sample/curl-failover: ")
            && text.contains("once the mesh is fixed, resume with:"),
        "{text}"
    );

    // Still broken: the gate fails again, and nothing else runs.
    let again = apply(&env, &spec, &["--resume"]);
    assert_eq!(again.code, Some(1), "{}", again.describe("still broken"));

    kubectl_ok(
        &env,
        "cluster1",
        &["-n", "sample", "delete", "destinationrule", "curl-failover"],
    );
    let done = apply(&env, &spec, &["--resume"]).expect_ok();
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "succeeded", "{doc}");
    assert_eq!(step(&doc, "gate/routing")["gate"]["result"], "passed");
    env.settled_dump()
        .assert_eq(want, "routing gate failed, fixed, resumed");
    assert_eq!(&effects(&env), want_effects, "a gate makes no change");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn an_incomplete_cacerts_fails_the_trust_gate_until_it_is_put_back() {
    let (want, want_effects) = reference();
    let env = world();
    let spec = demo_spec(&env);
    let spec_arg = spec.to_string_lossy().to_string();
    // Stopped just before trust's gate runs: the moment a user edits by hand.
    let killed = env.migrate_env(
        &["apply", "-f", &spec_arg, "--until", "trust"],
        &[(migrate::engine::failpoint::ENV, "before-step:gate/trust")],
    );
    assert_eq!(
        killed.signal,
        Some(9),
        "{}",
        killed.describe("the failpoint")
    );
    let chain = env.kubectl(
        "cluster2",
        &[
            "-n",
            "istio-system",
            "get",
            "secret",
            "cacerts",
            "-o",
            "jsonpath={.data.cert-chain\\.pem}",
        ],
    );
    assert!(chain.status.success() && !chain.stdout.is_empty());
    let chain = String::from_utf8(chain.stdout).unwrap();
    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "istio-system",
            "patch",
            "secret",
            "cacerts",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/cert-chain.pem"}]"#,
        ],
    );

    let failed = apply(&env, &spec, &["--resume", "--until", "trust"]);
    assert_eq!(failed.code, Some(1), "{}", failed.describe("MC103 fails"));
    let doc = status_json(&env);
    let gate = step(&doc, "gate/trust");
    assert_eq!(gate["status"], "failed", "{gate}");
    let codes: Vec<(&str, &str, &str)> = gate["gate"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["code"].as_str().unwrap(),
                f["cluster"].as_str().unwrap(),
                f["object"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [("MC103", "cluster2", "Secret istio-system/cacerts")],
        "{gate}"
    );
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["phase"] == "discovery")
            .all(|s| s["status"] == "pending"),
        "{doc}"
    );

    let put_back = format!(r#"[{{"op":"add","path":"/data/cert-chain.pem","value":"{chain}"}}]"#);
    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "istio-system",
            "patch",
            "secret",
            "cacerts",
            "--type",
            "json",
            "-p",
            &put_back,
        ],
    );
    apply(&env, &spec, &["--resume", "--until", "trust"]).expect_ok();
    let doc = status_json(&env);
    assert_eq!(doc["run"]["pausedAfter"], "trust", "{doc}");
    assert_eq!(step(&doc, "gate/trust")["gate"]["result"], "passed");
    apply(&env, &spec, &["--resume"]).expect_ok();
    env.settled_dump()
        .assert_eq(want, "trust gate failed, fixed, resumed");
    assert_eq!(&effects(&env), want_effects, "a gate makes no change");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_dry_run_skips_the_gates_with_a_note() {
    let env = world();
    let spec = demo_spec(&env);
    let before = env.settled_dump();
    let run = apply(&env, &spec, &["--dry-run", "--until", "trust"]).expect_ok();
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("gate/trust: gate trust not run: it verifies what the phase made"),
        "{}",
        run.describe("the skipped gate is said")
    );
    env.settled_dump()
        .assert_eq(&before, "a dry run changes nothing");
}

#[test]
fn a_replan_that_changes_a_gates_expectations_runs_the_gate_again() {
    let env = world();
    let spec = demo_spec(&env);
    apply(&env, &spec, &["--until", "discovery"]).expect_ok();
    let doc = status_json(&env);
    for gate in ["gate/trust", "gate/discovery"] {
        assert_eq!(step(&doc, gate)["status"], "done", "{doc}");
    }
    // The spec now names another meshID: the done install steps stay done
    // (a replan keeps them), so the mesh still says mesh1; the gates that
    // passed against mesh1 must look again.
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains("id: mesh1"), "the demo's meshID");
    std::fs::write(&spec, text.replace("id: mesh1", "id: mesh2")).unwrap();
    let run = apply(
        &env,
        &spec,
        &["--resume", "--replan", "--until", "discovery"],
    );
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("the discovery gate fails against the new meshID")
    );
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("MC205"),
        "{}",
        run.describe("MC205 named")
    );
    let doc = status_json(&env);
    let trust = step(&doc, "gate/trust");
    assert_eq!(trust["status"], "done", "{trust}");
    assert_eq!(trust["gate"]["result"], "passed", "{trust}");
    // It ran again (its result journalled twice), said why.
    let journal = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    let journal: Value = serde_json::from_str(&journal.stdout).unwrap();
    let said = |needle: &str| {
        journal["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["step"] == "gate/trust")
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
            .count()
    };
    assert_eq!(said("gate trust passed"), 2, "{journal}");
    assert_eq!(said("it runs again"), 1, "{journal}");
    let discovery = step(&doc, "gate/discovery");
    assert_eq!(discovery["status"], "failed", "{discovery}");
    let codes: Vec<&str> = discovery["gate"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"MC205"),
        "meshID mesh1 is not mesh2: {discovery}"
    );
    // A step that is not a gate stays done: a replan never repeats effects.
    assert_eq!(step(&doc, "trust/cluster1")["status"], "done", "{doc}");
    env.assert_no_secrets_in_outputs();
}

/// A rollback killed as it sets a gate back (the gate checkpointed rolling
/// back, nothing undone yet), then `apply --resume` with the same spec: the
/// resumed run runs the gate again when it reaches it, and ends as an
/// uninterrupted run leaves the clusters, every effect once (a gate changes
/// nothing, and the phase's own steps were never undone).
#[test]
fn apply_resume_after_a_rollback_killed_at_a_gate_runs_the_gate_again() {
    let (want, want_effects) = reference();
    let env = world();
    let spec = demo_spec(&env);
    apply(&env, &spec, &["--until", "routing"]).expect_ok();
    let at = "before-step:gate/routing";
    let killed = env.migrate_env(
        &["rollback", "--to", "discovery"],
        &[(migrate::engine::failpoint::ENV, at)],
    );
    assert_eq!(killed.signal, Some(9), "{}", killed.describe(at));
    let doc = status_json(&env);
    assert_eq!(
        step(&doc, "gate/routing")["status"],
        "rolling-back",
        "{doc}"
    );
    assert_eq!(step(&doc, "routing/cluster1")["status"], "done", "{doc}");

    let resumed = apply(&env, &spec, &["--resume"]);
    assert!(
        resumed.ok(),
        "{}",
        resumed.describe("apply --resume after the killed rollback")
    );
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "succeeded", "{doc}");
    let gate = step(&doc, "gate/routing");
    assert_eq!(gate["status"], "done", "{gate}");
    assert_eq!(gate["gate"]["result"], "passed", "{gate}");
    // It ran again: its result journalled twice.
    let journal = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    let journal: Value = serde_json::from_str(&journal.stdout).unwrap();
    let passed = journal["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["step"] == "gate/routing")
        .filter(|e| e["message"] == "gate routing passed")
        .count();
    assert_eq!(passed, 2, "{journal}");
    env.settled_dump().assert_eq(
        want,
        "rollback killed at the routing gate, then apply --resume",
    );
    assert_eq!(&effects(&env), want_effects, "every effect once");
    env.assert_no_secrets_in_outputs();
}

/// A rollback killed half way through a step that changes the mesh: going
/// forward from there would snapshot its half-undone objects as what a
/// rollback restores, so `apply --resume` refuses before any change and
/// says how to finish; after that rollback it goes forward to the same mesh.
#[test]
fn apply_resume_after_a_rollback_killed_mid_step_says_to_finish_the_rollback_first() {
    let (want, _) = reference();
    let env = world();
    let spec = demo_spec(&env);
    apply(&env, &spec, &["--until", "routing"]).expect_ok();
    let at = "before-step:routing/cluster1";
    let killed = env.migrate_env(
        &["rollback", "--to", "discovery"],
        &[(migrate::engine::failpoint::ENV, at)],
    );
    assert_eq!(killed.signal, Some(9), "{}", killed.describe(at));
    let doc = status_json(&env);
    assert_eq!(
        step(&doc, "routing/cluster1")["status"],
        "rolling-back",
        "{doc}"
    );
    let before = env.settled_dump();

    let refused = apply(&env, &spec, &["--resume"]);
    assert!(!refused.ok(), "{}", refused.describe("refused"));
    for part in [
        "stopped while it was being rolled back: step(s) routing/cluster1",
        "are half undone",
        "Nothing was changed",
        "rollback",
        "--to phase3`",
    ] {
        assert!(refused.stderr.contains(part), "{}", refused.describe(part));
    }
    env.settled_dump()
        .assert_eq(&before, "the mesh after the refused resume");
    let doc = status_json(&env);
    assert_eq!(
        step(&doc, "routing/cluster1")["status"],
        "rolling-back",
        "the refusal wrote nothing: {doc}"
    );

    env.migrate(&["rollback", "--to", "phase3"]).expect_ok();
    apply(&env, &spec, &["--resume"]).expect_ok();
    let doc = status_json(&env);
    assert_eq!(doc["run"]["outcome"], "succeeded", "{doc}");
    env.settled_dump().assert_eq(
        want,
        "rollback killed mid-step, finished, then apply --resume",
    );
    env.assert_no_secrets_in_outputs();
}
