//! SIGKILL at random moments of a whole migration (`plans/demo.yaml` on
//! meshsim with latency), then resume: the clusters end as an uninterrupted
//! run leaves them, and no effect happened more often (rollouts counted by
//! each Deployment's revision, scales by meshsim's count of `spec.replicas`
//! changes). And a SIGKILL right after each "done" line: the step stays done.
//!
//! The random delay before each kill is the experiment, not a wait for
//! something: where it lands is what varies between trials. Set
//! `MIGRATE_CRASH_SEED` to replay a failing series.

use crate::sim_support::{Dump, SimEnv};
use crate::support::repo_root;
use meshsim::SimConfig;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 20;
const LATENCY: Duration = Duration::from_millis(5);

/// Two clusters as `migrate sim serve --seed` starts them (the demo's
/// localities), every answer delayed by `LATENCY`.
pub(crate) fn world() -> SimEnv {
    let mut config = SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(10),
        ..Default::default()
    };
    config.faults.latency = LATENCY;
    let env = SimEnv::start_with(config);
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    env
}

/// plans/demo.yaml with the installer and cert dir of this test.
pub(crate) fn demo_spec(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("plans/demo.yaml")).unwrap();
    for needle in ["path: istioctl", "certDir: ./migrate-certs"] {
        assert!(
            text.contains(needle),
            "plans/demo.yaml no longer has {needle:?}"
        );
    }
    let text = text
        .replace("path: istioctl", "path: \"@ISTIOCTL@\"")
        .replace("certDir: ./migrate-certs", "certDir: \"@CERTS@\"");
    env.write_spec("demo.yaml", &text)
}

/// What the clusters hold and how often things happened to them.
#[derive(Debug, PartialEq)]
pub(crate) struct Effects {
    /// Per cluster, each Deployment's revision: one per rollout.
    rollouts: BTreeMap<String, BTreeMap<String, String>>,
    /// Per cluster, how often each Deployment's replicas changed.
    scales: BTreeMap<String, BTreeMap<String, u64>>,
}

pub(crate) fn effects(env: &SimEnv) -> Effects {
    let mut rollouts = BTreeMap::new();
    let mut scales = BTreeMap::new();
    for c in env.sim.clusters() {
        let store = c.store();
        let mut revisions = BTreeMap::new();
        if let Some(rt) = store.resolve_kind("apps/v1", "Deployment") {
            for d in store.list(&rt, None).0 {
                let name = format!(
                    "{}/{}",
                    d.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    d.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
                let revision = d
                    .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .unwrap_or("none")
                    .to_string();
                revisions.insert(name, revision);
            }
        }
        rollouts.insert(c.name().to_string(), revisions);
        scales.insert(c.name().to_string(), store.scale_counts());
    }
    Effects { rollouts, scales }
}

/// `migrate apply` as a child process of this test, stderr piped.
fn spawn_apply(env: &SimEnv, spec: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(["apply", "-f"])
        .arg(spec)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .current_dir(env.dir.path())
        .env("KUBECONFIG", env.kubeconfig())
        .env("PATH", path_with(&env.path("bin")))
        .env_remove(migrate::engine::failpoint::ENV)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().expect("the migrate binary starts")
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// One `apply` after the kill finishes the run: `--resume` when a run is
/// recorded, a fresh `apply` when the kill came before one was.
fn finish(env: &SimEnv, spec: &Path, context: &str) {
    let spec_text = spec.to_string_lossy().into_owned();
    let mut args = vec!["apply", "-f", spec_text.as_str()];
    if has_run(env) {
        args.push("--resume");
    }
    let run = env.migrate(&args);
    assert!(
        run.ok(),
        "{}",
        run.describe(&format!("{context}: the resume"))
    );
}

fn has_run(env: &SimEnv) -> bool {
    let run = env.migrate(&["status", "-o", "json"]);
    run.ok()
        && serde_json::from_str::<Value>(&run.stdout)
            .map(|v| v.get("run").is_some_and(|r| !r.is_null()))
            .unwrap_or(false)
}

/// The uninterrupted run: its dump, its effects, and how long it took.
fn reference() -> (Dump, Effects, Duration) {
    let env = world();
    let spec = demo_spec(&env);
    let started = Instant::now();
    let run = env.migrate(&["apply", "-f", &spec.to_string_lossy()]);
    let took = started.elapsed();
    assert!(run.ok(), "{}", run.describe("the uninterrupted run"));
    // Settled first: the deployment controller writes revisions after apply returns.
    let dump = env.settled_dump();
    let effects = effects(&env);
    // The counters count: the drill scales helloworld-v1 down and back.
    assert_eq!(
        effects.scales["cluster1"].get("sample/helloworld-v1"),
        Some(&2),
        "{effects:?}"
    );
    (dump, effects, took)
}

fn seed() -> u64 {
    std::env::var("MIGRATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let (want, want_effects, took) = reference();
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let context = |trial: usize, delay: Duration| {
        format!("MIGRATE_CRASH_SEED={seed}, trial {trial}, killed after {delay:?}")
    };
    for trial in 1..=TRIALS {
        let env = world();
        let spec = demo_spec(&env);
        // Anywhere in the run, from before the state directory exists to its last step.
        let delay = took.mul_f64(rng.f64());
        let mut child = spawn_apply(&env, &spec, false);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let context = context(trial, delay);
        finish(&env, &spec, &context);
        env.settled_dump().assert_eq(&want, &context);
        assert_eq!(effects(&env), want_effects, "{context}");
    }
}

#[test]
fn sigkill_right_after_each_done_line_never_reruns_that_step() {
    let env = world();
    let spec = demo_spec(&env);
    let mut killed_after: BTreeSet<String> = BTreeSet::new();
    let mut last_killed: Option<String> = None;
    for round in 0..64 {
        let resume = has_run(&env);
        let mut child = spawn_apply(&env, &spec, resume);
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut killed = None;
        let mut started = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.expect("stderr reads");
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.get(1) == Some(&"start")
                && let Some(step) = words.get(2)
            {
                started.push(step.trim_end_matches(':').to_string());
            }
            if words.get(1) == Some(&"done") {
                let step = words
                    .get(2)
                    .expect("a done line names its step")
                    .to_string();
                if killed_after.insert(step.clone()) {
                    let _ = child.kill();
                    killed = Some(step);
                    break;
                }
            }
        }
        let status = child.wait().expect("the child ends");
        if let Some(previous) = &last_killed {
            assert!(
                !started.contains(previous),
                "round {round}: {previous} was reported done before a SIGKILL, yet the resume ran it again"
            );
        }
        match killed {
            Some(step) => {
                let statuses: BTreeMap<String, String> =
                    crate::apply::step_statuses(&env).into_iter().collect();
                assert_eq!(
                    statuses.get(&step).map(String::as_str),
                    Some("done"),
                    "round {round}: {step} was reported done, then SIGKILL: {statuses:?}"
                );
                last_killed = Some(step);
            }
            None => {
                assert!(status.success(), "round {round}: the last resume failed");
                let statuses = crate::apply::step_statuses(&env);
                assert!(statuses.iter().all(|(_, s)| s == "done"), "{statuses:?}");
                // Parallel steps can finish together, so a kill may land
                // after two done marks; still, most steps were a kill point.
                assert!(killed_after.len() >= 10, "{killed_after:?}");
                return;
            }
        }
    }
    panic!("the run did not finish after a kill per step");
}
