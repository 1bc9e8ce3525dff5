//! How planning scales: 100 clusters with 2,000 DestinationRules, then 200
//! with 4,000. Prints wall time and peak heap (a counting allocator) for
//! building the plan (phases, DAG, order, critical path, fingerprint) and
//! for rendering it as text and JSON, and the ratio of the two sizes.
//!
//! Targets: <= 1 s and <= 300 MB at 200 clusters; doubling <= 2.2x.
//!
//! Two topologies. primary-remote (one primary per 25 clusters, each
//! DestinationRule on two clusters) keeps the plan linear in the input, so
//! the doubling ratio measures the planner. multi-primary places n*(n-1)
//! remote secrets, so its plan itself grows about 4x when n doubles; the
//! ratio to report there is time per step.
//!
//! Run: cargo bench --bench plan_scale

#[path = "common/result.rs"]
mod result;

use migrate::plan::Plan;
use migrate::spec::MeshMigration;
use result::result;
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result, the wall time and the peak heap above
/// what was allocated before.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    (out, elapsed, PEAK.load(Ordering::Relaxed) - base)
}

fn spec(topology: &str, clusters: usize, rules: usize) -> MeshMigration {
    let primary_every = 25;
    let list: Vec<serde_json::Value> = (0..clusters)
        .map(|i| {
            let mut c = json!({
                "name": format!("c{i}"),
                "context": format!("ctx-{i}"),
                "network": format!("net{i}"),
                "locality": { "region": format!("region{}", i % 5) },
            });
            if i == 0 {
                c["source"] = json!(true);
            }
            if topology == "primary-remote" {
                if i % primary_every == 0 {
                    c["role"] = json!("primary");
                } else {
                    c["role"] = json!("remote");
                    c["primary"] = json!(format!("c{}", i - i % primary_every));
                }
            }
            c
        })
        .collect();
    let drs: Vec<serde_json::Value> = (0..rules)
        .map(|i| {
            json!({
                "host": format!("svc{i}.ns{}.svc.cluster.local", i % 50),
                "clusters": [format!("c{}", i % clusters), format!("c{}", (i * 7 + 3) % clusters)],
                "localityLb": { "failoverPriority": ["topology.kubernetes.io/region"] },
                "outlierDetection": { "consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "30s" },
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "migrate.meshops.dev/v1alpha1",
        "kind": "MeshMigration",
        "metadata": { "name": "scale" },
        "spec": {
            "mesh": { "id": "mesh1", "trustDomain": "cluster.local", "istioVersion": "1.30.3" },
            "topology": topology,
            "installer": { "kind": "istioctl", "path": "istioctl" },
            "clusters": list,
            "trust": { "root": { "adopt": "c0" }, "certDir": "./certs" },
            "routing": { "destinationRules": drs },
            "observability": { "prometheus": { "federate": true },
                               "tracing": { "zipkin": "zipkin:9411", "sampling": 1.0 } },
            "workloads": { "restartNamespaces": ["shop", "payments"] },
            "failoverTest": {
                "service": { "namespace": "shop", "name": "web", "port": 8080, "path": "/" },
                "from": "c1", "drain": "c0", "requests": 20,
            },
        },
    }))
    .expect("the generated spec matches the spec types")
}

struct Figures {
    steps: usize,
    actions: usize,
    plan: Duration,
    plan_peak: usize,
    text: Duration,
    json: Duration,
    json_bytes: usize,
}

fn run(topology: &str, clusters: usize, rules: usize) -> Figures {
    let doc = spec(topology, clusters, rules);
    // Warm up (page faults, lazy statics), then take the best of five: the
    // machine is shared.
    let _ = migrate::phases::plan(&doc);
    let mut best: Option<(Plan, Duration, usize)> = None;
    for _ in 0..5 {
        let (plan, took, peak) = measure(|| migrate::phases::plan(&doc).expect("a valid plan"));
        if best.as_ref().is_none_or(|(_, t, _)| took < *t) {
            best = Some((plan, took, peak));
        }
    }
    let Some((plan, took, peak)) = best else {
        unreachable!("five runs happened")
    };
    let (_, text, _) = measure(|| {
        migrate::cli::view::plan::text(
            &plan,
            None,
            migrate::cli::view::plan::Style { colour: false },
        )
    });
    let (json, json_took, _) =
        measure(|| migrate::cli::view::plan::json(&plan, None).expect("serialisable"));
    Figures {
        steps: plan.steps.len(),
        actions: plan
            .steps
            .iter()
            .map(|s| s.forward.len() + s.finally.len() + s.rollback.len())
            .sum(),
        plan: took,
        plan_peak: peak,
        text,
        json: json_took,
        json_bytes: json.len(),
    }
}

/// Where the time goes: each phase's steps, then the DAG and fingerprint.
fn breakdown(topology: &str, clusters: usize, rules: usize) {
    let doc = spec(topology, clusters, rules);
    let ctx = migrate::phases::Ctx::new(&doc);
    let mut parts = Vec::new();
    let mut steps = Vec::new();
    for phase in migrate::plan::Phase::ALL {
        let start = Instant::now();
        let before = CURRENT.load(Ordering::Relaxed);
        let these = migrate::phases::phase_steps(&ctx, phase);
        let kept = CURRENT.load(Ordering::Relaxed).saturating_sub(before);
        parts.push(format!(
            "{} {:.1} ({} steps, {:.1} MB)",
            phase.name(),
            start.elapsed().as_secs_f64() * 1e3,
            these.len(),
            mb(kept)
        ));
        steps.extend(these);
    }
    let header = migrate::phases::plan(&doc).expect("a valid plan").header;
    let start = Instant::now();
    let mut h = migrate::plan::CanonicalHasher::default();
    for s in &steps {
        h.add(s);
    }
    let _ = h.finish();
    parts.push(format!(
        "fingerprint alone {:.1}",
        start.elapsed().as_secs_f64() * 1e3
    ));
    let start = Instant::now();
    let plan = Plan::new(header, steps).expect("a valid plan");
    parts.push(format!(
        "dag+fingerprint {:.1}",
        start.elapsed().as_secs_f64() * 1e3
    ));
    drop(plan);
    println!("  {topology} {clusters} clusters, ms: {}", parts.join(", "));
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn main() {
    println!(
        "{:<15} {:>8} {:>6} {:>7} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "topology",
        "clusters",
        "DRs",
        "steps",
        "actions",
        "plan ms",
        "peak MB",
        "text ms",
        "json ms",
        "json MB"
    );
    for topology in ["primary-remote", "multi-primary"] {
        let mut rows = Vec::new();
        for (clusters, rules) in [(100, 2_000), (200, 4_000)] {
            let f = run(topology, clusters, rules);
            println!(
                "{topology:<15} {clusters:>8} {rules:>6} {:>7} {:>9} {:>9.1} {:>10.1} {:>9.1} {:>9.1} {:>9.1}",
                f.steps,
                f.actions,
                f.plan.as_secs_f64() * 1e3,
                mb(f.plan_peak),
                f.text.as_secs_f64() * 1e3,
                f.json.as_secs_f64() * 1e3,
                mb(f.json_bytes)
            );
            rows.push(f);
            breakdown(topology, clusters, rules);
        }
        let (a, b) = (&rows[0], &rows[1]);
        let time = b.plan.as_secs_f64() / a.plan.as_secs_f64();
        let size = b.actions as f64 / a.actions as f64;
        println!(
            "{topology:<15} doubling: plan time x{time:.2}, plan size (actions) x{size:.2}, time per action x{:.2}, peak memory x{:.2}",
            time / size,
            mb(b.plan_peak) / mb(a.plan_peak)
        );
        for (f, clusters) in [(a, 100), (b, 200)] {
            let ms = f.plan.as_secs_f64() * 1e3;
            result(
                &format!(
                    "plan {topology}, {clusters} clusters, {} DRs: time",
                    clusters * 20
                ),
                &format!("{ms:.0} ms ({} steps)", f.steps),
                "<= 1000 ms",
                Some(ms <= 1000.0),
            );
            result(
                &format!(
                    "plan {topology}, {clusters} clusters, {} DRs: peak memory",
                    clusters * 20
                ),
                &format!("{:.0} MB", mb(f.plan_peak)),
                "<= 300 MB",
                Some(mb(f.plan_peak) <= 300.0),
            );
        }
        // primary-remote's plan is linear in the input: its time must be; multi-primary's
        // plan grows ~4x (n*(n-1) remote secrets): its time per action must stay flat.
        let (what, ratio) = if topology == "primary-remote" {
            ("plan time", time)
        } else {
            ("time per action", time / size)
        };
        result(
            &format!("plan {topology}: doubling the clusters, {what}"),
            &format!(
                "x{ratio:.2} (memory x{:.2})",
                mb(b.plan_peak) / mb(a.plan_peak)
            ),
            "<= x2.2",
            Some(ratio <= 2.2),
        );
    }
}
