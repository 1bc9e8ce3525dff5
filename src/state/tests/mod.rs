//! Tests of the state store: store semantics (run against both stores), the state directory (persistence,
//! permissions, schema, damage), the one-writer lock, and durability across a crash.

mod directory;
mod durability;
mod forget;
mod index;
mod left;
mod locking;
mod on_kubernetes;
mod pause;
mod semantics;
mod status_copy;
mod versions;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

fn new_run(steps: &[&str]) -> NewRun {
    NewRun {
        fingerprint: "sha256:abc".into(),
        spec_name: "demo".into(),
        kind: RunKind::Apply,
        plan: json!({"zeta": 1, "alpha": [1, 2, {"b": true, "a": null}], "steps": steps}),
        steps: steps.iter().map(|s| s.to_string()).collect(),
    }
}

fn secret(value: &str) -> Value {
    use base64::Engine as _;
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {"ca-key.pem": base64::engine::general_purpose::STANDARD.encode(value)},
    })
}

fn key(cluster: &str, name: &str) -> SnapshotKey {
    SnapshotKey::new(cluster, "v1", "Secret", Some("istio-system"), name)
}

fn state_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("state")
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir).unwrap().store
}

/// Runs `check` against a fresh memory store, a fresh sled store and a fresh Kubernetes store (on a simulated
/// cluster), then checks that the Kubernetes store reopened from its log holds exactly what it held.
fn both(check: impl Fn(&dyn Store)) {
    check(&MemoryStore::new());
    let tmp = tempfile::tempdir().unwrap();
    check(&open(&state_dir(&tmp)));
    let (location, kube_store) = on_kubernetes::fresh_store();
    check(&kube_store);
    let before = on_kubernetes::dump(&kube_store);
    drop(kube_store);
    let reopened = on_kubernetes::reopen(&location);
    assert_eq!(
        on_kubernetes::dump(&reopened),
        before,
        "the log replays to the same records"
    );
}

/// Re-runs this test binary to execute one child test with the given environment.
fn spawn_child(test: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--test-threads", "1", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for a child with a deadline, so a hung child fails the test instead of hanging it.
fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
