//! Phase 0: read-only checks, per cluster and on this machine.

use super::{Ctx, ISTIO_SYSTEM, istiod};
use crate::plan::{Action, CaMode, Check, ObjectRef, Phase, Step};
use crate::spec::{ClusterSpec, TrustRoot};

/// Version from which the token Secret flow of `create-remote-secret`
/// (explicit legacy token Secret) applies (FACTS 1.3, item 10).
pub const MIN_KUBERNETES: &str = "1.24";

/// `preflight/<cluster>`.
pub fn id(cluster: &str) -> String {
    format!("preflight/{cluster}")
}

/// The step checking this machine.
pub const LOCAL_ID: &str = "preflight/local";

/// Every preflight step id: install needs all of them.
pub fn all_ids(ctx: &Ctx<'_>) -> Vec<String> {
    let mut ids: Vec<String> = ctx.clusters().iter().map(|c| id(&c.name)).collect();
    if checks_local_installer(ctx) {
        ids.push(LOCAL_ID.into());
    }
    ids
}

/// istioctl's version is Istio's; Helm's is not (the charts' version is
/// given with each upgrade), so there is nothing to check on this machine.
fn checks_local_installer(ctx: &Ctx<'_>) -> bool {
    ctx.spec.installer.kind == crate::spec::InstallerKind::Istioctl
}

/// The local check, then one read-only step per cluster.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    if checks_local_installer(ctx) {
        out.push(local_step(ctx));
    }
    out.extend(ctx.clusters().iter().map(|c| cluster_step(ctx, c)));
    out
}

/// The installer on this machine is the Istio version the spec asks for.
fn local_step(ctx: &Ctx<'_>) -> Step {
    let mut local = Step::new(
        Phase::Preflight,
        LOCAL_ID,
        "The installer on this machine is the Istio version the spec asks for.",
    );
    local.forward(Action::Check {
        cluster: None,
        check: Check::InstallerVersion {
            program: ctx.spec.installer.path.clone(),
            expected: ctx.spec.mesh.istio_version.clone(),
        },
    });
    local
}

/// `c` is reachable and recent enough; the source (and a cluster whose mesh
/// the spec adopts) runs the mesh the spec describes, every other cluster
/// runs none; the nodes carry the locality.
fn cluster_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let source = ctx.is_source(c);
    let adopted = !source && ctx.keeps_existing_mesh(c);
    let description = if source {
        format!(
            "{} is reachable and runs the mesh today: istiod, its CA mode, the cluster name it runs with and the trust domain.",
            c.name
        )
    } else if adopted {
        format!(
            "{} is reachable and runs the mesh the spec adopts (existingMesh: adopt): istiod, its version, CA mode, cluster name and trust domain.",
            c.name
        )
    } else {
        // An istiod found there fails the step (unless the spec adopts it).
        format!("{} is reachable and runs no mesh yet.", c.name)
    };
    let mut s = Step::new(Phase::Preflight, id(&c.name), description);
    let mut checks = vec![
        Check::Reachable,
        Check::KubernetesVersion {
            at_least: MIN_KUBERNETES.into(),
        },
        // Filled in once every step is built (`super::fill_permissions`).
        Check::Permissions { needs: Vec::new() },
        // Before any other look at the mesh: what migrate cannot carry out
        // is refused with its evidence first.
        Check::MeshInventory {
            namespace: ISTIO_SYSTEM.into(),
            installer: (source || adopted).then(|| installer_name(ctx)),
            trust: trust_mode(ctx).into(),
        },
    ];
    if source {
        let meshes: Vec<String> = ctx
            .clusters()
            .iter()
            .filter(|o| ctx.is_source(o) || ctx.keeps_existing_mesh(o))
            .map(|o| o.name.clone())
            .collect();
        if meshes.len() > 1 {
            checks.push(Check::VersionSkew {
                namespace: ISTIO_SYSTEM.into(),
                clusters: meshes,
            });
        }
    }
    if source || adopted {
        checks.extend(mesh_checks(ctx, c, source));
    } else {
        checks.push(Check::NoMesh {
            istiod: istiod(ctx),
        });
    }
    if let Some(loc) = &c.locality {
        checks.push(Check::NodeLocality {
            region: loc.region.clone(),
            zone: loc.zone.clone(),
        });
    }
    for check in checks {
        s.forward(Action::Check {
            cluster: Some(c.name.clone()),
            check,
        });
    }
    s
}

