//! Phase 6: the Istio docs' own failover check. A curl Job in the `from`
//! cluster calls the service N times; answers read `Hello version: vX,
//! instance: <pod>`. Before the drain they come from several clusters; the
//! drained cluster's backends are scaled to zero; afterwards none comes
//! from it. Replicas are restored and the Jobs deleted whatever happened.

use super::{Ctx, ROLLOUT_TIMEOUT, discovery, routing, wait};
use crate::plan::{Action, Condition, ObjectRef, Phase, ProbeExpect, Risk, ScaleTarget, Step};
use crate::spec::FailoverTest;
use serde_json::{Value, json};

pub const BASELINE_ID: &str = "failover/baseline";
pub const DRAIN_ID: &str = "failover/drain";
pub const IMAGE: &str = "docker.io/curlimages/curl:8.16.0";
const PROBE_TIMEOUT: u64 = 300;

/// The probe loop (`/bin/sh -c`): URL, count and per-request timeout come
/// from the environment; `$(...)` makes every response exactly one line
/// (the body, or curl's error); the sidecar is told to quit at the end so
/// the Job completes. The same text as meshsim's probe contract
/// (`meshsim::mesh::probe::PROBE_SCRIPT`), which runs only this program.
pub const PROBE_SCRIPT: &str = r#"i=0
while [ "$i" -lt "$PROBE_COUNT" ]; do
  i=$((i+1))
  out=$(curl -sS --max-time "${PROBE_TIMEOUT_SECONDS:-10}" "$PROBE_URL" 2>&1)
  printf '%s\n' "$out"
done
curl -fsS -X POST http://127.0.0.1:15020/quitquitquit >/dev/null 2>&1 || true
"#;

/// Seconds each probe request may take.
const REQUEST_TIMEOUT: u32 = 5;

pub fn probe_job(ft: &FailoverTest, name: &str) -> (ObjectRef, Value) {
    let svc = &ft.service;
    let job = ObjectRef::namespaced("batch/v1", "Job", &svc.namespace, name);
    let url = format!(
        "http://{}.{}:{}{}",
        svc.name, svc.namespace, svc.port, svc.path
    );
    let manifest = super::manifest(
        &job,
        json!({ "labels": { "app.kubernetes.io/managed-by": "migrate", "app": "migrate-failover-probe" } }),
        json!({ "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": { "app": "migrate-failover-probe" },
                    "annotations": {
                        "proxy.istio.io/config": "{ \"holdApplicationUntilProxyStarts\": true }",
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "curl",
                        "image": IMAGE,
                        "command": ["/bin/sh", "-c", PROBE_SCRIPT],
                        "env": [
                            { "name": "PROBE_URL", "value": url },
                            { "name": "PROBE_COUNT", "value": ft.requests.to_string() },
                            { "name": "PROBE_TIMEOUT_SECONDS", "value": REQUEST_TIMEOUT.to_string() },
                        ],
                    }],
                },
            },
        }}),
    );
    (job, manifest)
}

pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let Some(ft) = &ctx.spec.failover_test else {
        return Vec::new();
    };
    let service = ObjectRef::service(&ft.service.namespace, &ft.service.name);
    let backends = ScaleTarget::ServiceBackends(service.clone());
    let delete = |job: &ObjectRef| Action::Delete {
        cluster: ft.from.clone(),
        object: job.clone(),
    };

    let mut baseline = Step::new(
        Phase::Failover,
        BASELINE_ID,
        format!(
            "Probe {} from {}: {} requests answered from more than one cluster.",
            service, ft.from, ft.requests
        ),
    );
    let routing_steps = routing::ids(ctx);
    if routing_steps.is_empty() {
        baseline.needs_all(
            discovery::pairs(ctx)
                .iter()
                .map(|(a, b)| discovery::pair_id(&a.name, &b.name)),
        );
    } else {
        baseline.needs_all(routing_steps);
    }
    // DNS is per cluster: the client cluster needs the Service even with no
    // local endpoints (istio#17087).
    baseline.forward(wait(
        &ft.from,
        service.clone(),
        Condition::Present,
        ROLLOUT_TIMEOUT,
    ));
    let (job, manifest) = probe_job(ft, "migrate-failover-probe-baseline");
    baseline.forward(Action::Probe {
        cluster: ft.from.clone(),
        job: job.clone(),
        manifest,
        requests: ft.requests,
        expect: ProbeExpect {
            all_answered: true,
            min_clusters: 2,
            not_from: Vec::new(),
        },
        timeout_seconds: PROBE_TIMEOUT,
    });
    baseline.finally(delete(&job));
    baseline.rollback(delete(&job));

    let mut drain = Step::new(
        Phase::Failover,
        DRAIN_ID,
        format!(
            "Scale the backends of {} in {} to zero, probe from {}: every answer from another cluster. Replicas restored whatever happened.",
            service, ft.drain, ft.from
        ),
    );
    drain.need(BASELINE_ID);
    drain.risk(Risk::TrafficShift);
    drain.forward(Action::Scale {
        cluster: ft.drain.clone(),
        target: backends.clone(),
        replicas: 0,
    });
    drain.forward(wait(
        &ft.drain,
        service.clone(),
        Condition::BackendsDrained,
        ROLLOUT_TIMEOUT,
    ));
    let (job, manifest) = probe_job(ft, "migrate-failover-probe-drained");
    drain.forward(Action::Probe {
        cluster: ft.from.clone(),
        job: job.clone(),
        manifest,
        requests: ft.requests,
        expect: ProbeExpect {
            all_answered: true,
            min_clusters: 1,
            not_from: vec![ft.drain.clone()],
        },
        timeout_seconds: PROBE_TIMEOUT,
    });
    drain.finally(Action::RestoreScale {
        cluster: ft.drain.clone(),
        target: backends.clone(),
    });
    drain.finally(wait(
        &ft.drain,
        service.clone(),
        Condition::BackendsAvailable,
        ROLLOUT_TIMEOUT,
    ));
    drain.finally(delete(&job));
    drain.rollback(Action::RestoreScale {
        cluster: ft.drain.clone(),
        target: backends,
    });
    drain.rollback(delete(&job));
    vec![baseline, drain]
}

#[cfg(test)]
mod probe_contract {
    #[test]
    fn the_probe_script_is_meshsims_documented_one() {
        assert_eq!(super::PROBE_SCRIPT, meshsim::mesh::probe::PROBE_SCRIPT);
    }
}
