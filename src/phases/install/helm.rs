//! The Helm installer: `helm upgrade --install` of Istio's charts `base`,
//! `istiod` and `gateway` (the east-west gateway through `networkGateway`),
//! with the values the migration needs merged over the release's values of
//! record when the action runs; rollback with `helm rollback` to the
//! revision recorded before, or `helm uninstall` where the step installed
//! the release from nothing (the engine decides which from its journal).
//!
//! A remote (primary-remote) installs `base` and `istiod` with
//! `profile=remote` (Istio 1.24+: the `istiod-remote` chart is gone). The
//! remote profile (`manifests/helm-profiles/remote.yaml`) sets
//! `istiodRemote.enabled`, `configMap: false` and
//! `global.omitSidecarInjectorConfigMap`: no istiod Deployment, no mesh or
//! injector ConfigMap; the chart renders the injector webhook (Service
//! `istiod`, path `istiodRemote.injectionPath`) and, from
//! `global.remotePilotAddress`, a Service `istiod` whose endpoints are the
//! primary's east-west gateway. Left out of Istio's documented command on
//! purpose: `pilot.enabled=false` and `pilot.env.EXTERNAL_ISTIOD` (no
//! template of the 1.24+ chart renders anything from them on a remote),
//! `global.configCluster` (an external control plane's config cluster; a
//! primary-remote primary reads its own cluster's config, as the istioctl
//! `remote` profile does), and on `base` `global.externalIstiod` (no base
//! template reads it).

use super::{EASTWEST, NETWORK_LABEL, eastwest_service, istio_operator};
use crate::phases::{Ctx, INSTALL_TIMEOUT, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, wait};
use crate::plan::{Action, Condition, ObjectRef, Step, Substitution};
use crate::spec::{ChartSource, ClusterSpec, ISTIO_CHART_REPO};
use serde_json::{Value, json};

/// `helm upgrade --install` of `release` from Istio's chart `chart` on `c`,
/// `substitutions` filled into `values` when it runs.
fn upgrade(
    ctx: &Ctx<'_>,
    c: &ClusterSpec,
    release: &str,
    chart: &str,
    (values, substitutions): (Value, Vec<Substitution>),
) -> Action {
    let installer = &ctx.spec.installer;
    let (chart, repo) = match &installer.charts {
        Some(ChartSource::Dir(dir)) => (dir.join(chart).to_string_lossy().into_owned(), None),
        Some(ChartSource::Repo(url)) => (chart.to_string(), Some(url.clone())),
        None => (chart.to_string(), Some(ISTIO_CHART_REPO.to_string())),
    };
    Action::HelmUpgrade {
        cluster: c.name.clone(),
        program: installer.path.clone(),
        context: c.context.clone(),
        namespace: ISTIO_SYSTEM.into(),
        release: release.into(),
        chart,
        repo,
        version: ctx.spec.mesh.istio_version.clone(),
        values,
        substitutions,
        timeout_seconds: INSTALL_TIMEOUT,
    }
}

/// Undo this step's upgrade of `release` on `c`.
fn rollback(ctx: &Ctx<'_>, c: &ClusterSpec, release: &str) -> Action {
    Action::HelmRollback {
        cluster: c.name.clone(),
        program: ctx.spec.installer.path.clone(),
        context: c.context.clone(),
        namespace: ISTIO_SYSTEM.into(),
        release: release.into(),
        timeout_seconds: INSTALL_TIMEOUT,
    }
}

/// The Helm profile of a remote's `base` and `istiod` releases.
const REMOTE_PROFILE: &str = "remote";

/// The `istiod` chart's values: the IstioOperator's values, its meshConfig,
/// and the revision it runs as; on a remote, `profile: remote` with the
/// injection path and `global.remotePilotAddress`, a placeholder for the
/// primary's east-west gateway address filled in when the upgrade runs.
pub fn istiod_values(ctx: &Ctx<'_>, c: &ClusterSpec) -> (Value, Vec<Substitution>) {
    let (iop, subs) = istio_operator(ctx, c);
    let spec = &iop["spec"];
    let mut values = spec.get("values").cloned().unwrap_or_else(|| json!({}));
    if let Some(mesh_config) = spec.get("meshConfig") {
        values["meshConfig"] = mesh_config.clone();
    }
    if let Some(profile) = spec.get("profile") {
        values["profile"] = profile.clone();
    }
    if !ctx.revision().is_empty() {
        values["revision"] = json!(ctx.revision());
    }
    (values, subs)
}

/// The `base` chart's values: none on a primary (its defaults), the remote
/// profile on a remote (Istio's primary-remote install with Helm).
pub fn base_values(ctx: &Ctx<'_>, c: &ClusterSpec) -> Value {
    if ctx.is_remote(c) {
        json!({ "profile": REMOTE_PROFILE })
    } else {
        json!({})
    }
}

