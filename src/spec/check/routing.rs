//! Routing: exposed hosts, DestinationRules (locality failover per Istio's
//! own validation, FACTS.md section 6), VirtualServices and ServiceEntries.

use super::{Checker, formats};
use crate::spec::mesh_migration::{
    AuthorizationPolicy, DestinationRule, LocalityLb, ObjectSpec, OutlierDetection,
};
use std::collections::HashMap;

/// failoverPriority labels that name a locality level; Istio rejects them
/// next to `failover` (pkg/config/validation: failover + failoverPriority).
const LOCALITY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let routing = &spec.spec.routing;
    let networks: std::collections::HashSet<Option<&str>> = spec
        .spec
        .clusters
        .iter()
        .map(|cl| cl.network.as_deref())
        .collect();
    if networks.len() <= 1 && !routing.expose_hosts.is_empty() {
        c.warn_at_key(
            "spec.routing.exposeHosts",
            "exposeHosts is ignored: every cluster is on one network, so no cross-network gateway is created",
            Some("remove it, or give the clusters different networks".into()),
        );
    }
    for (i, h) in routing.expose_hosts.iter().enumerate() {
        c.format(
            &format!("spec.routing.exposeHosts[{i}]"),
            h,
            "host",
            formats::host,
        );
    }
    let mut seen: HashMap<(String, &str), Vec<usize>> = HashMap::new();
    for (i, dr) in routing.destination_rules.iter().enumerate() {
        let base = format!("spec.routing.destinationRules[{i}]");
        destination_rule(c, &base, dr);
        let Some(ns) = rule_namespace(dr) else {
            continue;
        };
        let earlier = seen.entry((ns.clone(), dr.host.as_str())).or_default();
        let clash = earlier
            .iter()
            .copied()
            .find(|&j| overlap(&routing.destination_rules[j].clusters, &dr.clusters));
        earlier.push(i);
        if let Some(first) = clash {
            let line = c.line_of(&format!("spec.routing.destinationRules[{first}].host"));
            c.error(
                &format!("{base}.host"),
                format!("a second DestinationRule for `{}` in namespace `{ns}` on the same clusters", dr.host),
                Some(format!("Istio applies only one rule per host and namespace; merge it with the one on line {line} or split `clusters`")),
            );
        }
    }
    objects(
        c,
        "spec.routing.virtualServices",
        "VirtualService",
        &routing.virtual_services,
    );
    objects(
        c,
        "spec.routing.serviceEntries",
        "ServiceEntry",
        &routing.service_entries,
    );
    for (i, ap) in routing.authorization_policies.iter().enumerate() {
        authorization_policy(c, &format!("spec.routing.authorizationPolicies[{i}]"), ap);
    }
}

fn authorization_policy(c: &mut Checker, base: &str, ap: &AuthorizationPolicy) {
    c.format(
        &format!("{base}.name"),
        &ap.name,
        "name",
        formats::dns_subdomain,
    );
    c.format(
        &format!("{base}.namespace"),
        &ap.namespace,
        "namespace",
        formats::dns_label,
    );
    for (j, name) in ap.clusters.iter().enumerate() {
        c.cluster_ref(&format!("{base}.clusters[{j}]"), name);
    }
    for (key, value) in &ap.selector {
        c.format(
            &format!("{base}.selector.{key}"),
            value,
            "label value",
            formats::label_value,
        );
    }
    if ap.allow.is_empty() {
        c.error(
            &format!("{base}.allow"),
            "an ALLOW policy that allows no caller denies every request to the workloads it selects",
            Some("name the callers as `namespace/serviceaccount`".into()),
        );
    }
    for (j, caller) in ap.allow.iter().enumerate() {
        let p = format!("{base}.allow[{j}]");
        match caller.split_once('/') {
            Some((ns, sa))
                if formats::dns_label(ns).is_ok() && formats::dns_subdomain(sa).is_ok() => {}
            _ => c.error(
                &p,
                format!("`{caller}` is not a caller: expected `namespace/serviceaccount`"),
                Some("for example `sample/curl`".into()),
            ),
        }
    }
}

/// Whether two `clusters` lists share a cluster (empty means every cluster).
fn overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x))
}

