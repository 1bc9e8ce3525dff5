//! Time to the first action of a resumed 10,000-step run: on sled (target
//! <= 100 ms) and on the Kubernetes backend over meshsim with 5 ms latency
//! per request (target <= 1 s).
//!
//! A state holds a run of a 10,000-step plan over 10 simulated clusters
//! whose steps are done but the last 10 (as after a crash near the end):
//! the run was started by the engine (`--until preflight`, so the plan,
//! the clusters' identities and the preflight steps are the engine's own),
//! the other steps were then marked running and done through the store,
//! each with an action in the journal as the engine writes it. The
//! Kubernetes store (a namespace of the first cluster) got the same run as
//! `state push` writes it (one checkpoint entry), then its last
//! `RESUME_KUBE_TAIL` steps through its own log (an entry per write, as a
//! run writes them); the sled state got those steps too. Then, timed for
//! each, what `migrate apply --resume` does: open the store (sled: its
//! check of every run against the journal's index, reading each step record
//! once for their digest, no event; Kubernetes: the Lease, the log's replay
//! and the fence), connect, and let the engine resume until its first action
//! starts (it reads the step states once and the stored plan's head, asks
//! every cluster for its identity and its permissions, then marks the run
//! resumed). Printed with where the time goes: each of the store's reads
//! timed alone on the same state, those the engine makes before it acts and,
//! for comparison, those it no longer makes before it acts (the journal, the
//! whole stored plan, and the scans that derive from the journal).
//!
//! The sled resume is timed `RESUME_REPEAT` times, each from a copy of the
//! same state directory (the clusters keep what the earlier ones applied;
//! the first action is the same): its figure is the median, printed with the
//! best and the breakdown of the median run. A machine whose other core is
//! busy moves single runs by tens of milliseconds.
//!
//! cargo bench --bench resume
//! RESUME_STEPS=10000 RESUME_LEFT=10 RESUME_LATENCY_MS=0 RESUME_KUBE_LATENCY_MS=5
//! RESUME_KUBE_TAIL=100 RESUME_REPEAT=5 to change the set-up.

#[path = "common/result.rs"]
mod result;

use migrate::cluster::{ClusterTarget, connect};
use migrate::engine::{self, ApplyMode, EngineOptions, Environment, Observer, scheduler::StopFlag};
use migrate::plan::{Action, ClusterInfo, ObjectRef, Phase, Plan, PlanHeader, Step};
use migrate::state::{
    EventKind, KubeLocation, KubeStore, NewEvent, Outcome, SledStore, StepStatus, Store,
};
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

/// When the first action started.
#[derive(Default)]
struct FirstAction(Mutex<Option<(Instant, String)>>);

impl Observer for FirstAction {
    fn action_started(&self, step: &str, action: &str) {
        let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some((Instant::now(), format!("{step}: {action}")));
        }
    }
}

const CLUSTERS: usize = 10;

fn cluster(i: usize) -> String {
    format!("cluster{}", i % CLUSTERS + 1)
}

fn step(phase: Phase, i: usize, needs: Vec<String>) -> Step {
    let c = cluster(i);
    let name = format!("step-{i}");
    let mut s = Step::new(phase, format!("{}/{c}/{i}", phase.name()), "bench step");
    s.clusters = vec![c.clone()];
    s.needs = needs;
    s.forward = vec![Action::Apply {
        cluster: c,
        object: ObjectRef::config_map("default", &name),
        manifest: json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"step": i.to_string()}}),
        secret_data: BTreeMap::new(),
    }];
    s
}

