//! The reader identity: the ServiceAccount whose token remote secrets carry,
//! the ClusterRole that lets other istiods discover this cluster, and the
//! binding between them (Istio 1.30 renders them only with enableReaderRBAC).

use super::{View, ctx, obj};
use crate::check::finding::Finding;
use crate::check::snapshot::read::READER_SA;

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if v.expect.clusters.len() < 2 {
        return out;
    }
    let ns = v.ns();
    for (c, s) in &v.clusters {
        let r = &s.reader;
        if !r.service_account {
            out.push(Finding::new(
                "MC751",
                c.name(),
                obj("ServiceAccount", ns, READER_SA),
                format!("missing: the other clusters' remote secrets for {} carry its token, which the API server now refuses", c.name()),
                format!("install the control plane with values.global.enableReaderRBAC not false, or kubectl {} -n {ns} create serviceaccount {READER_SA}, then recreate the remote secrets for {}", ctx(c), c.name()),
            ));
        }
        if r.cluster_roles.is_empty() {
            out.push(Finding::new(
                "MC752",
                c.name(),
                format!("ClusterRole istio-reader-clusterrole-{ns}"),
                "missing: other clusters' istiods may not list this cluster's Services, endpoints, pods and nodes".to_string(),
                "install the control plane with values.global.enableReaderRBAC: true (the istio-reader ClusterRole of the base/istiod charts)".to_string(),
            ));
        } else if r.service_account && r.bindings.is_empty() {
            out.push(Finding::new(
                "MC753",
                c.name(),
                format!("ClusterRoleBinding {}", r.cluster_roles[0]),
                format!("no ClusterRoleBinding gives ServiceAccount {ns}/{READER_SA} the ClusterRole {}: other istiods are refused", r.cluster_roles.join(", ")),
                format!("kubectl {} create clusterrolebinding {} --clusterrole={} --serviceaccount={ns}:{READER_SA}", ctx(c), r.cluster_roles[0], r.cluster_roles[0]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn a_missing_reader_is_found() {
        let (e, mut s) = healthy();
        s[1].reader.service_account = false;
        s[0].reader.bindings.clear();
        assert_eq!(
            found(Group::ReaderRbac, &e, &s),
            vec![
                (
                    "MC753".into(),
                    "c1".into(),
                    "ClusterRoleBinding istio-reader-clusterrole-istio-system".into()
                ),
                (
                    "MC751".into(),
                    "c2".into(),
                    "ServiceAccount istio-system/istio-reader-service-account".into()
                ),
            ]
        );
    }
}