/// The control plane step's installer part: on a cluster without a mesh,
/// `base` then `istiod` (a remote's with `profile=remote`); where the mesh
/// is kept in place, `istiod` alone (its `base` stays as it is). Rollback
/// undoes them in reverse order.
pub(super) fn control_plane(ctx: &Ctx<'_>, c: &ClusterSpec) -> (Vec<Action>, Vec<Action>) {
    let releases = &ctx.spec.installer.releases;
    let mut forward = Vec::new();
    let mut undo = vec![rollback(ctx, c, &releases.istiod)];
    if !ctx.keeps_existing_mesh(c) {
        forward.push(upgrade(
            ctx,
            c,
            &releases.base,
            "base",
            (base_values(ctx, c), Vec::new()),
        ));
        undo.push(rollback(ctx, c, &releases.base));
    }
    forward.push(upgrade(
        ctx,
        c,
        &releases.istiod,
        "istiod",
        istiod_values(ctx, c),
    ));
    (forward, undo)
}

/// The `gateway` chart as `gen-eastwest-gateway.sh` shapes the gateway:
/// `networkGateway` (ports 15443, 15012, 15017 and the network's view) and
/// the labels peers select it by. Without a network (`--single-cluster`,
/// a primary-remote mesh on one network) the chart's `networkGateway` ports
/// are not rendered, so the same ports are given as `service.ports`: a
/// remote reaches istiod through 15012 and 15017.
pub fn eastwest_values(ctx: &Ctx<'_>, network: Option<&str>) -> Value {
    let mut labels = json!({ "istio": "eastwestgateway", "app": EASTWEST });
    let mut values = json!({});
    if let Some(net) = network {
        labels[NETWORK_LABEL] = json!(net);
        values["networkGateway"] = json!(net);
    } else {
        let port = |name: &str, number: u16| json!({ "name": name, "port": number, "targetPort": number, "protocol": "TCP" });
        values["service"] = json!({ "ports": [
            port("status-port", 15021),
            port("tls", 15443),
            port("tls-istiod", 15012),
            port("tls-webhook", 15017),
        ]});
    }
    values["labels"] = labels;
    if !ctx.revision().is_empty() {
        values["revision"] = json!(ctx.revision());
    }
    values
}

