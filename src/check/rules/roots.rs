//! Roots: every cluster serves a root the others share, and serves the root
//! its `cacerts` holds (istiod restarted after `cacerts` changed).

use super::{View, ctx, listed, obj};
use crate::check::finding::Finding;

const ROOT_CM: &str = "istio-ca-root-cert";
const CACERTS: &str = "cacerts";
const CACERTS_KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    // Pairs that share no served root, told on the later cluster.
    for (i, (ca, sa)) in v.clusters.iter().enumerate() {
        let Some(roots_a) = sa.served_roots.as_ref().filter(|r| !r.is_empty()) else {
            continue;
        };
        for (cb, sb) in &v.clusters[..i] {
            let Some(roots_b) = sb.served_roots.as_ref().filter(|r| !r.is_empty()) else {
                continue;
            };
            if roots_a
                .iter()
                .any(|r| roots_b.iter().any(|b| b.fingerprint == r.fingerprint))
            {
                continue;
            }
            out.push(Finding::new(
                "MC101",
                ca.name(),
                obj("ConfigMap", ns, ROOT_CM),
                format!(
                    "{} serves root {} but {} serves root {}: they share none, so mTLS between their workloads fails",
                    ca.name(),
                    listed(roots_a, 3),
                    cb.name(),
                    listed(roots_b, 3)
                ),
                format!(
                    "give every cluster a cacerts Secret in {ns} whose root-cert.pem is one shared root (migrate apply's trust phase, or Istio's plug-in CA task), then restart istiod: kubectl {} -n {ns} rollout restart deployment/istiod",
                    ctx(ca)
                ),
            ));
        }
    }
    for (c, s) in &v.clusters {
        let Some(cacerts) = &s.cacerts else {
            if s.runs_istiod() && v.clusters.len() > 1 {
                out.push(Finding::new(
                    "MC105",
                    c.name(),
                    obj("Secret", ns, CACERTS),
                    format!("no Secret {ns}/cacerts: istiod on {} signs with its own self-signed root ({})", c.name(), s.served_roots.as_deref().map(|r| listed(r, 2)).unwrap_or_else(|| "unknown".into())),
                    format!("plug in an intermediate of a root shared by all clusters as {ns}/cacerts (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem), then restart istiod"),
                ));
            }
            continue;
        };
        // cert-manager's istio-csr and similar use tls.* keys; their shape is theirs.
        if cacerts.keys.iter().any(|k| k.starts_with("tls.")) {
            continue;
        }
        let missing: Vec<&str> = CACERTS_KEYS
            .into_iter()
            .filter(|k| !cacerts.keys.iter().any(|have| have == k))
            .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                "MC103",
                c.name(),
                obj("Secret", ns, CACERTS),
                format!("cacerts lacks {} (has {}): istiod falls back to its self-signed root", missing.join(", "), listed(&cacerts.keys, 6)),
                format!("recreate it with all four files: kubectl {} -n {ns} create secret generic cacerts --from-file=ca-cert.pem --from-file=ca-key.pem --from-file=root-cert.pem --from-file=cert-chain.pem", ctx(c)),
            ));
        }
        if let (Some(last), false) = (cacerts.chain.last(), cacerts.root.is_empty())
            && !cacerts
                .root
                .iter()
                .any(|r| r.fingerprint == last.fingerprint)
        {
            out.push(Finding::new(
                "MC104",
                c.name(),
                obj("Secret", ns, CACERTS),
                format!("cert-chain.pem ends in {last}, which is not in root-cert.pem ({}): peers may not build a chain to the root", listed(&cacerts.root, 3)),
                "make cert-chain.pem the intermediate followed by the root: cat ca-cert.pem root-cert.pem > cert-chain.pem, and recreate cacerts".to_string(),
            ));
        }
        if s.runs_istiod()
            && let Some(served) = &s.served_roots
        {
            let unserved: Vec<_> = cacerts
                .root
                .iter()
                .filter(|r| !served.iter().any(|x| x.fingerprint == r.fingerprint))
                .collect();
            if !unserved.is_empty() {
                out.push(Finding::new(
                    "MC102",
                    c.name(),
                    obj("ConfigMap", ns, ROOT_CM),
                    format!("cacerts' root-cert.pem holds {} but istiod serves {}: istiod has not loaded cacerts", listed(&unserved, 3), listed(served, 3)),
                    format!("restart istiod so it reads cacerts: kubectl {} -n {ns} rollout restart deployment/{}", ctx(c), s.istiods.first().map_or("istiod", |i| i.deployment.as_str())),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy, other_root};
    use crate::check::Group;

    #[test]
    fn clusters_that_never_shared_a_root_are_found() {
        let (e, mut s) = healthy();
        s[1].served_roots = Some(vec![other_root()]);
        let f = found(Group::Roots, &e, &s);
        assert!(
            f.contains(&(
                "MC101".into(),
                "c2".into(),
                "ConfigMap istio-system/istio-ca-root-cert".into()
            )),
            "{f:?}"
        );
        // c2's cacerts still holds the shared root: istiod did not load it.
        assert!(f.iter().any(|x| x.0 == "MC102" && x.1 == "c2"), "{f:?}");
    }

    #[test]
    fn incomplete_cacerts_are_found() {
        let (e, mut s) = healthy();
        if let Some(c) = s[0].cacerts.as_mut() {
            c.keys.retain(|k| k != "cert-chain.pem");
        }
        let f = found(Group::Roots, &e, &s);
        assert_eq!(
            f,
            vec![(
                "MC103".into(),
                "c1".into(),
                "Secret istio-system/cacerts".into()
            )]
        );
    }
}
