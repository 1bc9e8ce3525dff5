//! Preflight checks and phase gates: read-only, each failure says which
//! cluster and what to do.

pub mod gate;
mod mesh;

use super::context::{ActionError, StepCtx};
use crate::cluster::{AccessQuery, ClusterError, run_command};
use crate::plan::permissions::Need;
use crate::plan::{CaMode, Check, ObjectRef};
use crate::state::{EventKind, NewEvent};
use serde_json::Value;
use std::time::Duration;

/// Runs one check; a failed check fails the step with what to do.
pub(crate) async fn run(
    ctx: &StepCtx,
    cluster: Option<&str>,
    check: &Check,
) -> Result<(), ActionError> {
    let on = cluster.unwrap_or("this machine");
    // These verify what earlier steps made; a dry run made nothing.
    if ctx.opts.dry_run
        && matches!(
            check,
            Check::WorkloadsCurrent { .. } | Check::RootsShared { .. }
        )
    {
        return Ok(());
    }
    match check {
        Check::Reachable => reachable(ctx, on).await,
        Check::KubernetesVersion { at_least } => kubernetes_version(ctx, on, at_least).await,
        Check::InstallerVersion { program, expected } => installer_version(program, expected).await,
        Check::MeshPresent { istiod } => mesh_present(ctx, on, istiod).await,
        Check::IstioVersion { istiod, expected } => istio_version(ctx, on, istiod, expected).await,
        Check::CaMode {
            expected,
            ca_secret,
            cacerts,
        } => ca_mode(ctx, on, *expected, ca_secret, cacerts).await,
        Check::ClusterName {
            istiod,
            env,
            default,
            planned,
        } => cluster_name(ctx, on, istiod, env, default, planned).await,
        Check::TrustDomain {
            config_map,
            expected,
        } => trust_domain(ctx, on, config_map, expected).await,
        Check::NoMesh { istiod } => no_mesh(ctx, on, istiod).await,
        Check::WorkloadsCurrent {
            namespace,
            cluster_id,
        } => workloads_current(ctx, on, namespace, cluster_id).await,
        Check::RootsShared {
            namespace,
            clusters,
        } => roots_shared(ctx, namespace, clusters).await,
        Check::NodeLocality { region, zone } => {
            node_locality(ctx, on, region, zone.as_deref()).await
        }
        Check::Permissions { needs } => permissions(ctx, on, needs).await,
        Check::MeshInventory {
            namespace,
            installer,
            trust,
        } => mesh::inventory(ctx, on, namespace, installer.as_deref(), trust).await,
        Check::VersionSkew {
            namespace,
            clusters,
        } => mesh::version_skew(ctx, namespace, clusters).await,
        Check::Gate {
            groups,
            expectations,
        } => gate::run(ctx, groups, expectations).await,
    }
}

/// The cluster answers with its kubeconfig credentials.
async fn reachable(ctx: &StepCtx, on: &str) -> Result<(), ActionError> {
    let c = ctx.cluster(on)?;
    let version = ctx.retry(|| c.server_version()).await.map_err(|e| {
        ActionError::Failed(format!(
            "cluster {on} (context {}) is not reachable with its kubeconfig credentials: {e}",
            c.context
        ))
    })?;
    note(ctx, &format!("cluster {on} answers, Kubernetes {version}"))?;
    Ok(())
}

/// The cluster runs at least the Kubernetes minor version the plan needs.
async fn kubernetes_version(ctx: &StepCtx, on: &str, at_least: &str) -> Result<(), ActionError> {
    let c = ctx.cluster(on)?;
    let version = ctx.retry(|| c.server_version()).await?;
    if minor_version(&version) < minor_version(at_least) {
        return Err(ActionError::Failed(format!(
            "cluster {on} runs Kubernetes {version}; at least {at_least} is needed"
        )));
    }
    Ok(())
}