/// The namespace the rule is created in: given, or the host's
/// (`name.namespace.svc.cluster.local`).
fn rule_namespace(dr: &DestinationRule) -> Option<String> {
    if let Some(ns) = &dr.namespace {
        return Some(ns.clone());
    }
    let mut labels = dr.host.split('.');
    let first = labels.next()?;
    let ns = labels.next()?;
    (first != "*" && !ns.is_empty()).then(|| ns.to_string())
}

fn destination_rule(c: &mut Checker, base: &str, dr: &DestinationRule) {
    let host_ok = c.format(&format!("{base}.host"), &dr.host, "host", formats::host);
    match &dr.namespace {
        Some(ns) => {
            c.format(
                &format!("{base}.namespace"),
                ns,
                "namespace",
                formats::dns_label,
            );
        }
        None if host_ok && rule_namespace(dr).is_none() => c.error(
            &format!("{base}.host"),
            format!(
                "cannot tell which namespace the rule for `{}` belongs in",
                dr.host
            ),
            Some(
                "write the host in full (`name.namespace.svc.cluster.local`) or set `namespace`"
                    .into(),
            ),
        ),
        None => {}
    }
    for (j, name) in dr.clusters.iter().enumerate() {
        c.cluster_ref(&format!("{base}.clusters[{j}]"), name);
    }
    if let Some(od) = &dr.outlier_detection {
        outlier_detection(c, &format!("{base}.outlierDetection"), od);
    }
    if let Some(lb) = &dr.locality_lb {
        locality_lb(c, &format!("{base}.localityLb"), dr, lb);
    }
}

/// `localityLb`: something to do, valid failover rules and priorities, the
/// outlier detection without which Istio ignores it, and localities on the
/// clusters when it fails over by region.
fn locality_lb(c: &mut Checker, lb_path: &str, dr: &DestinationRule, lb: &LocalityLb) {
    if lb.failover.is_empty() && lb.failover_priority.is_empty() {
        c.warn(
            lb_path,
            "localityLb sets neither `failover` nor `failoverPriority`",
            Some("remove it, or say how traffic should fail over".into()),
        );
        return;
    }
    failover_rules(c, lb_path, lb);
    let priority_by_locality = failover_priority(c, lb_path, lb);
    if dr.outlier_detection.is_none() {
        c.warn(
            lb_path,
            "failover without `outlierDetection` does nothing: Istio ignores it (\"outlier detection policy must be provided for failover\")",
            Some("add e.g. `outlierDetection: { consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s }`".into()),
        );
    }
    if !lb.failover.is_empty() || priority_by_locality {
        clusters_have_locality(c, lb_path);
    }
}

/// Each `failover` rule goes from one known region to another.
fn failover_rules(c: &mut Checker, lb_path: &str, lb: &LocalityLb) {
    let regions: Vec<&str> = c
        .spec
        .spec
        .clusters
        .iter()
        .filter_map(|cl| cl.locality.as_ref().map(|l| l.region.as_str()))
        .collect();
    for (j, rule) in lb.failover.iter().enumerate() {
        let p = format!("{lb_path}.failover[{j}]");
        for (field, region) in [("from", &rule.from), ("to", &rule.to)] {
            let fp = format!("{p}.{field}");
            if region.contains('/') || region.contains('*') {
                c.error(
                    &fp,
                    format!("`{region}` is not a region: failover works between regions only (no `/` or `*`)"),
                    None,
                );
            } else if c.format(&fp, region, "region", formats::label_value)
                && !regions.is_empty()
                && !regions.contains(&region.as_str())
            {
                c.warn(
                    &fp,
                    format!("no cluster is in region `{region}`"),
                    Some(format!("cluster regions: {}", regions.join(", "))),
                );
            }
        }
        if rule.from == rule.to {
            c.error(
                &format!("{p}.to"),
                format!("fails over from `{}` to itself", rule.from),
                Some("`to` must be another region".into()),
            );
        }
    }
}