/// What a running mesh the migration keeps must be: present, the spec's
/// version, a CA the root choice can work with, its cluster name and trust
/// domain.
fn mesh_checks(ctx: &Ctx<'_>, c: &ClusterSpec, source: bool) -> Vec<Check> {
    // Adopting the live root needs the source's self-signed CA's secret;
    // any other cluster gets `cacerts` from the shared root whatever it has.
    let expected = match ctx.spec.trust.root {
        TrustRoot::Adopt(_) if source => CaMode::SelfSigned,
        _ => CaMode::Any,
    };
    vec![
        Check::MeshPresent {
            istiod: istiod(ctx),
        },
        Check::IstioVersion {
            istiod: istiod(ctx),
            expected: ctx.spec.mesh.istio_version.clone(),
        },
        Check::CaMode {
            expected,
            ca_secret: ObjectRef::secret(ISTIO_SYSTEM, "istio-ca-secret"),
            cacerts: ObjectRef::secret(ISTIO_SYSTEM, "cacerts"),
        },
        Check::ClusterName {
            istiod: istiod(ctx),
            env: "CLUSTER_ID".into(),
            default: "Kubernetes".into(),
            planned: c.name.clone(),
        },
        Check::TrustDomain {
            config_map: super::mesh_config_map(ctx),
            expected: ctx.spec.mesh.trust_domain.clone(),
        },
    ]
}

/// `spec.installer.kind` as the spec spells it (`istioctl`, `helm`).
fn installer_name(ctx: &Ctx<'_>) -> String {
    serde_json::to_value(ctx.spec.installer.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `trust.root`'s mode as the spec spells it.
fn trust_mode(ctx: &Ctx<'_>) -> &'static str {
    match ctx.spec.trust.root {
        TrustRoot::Adopt(_) => "adopt",
        TrustRoot::Generate(_) => "generate",
        TrustRoot::Files(_) => "files",
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{Action, Check, Plan};

    /// A plan whose c1 is the source, c2 adopted (when asked), c3 new.
    fn plan(adopt: bool, root: &str) -> Plan {
        let c2 = if adopt { ", existingMesh: adopt" } else { "" };
        let yaml = format!(
            r#"
apiVersion: migrate.meshops.dev/v1alpha1
kind: MeshMigration
metadata: {{ name: t }}
spec:
  mesh: {{ id: mesh1, trustDomain: cluster.local, istioVersion: "1.30.3" }}
  topology: multi-primary
  installer: {{ kind: istioctl, path: istioctl }}
  clusters:
    - {{ name: c1, context: ctx1, network: network1, source: true }}
    - {{ name: c2, context: ctx2, network: network2{c2} }}
    - {{ name: c3, context: ctx3, network: network3 }}
  trust:
    root: {root}
    certDir: /certs
"#
        );
        let value: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        crate::phases::plan(&serde_json::from_value(value).unwrap()).unwrap()
    }

    fn checks<'a>(plan: &'a Plan, cluster: &str) -> Vec<&'a Check> {
        let step = plan.step(&super::id(cluster)).unwrap();
        step.forward
            .iter()
            .filter_map(|a| match a {
                Action::Check { check, .. } => Some(check),
                _ => None,
            })
            .collect()
    }

    fn inventory<'a>(checks: &[&'a Check]) -> (usize, Option<&'a str>, &'a str) {
        checks
            .iter()
            .enumerate()
            .find_map(|(i, c)| match c {
                Check::MeshInventory {
                    installer, trust, ..
                } => Some((i, installer.as_deref(), trust.as_str())),
                _ => None,
            })
            .expect("a mesh-inventory check")
    }

    #[test]
    fn every_cluster_reads_its_mesh_before_the_other_mesh_checks() {
        let p = plan(true, "{ adopt: c1 }");
        for (cluster, installer) in [
            ("c1", Some("istioctl")),
            ("c2", Some("istioctl")),
            ("c3", None),
        ] {
            let checks = checks(&p, cluster);
            let (at, found, trust) = inventory(&checks);
            assert_eq!((found, trust), (installer, "adopt"), "{cluster}");
            // Refusals with evidence come before any other look at the mesh.
            let first_mesh_check = checks
                .iter()
                .position(|c| {
                    matches!(
                        c,
                        Check::MeshPresent { .. } | Check::NoMesh { .. } | Check::CaMode { .. }
                    )
                })
                .unwrap();
            assert!(at < first_mesh_check, "{cluster}: {checks:?}");
        }
        let p = plan(false, "{ generate: { org: o } }");
        assert_eq!(inventory(&checks(&p, "c1")).2, "generate");
    }

    #[test]
    fn version_skew_is_checked_across_the_meshes_kept_only() {
        let skew = |p: &Plan| {
            checks(p, "c1").into_iter().find_map(|c| match c {
                Check::VersionSkew { clusters, .. } => Some(clusters.clone()),
                _ => None,
            })
        };
        assert_eq!(
            skew(&plan(true, "{ adopt: c1 }")),
            Some(vec!["c1".to_string(), "c2".to_string()])
        );
        // One mesh today: nothing to compare.
        assert_eq!(skew(&plan(false, "{ adopt: c1 }")), None);
    }
}