/// The installer on this machine is the version the spec asks for.
async fn installer_version(program: &str, expected: &str) -> Result<(), ActionError> {
    let out = run_command(
        program,
        &["version".into(), "--remote=false".into()],
        None,
        &[],
        Duration::from_secs(60),
    )
    .await
    .map_err(|e| {
        ActionError::Failed(format!(
            "{e}; spec.installer.path names the istioctl to use"
        ))
    })?;
    if !out.stdout.contains(expected) {
        return Err(ActionError::Failed(format!(
            "{program} is version {}, but the spec asks for Istio {expected}: install istioctl {expected} or change spec.mesh.istioVersion",
            out.stdout.trim()
        )));
    }
    Ok(())
}

/// The cluster runs a mesh (the source, or one adopted), with an available istiod.
async fn mesh_present(ctx: &StepCtx, on: &str, istiod: &ObjectRef) -> Result<(), ActionError> {
    let d = get(ctx, on, istiod).await?.ok_or_else(|| {
        ActionError::Failed(format!(
            "cluster {on} has no {istiod}: the spec says it runs a mesh today (`source: true`, or `existingMesh: adopt`): is that on the right cluster?"
        ))
    })?;
    let available = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if available < 1 {
        return Err(ActionError::Failed(format!(
            "{istiod} in {on} has no available replica: fix the mesh before migrating it"
        )));
    }
    Ok(())
}

/// Warns when istiod runs another Istio version than the spec's.
async fn istio_version(
    ctx: &StepCtx,
    on: &str,
    istiod: &ObjectRef,
    expected: &str,
) -> Result<(), ActionError> {
    if let Some(d) = get(ctx, on, istiod).await? {
        let image = container(&d)
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        if tag != expected {
            warn(
                ctx,
                &format!(
                    "istiod in {on} runs image {image}, the spec says Istio {expected}: the install phase will change its version"
                ),
            )?;
        }
    }
    Ok(())
}

/// The cluster's CA is of the kind the spec's trust section expects.
async fn ca_mode(
    ctx: &StepCtx,
    on: &str,
    expected: CaMode,
    ca_secret: &ObjectRef,
    cacerts: &ObjectRef,
) -> Result<(), ActionError> {
    let plugged = get(ctx, on, cacerts).await?;
    let self_signed = get(ctx, on, ca_secret).await?;
    let generated = plugged
        .as_ref()
        .is_some_and(|s| s.pointer("/data/istio-generated").is_some());
    let mode = match (&plugged, &self_signed) {
        (Some(_), _) if !generated => CaMode::PluggedIn,
        (Some(_), _) | (None, Some(_)) => CaMode::SelfSigned,
        (None, None) => {
            return Err(ActionError::Failed(format!(
                "cluster {on} has neither {ca_secret} nor {cacerts}: istiod has not initialised its CA"
            )));
        }
    };
    note(
        ctx,
        &format!(
            "cluster {on} CA mode: {}",
            if mode == CaMode::PluggedIn {
                "plugged-in (cacerts)"
            } else {
                "self-signed (istio-ca-secret)"
            }
        ),
    )?;
    if expected != CaMode::Any && expected != mode {
        let hint = if mode == CaMode::PluggedIn {
            "it already uses a plugged-in CA: give that root with `trust.root.files`, or `generate` a new one"
        } else {
            "it runs a self-signed CA: use `trust.root.adopt`"
        };
        let want = if expected == CaMode::PluggedIn {
            "plugged-in"
        } else {
            "self-signed"
        };
        return Err(ActionError::Failed(format!(
            "cluster {on}: the spec expects a {want} CA, but {hint}"
        )));
    }
    Ok(())
}

/// Warns when istiod's cluster name changes with the migration.
async fn cluster_name(
    ctx: &StepCtx,
    on: &str,
    istiod: &ObjectRef,
    env: &str,
    default: &str,
    planned: &str,
) -> Result<(), ActionError> {
    if let Some(d) = get(ctx, on, istiod).await? {
        let current = container(&d)
            .and_then(|c| c.get("env"))
            .and_then(Value::as_array)
            .and_then(|envs| {
                envs.iter()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(env))
            })
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string();
        if current != planned {
            warn(
                ctx,
                &format!(
                    "istiod in {on} runs as cluster {current:?} today; the migration renames it {planned:?}, and injected workloads there must restart to pick it up"
                ),
            )?;
        }
    }
    Ok(())
}

