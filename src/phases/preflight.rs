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
    ];
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
