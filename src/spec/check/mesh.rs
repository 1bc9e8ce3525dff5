//! metadata, mesh identity and installer.

use super::{Checker, formats};
use crate::spec::version::{IstioVersion, MIN_SUPPORTED};
use crate::spec::{InstallerKind, Topology};

pub(super) fn check(c: &mut Checker) {
    let doc = c.spec;
    c.format(
        "metadata.name",
        &doc.metadata.name,
        "name",
        formats::dns_subdomain,
    );
    let mesh = &doc.spec.mesh;
    // meshID is rendered into labels and proxy metadata: keep it a label value.
    c.format("spec.mesh.id", &mesh.id, "mesh id", formats::label_value);
    c.format(
        "spec.mesh.trustDomain",
        &mesh.trust_domain,
        "trust domain",
        formats::trust_domain,
    );
    for (i, alias) in mesh.trust_domain_aliases.iter().enumerate() {
        let path = format!("spec.mesh.trustDomainAliases[{i}]");
        if c.format(&path, alias, "trust domain alias", formats::trust_domain)
            && *alias == mesh.trust_domain
        {
            c.warn(
                &path,
                "the alias repeats the trust domain itself",
                Some("remove it".into()),
            );
        }
    }
    if c.format(
        "spec.mesh.istioVersion",
        &mesh.istio_version,
        "istioVersion",
        formats::istio_version,
    ) && let Err(e) = IstioVersion::parse_supported(&mesh.istio_version)
    {
        let older = IstioVersion::parse(&mesh.istio_version).is_ok_and(|v| v < MIN_SUPPORTED);
        let hint = if older {
            "upgrade the mesh into that range first, then migrate"
        } else {
            "this migrate does not know what that release changes; use a migrate that supports it"
        };
        c.error("spec.mesh.istioVersion", e.to_string(), Some(hint.into()));
    }
    if let Some(rev) = &mesh.revision {
        // Istio names objects `istiod-<rev>` and labels with it: a DNS label.
        if c.format("spec.mesh.revision", rev, "revision", formats::dns_label)
            && doc.spec.topology == Topology::PrimaryRemote
        {
            // A revisioned remote is reached through Service `istiod-<rev>`
            // and the primary exposes it with `expose-istiod-rev`; the plan
            // knows neither yet, and its wait for `istiod` would time out.
            c.error(
                "spec.mesh.revision",
                format!(
                    "primary-remote with a revisioned control plane ({rev}) is not supported yet: the remote's istiod Service is named istiod-{rev} and the primary must expose it per revision"
                ),
                Some("migrate to multi-primary, or move the mesh to the default revision first".into()),
            );
        }
    }
    let installer = &doc.spec.installer;
    if installer.path.trim().is_empty() {
        c.error(
            "spec.installer.path",
            "the installer path is empty",
            Some(format!(
                "give the {0} binary, e.g. `{0}` (looked up on PATH)",
                installer.kind.program()
            )),
        );
    }
    match installer.kind {
        InstallerKind::Helm => {
            let releases = &installer.releases;
            for (field, name) in [
                ("base", &releases.base),
                ("istiod", &releases.istiod),
                ("eastwest", &releases.eastwest),
            ] {
                c.format(
                    &format!("spec.installer.releases.{field}"),
                    name,
                    "Helm release name",
                    formats::dns_label,
                );
            }
        }
        InstallerKind::Istioctl => {
            if installer.charts.is_some() || installer.releases != Default::default() {
                c.warn(
                    "spec.installer",
                    "charts and releases are Helm's: istioctl ignores them",
                    Some("remove them, or set `kind: helm`".into()),
                );
            }
        }
    }
}
