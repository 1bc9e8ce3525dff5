//! Phase 1: Istio on every cluster with meshID, clusterName and network;
//! east-west gateways; istiod exposed for remotes; the source cluster's
//! injected workloads restarted (FACTS 4, 2.1, 2.3, 7, 9 items 7-9).

use super::{
    Ctx, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, WORKLOADS_TIMEOUT, apply, exec, istiod, preflight, restore,
    wait, yaml_file,
};
use crate::plan::{
    Action, Condition, FileContent, GeneratedFile, ObjectRef, Phase, Risk, RuntimeValue, Step,
    Substitution,
};
use crate::spec::{ClusterSpec, RootTransition, TrustRoot};
use serde_json::{Value, json};

/// `install/<cluster>`: Istio's control plane on a cluster.
pub fn id(cluster: &str) -> String {
    format!("install/{cluster}")
}
/// `install/<cluster>/eastwest`: a primary's east-west gateway.
pub fn eastwest_id(cluster: &str) -> String {
    format!("install/{cluster}/eastwest")
}
/// `install/<cluster>/expose-istiod`: a primary's istiod exposed for its remotes.
pub fn expose_istiod_id(cluster: &str) -> String {
    format!("install/{cluster}/expose-istiod")
}
/// `install/<cluster>/restart-workloads`: the workloads of a mesh kept in place (the source's, an adopted one's) re-injected.
pub fn restart_id(cluster: &str) -> String {
    format!("install/{cluster}/restart-workloads")
}

/// The label on `istio-system` that gives istiod its cluster's network.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
/// The annotation on a remote's `istio-system` naming the primary that leads it.
pub const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";
/// The east-west gateway's name (Deployment and Service).
pub const EASTWEST: &str = "istio-eastwestgateway";

/// What rollback restores (and re-installs from) on a cluster: Istio keeps
/// no `installed-state` since 1.21 (FACTS 4.2).
pub fn snapshot_objects() -> Vec<ObjectRef> {
    vec![
        ObjectRef::config_map(ISTIO_SYSTEM, "values"),
        ObjectRef::config_map(ISTIO_SYSTEM, "istio-sidecar-injector"),
        ObjectRef::config_map(ISTIO_SYSTEM, "istio"),
        istiod(),
        ObjectRef::namespace(ISTIO_SYSTEM),
    ]
}

/// The placeholder for a primary's east-west gateway address in a remote's IOP.
pub fn eastwest_placeholder(primary: &str) -> String {
    format!("${{eastwest-address:{primary}}}")
}

/// The east-west gateway's Service, whose LoadBalancer address peers dial.
pub fn eastwest_service() -> ObjectRef {
    ObjectRef::service(ISTIO_SYSTEM, EASTWEST)
}

/// The multi-root transition needs these set before it starts (FACTS 9 item 5).
fn multi_root(ctx: &Ctx<'_>) -> bool {
    match &ctx.spec.trust.root {
        TrustRoot::Adopt(_) => false,
        TrustRoot::Generate(g) => g.transition == RootTransition::MultiRoot,
        TrustRoot::Files(_) => true,
    }
}

/// The IstioOperator of one cluster.
pub fn istio_operator(ctx: &Ctx<'_>, c: &ClusterSpec) -> (Value, Vec<Substitution>) {
    let mut global = json!({
        "meshID": ctx.spec.mesh.id,
        "multiCluster": { "clusterName": c.name },
    });
    if let Some(net) = &c.network {
        global["network"] = json!(net);
    }
    let mut subs = Vec::new();
    if ctx.is_remote(c) {
        let primary = ctx
            .primary_of(c)
            .map_or(c.name.as_str(), |p| p.name.as_str());
        let placeholder = eastwest_placeholder(primary);
        global["remotePilotAddress"] = json!(placeholder);
        subs.push(Substitution {
            placeholder,
            value: RuntimeValue::LoadBalancerAddress {
                cluster: primary.into(),
                service: eastwest_service(),
            },
        });
        let path = match &c.network {
            Some(net) => format!("/inject/cluster/{}/net/{net}", c.name),
            None => format!("/inject/cluster/{}", c.name),
        };
        let iop = json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "spec": {
                "profile": "remote",
                "values": {
                    "istiodRemote": { "injectionPath": path },
                    "global": global,
                },
            },
        });
        return (iop, subs);
    }
    if ctx.primary_remote() && !ctx.remotes_of(c).is_empty() {
        global["externalIstiod"] = json!(true);
    }
    let mut mesh_config = json!({ "trustDomain": ctx.spec.mesh.trust_domain });
    if !ctx.spec.mesh.trust_domain_aliases.is_empty() {
        mesh_config["trustDomainAliases"] = json!(ctx.spec.mesh.trust_domain_aliases);
    }
    let mut values = json!({ "global": global });
    if multi_root(ctx) {
        mesh_config["defaultConfig"] =
            json!({ "proxyMetadata": { "PROXY_CONFIG_XDS_AGENT": "true" } });
        values["pilot"] = json!({ "env": { "ISTIO_MULTIROOT_MESH": "true" } });
    }
    let iop = json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": { "meshConfig": mesh_config, "values": values },
    });
    (iop, subs)
}

