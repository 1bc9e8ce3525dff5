//! The drill's probe: a Job running a curl loop, the check the Istio docs
//! use for failover (call the service N times, read which instance answered).
//!
//! The Job is an ordinary manifest that runs unchanged on a real cluster:
//! image `curlimages/curl`, the target in `PROBE_URL`, the number of calls in
//! `PROBE_COUNT` and curl's per-call limit in `PROBE_TIMEOUT_SECONDS`. The
//! script prints one line per answer, then asks the sidecar to quit so the
//! Job can complete. The simulator runs a Job of exactly this documented
//! shape (an e2e test, `probe_contract`, holds the two together).

use serde_json::{Value, json};

/// The probe's container image (the one of Istio's curl sample).
pub const IMAGE: &str = "docker.io/curlimages/curl:8.16.0";

/// The name of the probe's one container, for `kubectl logs -c`.
pub const CONTAINER: &str = "probe";

/// The script the container runs with `/bin/sh -c`.
///
/// `$(...)` keeps curl's answer or its error line and drops trailing
/// newlines, so each call prints exactly one line. The last line tells the
/// sidecar (Envoy's pilot-agent on port 15020) to exit; without it the pod,
/// and so the Job, would never finish.
pub const SCRIPT: &str = r#"i=0
while [ "$i" -lt "$PROBE_COUNT" ]; do
  i=$((i+1))
  out=$(curl -sS --max-time "${PROBE_TIMEOUT_SECONDS:-10}" "$PROBE_URL" 2>&1)
  printf '%s\n' "$out"
done
curl -fsS -X POST http://127.0.0.1:15020/quitquitquit >/dev/null 2>&1 || true
"#;

/// The labels on the Job and its pod: who made it, and that it is a probe.
fn labels() -> Value {
    json!({
        "app.kubernetes.io/managed-by": "migrate",
        "migrate.meshops.dev/probe": "true",
    })
}

/// The probe Job `name` in `namespace`: `count` calls to `url`, each allowed
/// `timeout_secs` seconds. It runs once (no retries, `restartPolicy: Never`)
/// with a sidecar, so its calls go through the mesh.
pub fn manifest(name: &str, namespace: &str, url: &str, count: u32, timeout_secs: u32) -> Value {
    let container = json!({
        "name": CONTAINER,
        "image": IMAGE,
        "command": ["/bin/sh", "-c", SCRIPT],
        "env": [
            { "name": "PROBE_URL", "value": url },
            { "name": "PROBE_COUNT", "value": count.to_string() },
            { "name": "PROBE_TIMEOUT_SECONDS", "value": timeout_secs.to_string() },
        ],
    });
    let pod_template = json!({
        "metadata": {
            "labels": labels(),
            "annotations": { "sidecar.istio.io/inject": "true" },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [container],
        },
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "namespace": namespace, "labels": labels() },
        "spec": {
            "backoffLimit": 0,
            "template": pod_template,
        },
    })
}
