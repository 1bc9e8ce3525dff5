//! Injected pods that started before the mesh changed: their sidecar still
//! carries the old clusterName, network or meshID (injection sets them once,
//! at pod creation), so only a restart fixes them. Named by namespace.

use super::{View, ctx, listed};
use crate::check::finding::Finding;
use crate::check::snapshot::Proxy;
use std::collections::BTreeMap;

/// What a sidecar's env value is read by.
type Getter = fn(&Proxy) -> Option<&str>;

/// The stale pods of one namespace.
#[derive(Default)]
struct Stale<'a> {
    pods: Vec<&'a str>,
    workloads: Vec<&'a str>,
    seen: Vec<&'a str>,
}

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (c, s) in &v.clusters {
        let wants: [(&str, Option<&str>, Getter, &str); 3] = [
            (
                "MC901",
                v.cluster_name(c, s),
                |p| p.cluster_id.as_deref(),
                "clusterName (ISTIO_META_CLUSTER_ID)",
            ),
            (
                "MC902",
                v.network(c, s),
                |p| p.network.as_deref(),
                "network (ISTIO_META_NETWORK)",
            ),
            (
                "MC903",
                v.expect.mesh_id.as_ref().map(|k| k.value.as_str()),
                |p| p.mesh_id.as_deref(),
                "meshID (ISTIO_META_MESH_ID)",
            ),
        ];
        for (code, want, get, what) in wants {
            let Some(want) = want else { continue };
            let mut stale: BTreeMap<&str, Stale<'_>> = BTreeMap::new();
            for p in &s.proxies {
                let seen = get(p).unwrap_or("");
                if seen == want || (seen.is_empty() && code != "MC901") {
                    continue;
                }
                let e = stale.entry(&p.namespace).or_default();
                e.pods.push(&p.pod);
                if let Some(w) = &p.workload
                    && !e.workloads.contains(&w.as_str())
                {
                    e.workloads.push(w);
                }
                if !e.seen.contains(&seen) {
                    e.seen.push(seen);
                }
            }
            for (
                ns,
                Stale {
                    pods,
                    workloads,
                    seen,
                },
            ) in stale
            {
                let seen: Vec<String> = seen
                    .iter()
                    .map(|s| {
                        if s.is_empty() {
                            "unset".to_string()
                        } else {
                            format!("{s:?}")
                        }
                    })
                    .collect();
                out.push(Finding::new(
                    code,
                    c.name(),
                    format!("Namespace {ns}"),
                    format!("{} injected pod(s) carry {what} {}, the cluster's is {want:?}: {}", pods.len(), seen.join(", "), listed(&pods, 5)),
                    if workloads.is_empty() {
                        format!("they have no controller: delete them (kubectl {} -n {ns} delete pod {}) and create them again from their manifests", ctx(c), pods.join(" "))
                    } else {
                        format!("kubectl {} -n {ns} rollout restart deployment {}", ctx(c), workloads.join(" "))
                    },
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
    fn pods_with_an_old_cluster_name_are_found_by_namespace() {
        let (e, mut s) = healthy();
        s[0].proxies[0].cluster_id = Some("Kubernetes".into());
        s[0].proxies[0].network = Some("".into());
        assert_eq!(
            found(Group::StalePods, &e, &s),
            vec![("MC901".into(), "c1".into(), "Namespace sample".into())]
        );
    }
}
