//! Phase 4: cross-network Gateway (FACTS 2.2), DestinationRules with
//! locality load balancing and outlier detection (FACTS 6),
//! VirtualServices, ServiceEntries and, if asked, mesh-wide mTLS STRICT.
//! Configuration goes to config clusters only: a remote's is its primary's.

use super::{Ctx, ISTIO_SYSTEM, discovery, install, restore};
use crate::plan::{ObjectRef, Phase, Risk, Step};
use crate::spec::{
    AuthorizationPolicy, ClusterSpec, DestinationRule, ObjectSpec, OutlierDetection,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The API version of Istio's networking objects.
pub const NETWORKING: &str = "networking.istio.io/v1";
/// The API version of Istio's security objects.
pub const SECURITY: &str = "security.istio.io/v1";

/// `routing/<cluster>`: the routing objects of one config cluster.
pub fn id(cluster: &str) -> String {
    format!("routing/{cluster}")
}

/// Config clusters named by a `clusters` list (empty: all), in spec order
/// for all, in list order otherwise.
fn targets<'a>(ctx: &Ctx<'a>, names: &[String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let mut add = |c: &'a ClusterSpec| {
        let config = ctx.config_cluster(c).name.as_str();
        if !out.contains(&config) {
            out.push(config);
        }
    };
    if names.is_empty() {
        ctx.clusters().iter().for_each(&mut add);
    } else {
        names
            .iter()
            .filter_map(|n| ctx.cluster(n))
            .for_each(&mut add);
    }
    out
}

/// The namespace of a DestinationRule: as given, else the host's second label.
fn dr_namespace(dr: &DestinationRule) -> String {
    dr.namespace.clone().unwrap_or_else(|| {
        dr.host
            .split('.')
            .nth(1)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string()
    })
}

/// `outlierDetection` as Istio reads it today: the ignored `consecutiveErrors`
/// (since 1.7) becomes `consecutive5xxErrors` unless that is given.
pub fn outlier_detection(od: &OutlierDetection) -> Value {
    let mut out = Map::new();
    if let Some(n) = od.consecutive5xx_errors.or(od.consecutive_errors) {
        out.insert("consecutive5xxErrors".into(), json!(n));
    }
    if let Some(n) = od.consecutive_gateway_errors {
        out.insert("consecutiveGatewayErrors".into(), json!(n));
    }
    if let Some(d) = &od.interval {
        out.insert("interval".into(), json!(d));
    }
    if let Some(d) = &od.base_ejection_time {
        out.insert("baseEjectionTime".into(), json!(d));
    }
    if let Some(n) = od.max_ejection_percent {
        out.insert("maxEjectionPercent".into(), json!(n));
    }
    Value::Object(out)
}

/// The `spec` of a DestinationRule: its host, locality load balancing
/// (failover priorities and rules) and outlier detection.
pub fn destination_rule_spec(dr: &DestinationRule) -> Value {
    let mut policy = Map::new();
    if let Some(lb) = &dr.locality_lb {
        let mut setting = json!({ "enabled": true });
        if !lb.failover_priority.is_empty() {
            setting["failoverPriority"] = json!(lb.failover_priority);
        }
        if !lb.failover.is_empty() {
            setting["failover"] = Value::Array(
                lb.failover
                    .iter()
                    .map(|f| json!({ "from": f.from, "to": f.to }))
                    .collect(),
            );
        }
        policy.insert(
            "loadBalancer".into(),
            json!({ "localityLbSetting": setting }),
        );
    }
    if let Some(od) = &dr.outlier_detection {
        policy.insert("outlierDetection".into(), outlier_detection(od));
    }
    let mut spec = json!({ "host": dr.host });
    if !policy.is_empty() {
        spec["trafficPolicy"] = Value::Object(policy);
    }
    spec
}

/// The cross-network Gateway (FACTS 2.2): the east-west gateway passes
/// mTLS through on 15443 for `hosts` (`*.local` when none are given).
pub fn cross_network_gateway(hosts: &[String]) -> (ObjectRef, Value) {
    let hosts: Vec<&str> = if hosts.is_empty() {
        vec!["*.local"]
    } else {
        hosts.iter().map(String::as_str).collect()
    };
    (
        ObjectRef::namespaced(NETWORKING, "Gateway", ISTIO_SYSTEM, "cross-network-gateway"),
        json!({ "spec": {
            "selector": { "istio": "eastwestgateway" },
            "servers": [{
                "port": { "number": 15443, "name": "tls", "protocol": "TLS" },
                "tls": { "mode": "AUTO_PASSTHROUGH" },
                "hosts": hosts,
            }],
        }}),
    )
}