/// `samples/multicluster/gen-eastwest-gateway.sh --network <net>` output
/// (FACTS 2.1), or its `--single-cluster` form without a network.
pub fn eastwest_operator(network: Option<&str>) -> Value {
    let mut label = json!({ "istio": "eastwestgateway", "app": EASTWEST });
    let mut k8s = json!({});
    let mut global = json!({});
    if let Some(net) = network {
        label[NETWORK_LABEL] = json!(net);
        k8s["env"] = json!([{ "name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": net }]);
        global["network"] = json!(net);
    }
    k8s["service"] = json!({ "ports": [
        { "name": "status-port", "port": 15021, "targetPort": 15021 },
        { "name": "tls", "port": 15443, "targetPort": 15443 },
        { "name": "tls-istiod", "port": 15012, "targetPort": 15012 },
        { "name": "tls-webhook", "port": 15017, "targetPort": 15017 },
    ]});
    let mut values =
        json!({ "gateways": { "istio-ingressgateway": { "injectionTemplate": "gateway" } } });
    if network.is_some() {
        values["global"] = global;
    }
    json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": { "name": "eastwest" },
        "spec": {
            "revision": "",
            "profile": "empty",
            "components": { "ingressGateways": [{
                "name": EASTWEST,
                "label": label,
                "enabled": true,
                "k8s": k8s,
            }]},
            "values": values,
        },
    })
}

/// Forward and rollback actions installing the east-west gateway on `c`.
pub fn eastwest_actions(ctx: &Ctx<'_>, c: &ClusterSpec, step: &mut Step) {
    let file = yaml_file(
        format!("eastwest-{}.yaml", c.name),
        &eastwest_operator(c.network.as_deref()),
        Vec::new(),
    );
    step.forward(exec(
        ctx,
        &c.name,
        &["install", "-y", "-f", "{file}"],
        Some(file.clone()),
    ));
    step.forward(wait(
        &c.name,
        ObjectRef::deployment(ISTIO_SYSTEM, EASTWEST),
        Condition::DeploymentAvailable,
        ROLLOUT_TIMEOUT,
    ));
    step.forward(wait(
        &c.name,
        eastwest_service(),
        Condition::LoadBalancerAddress,
        ROLLOUT_TIMEOUT,
    ));
    step.rollback(exec(
        ctx,
        &c.name,
        &["uninstall", "-y", "-f", "{file}"],
        Some(file),
    ));
    step.rollback(wait(
        &c.name,
        eastwest_service(),
        Condition::Absent,
        ROLLOUT_TIMEOUT,
    ));
}

/// Every install step, cluster by cluster: the control plane, then (where
/// needed) the east-west gateway, istiod exposed for remotes, and the
/// workloads of a mesh kept in place (the source's, an adopted one's) restarted.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    for c in ctx.clusters() {
        out.push(control_plane(ctx, c));
        if ctx.primary_has_eastwest(c) {
            out.push(eastwest_step(ctx, c));
        }
        if ctx.primary_remote() && !ctx.is_remote(c) && !ctx.remotes_of(c).is_empty() {
            out.push(expose_istiod(c));
        }
        if ctx.keeps_existing_mesh(c) && !ctx.workload_namespaces(c).is_empty() {
            out.push(restart_kept_workloads(ctx, c));
        }
    }
    out
}

/// Istio on `c`: reconfigured in place on the source and on a cluster whose
/// mesh is adopted, installed (primary or remote profile) elsewhere.
fn control_plane(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let in_place = ctx.keeps_existing_mesh(c);
    let remote = ctx.is_remote(c);
    let mut s = Step::new(
        Phase::Install,
        id(&c.name),
        control_plane_description(ctx, c),
    );
    s.needs_all(preflight::all_ids(ctx));
    if remote && let Some(p) = ctx.primary_of(c) {
        s.need(expose_istiod_id(&p.name));
    }
    if in_place {
        s.risk(Risk::SourceReconfigure);
    }
    let (iop, subs) = istio_operator(ctx, c);
    let file = yaml_file(format!("istio-{}.yaml", c.name), &iop, subs);
    s.forward.extend(install_actions(ctx, c, file.clone()));
    s.rollback.extend(undo_install_actions(ctx, c, file));
    s
}

