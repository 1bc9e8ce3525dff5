//! The unaggregated discovery documents: APIVersions, APIGroupList, APIGroup
//! and APIResourceList, for clients that do not ask for the aggregated one.

use super::{Group, subresource, verbs};
use crate::resources::ResourceType;
use serde_json::{Value, json};

/// `/api`: the core group's versions.
pub(super) fn core_versions(port: u16) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}],
    })
}

fn group_doc(g: &Group) -> Value {
    let vs: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{v}", g.name), "version": v}))
        .collect();
    json!({"name": g.name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or_default()})
}

/// `/apis`.
pub(super) fn group_list(groups: &[Group]) -> Value {
    let groups: Vec<Value> = groups.iter().map(group_doc).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub(super) fn group(g: &Group) -> Value {
    let mut doc = group_doc(g);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    doc
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(super) fn resource_list(group: &str, version: &str, types: &[ResourceType]) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut r = json!({
            "name": t.resource,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": verbs(t),
            "storageVersionHash": "",
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        for sub in &t.subresources {
            let ((g, v, kind), verbs) = subresource(t, sub);
            let mut r = json!({"name": format!("{}/{sub}", t.resource), "singularName": "",
                "namespaced": t.namespaced, "kind": kind, "verbs": verbs});
            // Only a kind from another group/version names it.
            if g != t.group || v != t.version {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}
