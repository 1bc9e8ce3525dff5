//! metadata, mesh identity and installer.

use super::{Checker, formats};
use crate::spec::version::{IstioVersion, MIN_SUPPORTED};

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
    if doc.spec.installer.path.trim().is_empty() {
        c.error(
            "spec.installer.path",
            "the installer path is empty",
            Some("give the istioctl binary, e.g. `istioctl` (looked up on PATH)".into()),
        );
    }
}