fn control_plane_description(ctx: &Ctx<'_>, c: &ClusterSpec) -> String {
    let network = c
        .network
        .as_deref()
        .map(|n| format!(", network {n}"))
        .unwrap_or_default();
    if ctx.is_source(c) {
        format!(
            "Reconfigure the running mesh on {} in place: meshID {}, clusterName {}{}. Snapshots first: Istio keeps no installed-state since 1.21.",
            c.name, ctx.spec.mesh.id, c.name, network
        )
    } else if ctx.keeps_existing_mesh(c) {
        format!(
            "Reconfigure the mesh {} already runs in place (existingMesh: adopt): meshID {}, clusterName {}{}. Snapshots first; rollback re-installs the values it had and never uninstalls it.",
            c.name, ctx.spec.mesh.id, c.name, network
        )
    } else if ctx.is_remote(c) {
        let primary = ctx.primary_of(c).map_or("?", |p| p.name.as_str());
        format!(
            "Install {} as a remote of {}: profile remote, remotePilotAddress = {}'s east-west gateway, injection through /inject/cluster/{}.",
            c.name, primary, primary, c.name
        )
    } else {
        format!(
            "Install Istio on {}: meshID {}, clusterName {}{}.",
            c.name, ctx.spec.mesh.id, c.name, network
        )
    }
}

/// Snapshot what rollback restores, label `istio-system`, run the installer
/// with `file`, and wait until the control plane (or a remote's istiod
/// Service) is there.
fn install_actions(ctx: &Ctx<'_>, c: &ClusterSpec, file: GeneratedFile) -> Vec<Action> {
    let mut out: Vec<Action> = snapshot_objects()
        .into_iter()
        .map(|object| Action::Snapshot {
            cluster: c.name.clone(),
            object,
        })
        .collect();
    out.push(apply(
        &c.name,
        &ObjectRef::namespace(ISTIO_SYSTEM),
        istio_system_metadata(ctx, c),
        json!({}),
    ));
    out.push(exec(
        ctx,
        &c.name,
        &["install", "-y", "-f", "{file}"],
        Some(file),
    ));
    if let Some(net) = &c.network {
        // The label istiod reads the cluster's network from survived the install.
        out.push(wait(
            &c.name,
            ObjectRef::namespace(ISTIO_SYSTEM),
            Condition::Label {
                key: NETWORK_LABEL.into(),
                value: net.clone(),
            },
            ROLLOUT_TIMEOUT,
        ));
    }
    if ctx.is_remote(c) {
        // The remote profile renders a Service istiod pointing at the primary.
        out.push(wait(
            &c.name,
            ObjectRef::service(ISTIO_SYSTEM, "istiod"),
            Condition::Present,
            ROLLOUT_TIMEOUT,
        ));
    } else {
        out.push(wait(
            &c.name,
            istiod(),
            Condition::DeploymentAvailable,
            ROLLOUT_TIMEOUT,
        ));
    }
    out
}

/// `istio-system`'s metadata: the network label (istioctl does not set it,
/// FACTS 4.1) and, on a remote, the primary that controls it.
fn istio_system_metadata(ctx: &Ctx<'_>, c: &ClusterSpec) -> Value {
    let mut labels = serde_json::Map::new();
    if let Some(net) = &c.network {
        labels.insert(NETWORK_LABEL.into(), json!(net));
    }
    let mut metadata = json!({});
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    if ctx.is_remote(c)
        && let Some(p) = ctx.primary_of(c)
    {
        metadata["annotations"] = json!({ CONTROL_PLANE_CLUSTERS: p.name });
    }
    metadata
}

/// Rollback of the control plane: where a mesh ran before (the source, an
/// adopted mesh), re-install from the values it had; elsewhere remove all
/// of Istio (the engine skips that where its install never ran). Then put
/// back every snapshot and re-create the workloads' pods.
fn undo_install_actions(ctx: &Ctx<'_>, c: &ClusterSpec, file: GeneratedFile) -> Vec<Action> {
    let in_place = ctx.keeps_existing_mesh(c);
    let mut out = if in_place {
        vec![reinstall_from_snapshot(ctx, c)]
    } else {
        uninstall_everything(ctx, c, file)
    };
    for object in snapshot_objects() {
        out.push(restore(&c.name, &object));
    }
    if in_place {
        out.push(wait(
            &c.name,
            istiod(),
            Condition::DeploymentAvailable,
            ROLLOUT_TIMEOUT,
        ));
    }
    // Pods carry the cluster name and network they were injected with (or
    // were injected at all): after the restore they must be created again.
    // Where a mesh ran before they are injected as before; elsewhere, uninjected.
    for ns in ctx.workload_namespaces(c) {
        out.push(Action::RestartWorkloads {
            cluster: c.name.clone(),
            namespace: ns.clone(),
            timeout_seconds: WORKLOADS_TIMEOUT,
        });
    }
    out
}

