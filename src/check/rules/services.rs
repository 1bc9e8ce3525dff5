//! Services across clusters: a caller resolves a name through its own
//! cluster's DNS, so a Service it calls must exist there too (unless DNS
//! proxying is on); and istiod merges Services of one name across clusters,
//! so they must agree in ports, type and headlessness (IST0170's rule).

use super::{View, ctx, obj};
use crate::check::finding::{Finding, Severity};
use crate::check::snapshot::{ClusterSnapshot, Service};
use std::collections::BTreeMap;

fn ports(s: &Service) -> String {
    s.ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `s` has a DestinationRule for the Service: it is meant to be called there.
fn routes_to(s: &ClusterSnapshot, namespace: &str, name: &str) -> bool {
    let fqdn = format!("{name}.{namespace}.svc.cluster.local");
    let short = format!("{name}.{namespace}");
    s.destination_rules
        .iter()
        .any(|d| d.host == fqdn || d.host == short || (d.host == name && d.namespace == namespace))
}

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut by_name: BTreeMap<(&str, &str), Vec<(usize, &Service)>> = BTreeMap::new();
    for (i, (_, s)) in v.clusters.iter().enumerate() {
        for svc in &s.services {
            by_name
                .entry((&svc.namespace, &svc.name))
                .or_default()
                .push((i, svc));
        }
    }
    for ((namespace, name), found) in &by_name {
        let (first_i, first) = found[0];
        let first_name = v.clusters[first_i].0.name();
        for (i, svc) in &found[1..] {
            let c = v.clusters[*i].0;
            let object = obj("Service", namespace, name);
            let mut differs = Vec::new();
            if svc.ports != first.ports {
                differs.push(format!(
                    "ports {} here, {} in {first_name}",
                    ports(svc),
                    ports(first)
                ));
            }
            if svc.headless != first.headless {
                differs.push(format!(
                    "headless {} here, {} in {first_name}",
                    svc.headless, first.headless
                ));
            }
            if !differs.is_empty() {
                out.push(Finding::new(
                    "MC652",
                    c.name(),
                    object.clone(),
                    format!("differs from {first_name}'s: {}; istiod merges them into one service, so calls on a port one side lacks fail", differs.join("; ")),
                    format!("make the Services agree (same ports, names and protocols; both headless or neither): kubectl {} -n {namespace} edit service {name}", ctx(c)),
                ));
            } else if svc.kind != first.kind {
                out.push(
                    Finding::new(
                        "MC652",
                        c.name(),
                        object,
                        format!("type {} here, {} in {first_name}: istiod merges them into one service of one type", svc.kind, first.kind),
                        format!("give both the same spec.type: kubectl {} -n {namespace} edit service {name}", ctx(c)),
                    )
                    .with_severity(Severity::Warning),
                );
            }
        }
        for (i, (c, s)) in v.clusters.iter().enumerate() {
            if found.iter().any(|(j, _)| *j == i)
                || !s.mesh_namespaces.iter().any(|n| n == namespace)
                || s.dns_capture
            {
                continue;
            }
            let meant = routes_to(s, namespace, name);
            let f = Finding::new(
                "MC651",
                c.name(),
                obj("Service", namespace, name),
                format!(
                    "exists in {} but not here: workloads here cannot resolve {name}.{namespace}.svc.cluster.local (DNS proxying is off){}",
                    found
                        .iter()
                        .map(|(j, _)| v.clusters[*j].0.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if meant {
                        ", yet a DestinationRule here routes to it"
                    } else {
                        ""
                    }
                ),
                format!(
                    "create the Service in {} too (a selector matching no pod here is fine), or turn on DNS proxying (meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE: \"true\")",
                    c.name()
                ),
            );
            out.push(if meant {
                f.with_severity(Severity::Warning)
            } else {
                f
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn a_service_with_another_port_is_found() {
        let (e, mut s) = healthy();
        s[1].services[0].ports[0].port = 8080;
        assert_eq!(
            found(Group::Services, &e, &s),
            vec![(
                "MC652".into(),
                "c2".into(),
                "Service sample/helloworld".into()
            )]
        );
    }

    #[test]
    fn a_service_missing_where_it_is_routed_to_is_a_warning() {
        let (e, mut s) = healthy();
        s[1].services.clear();
        let f = super::check(&super::super::View::new(&e, &s));
        assert_eq!(
            (f[0].code.as_str(), f[0].cluster.as_str(), f[0].severity),
            ("MC651", "c2", crate::check::Severity::Warning)
        );
    }
}