/// Each `failoverPriority` term is a label selector term; a locality label
/// there cannot be mixed with `failover` rules. Whether one was found.
fn failover_priority(c: &mut Checker, lb_path: &str, lb: &LocalityLb) -> bool {
    let mut by_locality = false;
    for (j, term) in lb.failover_priority.iter().enumerate() {
        let p = format!("{lb_path}.failoverPriority[{j}]");
        if !c.format(
            &p,
            term,
            "failover priority label",
            formats::label_selector_term,
        ) {
            continue;
        }
        let key = term.split_once('=').map_or(term.as_str(), |(k, _)| k);
        if LOCALITY_LABELS.contains(&key) {
            by_locality = true;
            if !lb.failover.is_empty() {
                c.error(
                    &p,
                    format!("`{key}` in failoverPriority cannot be combined with `failover`"),
                    Some("Istio rejects this mix; use either the failover list or locality labels in failoverPriority".into()),
                );
            }
        }
    }
    by_locality
}

/// Failing over by region needs every cluster's region.
fn clusters_have_locality(c: &mut Checker, lb_path: &str) {
    let missing: Vec<&str> = c
        .spec
        .spec
        .clusters
        .iter()
        .filter(|cl| cl.locality.is_none())
        .map(|cl| cl.name.as_str())
        .collect();
    if !missing.is_empty() {
        c.warn(
            lb_path,
            format!(
                "fails over by region, but cluster(s) {} have no locality",
                missing.join(", ")
            ),
            Some("give every cluster `locality: { region: ... }` so the regions are known".into()),
        );
    }
}

fn outlier_detection(c: &mut Checker, base: &str, od: &OutlierDetection) {
    if let Some(n) = od.consecutive_errors {
        let hint = match od.consecutive5xx_errors {
            Some(m) => {
                format!("`consecutive5xxErrors: {m}` is set, so this value is dropped; remove it")
            }
            None => format!("the plan emits `consecutive5xxErrors: {n}` instead; write that"),
        };
        c.warn_at_key(
            &format!("{base}.consecutiveErrors"),
            "`consecutiveErrors` is deprecated and ignored by Istio since 1.7",
            Some(hint),
        );
    }
    for (field, value) in [
        ("interval", &od.interval),
        ("baseEjectionTime", &od.base_ejection_time),
    ] {
        let Some(v) = value else { continue };
        let p = format!("{base}.{field}");
        match formats::duration_nanos(v) {
            Err(e) => c.error(&p, format!("`{v}` {e}"), None),
            // Istio's CRD requires at least 1ms.
            Ok(ns) if ns < 1e6 => c.error(
                &p,
                format!("`{v}` is shorter than the 1ms Istio accepts"),
                None,
            ),
            Ok(_) => {}
        }
    }
    if let Some(p) = od.max_ejection_percent
        && p > 100
    {
        c.error(
            &format!("{base}.maxEjectionPercent"),
            format!("{p} is not a percentage (0..100)"),
            None,
        );
    }
}

fn objects(c: &mut Checker, base: &str, kind: &str, list: &[ObjectSpec]) {
    let mut seen: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, o) in list.iter().enumerate() {
        let p = format!("{base}[{i}]");
        let name_ok = c.format(
            &format!("{p}.name"),
            &o.name,
            "name",
            formats::dns_subdomain,
        );
        let ns_ok = c.format(
            &format!("{p}.namespace"),
            &o.namespace,
            "namespace",
            formats::dns_label,
        );
        for (j, name) in o.clusters.iter().enumerate() {
            c.cluster_ref(&format!("{p}.clusters[{j}]"), name);
        }
        if o.spec.as_object().is_none_or(|m| m.is_empty()) {
            c.error(
                &format!("{p}.spec"),
                format!("the {kind} spec is empty"),
                None,
            );
        }
        if name_ok && ns_ok {
            let earlier = seen.entry((&o.name, &o.namespace)).or_default();
            let clash = earlier
                .iter()
                .copied()
                .find(|&j| overlap(&list[j].clusters, &o.clusters));
            earlier.push(i);
            if let Some(first) = clash {
                let line = c.line_of(&format!("{base}[{first}].name"));
                c.error(
                    &format!("{p}.name"),
                    format!(
                        "a second {kind} `{}/{}` on the same clusters",
                        o.namespace, o.name
                    ),
                    Some(format!(
                        "the first is on line {line}; one would overwrite the other"
                    )),
                );
            }
        }
    }
}
