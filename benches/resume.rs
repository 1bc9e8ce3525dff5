//! Time to the first action of a resumed 10,000-step run (target <= 100 ms).
//!
//! A sled state holds a run of a 10,000-step plan over 10 simulated clusters
//! whose steps are done but the last 10 (as after a crash near the end):
//! the run was started by the engine (`--until preflight`, so the plan,
//! the clusters' identities and the preflight steps are the engine's own),
//! the other steps were then marked running and done through the store,
//! each with an action in the journal as the engine writes it. Then, timed,
//! what `migrate apply --resume` does: open the store (with its journal
//! check), connect, and let the engine resume until its first action
//! starts. Printed with where the time goes: the store's reads the engine
//! makes before it acts, each timed alone on the same state.
//!
//! cargo bench --bench resume
//! RESUME_STEPS=10000 RESUME_LEFT=10 RESUME_LATENCY_MS=0 to change the set-up.

#[path = "common/result.rs"]
mod result;

use migrate::cluster::{ClusterTarget, connect};
use migrate::engine::{self, ApplyMode, EngineOptions, Environment, Observer, scheduler::StopFlag};
use migrate::plan::{Action, ClusterInfo, ObjectRef, Phase, Plan, PlanHeader, Step};
use migrate::state::{EventKind, NewEvent, Outcome, SledStore, StepStatus, Store};
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
fn mark_done(store: &Arc<SledStore>, run: migrate::state::RunId, ids: &[String], threads: usize) {
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let total = env_or("RESUME_STEPS", 10_000).max(100) as usize;
    let left = (env_or("RESUME_LEFT", 10) as usize).clamp(1, total / 2);
    let latency = Duration::from_millis(env_or("RESUME_LATENCY_MS", 0));
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

    // The state: started by the engine, then most steps done through the store.
    let setup = Instant::now();
    // Parallel markers share the store's group commits (fewer fsyncs).
    let threads = env_or("RESUME_SETUP_THREADS", 32) as usize;
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
        let ids: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.phase != Phase::Preflight && s.phase != Phase::Failover)
            .map(|s| s.id.clone())
            .collect();
        mark_done(&store, run, &ids, threads);
        store
            .finish_run(run, Outcome::Interrupted)
            .expect("interrupted");
        (run, engine_part)
    };
    println!(
        "resume: {total}-step plan on {CLUSTERS} clusters, {} left to do, {} ms latency per request (state built in {:.1} s, {:.1} s of it the engine's start)",
        left,
        latency.as_millis(),
        setup.elapsed().as_secs_f64(),
        engine_part.as_secs_f64()
    );
    if !latency.is_zero() {
        for c in sim.clusters() {
            c.faults().set(meshsim::FaultConfig {
                latency,
                ..Default::default()
            });
        }
    }

    // Timed: what `apply --resume` does until its first action.
    let first = Arc::new(FirstAction::default());
    let start = Instant::now();
    let opened = SledStore::open(&dir).expect("the sled store reopens");
    let opened_at = start.elapsed();
    let store = Arc::new(opened.store);
    let env = rt.block_on(environment(&sim, store.clone(), first.clone()));
    let connected_at = start.elapsed();
    let summary = rt
        .block_on(engine::apply(
            &plan,
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
    let to_first = at - start;
    println!(
        "  time to the first action: {:.1} ms   (target <= 100 ms)   [{action}]",
        ms(to_first)
    );
    println!(
        "    open the store {:.1} ms, connect {:.1} ms, engine until the first action {:.1} ms; the {left} steps done after {:.1} ms",
        ms(opened_at),
        ms(connected_at - opened_at),
        ms(to_first - connected_at),
        ms(finished)
    );

    result(
        &format!("resume of a {total}-step run: time to the first action"),
        &format!("{:.1} ms", ms(to_first)),
        "<= 100 ms",
        Some(ms(to_first) <= 100.0),
    );

    // Where the time goes: the reads the engine makes before it acts, alone.
    let time = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let n = f();
        (ms(t.elapsed()), n)
    };
    let (states_ms, states) = time(&|| store.step_states(run).expect("states").len());
    let (events_ms, events) = time(&|| store.events(run, 0).expect("events").len());
    let (plan_ms, _) = time(&|| {
        engine::StoredPlan::load(store.as_ref(), run)
            .expect("plan")
            .steps
            .len()
    });
    let (untouched_ms, _) = time(&|| {
        engine::untouched_steps(store.as_ref(), run)
            .expect("untouched")
            .len()
    });
    let (restores_ms, _) = time(&|| {
        engine::pending_restores(store.as_ref(), run)
            .expect("restores")
            .len()
    });
    println!(
        "    alone: step_states ({states}) {states_ms:.1} ms, journal read ({events} events) {events_ms:.1} ms, \
         stored plan {plan_ms:.1} ms, untouched-steps scan {untouched_ms:.1} ms, pending-restores scan {restores_ms:.1} ms"
    );
    drop(store);
    rt.block_on(sim.shutdown());
}
