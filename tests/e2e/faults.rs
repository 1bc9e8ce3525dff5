//! Faults injected in the simulated API servers of the migrated clusters
//! (the state's cluster stays healthy): with 10% 500s, 5% 429s and added
//! latency, apply completes with no duplicate objects (the dump equals a
//! clean run's); with a cluster down, the step fails naming the cluster, and
//! resume completes once it is back. Both on both state backends. And the
//! state's own cluster answering 500s and 429s slowly for a while (the run
//! goes on: the store retries), then down: the run stops cleanly with an
//! error ending in what to do next, and following it (unlock, resume) ends
//! as a clean run.

use crate::apply::{apply, seeded_with_spec_on, step_statuses};
use crate::sim_support::{Backend, Dump, Run};
use meshsim::FaultConfig;
use std::time::Duration;

fn clean_run(backend: Backend) -> Dump {
    let (env, spec) = seeded_with_spec_on(backend);
    apply(&env, &spec, &[], None).expect_ok();
    env.settled_dump()
}

#[test]
fn apply_completes_through_500s_429s_and_latency_without_duplicates_on_sled() {
    apply_completes_through_500s_429s_and_latency_without_duplicates(Backend::Sled);
}

#[test]
fn apply_completes_through_500s_429s_and_latency_without_duplicates_on_kubernetes() {
    apply_completes_through_500s_429s_and_latency_without_duplicates(Backend::Kubernetes);
}

