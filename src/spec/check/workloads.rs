//! Namespaces whose workloads are restarted after identity changes.

use super::{Checker, formats};
use std::collections::HashSet;

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let w = &spec.spec.workloads;
    namespaces(c, "spec.workloads.restartNamespaces", &w.restart_namespaces);
    for (cluster, list) in &w.per_cluster {
        let path = format!("spec.workloads.perCluster.{cluster}");
        c.cluster_ref(&path, cluster);
        namespaces(c, &path, list);
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
