//! The Helm installer: `helm upgrade --install` of Istio's charts `base`,
//! `istiod` and `gateway` (the east-west gateway through `networkGateway`),
//! with the values the migration needs merged over the release's values of
//! record when the action runs; rollback with `helm rollback` to the
//! revision recorded before, or `helm uninstall` where the step installed
//! the release from nothing (the engine decides which from its journal).

use super::{EASTWEST, NETWORK_LABEL, eastwest_service, istio_operator};
use crate::phases::{Ctx, INSTALL_TIMEOUT, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, wait};
use crate::plan::{Action, Condition, ObjectRef, Step};
use crate::spec::{ChartSource, ClusterSpec, ISTIO_CHART_REPO};
use serde_json::{Value, json};

/// `helm upgrade --install` of `release` from Istio's chart `chart` on `c`.
fn upgrade(ctx: &Ctx<'_>, c: &ClusterSpec, release: &str, chart: &str, values: Value) -> Action {
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

/// The `istiod` chart's values of a primary: the IstioOperator's values,
/// its meshConfig, and the revision it runs as.
pub fn istiod_values(ctx: &Ctx<'_>, c: &ClusterSpec) -> Value {
    let (iop, _) = istio_operator(ctx, c);
    let spec = &iop["spec"];
    let mut values = spec.get("values").cloned().unwrap_or_else(|| json!({}));
    if let Some(mesh_config) = spec.get("meshConfig") {
        values["meshConfig"] = mesh_config.clone();
    }
    if !ctx.revision().is_empty() {
        values["revision"] = json!(ctx.revision());
    }
    values
}

/// The control plane step's installer part: on a cluster without a mesh,
/// `base` then `istiod`; where the mesh is kept in place, `istiod` alone
/// (its `base` stays as it is). Rollback undoes them in reverse order.
pub(super) fn control_plane(ctx: &Ctx<'_>, c: &ClusterSpec) -> (Vec<Action>, Vec<Action>) {
    let releases = &ctx.spec.installer.releases;
    let mut forward = Vec::new();
    let mut undo = vec![rollback(ctx, c, &releases.istiod)];
    if !ctx.keeps_existing_mesh(c) {
        forward.push(upgrade(ctx, c, &releases.base, "base", json!({})));
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
/// the labels peers select it by.
pub fn eastwest_values(ctx: &Ctx<'_>, network: Option<&str>) -> Value {
    let mut labels = json!({ "istio": "eastwestgateway", "app": EASTWEST });
    let mut values = json!({});
    if let Some(net) = network {
        labels[NETWORK_LABEL] = json!(net);
        values["networkGateway"] = json!(net);
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
        eastwest_values(ctx, c.network.as_deref()),
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