/// The mesh's trust domain is the spec's.
async fn trust_domain(
    ctx: &StepCtx,
    on: &str,
    config_map: &ObjectRef,
    expected: &str,
) -> Result<(), ActionError> {
    if let Some(cm) = get(ctx, on, config_map).await? {
        let mesh = cm
            .pointer("/data/mesh")
            .and_then(Value::as_str)
            .unwrap_or("");
        let parsed: Value = serde_yaml::from_str(mesh).unwrap_or(Value::Null);
        let domain = parsed
            .get("trustDomain")
            .and_then(Value::as_str)
            .unwrap_or("cluster.local");
        if domain != expected {
            return Err(ActionError::Failed(format!(
                "cluster {on} uses trust domain {domain:?}, the spec says {expected:?}: set spec.mesh.trustDomain (and trustDomainAliases) to match"
            )));
        }
    }
    Ok(())
}

/// A cluster that should be new to the mesh runs no istiod: one that does
/// was installed by someone else, and is neither reconfigured nor (on
/// rollback) removed unless the spec says it is to be adopted.
async fn no_mesh(ctx: &StepCtx, on: &str, istiod: &ObjectRef) -> Result<(), ActionError> {
    let found = match get(ctx, on, istiod).await? {
        Some(d) => Some((istiod.clone(), d)),
        // A revisioned control plane (`istiod-<rev>`) carries `app: istiod`.
        None => {
            let c = ctx.cluster(on)?;
            let namespace = istiod.namespace.as_deref();
            let all = ctx
                .retry(|| c.list("apps/v1", "Deployment", namespace, Some("app=istiod")))
                .await?;
            all.into_iter().next().map(|d| {
                let name = d
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("istiod")
                    .to_string();
                let at = ObjectRef::namespaced(
                    "apps/v1",
                    "Deployment",
                    namespace.unwrap_or_default(),
                    &name,
                );
                (at, d)
            })
        }
    };
    let Some((at, d)) = found else {
        return Ok(());
    };
    Err(ActionError::Failed(format!(
        "cluster {on} already runs Istio: {at} exists ({}); migrate installs Istio only where there is none, so it changed nothing: \
         set `existingMesh: adopt` on cluster {on} in the spec to keep that mesh and reconfigure it in place (rollback then puts its values back), \
         or uninstall it first",
        mesh_evidence(&d)
    )))
}