/// `total` steps: 10 preflight, then chains of install..routing steps per
/// cluster, then `left` failover steps needing the last of each chain.
fn plan(total: usize, left: usize) -> Plan {
    let middle = [
        Phase::Install,
        Phase::Trust,
        Phase::Discovery,
        Phase::Routing,
    ];
    let mut steps: Vec<Step> = (0..CLUSTERS)
        .map(|i| step(Phase::Preflight, i, vec![]))
        .collect();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let n_middle = total - CLUSTERS - left;
    for k in 0..n_middle {
        let i = CLUSTERS + k;
        let phase = middle[k * middle.len() / n_middle];
        let needs = match last.get(&cluster(i)) {
            Some(prev) => vec![prev.clone()],
            None => vec![steps[i % CLUSTERS].id.clone()],
        };
        let s = step(phase, i, needs);
        last.insert(cluster(i), s.id.clone());
        steps.push(s);
    }
    for k in 0..left {
        let i = total - left + k;
        steps.push(step(Phase::Failover, i, last.values().cloned().collect()));
    }
    let header = PlanHeader {
        name: "resume-bench".into(),
        topology: "multi-primary".into(),
        clusters: (0..CLUSTERS)
            .map(|i| ClusterInfo {
                name: cluster(i),
                context: format!("sim-{}", cluster(i)),
                network: None,
                role: "primary".into(),
                source: i == 0,
            })
            .collect(),
    };
    Plan::new(header, steps).expect("the bench plan is a DAG")
}

async fn environment(
    sim: &meshsim::Sim,
    store: Arc<dyn Store>,
    observer: Arc<dyn Observer>,
) -> Arc<Environment> {
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
    Arc::new(Environment {
        kubeconfigs: clusters
            .keys()
            .map(|c| (c.clone(), sim.kubeconfig_path().to_path_buf()))
            .collect(),
        clusters,
        store: Arc::new(engine::OffloadedStore(store)),
        observer,
    })
}

/// Marks `ids` running then done, as the engine does, from `threads` threads.
fn mark_done<S: Store + ?Sized + 'static>(
    store: &Arc<S>,
    run: migrate::state::RunId,
    ids: &[String],
    threads: usize,
) {
    let chunk = ids.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in ids.chunks(chunk) {
            let store = store.clone();
            scope.spawn(move || {
                for id in part {
                    store
                        .begin_step(run, id, StepStatus::Running, Vec::new())
                        .expect("running");
                    store
                        .record_progress(
                            run,
                            NewEvent::new(
                                EventKind::Action,
                                Some(id),
                                "forward: apply ConfigMap default/step (server-side)",
                            ),
                        )
                        .expect("action event");
                    store
                        .finish_step(run, id, StepStatus::Done, Vec::new())
                        .expect("done");
                }
            });
        }
    });
}

/// Copies the (closed) state directory `from` to `to`, modes kept.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("a copy of the state");
    for entry in std::fs::read_dir(from).expect("the state is read") {
        let entry = entry.expect("the state is read");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("the state is read").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy of the state");
        }
    }
    let mode = std::fs::metadata(from)
        .expect("the state is read")
        .permissions();
    std::fs::set_permissions(to, mode).expect("a copy of the state");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A namespace on the first cluster for the Kubernetes store.
fn kube_location(rt: &tokio::runtime::Runtime, sim: &meshsim::Sim) -> KubeLocation {
    use k8s_openapi::api::core::v1::Namespace;
    let name = "resume-bench-state";
    let context = sim.clusters()[0].context();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(sim.kubeconfig_path()).expect("kubeconfig");
        let opts = kube::config::KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .expect("a client config");
        let client = kube::Client::try_from(config).expect("a client");
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace");
        kube::Api::<Namespace>::all(client)
            .create(&kube::api::PostParams::default(), &ns)
            .await
            .expect("the namespace is created");
    });
    KubeLocation {
        context: Some(context),
        namespace: name.to_string(),
    }
}

/// Sets every cluster's latency per request.
fn set_latency(sim: &meshsim::Sim, latency: Duration) {
    for c in sim.clusters() {
        c.faults().set(meshsim::FaultConfig {
            latency,
            ..Default::default()
        });
    }
}

/// What a timed resume measured.
struct Resumed {
    opened: Duration,
    connected: Duration,
    first: Duration,
    action: String,
    finished: Duration,
}