fn apply_completes_through_500s_429s_and_latency_without_duplicates(backend: Backend) {
    let want = clean_run(backend);
    let (env, spec) = seeded_with_spec_on(backend);
    for c in env.mesh_clusters() {
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
    for c in env.mesh_clusters() {
        c.faults().clear();
    }
    assert!(
        run.ok(),
        "{}",
        run.describe(&format!("{backend:?}: apply under injected faults"))
    );
    assert!(
        run.stderr.contains("retry"),
        "the retries are shown: {}",
        run.stderr
    );
    for c in env.mesh_clusters() {
        let n = c.faults().counters();
        assert!(
            n.code(500) > 0 && n.code(429) > 0,
            "{}: faults were injected ({:?})",
            c.name(),
            n.by_code
        );
    }
    if let Some(state) = env.state_cluster() {
        let n = state.faults().counters();
        assert!(
            n.total > 0 && !n.by_code.keys().any(|code| *code == 429 || *code >= 500),
            "the state's cluster was used and left healthy: {:?}",
            n.by_code
        );
    }
    for (id, status) in step_statuses(&env) {
        assert_eq!(status, "done", "{backend:?}: step {id}");
    }
    env.settled_dump().assert_eq(
        &want,
        &format!("{backend:?}: apply under faults vs a clean apply"),
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back_on_sled() {
    a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back(Backend::Sled);
}

#[test]
fn a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back_on_kubernetes() {
    a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back(Backend::Kubernetes);
}

fn a_cluster_down_fails_its_step_by_name_and_resume_completes_once_it_is_back(backend: Backend) {
    let want = clean_run(backend);
    let (env, spec) = seeded_with_spec_on(backend);
    env.sim.cluster("cluster2").faults().set_down(true);
    let run = apply(&env, &spec, &["-v", "--log-format", "json"], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe(&format!("{backend:?}: apply with cluster2 down"))
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
        resumed.describe(&format!("{backend:?}: resume with cluster2 back"))
    );
    env.settled_dump()
        .assert_eq(&want, &format!("{backend:?}: cluster down, then resumed"));
    env.assert_no_secrets_in_outputs();
}

/// Entries of the state's log written under the faults before its cluster goes down: well into the run (a
/// clean run writes well over a hundred), so steps begin, snapshot and finish through the faults.
const ENTRIES_UNDER_FAULTS: u64 = 40;

#[test]
fn a_state_store_answering_500s_429s_slowly_then_down_stops_cleanly_and_resume_completes() {
    let want = clean_run(Backend::Kubernetes);
    let (env, spec) = seeded_with_spec_on(Backend::Kubernetes);
    let state = env.state_cluster().expect("the state's cluster");
    state.faults().reset_counters();
    state.faults().set(FaultConfig {
        latency: Duration::from_millis(10),
        // 20% of the store's requests fail: two thirds of them 500, one third 429.
        error_rate: 0.2,
        error_codes: vec![500, 500, 429],
        retry_after_secs: 0,
    });
    let run: Run = std::thread::scope(|scope| {
        let running = scope.spawn(|| apply(&env, &spec, &[], None));
        // Through the faults (the store's requests are retried), until well into the run.
        env.wait_for(
            "the run to write its log under the faults, or end",
            Duration::from_secs(300),
            || running.is_finished() || state_entries(&env) >= ENTRIES_UNDER_FAULTS,
        );
        // Then the store's cluster is gone for longer than any retry: the run must stop, not go on unrecorded.
        state.faults().set_down(true);
        running.join().expect("the run's thread")
    });
    let n = state.faults().counters();
    assert!(
        n.code(500) > 0 && n.code(429) > 0,
        "faults were injected in the state's cluster ({:?})",
        n.by_code
    );
    let reached = state_entries(&env);
    assert!(
        reached >= ENTRIES_UNDER_FAULTS,
        "the run got only to entry {reached} through the faults: {}",
        run.describe("the run")
    );
    // Stopped cleanly: an error exit (not a crash), naming the store (and why: nothing redacted away).
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("a run whose store went down stops cleanly")
    );
    assert!(
        run.stderr.contains(&env.state_location()) && !run.stderr.contains("<redacted>"),
        "{}",
        run.describe("the failure names the state store and the cause")
    );
    // The error ends with what to do next, worded for this invocation: resume, and free the store's Lease
    // first if it is still held (it could not be given back while the store was down).
    let error = run
        .stderr
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", run.describe("an error line")));
    let location = env.state_location();
    let resume = format!(
        "resume with `migrate --kubeconfig {} apply -f {} --state {location} --resume`",
        env.kubeconfig().display(),
        spec.display()
    );
    assert!(
        error.contains(&format!("; once the store answers again, {resume}; ")),
        "{error}"
    );
    let unlock = hinted(error, "free it first with `");
    assert!(
        error.ends_with(&format!("free it first with `{unlock}`"))
            && unlock.contains(" unlock --force ")
            && unlock.ends_with(&format!(" --state {location}")),
        "{error}"
    );
    state.faults().set_down(false);
    state.faults().clear();
    assert!(state.wait_listening(Duration::from_secs(10)));
    // As the hint says: the Lease (held until it lapses) is freed with the command given.
    let words: Vec<&str> = unlock.split_whitespace().skip(1).collect();
    env.migrate(&words).expect_ok();
    let resumed = apply(&env, &spec, &["--resume"], None);
    assert!(
        resumed.ok(),
        "{}\n{}",
        run.describe("the first run"),
        resumed.describe("resume once the store's cluster is back")
    );
    // The log reads back whole (checksums, contiguity) and shows every step done.
    for (id, status) in step_statuses(&env) {
        assert_eq!(status, "done", "step {id}");
    }
    env.settled_dump().assert_eq(
        &want,
        "a store with faults, then down, then resumed vs a clean run",
    );
    env.assert_no_secrets_in_outputs();
}

/// The command a hint gives in backquotes right after `lead`.
fn hinted<'a>(error: &'a str, lead: &str) -> &'a str {
    let start = error
        .find(lead)
        .unwrap_or_else(|| panic!("{lead:?} in {error}"))
        + lead.len();
    let len = error[start..]
        .find('`')
        .unwrap_or_else(|| panic!("a closing backquote in {error}"));
    &error[start..start + len]
}

/// How far the state's log went: its newest entry's sequence number (compaction deletes older ones).
fn state_entries(env: &crate::sim_support::SimEnv) -> u64 {
    let Some(state) = env.state_cluster() else {
        return 0;
    };
    let store = state.store();
    let Some(rt) = store.resolve_kind("v1", "Secret") else {
        return 0;
    };
    store
        .list(&rt, Some(crate::sim_support::STATE_NAMESPACE))
        .0
        .iter()
        .filter(|s| {
            s.pointer("/metadata/labels/migrate.meshops.dev~1role")
                == Some(&serde_json::Value::from("entry"))
        })
        .filter_map(|s| {
            s.pointer("/metadata/labels/migrate.meshops.dev~1seq")?
                .as_str()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}
