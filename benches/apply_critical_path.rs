//! Apply wall time against the critical-path bound, and what durable
//! checkpoints cost. Prints figures; asserts nothing about speed.
//!
//! A plan shaped like a migration (per cluster: install -> trust ->
//! discovery with its neighbour -> routing; one final drill needing every
//! routing step) runs through the engine against 10 meshsim clusters with
//! 20 ms injected latency per request. The critical-path bound is the
//! longest chain of the DAG weighted by each step's measured duration: no
//! scheduler can finish sooner, so wall / bound is the engine's overhead
//! (target <= 1.15). The same plan with the durable sled store (every step
//! transition fsynced before it returns, Done marks included) and with the
//! in-memory store gives the checkpoint cost, and the store's fsync count
//! gives fsyncs per step (target <= 2).
//!
//! Two set-ups, one run each: `fast` (today's: ConfigMaps only, pods ready
//! at once) and `realistic` (install rolls out a Deployment and trust
//! restarts it, as istiod's are; pods ready after 1 s), where the checkpoint
//! cost must stay within 3%. Measured 2026-12-05 on a shared 2-core machine,
//! 10 clusters, after installer and drain records were added: fast <= 1.34
//! fsyncs/step, +7.2% (26 ms of 365 ms); realistic <= 1.44 fsyncs/step, +2.1%.
//!
//! cargo bench --bench apply_critical_path
//! APPLY_BENCH_CLUSTERS=10 APPLY_BENCH_LATENCY_MS=20 APPLY_BENCH_ROUNDS=3 to change the set-up.

#[path = "common/result.rs"]
mod result;

use migrate::cluster::{ClusterTarget, connect};
use migrate::engine::{self, ApplyMode, EngineOptions, Environment, Observer, scheduler::StopFlag};
use migrate::plan::{Action, ClusterInfo, Condition, ObjectRef, Phase, Plan, PlanHeader, Step};
use migrate::state::{MemoryStore, SledStore, Store};
use result::result;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records each step's duration as the engine measures it.
#[derive(Default)]
struct Durations(Mutex<BTreeMap<String, Duration>>);

impl Observer for Durations {
    fn step_finished(&self, step: &str, ok: bool, elapsed: Duration) {
        assert!(ok, "bench step {step} failed");
        self.0.lock().unwrap().insert(step.to_string(), elapsed);
    }
}

fn config_map(cluster: &str, ns: &str, name: &str) -> Action {
    Action::Apply {
        cluster: cluster.into(),
        object: ObjectRef::config_map(ns, name),
        manifest: json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": {"step": name}}),
        secret_data: BTreeMap::new(),
    }
}

fn step(
    phase: Phase,
    id: String,
    clusters: &[&str],
    needs: Vec<String>,
    forward: Vec<Action>,
) -> Step {
    let mut s = Step::new(phase, id, "bench step");
    s.clusters = clusters.iter().map(|c| c.to_string()).collect();
    s.clusters.sort();
    s.needs = needs;
    s.forward = forward;
    s
}

/// A Deployment of one pod, as istiod stands in the realistic set-up.
fn deployment(cluster: &str, ns: &str) -> Action {
    Action::Apply {
        cluster: cluster.into(),
        object: ObjectRef::deployment(ns, "istiod"),
        manifest: json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod"}},
                "template": {"metadata": {"labels": {"app": "istiod"}},
                    "spec": {"containers": [{"name": "discovery", "image": "istio/pilot:1.30.3"}]}}}}),
        secret_data: BTreeMap::new(),
    }
}

fn rolled_out(cluster: &str, ns: &str) -> Action {
    Action::Wait {
        cluster: cluster.into(),
        object: ObjectRef::deployment(ns, "istiod"),
        condition: Condition::DeploymentAvailable,
        timeout_seconds: 60,
    }
}

