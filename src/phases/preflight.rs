//! Phase 0: read-only checks, per cluster and on this machine.

use super::{Ctx, ISTIO_SYSTEM, istiod};
use crate::plan::{Action, CaMode, Check, ObjectRef, Phase, Step};
use crate::spec::TrustRoot;

/// Version from which the token Secret flow of `create-remote-secret`
/// (explicit legacy token Secret) applies (FACTS 1.3, item 10).
pub const MIN_KUBERNETES: &str = "1.24";

pub fn id(cluster: &str) -> String {
    format!("preflight/{cluster}")
}

pub const LOCAL_ID: &str = "preflight/local";

/// Every preflight step id: install needs all of them.
pub fn all_ids(ctx: &Ctx<'_>) -> Vec<String> {
    let mut ids: Vec<String> = ctx.clusters().iter().map(|c| id(&c.name)).collect();
    ids.push(LOCAL_ID.into());
    ids
}

pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let mut out = Vec::new();
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
    out.push(local);

    for c in ctx.clusters() {
        let source = ctx.is_source(c);
        let description = if source {
            format!(
                "{} is reachable and runs the mesh today: istiod, its CA mode, the cluster name it runs with and the trust domain.",
                c.name
            )
        } else {
            format!("{} is reachable and runs no mesh yet.", c.name)
        };
        let mut s = Step::new(Phase::Preflight, id(&c.name), description);
        let check = |check| Action::Check {
            cluster: Some(c.name.clone()),
            check,
        };
        s.forward(check(Check::Reachable));
        s.forward(check(Check::KubernetesVersion {
            at_least: MIN_KUBERNETES.into(),
        }));
        if source {
            s.forward(check(Check::MeshPresent { istiod: istiod() }));
            s.forward(check(Check::IstioVersion {
                istiod: istiod(),
                expected: ctx.spec.mesh.istio_version.clone(),
            }));
            // Adopting the live root needs the self-signed CA's secret.
            let expected = match ctx.spec.trust.root {
                TrustRoot::Adopt(_) => CaMode::SelfSigned,
                _ => CaMode::Any,
            };
            s.forward(check(Check::CaMode {
                expected,
                ca_secret: ObjectRef::secret(ISTIO_SYSTEM, "istio-ca-secret"),
                cacerts: ObjectRef::secret(ISTIO_SYSTEM, "cacerts"),
            }));
            s.forward(check(Check::ClusterName {
                istiod: istiod(),
                env: "CLUSTER_ID".into(),
                default: "Kubernetes".into(),
                planned: c.name.clone(),
            }));
            s.forward(check(Check::TrustDomain {
                config_map: ObjectRef::config_map(ISTIO_SYSTEM, "istio"),
                expected: ctx.spec.mesh.trust_domain.clone(),
            }));
        } else {
            s.forward(check(Check::NoMesh { istiod: istiod() }));
        }
        if let Some(loc) = &c.locality {
            s.forward(check(Check::NodeLocality {
                region: loc.region.clone(),
                zone: loc.zone.clone(),
            }));
        }
        out.push(s);
    }
    out
}
