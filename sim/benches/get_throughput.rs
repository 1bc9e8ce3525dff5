//! GETs per second against one simulated cluster over HTTPS on loopback,
//! with several concurrent kube clients, and the memory and start time of
//! 100 simulated clusters in one process.
//!
//! cargo bench -p meshsim --bench get_throughput   (release profile)

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const IN_FLIGHT_PER_CLIENT: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(5);

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn client(path: &std::path::Path, context: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig");
    let opts = KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .expect("config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(throughput());
    runtime.block_on(memory());
}

async fn throughput() {
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        clusters: 1,
        ready_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("sim");
    let setup = client(sim.kubeconfig_path(), "sim-cluster1").await;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench", "labels": {"app": "bench"}},
        "data": {"key": "value", "other": "x".repeat(200)},
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(setup, "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");

    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let api: Api<ConfigMap> = Api::namespaced(
            client(sim.kubeconfig_path(), "sim-cluster1").await,
            "default",
        );
        for _ in 0..IN_FLIGHT_PER_CLIENT {
            let (api, done, count, errors) =
                (api.clone(), done.clone(), count.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    match api.get("bench").await {
                        Ok(_) => count.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    // Warm-up, then measure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(RUN_FOR).await;
    let got = count.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let counters = sim.cluster("cluster1").faults().counters();
    let rate = got as f64 / elapsed.as_secs_f64();
    println!(
        "get_throughput: {:.0} GETs/s ({got} in {:.2}s, {CLIENTS} kube clients x {IN_FLIGHT_PER_CLIENT} in flight, HTTPS loopback, {} errors; server counted {} gets)",
        rate,
        elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed),
        counters.verb("get"),
    );
    result(
        "meshsim GETs per second (HTTPS, loopback)",
        &format!("{rate:.0}"),
        ">= 20000",
        Some(rate >= 20_000.0),
    );
    sim.shutdown().await;
}

/// The line `benches/report.sh` copies into BENCHMARKS.md (as the migrate
/// crate's benches print it): figure, value, target, met.
fn result(figure: &str, value: &str, target: &str, met: Option<bool>) {
    let met = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "reported",
    };
    println!("result: {figure} | {value} | {target} | {met}");
}

async fn memory() {
    let before = rss_kib();
    let start = Instant::now();
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        clusters: 100,
        ..Default::default()
    })
    .await
    .expect("sim");
    let started = start.elapsed();
    // Let the controllers make their first pass (namespaces get their default objects).
    let store = sim.cluster("cluster100").store();
    let sa = store
        .resolve("", "v1", "serviceaccounts")
        .expect("serviceaccounts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get_arc(&sa, Some("kube-system"), "default").is_err() && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let after = rss_kib();
    println!(
        "clusters_memory: 100 clusters started in {:.0} ms; RSS {} MiB -> {} MiB (+{:.1} MiB, {:.0} KiB per cluster)",
        started.as_secs_f64() * 1000.0,
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 100.0,
    );
    let one = Instant::now();
    let single = meshsim::Sim::start(meshsim::SimConfig {
        clusters: 3,
        ..Default::default()
    })
    .await
    .expect("sim");
    println!(
        "start_time: 3 clusters ready to serve in {:.1} ms",
        one.elapsed().as_secs_f64() * 1000.0
    );
    drop(single);
    sim.shutdown().await;
}