/// The bench plan; `pods`: install rolls out a Deployment and trust restarts it (the realistic set-up).
fn plan(clusters: usize, pods: bool) -> Plan {
    let names: Vec<String> = (1..=clusters).map(|i| format!("cluster{i}")).collect();
    let mut steps = Vec::new();
    for (i, c) in names.iter().enumerate() {
        let next = &names[(i + 1) % names.len()];
        let ns = "bench";
        steps.push(step(
            Phase::Install,
            format!("install/{c}"),
            &[c],
            vec![],
            vec![
                Action::Apply {
                    cluster: c.clone(),
                    object: ObjectRef::namespace(ns),
                    manifest: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    secret_data: BTreeMap::new(),
                },
                Action::Wait {
                    cluster: c.clone(),
                    object: ObjectRef::namespace(ns),
                    condition: Condition::Present,
                    timeout_seconds: 60,
                },
                config_map(c, ns, "values"),
            ]
            .into_iter()
            .chain(pods.then(|| [deployment(c, ns), rolled_out(c, ns)]).into_iter().flatten())
            .collect(),
        ));
        steps.push(step(
            Phase::Trust,
            format!("trust/{c}"),
            &[c],
            vec![format!("install/{c}")],
            vec![
                config_map(c, ns, "root-a"),
                config_map(c, ns, "root-b"),
                config_map(c, ns, "root-c"),
            ]
            .into_iter()
            .chain(
                pods.then(|| {
                    [
                        Action::Restart {
                            cluster: c.clone(),
                            object: ObjectRef::deployment(ns, "istiod"),
                            only_if_changed: None,
                        },
                        rolled_out(c, ns),
                    ]
                })
                .into_iter()
                .flatten(),
            )
            .collect(),
        ));
        steps.push(step(
            Phase::Discovery,
            format!("discovery/{c}<-{next}"),
            &[c, next],
            vec![format!("trust/{c}"), format!("trust/{next}")],
            vec![
                config_map(c, ns, &format!("remote-{next}")),
                config_map(next, ns, &format!("reader-for-{c}")),
            ],
        ));
        steps.push(step(
            Phase::Routing,
            format!("routing/{c}"),
            &[c],
            vec![format!("discovery/{c}<-{next}")],
            vec![
                config_map(c, ns, "gateway"),
                config_map(c, ns, "destination-rule"),
            ],
        ));
    }
    let first = names[0].as_str();
    steps.push(step(
        Phase::Failover,
        "failover/drill".into(),
        &[first],
        names.iter().map(|c| format!("routing/{c}")).collect(),
        vec![config_map(first, "bench", "drill")],
    ));
    let header = PlanHeader {
        name: "bench".into(),
        topology: "multi-primary".into(),
        clusters: names
            .iter()
            .map(|n| ClusterInfo {
                name: n.clone(),
                context: format!("sim-{n}"),
                network: None,
                role: "primary".into(),
                source: n == first,
            })
            .collect(),
    };
    Plan::new(header, steps).expect("the bench plan is a DAG")
}

/// The longest chain through the DAG, weighted by measured durations.
fn critical_path(plan: &Plan, durations: &BTreeMap<String, Duration>) -> (Duration, Vec<String>) {
    let mut best: BTreeMap<&str, (Duration, Vec<String>)> = BTreeMap::new();
    for s in &plan.steps {
        let (before, mut chain) = s
            .needs
            .iter()
            .filter_map(|n| best.get(n.as_str()))
            .max_by_key(|(d, _)| *d)
            .cloned()
            .unwrap_or_default();
        chain.push(s.id.clone());
        best.insert(&s.id, (before + durations[&s.id], chain));
    }
    best.into_values()
        .max_by_key(|(d, _)| *d)
        .unwrap_or_default()
}

struct Figures {
    wall: Duration,
    bound: Duration,
    path: Vec<String>,
    /// Database fsyncs of the run (sled only).
    fsyncs: Option<u64>,
}