/// Times `apply --resume` on a store `open` opens: until the first action, and to the end.
fn resume<S: Store + 'static>(
    rt: &tokio::runtime::Runtime,
    sim: &meshsim::Sim,
    plan: &Plan,
    run: migrate::state::RunId,
    open: impl FnOnce() -> S,
) -> (Resumed, Arc<S>) {
    let first = Arc::new(FirstAction::default());
    let start = Instant::now();
    let store = Arc::new(open());
    let opened = start.elapsed();
    let env = rt.block_on(environment(sim, store.clone(), first.clone()));
    let connected = start.elapsed();
    let summary = rt
        .block_on(engine::apply(
            plan,
            env,
            EngineOptions::default(),
            ApplyMode::Resume { replan: false },
            &StopFlag::default(),
        ))
        .expect("the resumed run");
    let finished = start.elapsed();
    assert!(
        summary.failed.is_empty() && summary.run == run,
        "the resumed run failed: {:?}",
        summary.failed
    );
    let Some((at, action)) = first.0.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        panic!("the resumed run started no action");
    };
    let resumed = Resumed {
        opened,
        connected,
        first: at - start,
        action,
        finished,
    };
    (resumed, store)
}

/// Prints `r` (the median of `all`, when there are several).
fn report(backend: &str, total: usize, left: usize, r: &Resumed, all: &[Duration], target_ms: f64) {
    let runs = match all {
        [_] | [] => String::new(),
        _ => {
            let listed: Vec<String> = all.iter().map(|d| format!("{:.1}", ms(*d))).collect();
            format!(
                " (median of {}; best {:.1} ms; all: {})",
                all.len(),
                ms(all.iter().copied().min().unwrap_or_default()),
                listed.join(", ")
            )
        }
    };
    println!(
        "  {backend}: time to the first action: {:.1} ms{runs}   (target <= {target_ms} ms)   [{}]",
        ms(r.first),
        r.action
    );
    println!(
        "    open the store {:.1} ms, connect {:.1} ms, engine until the first action {:.1} ms; the {left} steps done after {:.1} ms",
        ms(r.opened),
        ms(r.connected - r.opened),
        ms(r.first - r.connected),
        ms(r.finished)
    );
    result(
        &format!("resume of a {total}-step run ({backend}): time to the first action"),
        &format!("{:.1} ms", ms(r.first)),
        &format!("<= {target_ms} ms"),
        Some(ms(r.first) <= target_ms),
    );
}

/// Where the time goes: the store's reads, each alone; before its first action the engine makes only the
/// first two (the step states, and the plan's text for its head).
fn alone(store: &dyn Store, run: migrate::state::RunId) {
    let time = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let n = f();
        (ms(t.elapsed()), n)
    };
    let (states_ms, states) = time(&|| store.step_states(run).expect("states").len());
    let (events_ms, events) = time(&|| store.events(run, 0).expect("events").len());
    let (plan_ms, _) = time(&|| {
        engine::StoredPlan::load(store, run)
            .expect("plan")
            .steps
            .len()
    });
    let (plan_text_ms, _) = time(&|| store.plan_json(run).expect("plan text").len());
    let (untouched_ms, _) = time(&|| {
        engine::untouched_steps(store, run)
            .expect("untouched")
            .len()
    });
    let (restores_ms, _) = time(&|| {
        engine::pending_restores(store, run)
            .expect("restores")
            .len()
    });
    println!(
        "    alone, before the first action: step_states ({states}) {states_ms:.1} ms, the stored plan's text \
         {plan_text_ms:.1} ms; not before it: journal read ({events} events) {events_ms:.1} ms, whole stored plan \
         {plan_ms:.1} ms, untouched-steps scan {untouched_ms:.1} ms, pending-restores scan {restores_ms:.1} ms"
    );
}

