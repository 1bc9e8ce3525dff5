//! /version and the legacy (unaggregated) discovery documents: /api,
//! `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`.

use crate::cluster::ClusterInner;
use crate::http::{Body, Req, json_response};
use crate::resources::ResourceType;
use hyper::{Method, Response};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::sync::Arc;

pub const GIT_VERSION: &str = "v1.32.3";

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Answers discovery paths; None for anything else.
pub(crate) fn serve(cluster: &Arc<ClusterInner>, req: &Req) -> Option<Response<Body>> {
    if req.method != Method::GET {
        return None;
    }
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let types = || cluster.store.types();
    let body = match segs.as_slice() {
        ["version"] => version(),
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", cluster.port)}],
        }),
        ["api", "v1"] => resource_list("", "v1", &types()),
        ["apis"] => {
            let groups: Vec<Value> = groups(&types())
                .iter()
                .map(|(g, vs)| group_doc(g, vs))
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        ["apis", g] => {
            let all = groups(&types());
            let (name, versions) = all.iter().find(|(name, _)| name == g)?;
            let mut doc = group_doc(name, versions);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        ["apis", g, v] => {
            let types = types();
            if !types.iter().any(|t| t.group == *g && t.version == *v) {
                return None;
            }
            resource_list(g, v, &types)
        }
        _ => return None,
    };
    Some(json_response(200, &body))
}

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "32cc146f75aad04beaaa245a7157eb35063a9f99",
        "gitTreeState": "clean",
        "buildDate": "2025-03-11T19:52:21Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Named groups (not core) with their versions, preferred first.
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone());
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    for (_, vs) in &mut out {
        vs.sort_by(|a, b| version_priority(a, b));
    }
    out
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or_default()})
}

fn resource_list(group: &str, version: &str, types: &[ResourceType]) -> Value {
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
            "verbs": if t.group == "authorization.k8s.io" { &["create"][..] } else { VERBS },
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
            resources.push(match *sub {
                "scale" => json!({"name": format!("{}/scale", t.resource), "singularName": "", "namespaced": t.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}),
                "token" => json!({"name": format!("{}/token", t.resource), "singularName": "", "namespaced": t.namespaced,
                    "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}),
                "log" => json!({"name": format!("{}/log", t.resource), "singularName": "", "namespaced": t.namespaced,
                    "kind": t.kind, "verbs": ["get"]}),
                _ => json!({"name": format!("{}/{sub}", t.resource), "singularName": "", "namespaced": t.namespaced,
                    "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            });
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers
/// first, non-conforming names last alphabetically.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return None;
        };
        Some((level, major, n.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        let mut v = vec!["v1alpha3", "v1beta1", "v1", "v2beta2", "foo", "v2"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, vec!["v2", "v1", "v2beta2", "v1beta1", "v1alpha3", "foo"]);
    }
}
