//! Phase 1: Istio on every cluster with meshID, clusterName and network;
//! east-west gateways; istiod exposed for remotes; the source cluster's
//! injected workloads restarted (FACTS 4, 2.1, 2.3, 7, 9 items 7-9).
//!
//! What the steps are is shared; what runs the installer is one set of
//! builders per installer kind: [`istioctl`] (IstioOperator files) and
//! [`helm`] (`helm upgrade --install` of Istio's charts).

mod helm;
mod istioctl;

pub use istioctl::{eastwest_operator, istio_operator};

use super::{
    Ctx, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, WORKLOADS_TIMEOUT, apply, injector_config_map, istiod,
    mesh_config_map, preflight, restore, values_config_map, wait,
};
use crate::plan::{Action, Condition, ObjectRef, Phase, Risk, Step};
use crate::spec::{ClusterSpec, InstallerKind};
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
/// The names are the spec's revision's (`values-<rev>`, `istiod-<rev>`...).
pub fn snapshot_objects(ctx: &Ctx<'_>) -> Vec<ObjectRef> {
    vec![
        values_config_map(ctx),
        injector_config_map(ctx),
        mesh_config_map(ctx),
        istiod(ctx),
        ObjectRef::namespace(ISTIO_SYSTEM),
    ]
}

/// Forward and rollback actions installing the east-west gateway on `c`,
/// with the spec's installer.
pub fn eastwest_actions(ctx: &Ctx<'_>, c: &ClusterSpec, step: &mut Step) {
    match ctx.spec.installer.kind {
        InstallerKind::Istioctl => istioctl::eastwest_actions(ctx, c, step),
        InstallerKind::Helm => helm::eastwest_actions(ctx, c, step),
    }
}

/// The placeholder for a primary's east-west gateway address in a remote's IOP.
pub fn eastwest_placeholder(primary: &str) -> String {
    format!("${{eastwest-address:{primary}}}")
}

/// The east-west gateway's Service, whose LoadBalancer address peers dial.
pub fn eastwest_service() -> ObjectRef {
    ObjectRef::service(ISTIO_SYSTEM, EASTWEST)
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
    let (forward, rollback) = match ctx.spec.installer.kind {
        InstallerKind::Istioctl => istioctl::control_plane(ctx, c),
        InstallerKind::Helm => helm::control_plane(ctx, c),
    };
    s.forward.extend(install_actions(ctx, c, forward));
    s.rollback.extend(undo_install_actions(ctx, c, rollback));
    s
}

fn control_plane_description(ctx: &Ctx<'_>, c: &ClusterSpec) -> String {
    let mut text = installer_free_description(ctx, c);
    if !ctx.revision().is_empty() {
        text.push_str(&format!(
            " As revision {} (istiod-{}); revision tags are left pointing where they point.",
            ctx.revision(),
            ctx.revision()
        ));
    }
    if ctx.spec.installer.kind == InstallerKind::Helm {
        let releases = &ctx.spec.installer.releases;
        if ctx.is_remote(c) {
            text.push_str(&format!(
                " With Helm: `helm upgrade --install` of releases {} (chart base) and {} (chart istiod), both with profile=remote{}; rollback uninstalls them where migrate installed them (`helm rollback` to the revision they had otherwise).",
                releases.base,
                releases.istiod,
                remote_chart_reason(ctx)
            ));
        } else {
            text.push_str(&format!(
                " With Helm: `helm upgrade --install` of release {}, these values merged over the release's own; rollback is `helm rollback` to the revision it had (`helm uninstall` where migrate installed it).",
                releases.istiod
            ));
        }
    }
    text
}

/// Why a remote installs Istio's `istiod` chart (issue 13's 1.24 row).
fn remote_chart_reason(ctx: &Ctx<'_>) -> &'static str {
    if ctx.spec.mesh.version().remote_uses_istiod_chart_profile() {
        " (from Istio 1.24 the istiod-remote chart is gone: a remote is the istiod chart's remote profile, which renders no istiod, and it needs base)"
    } else {
        ""
    }
}

fn installer_free_description(ctx: &Ctx<'_>, c: &ClusterSpec) -> String {
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
/// (`installer`), and wait until the control plane (or a remote's istiod
/// Service) is there.
fn install_actions(ctx: &Ctx<'_>, c: &ClusterSpec, installer: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = snapshot_objects(ctx)
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
    out.extend(installer);
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
            istiod(ctx),
            Condition::DeploymentAvailable,
            ROLLOUT_TIMEOUT,
        ));
    }
    out
}

/// Rollback of the control plane: the installer's undo (`installer`), and
/// where the cluster had no mesh, what istiod wrote at run time (its CA
/// secret, a root bundle in every namespace), which no uninstall removes.
/// Then put back every snapshot and re-create the workloads' pods.
fn undo_install_actions(ctx: &Ctx<'_>, c: &ClusterSpec, installer: Vec<Action>) -> Vec<Action> {
    let in_place = ctx.keeps_existing_mesh(c);
    let mut out = installer;
    if !in_place {
        out.push(Action::Delete {
            cluster: c.name.clone(),
            object: ObjectRef::secret(ISTIO_SYSTEM, "istio-ca-secret"),
        });
        out.push(Action::DeleteEverywhere {
            cluster: c.name.clone(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "istio-ca-root-cert".into(),
        });
    }
    for object in snapshot_objects(ctx) {
        out.push(restore(&c.name, &object));
    }
    if in_place {
        out.push(wait(
            &c.name,
            istiod(ctx),
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

/// The east-west gateway of a primary, waiting for its LoadBalancer address.
fn eastwest_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let mut s = Step::new(
        Phase::Install,
        eastwest_id(&c.name),
        match ctx.spec.installer.kind {
            InstallerKind::Istioctl => format!(
                "East-west gateway on {} (gen-eastwest-gateway.sh{}), waiting for its LoadBalancer address.",
                c.name,
                c.network
                    .as_deref()
                    .map(|n| format!(" --network {n}"))
                    .unwrap_or_else(|| " --single-cluster".into())
            ),
            InstallerKind::Helm => format!(
                "East-west gateway on {} (Helm release {} of chart gateway{}), waiting for its LoadBalancer address.",
                c.name,
                ctx.spec.installer.releases.eastwest,
                c.network
                    .as_deref()
                    .map(|n| format!(", networkGateway {n}"))
                    .unwrap_or_default()
            ),
        },
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