/// What identifies a running istiod: its Istio version (operator label, else
/// image tag) and its revision.
fn mesh_evidence(istiod: &Value) -> String {
    let label = |k: &str| {
        istiod
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let tag = container(istiod)
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .and_then(|i| i.rsplit_once(':'))
        .map(|(_, t)| t);
    let version = label("operator.istio.io/version").or(tag);
    let mut parts = vec![match version {
        Some(v) => format!("Istio {v}"),
        None => "version unknown".to_string(),
    }];
    if let Some(rev) = label("istio.io/rev") {
        parts.push(format!("revision {rev}"));
    }
    parts.join(", ")
}

/// Warns when no node carries the spec's locality labels.
async fn node_locality(
    ctx: &StepCtx,
    on: &str,
    region: &str,
    zone: Option<&str>,
) -> Result<(), ActionError> {
    let c = ctx.cluster(on)?;
    match ctx.retry(|| c.list("v1", "Node", None, None)).await {
        Ok(nodes) => {
            let label = |n: &Value, k: &str| {
                n.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let found = nodes.iter().any(|n| {
                label(n, "topology.kubernetes.io/region").as_deref() == Some(region)
                    && zone.as_ref().is_none_or(|z| {
                        label(n, "topology.kubernetes.io/zone").as_deref() == Some(z)
                    })
            });
            if !found {
                warn(
                    ctx,
                    &format!(
                        "no node of cluster {on} carries topology.kubernetes.io/region={region}: locality load balancing will not see the spec's locality"
                    ),
                )?;
            }
        }
        Err(e) => warn(
            ctx,
            &format!("cannot list the nodes of {on} to check their locality: {e}"),
        )?,
    }
    Ok(())
}

/// Pods keep the sidecar (or its absence) and the cluster ID of the moment
/// they were created; a pod that predates the cluster's identity fails
/// cross-cluster calls in ways that hide why, so name every such pod.
async fn workloads_current(
    ctx: &StepCtx,
    on: &str,
    namespace: &str,
    cluster_id: &str,
) -> Result<(), ActionError> {
    let ns = ObjectRef::cluster_scoped("v1", "Namespace", namespace);
    let Some(ns) = get(ctx, on, &ns).await? else {
        return Ok(());
    };
    let injected_here = ns
        .pointer("/metadata/labels/istio-injection")
        .and_then(Value::as_str)
        == Some("enabled")
        || ns.pointer("/metadata/labels/istio.io~1rev").is_some();
    let c = ctx.cluster(on)?;
    let pods = ctx
        .retry(|| c.list("v1", "Pod", Some(namespace), None))
        .await?;
    let mut stale = Vec::new();
    for pod in &pods {
        let phase = pod.pointer("/status/phase").and_then(Value::as_str);
        // Finished pods and pods on their way out serve nothing.
        if matches!(phase, Some("Succeeded" | "Failed"))
            || pod.pointer("/metadata/deletionTimestamp").is_some()
        {
            continue;
        }
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let opted_out = pod
            .pointer("/metadata/labels/sidecar.istio.io~1inject")
            .or_else(|| pod.pointer("/metadata/annotations/sidecar.istio.io~1inject"))
            .and_then(Value::as_str)
            == Some("false");
        match sidecar_cluster_id(pod) {
            Some(id) if id == cluster_id => {}
            Some(id) => stale.push(format!("{name} (clusterName {id})")),
            None if injected_here && !opted_out => stale.push(format!("{name} (no sidecar)")),
            None => {}
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(ActionError::Failed(format!(
        "cluster {on}: {} pod(s) of namespace {namespace} still run the sidecar they started with, not cluster {cluster_id}'s: {}; pods keep their clusterName and CA root until restarted: add {namespace} to spec.workloads.restartNamespaces, or run `kubectl rollout restart deployment -n {namespace}` and resume",
        stale.len(),
        stale.join(", ")
    )))
}

/// Every cluster's workloads in `namespace` must trust a root the others'
/// certificates chain to; istiod distributes its bundle as
/// `istio-ca-root-cert`, so the bundles must intersect.
async fn roots_shared(
    ctx: &StepCtx,
    namespace: &str,
    clusters: &[String],
) -> Result<(), ActionError> {
    let config_map = ObjectRef::namespaced("v1", "ConfigMap", namespace, "istio-ca-root-cert");
    let mut bundles: Vec<(&str, Vec<String>)> = Vec::new();
    for cluster in clusters {
        // A cluster without the namespace (or without a mesh in it) has no say.
        let Some(cm) = get(ctx, cluster, &config_map).await? else {
            continue;
        };
        let text = cm
            .pointer("/data/root-cert.pem")
            .and_then(Value::as_str)
            .unwrap_or_default();
        bundles.push((cluster, crate::ca::cert_bodies(text)));
    }
    let Some(((_, first), rest)) = bundles.split_first() else {
        return Ok(());
    };
    let common = first
        .iter()
        .filter(|root| rest.iter().all(|(_, b)| b.contains(root)))
        .count();
    if common > 0 {
        return Ok(());
    }
    let described: Vec<String> = bundles
        .iter()
        .map(|(c, b)| format!("{c}: {}", crate::ca::describe_roots(b)))
        .collect();
    Err(ActionError::Failed(format!(
        "the clusters trust different roots ({}): a workload of one cluster cannot verify the others' certificates, so cross-cluster mTLS fails; every cacerts must chain to one root (phase2 trust) and istiod must be restarted after it changes",
        described.join("; ")
    )))
}

/// `ISTIO_META_CLUSTER_ID` of the pod's `istio-proxy` container (a regular
/// container, or a native sidecar among the init containers); `Some("")`
/// when the proxy has no such variable.
fn sidecar_cluster_id(pod: &Value) -> Option<String> {
    let spec = pod.get("spec")?;
    let proxy = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("istio-proxy"))?;
    let id = proxy
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("name").and_then(Value::as_str) == Some("ISTIO_META_CLUSTER_ID"))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(id.to_string())
}

/// Reviews in flight at once per cluster at most: enough to finish a plan's
/// hundred or so quickly, few enough not to be throttled.
const CONCURRENT_REVIEWS: usize = 8;

/// Reviews a connection should carry. The API client speaks HTTP/1.1: each
/// review in flight beyond the first opens a connection (TCP and TLS
/// handshakes, paid by both ends), worth it only for a share of several. A
/// resume asks a handful per cluster: two connections, not one each.
const REVIEWS_PER_CONNECTION: usize = 4;

/// Asks the API server about every access the plan needs on this cluster;
/// fails with one table of what is denied. An error asking (the review API
/// not served, a 403 on the review itself) fails too: never assume allowed.
pub(super) async fn permissions(
    ctx: &StepCtx,
    on: &str,
    needs: &[Need],
) -> Result<(), ActionError> {
    let c = ctx.cluster(on)?;
    let in_flight = needs
        .len()
        .div_ceil(REVIEWS_PER_CONNECTION)
        .clamp(1, CONCURRENT_REVIEWS);
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut reviews = tokio::task::JoinSet::new();
    for (i, need) in needs.iter().enumerate() {
        let (c, ctx, limit, access) = (c.clone(), ctx.clone(), limit.clone(), need.access.clone());
        reviews.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let query = AccessQuery {
                verb: &access.verb,
                group: &access.group,
                resource: &access.resource,
                subresource: access.subresource.as_deref(),
                namespace: access.namespace.as_deref(),
            };
            let allowed = ctx.retry(|| c.can_i(&query)).await;
            (i, allowed)
        });
    }
    let mut denied = Vec::new();
    while let Some(joined) = reviews.join_next().await {
        let (i, allowed) =
            joined.map_err(|e| ActionError::Failed(format!("asking {on} for access: {e}")))?;
        let allowed = allowed.map_err(|e| {
            ActionError::Failed(format!(
                "cannot ask cluster {on} what its credentials may do (SelfSubjectAccessReview, as `kubectl auth can-i` does): {e}; preflight does not go on without knowing"
            ))
        })?;
        if !allowed {
            denied.push(i);
        }
    }
    if denied.is_empty() {
        // A progress note: what follows (a step's end, a resume) makes it
        // durable, and nothing depends on it.
        progress_note(
            ctx,
            &format!(
                "cluster {on}: all {} access(es) the plan needs are allowed",
                needs.len()
            ),
        )?;
        return Ok(());
    }
    denied.sort_unstable();
    let missing: Vec<&Need> = denied.iter().map(|i| &needs[*i]).collect();
    Err(ActionError::Failed(permission_table(on, &missing)))
}

