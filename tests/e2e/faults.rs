//! Faults injected in the simulated API servers: with 10% 500s, 5% 429s and
//! added latency, apply completes with no duplicate objects (the dump equals
//! a clean run's); with a cluster down, the step fails naming the cluster,
//! and resume completes once it is back.

use crate::apply::{apply, seeded_with_spec, step_statuses};
use crate::sim_support::Dump;
use meshsim::FaultConfig;
use std::time::Duration;

fn clean_run() -> Dump {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    env.settled_dump()
}

#[test]
fn apply_completes_through_500s_429s_and_latency_without_duplicates() {
    let want = clean_run();
    let (env, spec) = seeded_with_spec();
    for c in env.sim.clusters() {
        c.faults().reset_counters();
        c.faults().set(FaultConfig {
            latency: Duration::from_millis(5),
            // 15% of requests fail: two thirds of them 500, one third 429.
            error_rate: 0.15,
            error_codes: vec![500, 500, 429],
            retry_after_secs: 0,
        });
    }
    let run = apply(&env, &spec, &["-vv"], None);
    for c in env.sim.clusters() {
        c.faults().clear();
    }
    assert!(run.ok(), "{}", run.describe("apply under injected faults"));
    assert!(
        run.stderr.contains("retry"),
        "the retries are shown: {}",
        run.stderr
    );
    for c in env.sim.clusters() {
        let n = c.faults().counters();
        assert!(
            n.code(500) > 0 && n.code(429) > 0,
            "{}: faults were injected ({:?})",
            c.name(),
            n.by_code
        );
    }
    for (id, status) in step_statuses(&env) {
        assert_eq!(status, "done", "step {id}");
    }
    env.settled_dump()
        .assert_eq(&want, "apply under faults vs a clean apply");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back() {
    let want = clean_run();
    let (env, spec) = seeded_with_spec();
    env.sim.cluster("cluster2").faults().set_down(true);
    let run = apply(&env, &spec, &["-v", "--log-format", "json"], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply with cluster2 down")
    );
    // --log-format json: stderr holds JSON records only, the verdict lines among them.
    let messages: Vec<String> = run
        .stderr
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{e}: stderr line is not JSON: {l}"));
            record["message"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let failed: Vec<&String> = messages
        .iter()
        .filter(|l| l.starts_with("FAILED "))
        .collect();
    assert!(!failed.is_empty(), "{}", run.stderr);
    for line in &failed {
        assert!(
            line.contains("cluster2"),
            "the failure names the cluster: {line}"
        );
    }
    assert!(run.stderr.contains("--resume"), "{}", run.stderr);
    env.sim.cluster("cluster2").faults().set_down(false);
    assert!(
        env.sim
            .cluster("cluster2")
            .wait_listening(std::time::Duration::from_secs(10))
    );
    // cluster2 was down when the run started: its uid was never recorded.
    let resumed = apply(
        &env,
        &spec,
        &["--resume", "--accept-unknown-identity"],
        None,
    );
    assert!(
        resumed.ok(),
        "{}",
        resumed.describe("resume with cluster2 back")
    );
    env.settled_dump()
        .assert_eq(&want, "cluster down, then resumed");
    env.assert_no_secrets_in_outputs();
}
