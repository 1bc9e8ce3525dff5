//! Phase 6: the Istio docs' own failover check. A curl Job in the `from`
//! cluster calls the service N times; answers read `Hello version: vX,
//! instance: <pod>`. Before the drain they come from several clusters; the
//! drained cluster's backends are scaled to zero; afterwards none comes
//! from it. Replicas are restored and the Jobs deleted whatever happened.

use super::{Ctx, ROLLOUT_TIMEOUT, discovery, probe_job, routing, wait};
use crate::plan::{
    Action, Check, Condition, ObjectRef, Phase, ProbeExpect, Risk, ScaleTarget, Step,
};
use crate::spec::FailoverTest;
use serde_json::Value;

/// The step probing before anything is drained.
pub const BASELINE_ID: &str = "failover/baseline";
/// The step draining one cluster and probing again.
pub const DRAIN_ID: &str = "failover/drain";
/// How long one probe Job may take, all its requests included.
const PROBE_TIMEOUT: u64 = 300;
/// curl's `--max-time` per request inside the probe.
const REQUEST_TIMEOUT_SECS: u32 = 10;

/// The probe Job `name` for the drill `ft`, in the service's namespace,
/// calling the service `ft.requests` times (the Job is [`probe_job::manifest`]).
pub fn drill_probe(ft: &FailoverTest, name: &str) -> (ObjectRef, Value) {
    let svc = &ft.service;
    let job = ObjectRef::namespaced("batch/v1", "Job", &svc.namespace, name);
    let url = format!(
        "http://{}.{}:{}{}",
        svc.name, svc.namespace, svc.port, svc.path
    );
    let manifest = probe_job::manifest(
        name,
        &svc.namespace,
        &url,
        ft.requests,
        REQUEST_TIMEOUT_SECS,
    );
    (job, manifest)
}

/// The drill's two steps, when the spec asks for one: the baseline probe,
/// then the drain of one cluster.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let Some(ft) = &ctx.spec.failover_test else {
        return Vec::new();
    };
    vec![baseline_step(ctx, ft), drain_step(ft)]
}

/// The Service the drill calls.
fn service(ft: &FailoverTest) -> ObjectRef {
    ObjectRef::service(&ft.service.namespace, &ft.service.name)
}

/// Delete a probe Job from the client cluster.
fn delete_job(ft: &FailoverTest, job: &ObjectRef) -> Action {
    Action::Delete {
        cluster: ft.from.clone(),
        object: job.clone(),
    }
}

/// Probe the service from `ft.from` before anything is drained, once
/// routing (or, without routing, discovery) is in place and every sidecar
/// and root is current.
fn baseline_step(ctx: &Ctx<'_>, ft: &FailoverTest) -> Step {
    let service = service(ft);
    // Without locality preferences requests spread over every cluster with
    // endpoints, which proves cross-cluster traffic before anything is
    // drained; with them, healthy local endpoints take every request and the
    // drain is what moves traffic (the Istio docs' locality failover task).
    let local_first = ctx.spec.locality_lb_applies(ft);
    let (min_clusters, baseline_text) = if local_first {
        (
            1,
            "every request answered (locality load balancing keeps them local)",
        )
    } else {
        (2, "answered from more than one cluster")
    };
    let mut baseline = Step::new(
        Phase::Failover,
        BASELINE_ID,
        format!(
            "Probe {} from {}: {} requests, {}.",
            service, ft.from, ft.requests, baseline_text
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
    baseline.forward(wait(&ft.from, service, Condition::Present, ROLLOUT_TIMEOUT));
    // A stale sidecar fails the drill in ways that hide the cause: name it.
    for c in &ctx.spec.clusters {
        baseline.forward(Action::Check {
            cluster: Some(c.name.clone()),
            check: Check::WorkloadsCurrent {
                namespace: ft.service.namespace.clone(),
                cluster_id: c.name.clone(),
            },
        });
    }
    baseline.forward(Action::Check {
        cluster: None,
        check: Check::RootsShared {
            namespace: ft.service.namespace.clone(),
            clusters: ctx.spec.clusters.iter().map(|c| c.name.clone()).collect(),
        },
    });
    let (job, manifest) = drill_probe(ft, "migrate-failover-probe-baseline");
    baseline.forward(Action::Probe {
        cluster: ft.from.clone(),
        job: job.clone(),
        manifest,
        requests: ft.requests,
        expect: ProbeExpect {
            all_answered: true,
            min_clusters,
            not_from: Vec::new(),
        },
        timeout_seconds: PROBE_TIMEOUT,
    });
    baseline.finally(delete_job(ft, &job));
    baseline.rollback(delete_job(ft, &job));
    baseline
}

/// Scale the service's backends in `ft.drain` to zero and probe again:
/// every answer must come from another cluster. Replicas are restored
/// whatever happened.
fn drain_step(ft: &FailoverTest) -> Step {
    let service = service(ft);
    let backends = ScaleTarget::ServiceBackends(service.clone());
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
    let (job, manifest) = drill_probe(ft, "migrate-failover-probe-drained");
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
        service,
        Condition::BackendsAvailable,
        ROLLOUT_TIMEOUT,
    ));
    drain.finally(delete_job(ft, &job));
    drain.rollback(Action::RestoreScale {
        cluster: ft.drain.clone(),
        target: backends,
    });
    drain.rollback(delete_job(ft, &job));
    drain
}