/// One routing step per config cluster that gets objects, applying them in
/// this order: cross-network Gateway, DestinationRules, VirtualServices,
/// ServiceEntries, AuthorizationPolicies, mesh-wide PeerAuthentication.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let mut objects = Objects::new();
    add_cross_network_gateways(ctx, &mut objects);
    add_destination_rules(ctx, &mut objects);
    let routing = &ctx.spec.routing;
    add_passthrough(
        ctx,
        "VirtualService",
        &routing.virtual_services,
        &mut objects,
    );
    add_passthrough(ctx, "ServiceEntry", &routing.service_entries, &mut objects);
    add_authorization_policies(ctx, &mut objects);
    add_strict_mtls(ctx, &mut objects);

    let pairs = discovery::pairs(ctx);
    let mut out = Vec::new();
    for (cluster, list) in objects {
        let Some(c) = ctx.cluster(cluster) else {
            continue;
        };
        // What c reads, and (multi-network) the east-west gateway of each
        // remote it reads: traffic into a remote's network enters there.
        let into_c: Vec<String> = pairs
            .iter()
            .filter(|(a, _)| a.name == c.name)
            .flat_map(|(a, b)| {
                let gateway = (ctx.is_remote(b) && ctx.multi_network)
                    .then(|| discovery::eastwest_id(&b.name));
                std::iter::once(discovery::pair_id(&a.name, &b.name)).chain(gateway)
            })
            .collect();
        out.push(step(ctx, c, list, into_c));
    }
    out
}

/// Objects (and their bodies) per config cluster, in the order they are applied.
type Objects<'a> = BTreeMap<&'a str, Vec<(ObjectRef, Value)>>;

/// Multi-network: the cross-network Gateway on every primary.
fn add_cross_network_gateways<'a>(ctx: &Ctx<'a>, objects: &mut Objects<'a>) {
    if !ctx.multi_network {
        return;
    }
    for c in ctx.primaries() {
        objects
            .entry(c.name.as_str())
            .or_default()
            .push(cross_network_gateway(&ctx.spec.routing.expose_hosts));
    }
}

/// Each DestinationRule, named after its host's first label.
fn add_destination_rules<'a>(ctx: &Ctx<'a>, objects: &mut Objects<'a>) {
    let mut names_used: BTreeMap<(String, String), usize> = BTreeMap::new();
    for dr in &ctx.spec.routing.destination_rules {
        let ns = dr_namespace(dr);
        let base = dr.host.split('.').next().unwrap_or("rule").to_string();
        // Two rules for hosts with the same first label in one namespace get distinct names.
        let seen = names_used.entry((ns.clone(), base.clone())).or_default();
        *seen += 1;
        let name = if *seen == 1 {
            base
        } else {
            format!("{base}-{seen}")
        };
        let object = ObjectRef::namespaced(NETWORKING, "DestinationRule", &ns, &name);
        let body = json!({ "spec": destination_rule_spec(dr) });
        for c in targets(ctx, &dr.clusters) {
            objects
                .entry(c)
                .or_default()
                .push((object.clone(), body.clone()));
        }
    }
}

/// Objects of `kind` whose spec the spec file gives as is.
fn add_passthrough<'a>(ctx: &Ctx<'a>, kind: &str, list: &[ObjectSpec], objects: &mut Objects<'a>) {
    for o in list {
        let object = ObjectRef::namespaced(NETWORKING, kind, &o.namespace, &o.name);
        for c in targets(ctx, &o.clusters) {
            objects
                .entry(c)
                .or_default()
                .push((object.clone(), json!({ "spec": o.spec })));
        }
    }
}