/// One table of what `on` lacks: verb, resource, namespace and the steps
/// that need it; the first line says nothing was changed.
fn permission_table(on: &str, missing: &[&Need]) -> String {
    let rows: Vec<[String; 4]> = missing
        .iter()
        .map(|n| {
            let a = &n.access;
            let why = match n.steps.as_slice() {
                [] => String::new(),
                [one] => one.clone(),
                [first, second] => format!("{first}, {second}"),
                [first, second, rest @ ..] => {
                    format!("{first}, {second} (+{} more)", rest.len())
                }
            };
            [
                a.verb.clone(),
                a.resource_name(),
                a.namespace
                    .clone()
                    .unwrap_or_else(|| "(cluster-wide)".into()),
                why,
            ]
        })
        .collect();
    let header = ["VERB", "RESOURCE", "NAMESPACE", "NEEDED BY"].map(String::from);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!(
        "the credentials for cluster {on} lack {} permission(s) the plan needs; nothing was changed on any cluster. Grant them (`kubectl auth can-i VERB RESOURCE -n NAMESPACE` checks one) and run the command again:",
        rows.len()
    );
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "\n  {:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    out
}

async fn get(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
) -> Result<Option<Value>, ActionError> {
    let c = ctx.cluster(cluster)?;
    match ctx.retry(|| c.get(object)).await {
        Ok(v) => Ok(v),
        // A kind the cluster does not serve means the object is not there.
        Err(ActionError::Cluster(ClusterError::UnknownKind { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

fn container(deployment: &Value) -> Option<&Value> {
    deployment.pointer("/spec/template/spec/containers/0")
}

fn minor_version(v: &str) -> (u32, u32) {
    let v = v.trim_start_matches('v');
    let mut parts = v
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn note(ctx: &StepCtx, message: &str) -> Result<(), ActionError> {
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Note, Some(&ctx.step), message),
    )?;
    Ok(())
}

/// `note`, not flushed on its own (see `Store::record_progress`).
fn progress_note(ctx: &StepCtx, message: &str) -> Result<(), ActionError> {
    ctx.env.store.record_progress(
        ctx.run,
        NewEvent::new(EventKind::Note, Some(&ctx.step), message),
    )?;
    Ok(())
}

fn warn(ctx: &StepCtx, message: &str) -> Result<(), ActionError> {
    ctx.env.observer.warning(&ctx.step, message);
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Warning, Some(&ctx.step), message),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{mesh_evidence, minor_version, sidecar_cluster_id};
    use serde_json::json;

    #[test]
    fn the_sidecar_cluster_id_is_read_from_the_proxy_container() {
        let pod = |containers: serde_json::Value, init: serde_json::Value| json!({ "spec": { "containers": containers, "initContainers": init } });
        let proxy = |id: &str| {
            json!({ "name": "istio-proxy", "env": [
                { "name": "ISTIO_META_MESH_ID", "value": "mesh1" },
                { "name": "ISTIO_META_CLUSTER_ID", "value": id },
            ]})
        };
        let app = json!({ "name": "app" });
        assert_eq!(
            sidecar_cluster_id(&pod(json!([app, proxy("Kubernetes")]), json!([]))),
            Some("Kubernetes".into())
        );
        // Native sidecars live among the init containers.
        assert_eq!(
            sidecar_cluster_id(&pod(json!([app]), json!([proxy("cluster1")]))),
            Some("cluster1".into())
        );
        assert_eq!(sidecar_cluster_id(&pod(json!([app]), json!([]))), None);
        assert_eq!(
            sidecar_cluster_id(&pod(json!([{ "name": "istio-proxy" }]), json!([]))),
            Some(String::new())
        );
    }

    #[test]
    fn the_evidence_of_a_mesh_names_its_version_and_revision() {
        let istiod = |labels: serde_json::Value, image: &str| {
            json!({ "metadata": { "labels": labels },
                    "spec": { "template": { "spec": { "containers": [{ "name": "discovery", "image": image }] } } } })
        };
        assert_eq!(
            mesh_evidence(&istiod(
                json!({ "operator.istio.io/version": "1.29.1", "istio.io/rev": "default" }),
                "docker.io/istio/pilot:1.30.3"
            )),
            "Istio 1.29.1, revision default"
        );
        assert_eq!(
            mesh_evidence(&istiod(json!({}), "docker.io/istio/pilot:1.30.3")),
            "Istio 1.30.3"
        );
        assert_eq!(mesh_evidence(&json!({ "metadata": {} })), "version unknown");
    }

    #[test]
    fn denied_permissions_make_one_aligned_table() {
        use crate::plan::permissions::{Access, Need};
        let need = |verb: &str, steps: &[&str]| Need {
            access: Access {
                verb: verb.into(),
                group: String::new(),
                resource: "secrets".into(),
                subresource: None,
                namespace: Some("istio-system".into()),
            },
            steps: steps.iter().map(|s| s.to_string()).collect(),
        };
        let (a, b) = (
            need("create", &["trust/c1"]),
            need("delete", &["install/c1", "trust/c1", "discovery/c1", "x"]),
        );
        let text = super::permission_table("c1", &[&a, &b]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("cluster c1 lack 2 permission(s)"),
            "{text}"
        );
        assert!(lines[0].contains("nothing was changed"), "{text}");
        assert_eq!(lines[1], "  VERB    RESOURCE  NAMESPACE     NEEDED BY");
        assert_eq!(lines[2], "  create  secrets   istio-system  trust/c1");
        assert_eq!(
            lines[3],
            "  delete  secrets   istio-system  install/c1, trust/c1 (+2 more)"
        );
    }

    #[test]
    fn versions_compare_by_major_minor() {
        assert!(minor_version("v1.32.4") >= minor_version("1.24"));
        assert!(minor_version("v1.23.0-gke.1") < minor_version("1.24"));
    }
}
