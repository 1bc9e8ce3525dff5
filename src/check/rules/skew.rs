//! Versions: istiods of one mesh within one minor version of each other,
//! and the version the spec expects.

use super::{View, obj};
use crate::check::finding::Finding;
use crate::cluster::inventory::revisions::minor;

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    let versions: Vec<(&str, &str, String, (u32, u32))> = v
        .clusters
        .iter()
        .filter_map(|(c, s)| {
            let i = s.istiods.first()?;
            let version = i.version.as_deref()?;
            Some((c.name(), version, i.deployment.clone(), minor(version)?))
        })
        .collect();
    let Some(lowest) = versions.iter().map(|x| x.3).min() else {
        return out;
    };
    let oldest = versions.iter().find(|x| x.3 == lowest).map(|x| (x.0, x.1));
    for (cluster, version, deployment, m) in &versions {
        let gap = if m.0 == lowest.0 {
            m.1 - lowest.1
        } else {
            u32::MAX
        };
        if gap == 0 {
            continue;
        }
        let (old_cluster, old_version) = oldest.unwrap_or(("?", "?"));
        let code = if gap > 1 { "MC801" } else { "MC802" };
        out.push(Finding::new(
            code,
            *cluster,
            obj("Deployment", ns, deployment),
            format!("runs Istio {version}, {old_cluster} runs {old_version}: {}", if gap > 1 { "more than one minor version apart, which Istio does not support across one mesh" } else { "one minor version apart, supported while upgrading" }),
            format!("upgrade {old_cluster} toward {version} one minor version at a time (canary revisions), or keep the clusters on one minor version"),
        ));
    }
    if let Some(want) = &v.expect.istio_version {
        for (cluster, version, deployment, _) in &versions {
            if version != want {
                out.push(Finding::new(
                    "MC803",
                    *cluster,
                    obj("Deployment", ns, deployment),
                    format!("runs Istio {version}, the spec says {want}"),
                    format!("upgrade to {want}, or set spec.mesh.istioVersion to what runs"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn two_minor_versions_apart_is_found() {
        let (mut e, mut s) = healthy();
        e.istio_version = None;
        s[1].istiods[0].version = Some("1.28.1".into());
        assert_eq!(
            found(Group::Skew, &e, &s),
            vec![(
                "MC801".into(),
                "c1".into(),
                "Deployment istio-system/istiod".into()
            )]
        );
    }
}
