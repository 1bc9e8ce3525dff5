//! The mesh inventory in words: what each cluster runs today (installer of
//! record, control planes with revision and version, tags, namespaces,
//! data plane, CA, multi-cluster leftovers), for `migrate plan` (read live)
//! and `migrate status` (as preflight journalled it).

use crate::cli::results::Inventories;
use crate::cluster::inventory::{MeshInventory, minor_skew};
use std::fmt::Write as _;

/// The section's title in `migrate plan`.
pub const TITLE: &str = "mesh inventory (read-only, as each cluster runs it now)";
/// The section's title in `migrate status`.
pub const STATUS_TITLE: &str = "mesh inventory (as preflight found it)";

/// One block per cluster, then the version skew if any; empty for no cluster.
pub fn text(inventories: &Inventories) -> String {
    let mut out = String::new();
    for (cluster, found) in inventories {
        match found {
            Ok(inv) => cluster_text(&mut out, cluster, inv),
            Err(why) => {
                let _ = writeln!(
                    out,
                    "  {cluster}: cannot read its mesh: {}",
                    crate::state::redact_text(why)
                );
            }
        }
    }
    let versions: Vec<(String, String)> = inventories
        .iter()
        .filter_map(|(c, found)| Some((c.clone(), found.as_ref().ok()?.version()?.to_string())))
        .collect();
    if let Some(skew) = minor_skew(&versions) {
        let _ = writeln!(out, "  version skew across clusters: {skew}");
    }
    out
}

fn cluster_text(out: &mut String, cluster: &str, inv: &MeshInventory) {
    if !inv.has_mesh() {
        let _ = writeln!(out, "  {cluster}: no mesh (no istiod in {})", inv.namespace);
    } else {
        let _ = writeln!(
            out,
            "  {cluster}: installer {} ({})",
            inv.installer.kind, inv.installer.evidence
        );
        for c in &inv.control_planes {
            let _ = writeln!(
                out,
                "    control plane {}/{}: revision {}, Istio {}",
                inv.namespace,
                c.deployment,
                c.revision,
                c.version.as_deref().unwrap_or("version unknown")
            );
        }
    }
    if !inv.tags.is_empty() {
        let tags: Vec<String> = inv
            .tags
            .iter()
            .map(|t| format!("{} -> {}", t.tag, t.revision))
            .collect();
        let _ = writeln!(out, "    revision tags: {}", tags.join(", "));
    }
    if !inv.namespaces.is_empty() {
        let uses: Vec<String> = inv
            .namespaces
            .iter()
            .map(|n| format!("{} -> {}", n.namespace, n.uses))
            .collect();
        let _ = writeln!(out, "    injected namespaces: {}", uses.join(", "));
    }
    let mode_evidence = if inv.data_plane.evidence.is_empty() {
        String::new()
    } else {
        format!(" ({})", inv.data_plane.evidence.join(", "))
    };
    let _ = writeln!(
        out,
        "    data plane: {} mode{mode_evidence}",
        inv.data_plane.mode
    );
    if inv.has_mesh() {
        let modes = match inv.ca.kind.trust_modes() {
            [] => "none".to_string(),
            modes => modes.join(", "),
        };
        let _ = writeln!(
            out,
            "    CA: {} ({}); trust modes that apply: {modes}",
            inv.ca.kind,
            inv.ca.evidence.join(", ")
        );
    }
    for leftover in &inv.multi_cluster {
        let _ = writeln!(out, "    already multi-cluster: {leftover}");
    }
    if !inv.unread.is_empty() {
        let _ = writeln!(out, "    not readable: {}", inv.unread.join(", "));
    }
}

/// The inventories as a JSON value (`{"cluster1": {...}}`; a cluster that
/// could not be read has `{"error": "..."}`).
pub fn json(inventories: &Inventories) -> serde_json::Value {
    inventories
        .iter()
        .map(|(c, found)| {
            let v = match found {
                Ok(inv) => serde_json::to_value(inv).unwrap_or_default(),
                Err(why) => serde_json::json!({ "error": crate::state::redact_text(why) }),
            };
            (c.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
