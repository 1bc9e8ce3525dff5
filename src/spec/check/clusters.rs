//! Clusters: names, contexts, networks, the source, and the topology's roles.

use super::{Checker, formats};
use crate::spec::mesh_migration::{Role, Topology};
use std::collections::HashMap;

pub(super) fn check(c: &mut Checker) {
    let clusters = &c.spec.spec.clusters;
    if clusters.len() < 2 {
        c.error(
            "spec.clusters",
            format!(
                "a multi-cluster mesh needs at least two clusters, found {}",
                clusters.len()
            ),
            Some("list the source cluster and every cluster joining the mesh".into()),
        );
    }
    names_and_contexts(c);
    networks(c);
    source(c);
    match c.spec.spec.topology {
        Topology::MultiPrimary => multi_primary(c),
        Topology::PrimaryRemote => primary_remote(c),
    }
    localities(c);
    existing_meshes(c);
}

/// `existingMesh: adopt` keeps a cluster's own istiod: the source's mesh is
/// reconfigured anyway, and a remote gets the remote profile (no istiod).
fn existing_meshes(c: &mut Checker) {
    let remote_topology = c.spec.spec.topology == Topology::PrimaryRemote;
    let clusters = &c.spec.spec.clusters;
    let mut found = Vec::new();
    for (i, cl) in clusters.iter().enumerate() {
        if !cl.adopts_existing_mesh() {
            continue;
        }
        let path = format!("spec.clusters[{i}].existingMesh");
        if cl.source {
            found.push((
                path,
                true,
                "the source's mesh is always adopted",
                "remove it",
            ));
        } else if remote_topology && cl.role == Some(Role::Remote) {
            found.push((
                path,
                false,
                "a remote runs no istiod of its own, so there is no mesh of its to adopt",
                "make it `role: primary`, or uninstall its Istio before the migration",
            ));
        }
    }
    for (path, warning, message, hint) in found {
        if warning {
            c.warn(&path, message, Some(hint.into()));
        } else {
            c.error(&path, message, Some(hint.into()));
        }
    }
}

fn names_and_contexts(c: &mut Checker) {
    let clusters = &c.spec.spec.clusters;
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut contexts: HashMap<&str, usize> = HashMap::new();
    for (i, cl) in clusters.iter().enumerate() {
        let path = format!("spec.clusters[{i}].name");
        // The name becomes the Istio cluster ID and the suffix of the
        // `istio-remote-secret-<name>` Secret: a DNS-1123 label.
        if c.format(&path, &cl.name, "cluster name", formats::dns_label) {
            if let Some(&first) = names.get(cl.name.as_str()) {
                let line = c.line_of(&format!("spec.clusters[{first}].name"));
                c.error(
                    &path,
                    format!("cluster name `{}` is used twice", cl.name),
                    Some(format!("also spec.clusters[{first}] on line {line}; names are Istio cluster IDs and must be unique")),
                );
            } else {
                names.insert(&cl.name, i);
            }
        }
        let path = format!("spec.clusters[{i}].context");
        if cl.context.trim().is_empty() {
            c.error(&path, "the kubeconfig context is empty", None);
        } else if let Some(&first) = contexts.get(cl.context.as_str()) {
            let line = c.line_of(&format!("spec.clusters[{first}].context"));
            c.error(
                &path,
                format!("context `{}` is used by two clusters", cl.context),
                Some(format!(
                    "also spec.clusters[{first}] on line {line}; one context reaches one cluster"
                )),
            );
        } else {
            contexts.insert(&cl.context, i);
        }
        if let Some(kc) = &cl.kubeconfig
            && !kc.exists()
        {
            c.warn(
                &format!("spec.clusters[{i}].kubeconfig"),
                format!("kubeconfig `{}` does not exist here", kc.display()),
                Some("fine if the plan runs on another machine".into()),
            );
        }
    }
}

/// Networks are all given or all absent. Several clusters may share one
/// network in a multi-network mesh (Istio supports it: they reach each
/// other's pods directly, other networks through east-west gateways), but it
/// is also the classic copy-paste slip, so it is a warning that says what it
/// means rather than an error.
fn networks(c: &mut Checker) {
    let clusters = &c.spec.spec.clusters;
    let given = clusters.iter().filter(|cl| cl.network.is_some()).count();
    if given > 0 && given < clusters.len() {
        let example = clusters
            .iter()
            .find_map(|cl| cl.network.as_deref())
            .unwrap_or("network1")
            .to_string();
        for (i, cl) in clusters.iter().enumerate() {
            if cl.network.is_none() {
                c.error_at_key(
                    &format!("spec.clusters[{i}].network"),
                    format!("cluster `{}` has no network while others have one", cl.name),
                    Some(format!("give every cluster a network (the same one, e.g. `{example}`, if they share a flat network) or none")),
                );
            }
        }
    }
    let mut by_network: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, cl) in clusters.iter().enumerate() {
        if let Some(net) = &cl.network {
            let path = format!("spec.clusters[{i}].network");
            // It becomes the `topology.istio.io/network` label value.
            if c.format(&path, net, "network", formats::label_value) {
                by_network.entry(net).or_default().push(i);
            }
        }
    }
    if by_network.len() > 1 {
        for members in by_network.values().filter(|m| m.len() > 1) {
            let first = &clusters[members[0]].name;
            for &i in &members[1..] {
                let cl = &clusters[i];
                let net = cl.network.as_deref().unwrap_or_default();
                c.warn(
                    &format!("spec.clusters[{i}].network"),
                    format!("`{}` shares network `{net}` with `{first}` in a multi-network mesh", cl.name),
                    Some(format!("their pods must reach each other directly (no east-west gateway between them); give `{}` its own network if they cannot", cl.name)),
                );
            }
        }
    }
}