async fn apply_once(
    plan: &Plan,
    clusters: &BTreeMap<String, Arc<migrate::cluster::Cluster>>,
    store: Arc<dyn Store>,
) -> Figures {
    let durations = Arc::new(Durations::default());
    let env = Arc::new(Environment {
        clusters: clusters.clone(),
        kubeconfigs: BTreeMap::new(),
        // As the CLI runs it: blocking store calls off the async workers.
        store: Arc::new(engine::OffloadedStore(store)),
        observer: durations.clone(),
    });
    let opts = EngineOptions {
        parallelism: plan.steps.len(),
        ..Default::default()
    };
    let t = Instant::now();
    let summary = engine::apply(plan, env, opts, ApplyMode::Start, &StopFlag::default())
        .await
        .expect("the bench apply runs");
    let wall = t.elapsed();
    assert!(
        summary.failed.is_empty(),
        "bench apply failed: {:?}",
        summary.failed
    );
    let measured = durations.0.lock().unwrap().clone();
    let (bound, path) = critical_path(plan, &measured);
    Figures {
        wall,
        bound,
        path,
        fsyncs: None,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One set-up: its own simulated clusters, a warm-up, then `rounds` applies per store, interleaved.
async fn bench(
    name: &str,
    n: usize,
    latency: Duration,
    ready_delay: Duration,
    pods: bool,
    rounds: usize,
) {
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        clusters: n,
        ready_delay,
        faults: meshsim::FaultConfig {
            latency,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("meshsim starts");
    let mut clusters = BTreeMap::new();
    for c in sim.clusters() {
        let target = ClusterTarget {
            name: c.name().to_string(),
            context: c.context(),
            kubeconfig: None,
        };
        let cluster = connect(&target, Some(sim.kubeconfig_path()))
            .await
            .expect("connects to meshsim");
        clusters.insert(c.name().to_string(), Arc::new(cluster));
    }
    let plan = plan(n, pods);
    let steps = plan.steps.len();
    println!(
        "[{name}] {n} clusters, {} ms latency per request, pods ready after {} ms, {steps} steps, {rounds} rounds per store (+1 warm-up)",
        latency.as_millis(),
        ready_delay.as_millis(),
    );
    // Warm-up: discovery caches, connections, objects created once.
    apply_once(&plan, &clusters, Arc::new(MemoryStore::new())).await;

    let dirs = tempfile::tempdir().expect("a temp dir");
    let mut results: BTreeMap<&str, Vec<Figures>> = BTreeMap::new();
    // Interleaved, so drift in the machine's load hits both stores alike.
    for round in 0..rounds {
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        results
            .entry("memory")
            .or_default()
            .push(apply_once(&plan, &clusters, memory).await);
        let sled = Arc::new(
            SledStore::open(&dirs.path().join(format!("{name}-{round}")))
                .expect("a sled store")
                .store,
        );
        let before = sled.fsyncs();
        let mut figs = apply_once(&plan, &clusters, sled.clone()).await;
        figs.fsyncs = Some(sled.fsyncs() - before);
        results.entry("sled").or_default().push(figs);
    }
    for (store, figs) in &results {
        for (i, f) in figs.iter().enumerate() {
            let fsyncs = f
                .fsyncs
                .map(|n| format!("  fsyncs {n} ({:.2}/step)", n as f64 / steps as f64))
                .unwrap_or_default();
            println!(
                "  {store:<6} round {}: wall {:>7.1?}  critical-path bound {:>7.1?}  ratio {:.3}{fsyncs}",
                i + 1,
                f.wall,
                f.bound,
                f.wall.as_secs_f64() / f.bound.as_secs_f64()
            );
        }
    }
    let ratio = |store: &str| {
        median(
            results[store]
                .iter()
                .map(|f| Duration::from_secs_f64(f.wall.as_secs_f64() / f.bound.as_secs_f64()))
                .collect(),
        )
        .as_secs_f64()
    };
    let wall = |store: &str| median(results[store].iter().map(|f| f.wall).collect());
    println!("  critical path: {}", results["sled"][0].path.join(" -> "));
    println!(
        "  wall / critical-path bound (median): sled {:.3}, memory {:.3}   (target <= 1.15)",
        ratio("sled"),
        ratio("memory")
    );
    let most = results["sled"]
        .iter()
        .filter_map(|f| f.fsyncs)
        .max()
        .unwrap_or(0);
    println!(
        "  fsyncs per step: {:.2} at most ({most} for {steps} steps, run start and end included)   (target <= 2)",
        most as f64 / steps as f64
    );
    let (s, m) = (wall("sled"), wall("memory"));
    println!(
        "  durable checkpoints: sled {:.1?} vs memory {:.1?} median wall: {:+.1}%   ({})",
        s,
        m,
        (s.as_secs_f64() / m.as_secs_f64() - 1.0) * 100.0,
        if pods {
            "target <= 3%"
        } else {
            "reported: no pods, so the fsyncs weigh against 20 ms requests only"
        }
    );
    result(
        &format!("apply [{name}]: wall / critical-path bound (sled, median)"),
        &format!("{:.3} ({:.1?} wall)", ratio("sled"), s),
        "<= 1.15",
        Some(ratio("sled") <= 1.15),
    );
    result(
        &format!("apply [{name}]: fsyncs per step"),
        &format!("{:.2}", most as f64 / steps as f64),
        "<= 2",
        Some(most as f64 / steps as f64 <= 2.0),
    );
    let cost = (s.as_secs_f64() / m.as_secs_f64() - 1.0) * 100.0;
    result(
        &format!("apply [{name}]: durable checkpoints vs in-memory (median wall)"),
        &format!("{cost:+.1}%"),
        if pods { "<= 3%" } else { "reported" },
        pods.then_some(cost <= 3.0),
    );
    sim.shutdown().await;
}

fn main() {
    let n = env_or("APPLY_BENCH_CLUSTERS", 10) as usize;
    let latency = Duration::from_millis(env_or("APPLY_BENCH_LATENCY_MS", 20));
    let rounds = env_or("APPLY_BENCH_ROUNDS", 3).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        bench("fast", n, latency, Duration::ZERO, false, rounds).await;
        bench(
            "realistic",
            n,
            latency,
            Duration::from_secs(1),
            true,
            rounds,
        )
        .await;
    });
}