/// Forward and rollback actions installing the east-west gateway on `c`.
pub(super) fn eastwest_actions(ctx: &Ctx<'_>, c: &ClusterSpec, step: &mut Step) {
    let release = &ctx.spec.installer.releases.eastwest;
    step.forward(upgrade(
        ctx,
        c,
        release,
        "gateway",
        (eastwest_values(ctx, c.network.as_deref()), Vec::new()),
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
    step.rollback(rollback(ctx, c, release));
    step.rollback(wait(
        &c.name,
        eastwest_service(),
        Condition::Absent,
        ROLLOUT_TIMEOUT,
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::{Action, ObjectRef};
    use crate::spec::MeshMigration;

    fn example() -> MeshMigration {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/helm-revision.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        crate::spec::parse_str(&text, &path).unwrap().spec
    }

    #[test]
    fn every_upgrade_has_its_rollback_and_the_source_keeps_its_base() {
        let steps = crate::phases::steps(&example());
        let mut upgraded = Vec::new();
        for s in &steps {
            for a in &s.forward {
                if let Action::HelmUpgrade {
                    cluster,
                    release,
                    values,
                    ..
                } = a
                {
                    upgraded.push((s.id.clone(), release.clone()));
                    assert!(
                        s.rollback.iter().any(|r| matches!(r,
                            Action::HelmRollback { cluster: c, release: rl, .. }
                                if c == cluster && rl == release)),
                        "{} upgrades {release} with no rollback",
                        s.id
                    );
                    if release == "istiod" {
                        assert_eq!(values["revision"], "1-26-4");
                        assert_eq!(values["global"]["multiCluster"]["clusterName"], **cluster);
                    }
                }
            }
        }
        let has =
            |step: &str, release: &str| upgraded.iter().any(|(s, r)| s == step && r == release);
        assert!(has("install/cluster1", "istiod"));
        assert!(
            !has("install/cluster1", "istio-base"),
            "the source's base stays"
        );
        assert!(has("install/cluster2", "istio-base"));
        assert!(has("install/cluster2", "istiod"));
        assert!(has("install/cluster2/eastwest", "istio-eastwestgateway"));
        assert!(
            !steps
                .iter()
                .flat_map(|s| &s.forward)
                .any(|a| matches!(a, Action::Exec { .. }))
        );
    }

    fn spec_of(file: &str) -> MeshMigration {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        crate::spec::parse_str(&text, &path).unwrap().spec
    }

    #[test]
    fn a_remote_gets_base_and_istiod_with_the_remote_profile_and_the_primarys_gateway() {
        let steps = crate::phases::steps(&spec_of("plans/helm-primary-remote.yaml"));
        let install = steps.iter().find(|s| s.id == "install/cluster2").unwrap();
        let upgrades: Vec<_> = install
            .forward
            .iter()
            .filter_map(|a| match a {
                Action::HelmUpgrade {
                    release,
                    chart,
                    values,
                    substitutions,
                    ..
                } => Some((release.as_str(), chart.as_str(), values, substitutions)),
                _ => None,
            })
            .collect();
        let [
            (base, "base", base_values, none),
            (istiod, "istiod", values, subs),
        ] = upgrades.as_slice()
        else {
            panic!("{upgrades:?}");
        };
        assert_eq!((*base, *istiod), ("istio-base", "istiod"));
        assert_eq!(**base_values, serde_json::json!({"profile": "remote"}));
        assert!(none.is_empty());
        assert_eq!(values["profile"], "remote");
        assert_eq!(
            values["istiodRemote"]["injectionPath"],
            "/inject/cluster/cluster2/net/network2"
        );
        assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster2");
        assert_eq!(values["global"]["network"], "network2");
        assert!(
            values.get("meshConfig").is_none(),
            "no mesh ConfigMap on a remote"
        );
        let placeholder = values["global"]["remotePilotAddress"].as_str().unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].placeholder, placeholder);
        let crate::plan::RuntimeValue::LoadBalancerAddress { cluster, service } = &subs[0].value;
        assert_eq!(
            (cluster.as_str(), service),
            (
                "cluster1",
                &ObjectRef::service("istio-system", "istio-eastwestgateway")
            )
        );
        // Reading the address at run time is a need of the remote's step, on the primary.
        let upgrade = install
            .forward
            .iter()
            .find(|a| matches!(a, Action::HelmUpgrade { release, .. } if release == "istiod"))
            .unwrap();
        let clusters = ["cluster1".to_string(), "cluster2".to_string()];
        let needs = crate::plan::permissions::action_needs(upgrade, &clusters);
        assert!(
            needs.iter().any(|(c, a)| c == "cluster1"
                && a.verb == "get"
                && a.resource == "services"
                && a.namespace.as_deref() == Some("istio-system")),
            "{needs:?}"
        );
        // Rollback: istiod, then base, each back to nothing (the engine uninstalls).
        let rolled: Vec<_> = install
            .rollback
            .iter()
            .filter_map(|a| match a {
                Action::HelmRollback { release, .. } => Some(release.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(rolled, ["istiod", "istio-base"]);
        // The primary runs istiod as an external control plane for its remote.
        let primary = steps.iter().find(|s| s.id == "install/cluster1").unwrap();
        assert!(primary.forward.iter().any(|a| matches!(a,
            Action::HelmUpgrade { release, values, .. }
                if release == "istiod" && values["global"]["externalIstiod"] == true)));
    }

    #[test]
    fn a_single_network_gateway_names_the_ports_the_chart_only_renders_for_a_network() {
        let mut spec = spec_of("plans/helm-primary-remote.yaml");
        for c in &mut spec.spec.clusters {
            c.network = None;
        }
        let ctx = crate::phases::Ctx::new(&spec);
        let values = super::eastwest_values(&ctx, None);
        assert!(values.get("networkGateway").is_none());
        let ports = values["service"]["ports"].to_string();
        for port in ["15012", "15017", "15443"] {
            assert!(ports.contains(port), "{ports}");
        }
        assert!(
            super::eastwest_values(&ctx, Some("n1"))
                .get("service")
                .is_none()
        );
    }

    #[test]
    fn the_revision_names_istiod_everywhere() {
        let steps = crate::phases::steps(&example());
        let bare = [
            ObjectRef::deployment("istio-system", "istiod"),
            ObjectRef::config_map("istio-system", "istio"),
            ObjectRef::config_map("istio-system", "values"),
            ObjectRef::config_map("istio-system", "istio-sidecar-injector"),
        ];
        let mut revisioned = 0;
        for a in steps
            .iter()
            .flat_map(|s| s.forward.iter().chain(&s.rollback))
        {
            if let Some(o) = a.object() {
                assert!(!bare.contains(o), "{a} names the default revision's {o}");
                revisioned += usize::from(o.name.ends_with("-1-26-4"));
            }
        }
        assert!(revisioned > 10, "{revisioned}");
    }
}
