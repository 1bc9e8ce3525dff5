//! `wait` actions: the plan's conditions as watches on the cluster.

use super::backends::scale_targets;
use super::context::{ActionError, StepCtx};
use crate::cluster::wait as w;
use crate::cluster::{Clusterz, PeerView};
use crate::plan::{Condition, ObjectRef, ScaleTarget};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Waits until the object meets `condition`, at most `timeout`.
pub(crate) async fn wait(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    condition: &Condition,
    timeout: Duration,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let (what, cond): (String, w::Predicate) = match condition {
        Condition::DeploymentAvailable => (
            "deployment rolled out and available".into(),
            w::deployment_rolled_out(),
        ),
        Condition::LoadBalancerAddress => {
            ("a LoadBalancer address".into(), w::load_balancer_ready())
        }
        Condition::Present => ("it to exist".into(), w::exists()),
        Condition::Absent => ("it to be gone".into(), w::absent()),
        Condition::SecretHasKeys { keys } => (
            format!("keys {}", keys.join(", ")),
            w::secret_has_keys(keys.clone()),
        ),
        Condition::Label { key: k, value } => (
            format!("label {k}={value}"),
            w::has_label(k.clone(), value.clone()),
        ),
        Condition::JobComplete => ("the Job to complete".into(), job_complete()),
        Condition::ConfigMapHasRoots {
            key: k,
            contains,
            lacks,
        } => {
            let want = read_certs(contains)?;
            let gone = read_certs(lacks)?;
            let k = k.clone();
            (
                format!("{k} to carry the expected root certificate(s)"),
                Box::new(move |obj: Option<&Value>| {
                    let Some(text) = obj
                        .and_then(|o| o.get("data"))
                        .and_then(|d| d.get(&k))
                        .and_then(Value::as_str)
                    else {
                        return false;
                    };
                    let have = crate::ca::cert_bodies(text);
                    want.iter().all(|c| have.contains(c)) && gone.iter().all(|c| !have.contains(c))
                }),
            )
        }
        Condition::RemoteClusterSynced { remote } => {
            return remote_synced(ctx, cluster, object, remote, timeout).await;
        }
        Condition::BackendsDrained | Condition::BackendsAvailable => {
            return backends(
                ctx,
                cluster,
                object,
                matches!(condition, Condition::BackendsDrained),
                timeout,
            )
            .await;
        }
    };
    // A watch that breaks (a transient error) is started again within the same deadline.
    let deadline = tokio::time::Instant::now() + timeout;
    let cond = std::sync::Arc::new(cond);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let cond2 = cond.clone();
        match c
            .wait_for(object, &what, left, Box::new(move |o| cond2(o)))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && !left.is_zero() => {
                ctx.env.observer.retrying(&ctx.step, 0, &e.to_string());
                tokio::time::sleep(ctx.opts.backoff.delay(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn job_complete() -> w::Predicate {
    Box::new(|obj| {
        obj.and_then(|j| j.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Complete")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
    })
}

fn read_certs(paths: &[PathBuf]) -> Result<Vec<String>, ActionError> {
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| ActionError::Failed(format!("cannot read {}: {e}", p.display())))?;
        let bodies = crate::ca::cert_bodies(&text);
        if bodies.is_empty() {
            return Err(ActionError::Failed(format!(
                "{} holds no certificate",
                p.display()
            )));
        }
        out.extend(bodies);
    }
    Ok(out)
}

/// istiod's registry of remote clusters, as `istioctl remote-clusters` reads
/// it: `debug/clusterz` through a port-forward, from every Ready replica.
pub(crate) async fn remote_clusters(
    ctx: &StepCtx,
    cluster: &str,
    istiod: &ObjectRef,
) -> Result<Clusterz, ActionError> {
    let c = ctx.cluster(cluster)?;
    ctx.retry(|| c.istiod_clusterz(istiod)).await
}

async fn remote_synced(
    ctx: &StepCtx,
    cluster: &str,
    istiod: &ObjectRef,
    remote: &str,
    timeout: Duration,
) -> Result<(), ActionError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    let mut delay = 1;
    loop {
        match remote_clusters(ctx, cluster, istiod).await {
            // Synced only when every replica says so: a proxy may be served by any of them.
            Ok(registry) => match registry.peer(remote) {
                PeerView::Synced => return Ok(()),
                lagging => last = lagging.describe(),
            },
            Err(e) => last = format!("unknown ({e})"),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ActionError::Failed(format!(
                "cluster {cluster}: istiod has not synced remote cluster {remote} after {}s (status: {last}); \
                 check the remote secret istio-system/istio-remote-secret-{remote} and that its kubeconfig reaches {remote}",
                timeout.as_secs()
            )));
        }
        // Poll, as `istioctl remote-clusters` would be re-run: there is nothing to watch.
        tokio::time::sleep(ctx.opts.backoff.delay(delay).max(Duration::from_millis(20))).await;
        delay = (delay + 1).min(6);
    }
}

/// The Service's backend Deployments are all drained (no ready replica) or
/// all rolled out again.
async fn backends(
    ctx: &StepCtx,
    cluster: &str,
    service: &ObjectRef,
    drained: bool,
    timeout: Duration,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let targets =
        scale_targets(ctx, cluster, &ScaleTarget::ServiceBackends(service.clone())).await?;
    if targets.is_empty() {
        return Err(ActionError::Failed(format!(
            "{service} in {cluster} selects no Deployment"
        )));
    }
    for object in targets {
        if drained {
            let cond: w::Predicate = Box::new(|o| {
                o.is_none_or(|d| {
                    d.pointer("/status/readyReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        == 0
                        && d.pointer("/spec/replicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(1)
                            == 0
                })
            });
            c.wait_for(&object, "no ready replica", timeout, cond)
                .await?;
        } else {
            c.wait_for(
                &object,
                "deployment rolled out and available",
                timeout,
                w::deployment_rolled_out(),
            )
            .await?;
        }
    }
    Ok(())
}