fn source(c: &mut Checker) {
    let clusters = &c.spec.spec.clusters;
    let sources: Vec<usize> = (0..clusters.len())
        .filter(|&i| clusters[i].source)
        .collect();
    match sources.as_slice() {
        [] => c.error(
            "spec.clusters",
            "no cluster is marked `source: true`",
            Some("mark the one cluster that runs the mesh today".into()),
        ),
        [_] => {}
        [first, rest @ ..] => {
            let name = clusters[*first].name.clone();
            for &i in rest {
                c.error(
                    &format!("spec.clusters[{i}].source"),
                    format!("more than one source cluster: `{name}` is already the source"),
                    Some("the source is the one cluster that runs the mesh today".into()),
                );
            }
        }
    }
}

fn multi_primary(c: &mut Checker) {
    for (i, cl) in c.spec.spec.clusters.iter().enumerate() {
        match cl.role {
            Some(Role::Remote) => c.error(
                &format!("spec.clusters[{i}].role"),
                "`role: remote` needs `topology: primary-remote`",
                Some("in multi-primary every cluster runs its own istiod; remove the role or change the topology".into()),
            ),
            Some(Role::Primary) => c.warn_at_key(
                &format!("spec.clusters[{i}].role"),
                "`role` is redundant in multi-primary: every cluster is a primary",
                Some("remove it".into()),
            ),
            None => {}
        }
        if cl.primary.is_some() {
            c.error(
                &format!("spec.clusters[{i}].primary"),
                "`primary` only applies to remote clusters in `topology: primary-remote`",
                Some("remove it".into()),
            );
        }
    }
}

fn primary_remote(c: &mut Checker) {
    let clusters = &c.spec.spec.clusters;
    let primaries: Vec<&str> = clusters
        .iter()
        .filter(|cl| cl.role == Some(Role::Primary))
        .map(|cl| cl.name.as_str())
        .collect();
    if primaries.is_empty() {
        c.error(
            "spec.topology",
            "primary-remote needs at least one cluster with `role: primary`",
            Some("the source cluster is usually the primary".into()),
        );
    }
    let mut remotes = 0;
    for (i, cl) in clusters.iter().enumerate() {
        let at = |f: &str| format!("spec.clusters[{i}].{f}");
        match cl.role {
            None => c.error_at_key(
                &at("role"),
                format!("cluster `{}` has no role", cl.name),
                Some("in primary-remote every cluster is `role: primary` or `role: remote`".into()),
            ),
            Some(Role::Primary) => {
                if cl.primary.is_some() {
                    c.error(
                        &at("primary"),
                        "a primary runs its own istiod and names no `primary`",
                        Some("remove it, or make this cluster `role: remote`".into()),
                    );
                }
            }
            Some(Role::Remote) => {
                remotes += 1;
                if cl.source {
                    c.error(
                        &at("role"),
                        "the source cluster runs istiod today and must be a primary",
                        Some("make it `role: primary`".into()),
                    );
                }
                match &cl.primary {
                    None => c.error_at_key(
                        &at("primary"),
                        format!("remote cluster `{}` does not name its primary", cl.name),
                        Some(match primaries.as_slice() {
                            [only] => format!("add `primary: {only}`"),
                            _ => format!("add `primary: <one of {}>`", primaries.join(", ")),
                        }),
                    ),
                    Some(p) => {
                        let path = at("primary");
                        if c.cluster_ref(&path, p) && !primaries.contains(&p.as_str()) {
                            c.error(
                                &path,
                                format!("`{p}` is not a primary; a remote is served by a primary's istiod"),
                                Some(format!("primaries: {}", primaries.join(", "))),
                            );
                        }
                    }
                }
            }
        }
    }
    if remotes == 0 && !primaries.is_empty() && primaries.len() == clusters.len() {
        c.warn(
            "spec.topology",
            "primary-remote without a remote cluster",
            Some("every cluster is a primary: that is `topology: multi-primary`".into()),
        );
    }
}

fn localities(c: &mut Checker) {
    for (i, cl) in c.spec.spec.clusters.iter().enumerate() {
        let Some(loc) = &cl.locality else { continue };
        let base = format!("spec.clusters[{i}].locality");
        // The values become `topology.kubernetes.io/*` label values.
        c.format(
            &format!("{base}.region"),
            &loc.region,
            "region",
            formats::label_value,
        );
        if let Some(zone) = &loc.zone {
            c.format(&format!("{base}.zone"), zone, "zone", formats::label_value);
        }
        if let Some(sub) = &loc.subzone {
            c.format(
                &format!("{base}.subzone"),
                sub,
                "subzone",
                formats::label_value,
            );
        }
    }
}
