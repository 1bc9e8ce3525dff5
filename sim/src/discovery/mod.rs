//! /version and discovery: `/api` and `/apis` (legacy or aggregated, by
//! content negotiation, as the kube-apiserver's wrapped handler decides),
//! `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.

mod aggregated;
mod legacy;
mod negotiate;

use crate::apiservices::priority;
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, json_response};
use crate::resources::ResourceType;
use hyper::{Method, Response};
use negotiate::Negotiated;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::sync::Arc;

/// The Kubernetes version every simulated API server reports.
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
    let root = matches!(segs.as_slice(), ["api"] | ["apis"]);
    if root
        && let Negotiated::Aggregated(media) =
            negotiate::negotiate(req.header("accept").unwrap_or_default())
    {
        let doc = if segs == ["api"] {
            aggregated::core(&types())
        } else {
            aggregated::groups(&types())
        };
        return Some(aggregated::respond(
            &doc,
            media,
            req.header("if-none-match"),
        ));
    }
    let body = match segs.as_slice() {
        ["version"] => version(),
        ["api"] => legacy::core_versions(cluster.port),
        ["api", "v1"] => legacy::resource_list("", "v1", &types()),
        ["apis"] => legacy::group_list(&groups(&types())),
        ["apis", g] => {
            let all = groups(&types());
            let group = all.iter().find(|grp| grp.name == *g)?;
            legacy::group(group)
        }
        ["apis", g, v] => {
            let types = types();
            if !types.iter().any(|t| t.group == *g && t.version == *v) {
                return None;
            }
            legacy::resource_list(g, v, &types)
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

/// One named group as discovery lists it.
struct Group {
    name: String,
    /// Preferred first.
    versions: Vec<String>,
}

/// Named groups (not core) ordered as the aggregator orders them: higher
/// groupPriorityMinimum first, then by name; versions by versionPriority,
/// then Kubernetes version order.
fn groups(types: &[ResourceType]) -> Vec<Group> {
    let mut out: Vec<(i32, Group)> = Vec::new();
    let mut version_rank: Vec<(String, String, i32)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let (gp, vp) = priority(&t.group, &t.version, t.custom);
        if !version_rank
            .iter()
            .any(|(g, v, _)| *g == t.group && *v == t.version)
        {
            version_rank.push((t.group.clone(), t.version.clone(), vp));
        }
        match out.iter_mut().find(|(_, g)| g.name == t.group) {
            Some((p, g)) => {
                *p = (*p).max(gp);
                if !g.versions.contains(&t.version) {
                    g.versions.push(t.version.clone());
                }
            }
            None => out.push((
                gp,
                Group {
                    name: t.group.clone(),
                    versions: vec![t.version.clone()],
                },
            )),
        }
    }
    let rank = |g: &str, v: &str| {
        version_rank
            .iter()
            .find(|(gg, vv, _)| gg == g && vv == v)
            .map_or(0, |(_, _, p)| *p)
    };
    for (_, g) in &mut out {
        let name = g.name.clone();
        g.versions.sort_by(|a, b| {
            rank(&name, b)
                .cmp(&rank(&name, a))
                .then_with(|| version_priority(a, b))
        });
    }
    out.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then_with(|| a.name.cmp(&b.name)));
    out.into_iter().map(|(_, g)| g).collect()
}

/// The verbs a resource serves.
fn verbs(t: &ResourceType) -> &'static [&'static str] {
    if t.group == "authorization.k8s.io" {
        &["create"]
    } else {
        VERBS
    }
}

/// What a subresource answers with (group, version, kind) and its verbs, as
/// the API server registers them.
fn subresource(t: &ResourceType, sub: &str) -> ((String, String, String), &'static [&'static str]) {
    let gvk = |g: &str, v: &str, k: &str| (g.to_string(), v.to_string(), k.to_string());
    match sub {
        "scale" => (
            gvk("autoscaling", "v1", "Scale"),
            &["get", "patch", "update"],
        ),
        "token" => (
            gvk("authentication.k8s.io", "v1", "TokenRequest"),
            &["create"],
        ),
        "eviction" => (gvk("policy", "v1", "Eviction"), &["create"]),
        "binding" => (gvk("", "v1", "Binding"), &["create"]),
        "exec" => (gvk("", "v1", "PodExecOptions"), &["create", "get"]),
        "attach" => (gvk("", "v1", "PodAttachOptions"), &["create", "get"]),
        "portforward" => (gvk("", "v1", "PodPortForwardOptions"), &["create", "get"]),
        "log" => (gvk(&t.group, &t.version, &t.kind), &["get"]),
        _ => (
            gvk(&t.group, &t.version, &t.kind),
            &["get", "patch", "update"],
        ),
    }
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

    /// The aggregator's order: its own group first, built-ins by priority,
    /// CRD groups last by name; a CRD's versions in Kubernetes order.
    #[test]
    fn group_order() {
        let store = crate::store::Store::new("c1");
        let mut types = store.types();
        let base = types[0].clone();
        let crd = |g: &str, v: &str| ResourceType {
            group: g.into(),
            version: v.into(),
            custom: true,
            ..base.clone()
        };
        types.push(crd("networking.istio.io", "v1alpha3"));
        types.push(crd("networking.istio.io", "v1"));
        types.push(crd("networking.istio.io", "v1beta1"));
        types.push(crd("install.istio.io", "v1alpha1"));
        let names: Vec<String> = groups(&types).into_iter().map(|g| g.name).collect();
        assert_eq!(names[0], "apiregistration.k8s.io");
        assert_eq!(names[1], "apps");
        let batch = names.iter().position(|n| n == "batch").unwrap();
        let rbac = names
            .iter()
            .position(|n| n == "rbac.authorization.k8s.io")
            .unwrap();
        assert!(batch < rbac);
        assert_eq!(
            &names[names.len() - 2..],
            ["install.istio.io", "networking.istio.io"]
        );
        let istio = groups(&types).pop().unwrap();
        assert_eq!(istio.versions, ["v1", "v1beta1", "v1alpha3"]);
    }
}
