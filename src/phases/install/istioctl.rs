//! The istioctl installer: `istioctl install` / `uninstall` with an
//! IstioOperator file per cluster (FACTS 4), and the east-west gateway from
//! `gen-eastwest-gateway.sh`'s operator (FACTS 2.1).

use super::{EASTWEST, NETWORK_LABEL, eastwest_placeholder, eastwest_service};
use crate::phases::{Ctx, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, exec, wait, yaml_file};
use crate::plan::{
    Action, Condition, FileContent, GeneratedFile, ObjectRef, RuntimeValue, Step, Substitution,
};
use crate::spec::{ClusterSpec, RootTransition, TrustRoot};
use serde_json::{Value, json};

/// The multi-root transition needs these set before it starts (FACTS 9 item 5).
pub(super) fn multi_root(ctx: &Ctx<'_>) -> bool {
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
    let mut iop = json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": { "meshConfig": mesh_config, "values": values },
    });
    if !ctx.revision().is_empty() {
        // Reconfigured as the revision it runs (istioctl install --revision).
        iop["spec"]["revision"] = json!(ctx.revision());
    }
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
pub(super) fn eastwest_actions(ctx: &Ctx<'_>, c: &ClusterSpec, step: &mut Step) {
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

/// The installer's part of the control plane step: forward, `istioctl
/// install` with the cluster's IstioOperator; rollback, where a mesh ran
/// before (the source, an adopted mesh), re-install from the values it had,
/// elsewhere remove all of Istio (the engine skips that where its install
/// never ran).
pub(super) fn control_plane(ctx: &Ctx<'_>, c: &ClusterSpec) -> (Vec<Action>, Vec<Action>) {
    let (iop, subs) = istio_operator(ctx, c);
    let file = yaml_file(format!("istio-{}.yaml", c.name), &iop, subs);
    let forward = vec![exec(
        ctx,
        &c.name,
        &["install", "-y", "-f", "{file}"],
        Some(file.clone()),
    )];
    let rollback = if ctx.keeps_existing_mesh(c) {
        vec![reinstall_from_snapshot(ctx, c)]
    } else {
        // `--purge`: Base included.
        vec![exec(
            ctx,
            &c.name,
            &["uninstall", "--purge", "-y", "-f", "{file}"],
            Some(file),
        )]
    };
    (forward, rollback)
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
                object: super::values_config_map(ctx),
                key: "original-values".into(),
            },
        }),
    )
}