/// The installer run with the values the cluster's mesh had before.
fn reinstall_from_snapshot(ctx: &Ctx<'_>, c: &ClusterSpec) -> Action {
    exec(
        ctx,
        &c.name,
        &["install", "-y", "-f", "{file}"],
        Some(GeneratedFile {
            name: format!("istio-{}-before.yaml", c.name),
            content: FileContent::IstioOperatorFromSnapshot {
                object: ObjectRef::config_map(ISTIO_SYSTEM, "values"),
                key: "original-values".into(),
            },
        }),
    )
}

/// The cluster had no mesh: remove all of it, Base included (`--purge`),
/// and what istiod wrote at run time (its CA secret, a root bundle in every
/// namespace), which no uninstall removes.
fn uninstall_everything(ctx: &Ctx<'_>, c: &ClusterSpec, file: GeneratedFile) -> Vec<Action> {
    vec![
        exec(
            ctx,
            &c.name,
            &["uninstall", "--purge", "-y", "-f", "{file}"],
            Some(file),
        ),
        Action::Delete {
            cluster: c.name.clone(),
            object: ObjectRef::secret(ISTIO_SYSTEM, "istio-ca-secret"),
        },
        Action::DeleteEverywhere {
            cluster: c.name.clone(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "istio-ca-root-cert".into(),
        },
    ]
}

/// The east-west gateway of a primary, waiting for its LoadBalancer address.
fn eastwest_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let mut s = Step::new(
        Phase::Install,
        eastwest_id(&c.name),
        format!(
            "East-west gateway on {} (gen-eastwest-gateway.sh{}), waiting for its LoadBalancer address.",
            c.name,
            c.network
                .as_deref()
                .map(|n| format!(" --network {n}"))
                .unwrap_or_else(|| " --single-cluster".into())
        ),
    );
    s.need(id(&c.name));
    eastwest_actions(ctx, c, &mut s);
    s
}

/// `samples/multicluster/expose-istiod.yaml` (FACTS 2.3) on a primary.
pub fn expose_istiod_objects() -> Vec<(ObjectRef, Value)> {
    let gateway = ObjectRef::namespaced(
        "networking.istio.io/v1",
        "Gateway",
        ISTIO_SYSTEM,
        "istiod-gateway",
    );
    let vs = ObjectRef::namespaced(
        "networking.istio.io/v1",
        "VirtualService",
        ISTIO_SYSTEM,
        "istiod-vs",
    );
    let server = |name: &str, number: u16| {
        json!({
            "port": { "name": name, "number": number, "protocol": "tls" },
            "tls": { "mode": "PASSTHROUGH" },
            "hosts": ["*"],
        })
    };
    let route = |port: u16, target: u16| {
        json!({
            "match": [{ "port": port, "sniHosts": ["*"] }],
            "route": [{ "destination": {
                "host": "istiod.istio-system.svc.cluster.local",
                "port": { "number": target },
            }}],
        })
    };
    vec![
        (
            gateway,
            json!({ "spec": {
                "selector": { "istio": "eastwestgateway" },
                "servers": [server("tls-istiod", 15012), server("tls-istiodwebhook", 15017)],
            }}),
        ),
        (
            vs,
            json!({ "spec": {
                "hosts": ["*"],
                "gateways": ["istiod-gateway"],
                "tls": [route(15012, 15012), route(15017, 443)],
            }}),
        ),
    ]
}

fn expose_istiod(c: &ClusterSpec) -> Step {
    let mut s = Step::new(
        Phase::Install,
        expose_istiod_id(&c.name),
        format!(
            "Expose istiod of {} through its east-west gateway (expose-istiod.yaml) for its remotes.",
            c.name
        ),
    );
    s.need(eastwest_id(&c.name));
    let objects = expose_istiod_objects();
    for (object, body) in &objects {
        s.forward(apply(&c.name, object, json!({}), body.clone()));
    }
    for (object, _) in objects.iter().rev() {
        s.rollback(restore(&c.name, object));
    }
    s
}

fn restart_kept_workloads(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let namespaces = ctx.workload_namespaces(c);
    let mut s = Step::new(
        Phase::Install,
        restart_id(&c.name),
        format!(
            "Restart injected workloads on {} namespace by namespace ({}): clusterName and network are baked in at injection (istio#54764, #35478, #46777). Rollback of install/{} restarts them again after the restore.",
            c.name,
            namespaces.join(", "),
            c.name
        ),
    );
    s.need(id(&c.name));
    s.risk(Risk::WorkloadRestart);
    s.risk(Risk::SourceReconfigure);
    for ns in namespaces {
        s.forward(Action::RestartWorkloads {
            cluster: c.name.clone(),
            namespace: ns.clone(),
            timeout_seconds: WORKLOADS_TIMEOUT,
        });
    }
    s
}