fn main() {
    let total = env_or("RESUME_STEPS", 10_000).max(100) as usize;
    let left = (env_or("RESUME_LEFT", 10) as usize).clamp(1, total / 2);
    let latency = Duration::from_millis(env_or("RESUME_LATENCY_MS", 0));
    let kube_latency = Duration::from_millis(env_or("RESUME_KUBE_LATENCY_MS", 5));
    let tail = (env_or("RESUME_KUBE_TAIL", 100) as usize).clamp(1, total / 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sim = rt
        .block_on(meshsim::Sim::start(meshsim::SimConfig {
            clusters: CLUSTERS,
            ready_delay: Duration::ZERO,
            ..Default::default()
        }))
        .expect("meshsim starts");
    let plan = plan(total, left);
    let tmp = tempfile::tempdir_in(".").expect("a temp dir");
    let dir = tmp.path().join("state");
    let location = kube_location(&rt, &sim);
    let kubeconfig = sim.kubeconfig_path().to_path_buf();

    // The state: started by the engine, then most steps done through the store.
    let setup = Instant::now();
    // Parallel markers share the store's group commits (fewer fsyncs).
    let threads = env_or("RESUME_SETUP_THREADS", 32) as usize;
    let ids: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.phase != Phase::Preflight && s.phase != Phase::Failover)
        .map(|s| s.id.clone())
        .collect();
    let (head, last) = ids.split_at(ids.len() - tail);
    let (run, engine_part) = {
        let opened = SledStore::open(&dir).expect("a sled store");
        let store = Arc::new(opened.store);
        let env = rt.block_on(environment(
            &sim,
            store.clone(),
            Arc::new(engine::NullObserver),
        ));
        let opts = EngineOptions {
            until: Some(Phase::Preflight),
            ..Default::default()
        };
        let summary = rt
            .block_on(engine::apply(
                &plan,
                env,
                opts,
                ApplyMode::Start,
                &StopFlag::default(),
            ))
            .expect("the preflight steps run");
        let run = summary.run;
        let engine_part = setup.elapsed();
        store.resume_run(run).expect("resumed");
        mark_done(&store, run, head, threads);
        store
            .finish_run(run, Outcome::Interrupted)
            .expect("interrupted");
        (run, engine_part)
    };
    // The same run pushed to the Kubernetes store, then its last steps through its log; and on sled.
    {
        let sled = SledStore::open(&dir).expect("the sled store reopens").store;
        let kube =
            Arc::new(KubeStore::open(&location, Some(&kubeconfig)).expect("a Kubernetes store"));
        kube.import(&sled).expect("pushed");
        let sled = Arc::new(sled);
        for store in [kube as Arc<dyn Store>, sled as Arc<dyn Store>] {
            store.resume_run(run).expect("resumed");
            mark_done(&store, run, last, 1);
            store
                .finish_run(run, Outcome::Interrupted)
                .expect("interrupted");
        }
    }
    println!(
        "resume: {total}-step plan on {CLUSTERS} clusters, {left} left to do (state built in {:.1} s, {:.1} s of it \
         the engine's start; the Kubernetes log: one checkpoint, then the last {tail} steps' entries)",
        setup.elapsed().as_secs_f64(),
        engine_part.as_secs_f64()
    );

    // Timed: what `apply --resume` does until its first action, on sled, from copies of the same state.
    set_latency(&sim, latency);
    let repeat = env_or("RESUME_REPEAT", 5).max(1) as usize;
    let kept = tmp.path().join("kept");
    copy_dir(&dir, &kept);
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        std::fs::remove_dir_all(&dir).expect("the resumed state is removed");
        copy_dir(&kept, &dir);
        let (resumed, store) = resume(&rt, &sim, &plan, run, || {
            SledStore::open(&dir).expect("the sled store reopens").store
        });
        drop(store);
        runs.push(resumed);
    }
    runs.sort_by_key(|r| r.first);
    let firsts: Vec<Duration> = runs.iter().map(|r| r.first).collect();
    let sled = &runs[runs.len() / 2];
    println!("  sled, {} ms latency per request:", latency.as_millis());
    report("sled", total, left, sled, &firsts, 100.0);
    std::fs::remove_dir_all(&dir).expect("the resumed state is removed");
    copy_dir(&kept, &dir);
    let store = SledStore::open(&dir).expect("the sled store reopens").store;
    alone(&store, run);
    drop(store);

    // The same on the Kubernetes store, every request (the store's and the clusters') slowed.
    set_latency(&sim, kube_latency);
    let (on_kube, store) = resume(&rt, &sim, &plan, run, || {
        KubeStore::open(&location, Some(&kubeconfig)).expect("the Kubernetes store reopens")
    });
    println!(
        "  Kubernetes store, {} ms latency per request:",
        kube_latency.as_millis()
    );
    report(
        "Kubernetes",
        total,
        left,
        &on_kube,
        &[on_kube.first],
        1000.0,
    );
    alone(store.as_ref(), run);
    drop(store);
    set_latency(&sim, Duration::ZERO);
    rt.block_on(sim.shutdown());
}
