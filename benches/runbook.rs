//! `migrate apply` against the runbook: the same multi-primary migration of
//! 10 simulated clusters (20 ms latency per request, pods ready 1 s after
//! they start), once with the real `migrate` binary and once as a person
//! does it, `benches/runbook/multi-primary.sh`: the same kubectl and istioctl
//! commands, cluster after cluster. Prints both wall times and the ratio
//! (target: migrate at least 5x faster), then checks that both ended in the
//! same mesh (per cluster: istiod's clusterName, the network label, cacerts
//! under the source's root, the east-west gateway's address, the
//! cross-network Gateway, a remote secret for every other cluster and
//! istiod reporting each synced), so the comparison is honest. Asserts
//! nothing about speed.
//!
//! Both start from the same seed: cluster1 runs Istio 1.30.3 as single
//! clusters do (self-signed CA, no clusterName) with helloworld v1, the
//! others run helloworld v2 in `sample` and no Istio. Seeding is not timed.
//!
//! cargo bench --bench runbook     (needs kubectl and openssl on PATH)
//! RUNBOOK_CLUSTERS=10 RUNBOOK_LATENCY_MS=20 RUNBOOK_READY_MS=1000 to change the set-up.

#[path = "common/result.rs"]
mod result;

use meshsim::{FaultConfig, Sim, SimConfig};
use result::result;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MIGRATE: &str = env!("CARGO_BIN_EXE_migrate");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/runbook/multi-primary.sh"
);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct SetUp {
    clusters: usize,
    latency: Duration,
    ready: Duration,
}

