//! Namespaces whose workloads are restarted after identity changes.

use super::{Checker, formats};
use std::collections::HashSet;

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let w = &spec.spec.workloads;
    namespaces(c, "spec.workloads.restartNamespaces", &w.restart_namespaces);
    for (cluster, list) in &w.per_cluster {
        // Same spelling as the decoder recorded it under.
        let path = format!(
            "spec.workloads.perCluster.{}",
            crate::spec::yaml::shorten(cluster)
        );
        c.cluster_key_ref(&path, cluster);
        namespaces(c, &path, list);
    }
    // Pods keep the clusterName and CA root they were injected with until
    // they restart (FACTS 4.1, 9): a drill over an unrestarted namespace fails.
    if let Some(t) = &spec.spec.failover_test {
        let ns = &t.service.namespace;
        for cluster in &spec.spec.clusters {
            let list = w
                .per_cluster
                .get(&cluster.name)
                .unwrap_or(&w.restart_namespaces);
            if !list.contains(ns) {
                c.warn(
                    "spec.failoverTest.service.namespace",
                    format!(
                        "namespace `{ns}` of the failover test is not restarted in `{}`: its pods keep the old cluster identity and the drill will fail",
                        cluster.name
                    ),
                    Some(format!("add `{ns}` to spec.workloads.restartNamespaces")),
                );
                break;
            }
        }
    }
}

fn namespaces(c: &mut Checker, base: &str, list: &[String]) {
    let mut seen = HashSet::new();
    for (i, ns) in list.iter().enumerate() {
        let p = format!("{base}[{i}]");
        if c.format(&p, ns, "namespace", formats::dns_label) && !seen.insert(ns.as_str()) {
            c.warn(&p, format!("namespace `{ns}` is listed twice"), None);
        }
    }
}