/// Each AuthorizationPolicy (see [`authorization_policy_spec`]).
fn add_authorization_policies<'a>(ctx: &Ctx<'a>, objects: &mut Objects<'a>) {
    for ap in &ctx.spec.routing.authorization_policies {
        let object =
            ObjectRef::namespaced(SECURITY, "AuthorizationPolicy", &ap.namespace, &ap.name);
        let body = json!({ "spec": authorization_policy_spec(ctx, ap) });
        for c in targets(ctx, &ap.clusters) {
            objects
                .entry(c)
                .or_default()
                .push((object.clone(), body.clone()));
        }
    }
}

/// If asked: mesh-wide mTLS STRICT on every primary.
fn add_strict_mtls<'a>(ctx: &Ctx<'a>, objects: &mut Objects<'a>) {
    if !ctx.spec.routing.strict_mtls {
        return;
    }
    for c in ctx.primaries() {
        objects.entry(c.name.as_str()).or_default().push((
            ObjectRef::namespaced(SECURITY, "PeerAuthentication", ISTIO_SYSTEM, "default"),
            json!({ "spec": { "mtls": { "mode": "STRICT" } } }),
        ));
    }
}

/// An ALLOW policy whose principals name each caller in the trust domain
/// and in every alias: during a migration certificates of either may be in
/// use, and a principal is matched literally (`<trust domain>/ns/<ns>/sa/<sa>`).
pub fn authorization_policy_spec(ctx: &Ctx<'_>, ap: &AuthorizationPolicy) -> Value {
    let mesh = &ctx.spec.mesh;
    let domains = std::iter::once(&mesh.trust_domain).chain(&mesh.trust_domain_aliases);
    let domains: Vec<&String> = domains.collect();
    let principals: Vec<String> = ap
        .allow
        .iter()
        .filter_map(|caller| caller.split_once('/'))
        .flat_map(|(ns, sa)| {
            domains
                .iter()
                .map(move |td| format!("{td}/ns/{ns}/sa/{sa}"))
        })
        .collect();
    let mut spec = json!({
        "action": "ALLOW",
        "rules": [{ "from": [{ "source": { "principals": principals } }] }],
    });
    if !ap.selector.is_empty() {
        spec["selector"] = json!({ "matchLabels": ap.selector });
    }
    spec
}

/// The ids of the routing steps, without building them.
pub fn ids(ctx: &Ctx<'_>) -> Vec<String> {
    let routing = &ctx.spec.routing;
    let mut names: BTreeSet<&str> = BTreeSet::new();
    if ctx.multi_network || routing.strict_mtls {
        names.extend(ctx.primaries().map(|c| c.name.as_str()));
    }
    for names_of in routing
        .destination_rules
        .iter()
        .map(|d| &d.clusters)
        .chain(routing.virtual_services.iter().map(|o| &o.clusters))
        .chain(routing.service_entries.iter().map(|o| &o.clusters))
        .chain(routing.authorization_policies.iter().map(|a| &a.clusters))
    {
        names.extend(targets(ctx, names_of));
    }
    names.into_iter().map(id).collect()
}

fn step(
    ctx: &Ctx<'_>,
    c: &ClusterSpec,
    list: Vec<(ObjectRef, Value)>,
    discovery: Vec<String>,
) -> Step {
    let drs = list
        .iter()
        .filter(|(o, _)| o.kind == "DestinationRule")
        .count();
    let mut s = Step::new(
        Phase::Routing,
        id(&c.name),
        format!(
            "Routing on {}: {} object(s), {drs} DestinationRule(s){}.",
            c.name,
            list.len(),
            if ctx.multi_network {
                ", cross-network gateway (AUTO_PASSTHROUGH, 15443)"
            } else {
                ""
            }
        ),
    );
    s.need(install::id(&c.name));
    if ctx.primary_has_eastwest(c) {
        s.need(install::eastwest_id(&c.name));
    }
    s.needs_all(discovery);
    if list.iter().any(|(o, _)| o.kind == "PeerAuthentication") {
        s.risk(Risk::MeshWidePolicy);
    }
    // An object listed twice (same name) is restored once.
    let mut restored: HashSet<&ObjectRef> = HashSet::new();
    let mut rollback = Vec::new();
    for (object, _) in list.iter().rev() {
        if restored.insert(object) {
            rollback.push(restore(&c.name, object));
        }
    }
    s.rollback = rollback;
    for (object, body) in list {
        s.forward(super::apply(&c.name, &object, json!({}), body));
    }
    s
}
