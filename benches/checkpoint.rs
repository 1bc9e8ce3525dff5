//! What a durable checkpoint costs: the engine's calls against the sled store (flushed, fsync) and against the
//! in-memory store (the same rules, nothing written). Prints figures; asserts nothing about speed.
//!
//! cargo bench --bench checkpoint            (release)
//! cargo bench --bench checkpoint --profile dev   (dependencies optimised, quicker to build)
//! CHECKPOINT_OPS=2000 to change the number of operations per kind.

use std::time::{Duration, Instant};

use migrate::state::{
    EventKind, MemoryStore, NewEvent, NewRun, RunKind, SledStore, SnapshotKey, StepStatus, Store,
};
use serde_json::json;

struct Figures {
    samples: Vec<Duration>,
}

impl Figures {
    fn report(mut self, store: &str, op: &str) {
        self.samples.sort();
        let n = self.samples.len();
        let total: Duration = self.samples.iter().sum();
        let pct = |p: f64| self.samples[((n as f64 - 1.0) * p).round() as usize];
        println!(
            "{store:<7} {op:<24} n={n:<6} mean={:>9.1?} p50={:>9.1?} p99={:>9.1?} max={:>9.1?} ops/s={:>8.0}",
            total / n as u32,
            pct(0.50),
            pct(0.99),
            self.samples[n - 1],
            n as f64 / total.as_secs_f64()
        );
    }
}

fn time(n: usize, mut f: impl FnMut(usize)) -> Figures {
    let samples = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    Figures { samples }
}

fn run(store: &dyn Store, name: &str, ops: usize) {
    let steps: Vec<String> = (0..ops).map(|i| format!("install/cluster{i}")).collect();
    let plan = json!({"steps": steps, "padding": "x".repeat(64 * 1024)});
    let t = Instant::now();
    let run = store
        .begin_run(NewRun {
            fingerprint: "sha256:bench".into(),
            spec_name: "bench".into(),
            kind: RunKind::Apply,
            plan,
            steps: steps.clone(),
        })
        .expect("begin_run");
    println!(
        "{name:<7} {:<24} {:>9.1?} ({ops} steps, 64 KiB plan)",
        "begin_run",
        t.elapsed()
    );
    let run = run.id;

    time(ops, |i| {
        store
            .set_step_status(run, &steps[i], StepStatus::Running, None)
            .expect("running");
    })
    .report(name, "set_step_status");

    // A 4 KiB object, about the size of a Deployment or a Secret with a CA bundle.
    let object =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"blob": "y".repeat(4096)}});
    time(ops, |i| {
        let key = SnapshotKey::new(
            "cluster1",
            "apps/v1",
            "Deployment",
            Some("istio-system"),
            &format!("d{i}"),
        );
        store
            .put_snapshot_if_absent(run, &steps[i], &key, Some(object.clone()))
            .expect("snapshot");
    })
    .report(name, "put_snapshot (4 KiB)");

    time(ops, |i| {
        store
            .record_event(
                run,
                NewEvent::new(EventKind::Action, Some(&steps[i]), "server-side apply"),
            )
            .expect("event");
    })
    .report(name, "record_event");

    time(ops.min(200), |_| {
        store.step_states(run).expect("step_states");
    })
    .report(name, &format!("step_states ({ops})"));

    time(ops.min(200), |_| {
        store.events(run, 0).expect("events");
    })
    .report(name, &format!("events ({})", 2 * ops + 1));
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let ops: usize = std::env::var("CHECKPOINT_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    run(&MemoryStore::new(), "memory", ops);
    // On the working directory's file system, like the default ./.migrate.
    let tmp = tempfile::tempdir_in(".").expect("temp dir");
    let opened = SledStore::open(&tmp.path().join("state")).expect("open");
    run(&opened.store, "sled", ops);
    drop(opened);
    let t = Instant::now();
    let reopened = SledStore::open(&tmp.path().join("state")).expect("reopen");
    println!(
        "sled    {:<24} {:>9.1?} (includes the journal check)",
        "reopen",
        t.elapsed()
    );
    drop(reopened);
    let size: u64 = walk(&tmp.path().join("state"));
    println!(
        "sled    size on disk             {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