/// Simulated clusters seeded as the migration starts, and a scratch directory
/// with `bin/istioctl` (the migrate binary under that name is the stand-in).
async fn seeded(set_up: &SetUp) -> (Sim, tempfile::TempDir) {
    let sim = Sim::start(SimConfig {
        clusters: set_up.clusters,
        ready_delay: set_up.ready,
        faults: FaultConfig {
            latency: set_up.latency,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("meshsim starts");
    meshsim::seed::seed_source_mesh(&sim, "cluster1")
        .await
        .expect("the source mesh is seeded");
    for i in 2..=set_up.clusters {
        meshsim::seed::deploy_helloworld(&sim, &format!("cluster{i}"), "v2")
            .await
            .expect("helloworld v2 is deployed");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    meshsim::istioctl::link(&bin, Path::new(MIGRATE)).expect("istioctl link");
    (sim, dir)
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The spec the runbook script follows: multi-primary, a network per
/// cluster, cluster1's root adopted, the cross-network Gateway, `sample`'s
/// workloads restarted.
fn spec(clusters: usize, certs: &Path) -> String {
    let mut out = String::from(
        "apiVersion: migrate.meshops.dev/v1alpha1\nkind: MeshMigration\nmetadata: { name: runbook }\nspec:\n  \
         mesh: { id: mesh1, trustDomain: cluster.local, istioVersion: \"1.30.3\" }\n  \
         topology: multi-primary\n  installer: { kind: istioctl, path: istioctl }\n  clusters:\n",
    );
    for i in 1..=clusters {
        out.push_str(&format!(
            "    - {{ name: cluster{i}, context: sim-cluster{i}, network: network{i}{} }}\n",
            if i == 1 { ", source: true" } else { "" }
        ));
    }
    out.push_str(&format!(
        "  trust:\n    root: {{ adopt: cluster1 }}\n    certDir: {}\n  routing:\n    exposeHosts: [\"*.local\"]\n  \
         workloads:\n    restartNamespaces: [sample]\n",
        certs.display()
    ));
    out
}

/// Runs `cmd`, returning its wall time and stdout; panics with its output if it fails.
fn timed(what: &str, cmd: &mut Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let took = start.elapsed();
    if !out.status.success() {
        let tail = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
    }
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where migrate's time went, from its event stream (`apply -o json`): per
/// phase, when its first step started and its last ended, from the run's start.
fn phase_spans(events: &str) -> String {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let mut start: Option<OffsetDateTime> = None;
    let mut spans: Vec<(String, f64, f64)> = Vec::new();
    for line in events.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(at) = e["time"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        else {
            continue;
        };
        let t0 = *start.get_or_insert(at);
        let secs = (at - t0).as_seconds_f64();
        let Some(phase) = e["phase"].as_str() else {
            continue;
        };
        match spans.iter_mut().find(|(p, _, _)| p == phase) {
            Some(span) => span.2 = span.2.max(secs),
            None => spans.push((phase.to_string(), secs, secs)),
        }
    }
    spans
        .iter()
        .map(|(p, a, b)| format!("{p} {a:.1}-{b:.1} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_migrate(sim: &Sim, dir: &Path, clusters: usize) -> Duration {
    let spec_path = dir.join("spec.yaml");
    std::fs::write(&spec_path, spec(clusters, &dir.join("certs"))).expect("spec written");
    let (took, events) = timed(
        "migrate apply",
        Command::new(MIGRATE)
            .args(["apply", "-o", "json", "-f"])
            .arg(&spec_path)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .current_dir(dir)
            .env("KUBECONFIG", sim.kubeconfig_path())
            .env("PATH", path_with(&dir.join("bin")))
            .env_remove("RUST_LOG"),
    );
    println!(
        "  migrate's phases (from its events): {}",
        phase_spans(&events)
    );
    took
}

fn by_hand(sim: &Sim, dir: &Path, clusters: usize) -> Duration {
    let names: Vec<String> = (1..=clusters).map(|i| format!("cluster{i}")).collect();
    timed(
        "the runbook script",
        Command::new("bash")
            .arg(SCRIPT)
            .current_dir(dir)
            .env("KUBECONFIG", sim.kubeconfig_path())
            .env("PATH", path_with(&dir.join("bin")))
            .env("CLUSTERS", names.join(" "))
            .env("WORK", dir.join("runbook")),
    )
    .0
}

/// What a mesh is made of, cluster by cluster, as comparable lines.
async fn mesh_facts(sim: &Sim, clusters: usize) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    let data = |obj: &Value, key: &str| -> Option<String> {
        use base64::Engine;
        let b64 = obj.pointer("/data")?.get(key)?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(bytes).ok()
    };
    let get = |cluster: &str, group: &str, resource: &str, ns: Option<&str>, name: &str| {
        let store = sim.cluster(cluster).store();
        store
            .resolve(group, "v1", resource)
            .and_then(|rt| store.get_arc(&rt, ns, name).ok())
    };
    let source_root = get("cluster1", "", "secrets", Some("istio-system"), "cacerts")
        .and_then(|s| data(&s, "root-cert.pem"));
    for i in 1..=clusters {
        let c = format!("cluster{i}");
        let istiod = get(&c, "apps", "deployments", Some("istio-system"), "istiod");
        let cluster_id = istiod.as_ref().and_then(|d| {
            d.pointer("/spec/template/spec/containers/0/env")?
                .as_array()?
                .iter()
                .find(|e| e["name"] == "CLUSTER_ID")?["value"]
                .as_str()
                .map(String::from)
        });
        facts.insert(format!("{c}: istiod CLUSTER_ID {cluster_id:?}"));
        let network = get(&c, "", "namespaces", None, "istio-system").and_then(|n| {
            n.pointer("/metadata/labels/topology.istio.io~1network")
                .and_then(Value::as_str)
                .map(String::from)
        });
        facts.insert(format!("{c}: istio-system network {network:?}"));
        let cacerts = get(&c, "", "secrets", Some("istio-system"), "cacerts");
        let root = cacerts.as_ref().and_then(|s| data(s, "root-cert.pem"));
        facts.insert(format!(
            "{c}: cacerts with the source's root {}",
            root.is_some() && root == source_root
        ));
        let lb = get(
            &c,
            "",
            "services",
            Some("istio-system"),
            "istio-eastwestgateway",
        )
        .is_some_and(|s| s.pointer("/status/loadBalancer/ingress/0").is_some());
        facts.insert(format!("{c}: east-west gateway with an address {lb}"));
        let gateway = get(
            &c,
            "networking.istio.io",
            "gateways",
            Some("istio-system"),
            "cross-network-gateway",
        )
        .is_some();
        facts.insert(format!("{c}: cross-network Gateway {gateway}"));
        for j in (1..=clusters).filter(|j| *j != i) {
            let name = format!("istio-remote-secret-cluster{j}");
            let labelled = get(&c, "", "secrets", Some("istio-system"), &name).is_some_and(|s| {
                s.pointer("/metadata/labels/istio~1multiCluster") == Some(&Value::from("true"))
            });
            facts.insert(format!("{c}: {name} labelled {labelled}"));
        }
        // istiod's own view, as `istioctl remote-clusters` shows it.
        let args: Vec<String> = [
            "remote-clusters",
            "--kubeconfig",
            &sim.kubeconfig_path().to_string_lossy(),
            "--context",
            &format!("sim-{c}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut out = Vec::new();
        let table = match meshsim::istioctl::run(&args, &mut out, &mut std::io::empty()).await {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => format!("error: {e}"),
        };
        let synced: BTreeSet<&str> = table
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(2) == Some("synced"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        facts.insert(format!(
            "{c}: remote clusters synced {}",
            synced.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    facts
}

fn main() {
    let set_up = SetUp {
        clusters: env_or("RUNBOOK_CLUSTERS", 10).max(2) as usize,
        latency: Duration::from_millis(env_or("RUNBOOK_LATENCY_MS", 20)),
        ready: Duration::from_millis(env_or("RUNBOOK_READY_MS", 1000)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "runbook: {} clusters multi-primary, {} ms latency per request, pods ready after {} ms; one run each",
        set_up.clusters,
        set_up.latency.as_millis(),
        set_up.ready.as_millis()
    );
    let mut results = Vec::new();
    for (name, run) in [
        (
            "migrate apply",
            with_migrate as fn(&Sim, &Path, usize) -> Duration,
        ),
        ("runbook script", by_hand),
    ] {
        let (sim, dir) = rt.block_on(seeded(&set_up));
        let took = run(&sim, dir.path(), set_up.clusters);
        let facts = rt.block_on(mesh_facts(&sim, set_up.clusters));
        println!("  {name:<15} wall {:>8.1} s", took.as_secs_f64());
        results.push((name, took, facts));
        rt.block_on(sim.shutdown());
        drop(dir);
    }
    let (m, r) = (&results[0], &results[1]);
    let ratio = r.1.as_secs_f64() / m.1.as_secs_f64();
    println!("  runbook / migrate: {ratio:.1}x   (target >= 5x)");
    // Facts that say something is missing: a false, an absent value, no synced cluster.
    let wanted = |facts: &BTreeSet<String>| {
        facts
            .iter()
            .filter(|f| f.ends_with(" false") || f.contains("None") || f.ends_with("synced "))
            .count()
    };
    let differ: Vec<&String> = m.2.symmetric_difference(&r.2).collect();
    println!(
        "  same mesh: {} ({} facts per run; missing in migrate's {}, in the runbook's {})",
        if differ.is_empty() { "yes" } else { "NO" },
        m.2.len(),
        wanted(&m.2),
        wanted(&r.2)
    );
    for d in differ.iter().take(20) {
        let side = if m.2.contains(*d) {
            "migrate"
        } else {
            "runbook"
        };
        println!("    only {side}: {d}");
    }
    let n = set_up.clusters;
    result(
        &format!("{n}-cluster multi-primary migration: migrate apply"),
        &format!("{:.1} s", m.1.as_secs_f64()),
        "reported",
        None,
    );
    result(
        &format!("{n}-cluster multi-primary migration: the runbook script"),
        &format!("{:.1} s", r.1.as_secs_f64()),
        "reported",
        None,
    );
    result(
        "runbook / migrate apply (wall)",
        &format!("{ratio:.1}x"),
        ">= 5x",
        Some(ratio >= 5.0),
    );
    result(
        "both ended in the same mesh",
        &format!(
            "{} ({} facts checked, {} missing)",
            if differ.is_empty() { "yes" } else { "no" },
            m.2.len(),
            wanted(&m.2) + wanted(&r.2)
        ),
        "yes, nothing missing",
        Some(differ.is_empty() && wanted(&m.2) + wanted(&r.2) == 0),
    );
}
