//! The east-west gateway: present on a multi-network mesh, with an address
//! and the ports it needs, and exactly one AUTO_PASSTHROUGH Gateway on 15443
//! selecting it.

use super::{View, ctx, obj};
use crate::check::expect::ClusterExpect;
use crate::check::finding::Finding;
use crate::check::snapshot::{ClusterSnapshot, Gateway, GatewayService};

fn selects(gateway: &Gateway, service: &GatewayService) -> bool {
    !gateway.selector.is_empty()
        && gateway
            .selector
            .iter()
            .all(|(k, v)| service.selector.get(k) == Some(v))
}

/// Whether `c` is a primary that remotes reach through its gateway.
fn leads_remotes(v: &View<'_>, c: &ClusterExpect) -> bool {
    v.expect.is_primary_remote()
        && c.is_primary()
        && v.expect
            .clusters
            .iter()
            .any(|r| !r.is_primary() && r.primary.as_deref().is_none_or(|p| p == c.name()))
}

/// The snapshot of the primary whose istiod configures remote `c` (its
/// named primary, else the first primary), when it could be read.
fn config_cluster<'a>(v: &'a View<'_>, c: &ClusterExpect) -> Option<&'a ClusterSnapshot> {
    v.clusters
        .iter()
        .find(|(p, _)| p.is_primary() && c.primary.as_deref().is_none_or(|name| name == p.name()))
        .map(|(_, s)| *s)
}

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    let multi = v.expect.is_multi_network();
    for (c, s) in &v.clusters {
        let leads = leads_remotes(v, c);
        let needs_gateway = multi || leads;
        let Some(gw) = &s.eastwest else {
            if needs_gateway {
                out.push(Finding::new(
                    "MC401",
                    c.name(),
                    obj("Service", ns, "istio-eastwestgateway"),
                    format!("no east-west gateway Service in {ns}{}", if multi { ": traffic from other networks cannot reach this cluster's workloads" } else { ": remotes cannot reach istiod" }),
                    format!("install it: samples/multicluster/gen-eastwest-gateway.sh --network <network> | istioctl {} install -y -f -", ctx(c)),
                ));
            }
            continue;
        };
        let service = obj("Service", ns, &gw.name);
        if needs_gateway && gw.addresses.is_empty() {
            out.push(Finding::new(
                "MC402",
                c.name(),
                service.clone(),
                format!("Service {} has no external address (status.loadBalancer.ingress is empty): peers have nowhere to send cross-network traffic", gw.name),
                format!("give it an address: a LoadBalancer implementation on this cluster (kubectl {} -n {ns} describe service {} shows why none is assigned), or spec.externalIPs", ctx(c), gw.name),
            ));
        }
        let mut wanted: Vec<u16> = Vec::new();
        if multi {
            wanted.push(15443);
        }
        if leads {
            wanted.extend([15012, 15017]);
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter(|p| !gw.ports.contains(p))
            .map(u16::to_string)
            .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                "MC403",
                c.name(),
                service.clone(),
                format!("ports {} missing (it has {}): 15443 carries cross-network mTLS, 15012 and 15017 let remotes reach istiod and its injector", missing.join(", "), gw.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")),
                "add the ports to the gateway's install (gen-eastwest-gateway.sh adds 15443; --expose-istiod adds 15012 and 15017) and install it again".to_string(),
            ));
        }
        // A remote's gateway is configured by its primary's istiod, from
        // the primary's Gateways (Istio's primary-remote docs expose
        // services on the primary only); its own are never read.
        let (gateways, own) = if c.is_primary() {
            (Some(&s.gateways), true)
        } else {
            (config_cluster(v, c).map(|p| &p.gateways), false)
        };
        let Some(gateways) = gateways else {
            continue;
        };
        let passthrough: Vec<&Gateway> = gateways
            .iter()
            .filter(|g| g.passthrough_15443 && selects(g, gw))
            .collect();
        if multi && passthrough.is_empty() {
            out.push(Finding::new(
                "MC404",
                c.name(),
                service.clone(),
                format!("no Gateway with an AUTO_PASSTHROUGH server on port 15443 selects the east-west gateway (its pods are {}): it accepts no cross-network traffic", gw.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
                format!("kubectl {} apply -n {ns} -f samples/multicluster/expose-services.yaml (Gateway cross-network-gateway)", ctx(c)),
            ));
        }
        // Duplicates on the primary are told there, once.
        for extra in passthrough.iter().skip(if own { 1 } else { usize::MAX }) {
            out.push(Finding::new(
                "MC405",
                c.name(),
                obj("Gateway", &extra.namespace, &extra.name),
                format!("a second AUTO_PASSTHROUGH Gateway on port 15443 selecting the east-west gateway, besides Gateway {}/{}: istiod keeps one of the conflicting servers and drops the other", passthrough[0].namespace, passthrough[0].name),
                format!("delete one of them: kubectl {} -n {} delete gateway {}", ctx(c), extra.namespace, extra.name),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn a_gateway_without_address_and_a_duplicate_passthrough_are_found() {
        let (e, mut s) = healthy();
        let ew = s[0].eastwest.as_mut().unwrap();
        ew.addresses.clear();
        ew.ports.retain(|p| *p != 15443);
        let mut dup = s[0].gateways[0].clone();
        dup.name = "zz-copy".into();
        s[0].gateways.push(dup);
        let f = found(Group::Gateway, &e, &s);
        let svc = "Service istio-system/istio-eastwestgateway".to_string();
        assert!(
            f.contains(&("MC402".into(), "c1".into(), svc.clone())),
            "{f:?}"
        );
        assert!(f.contains(&("MC403".into(), "c1".into(), svc)), "{f:?}");
        assert!(
            f.contains(&(
                "MC405".into(),
                "c1".into(),
                "Gateway istio-system/zz-copy".into()
            )),
            "{f:?}"
        );
    }

    #[test]
    fn a_remote_gateway_is_exposed_by_its_primary_gateways() {
        use crate::check::{Known, Model, Role};
        let (mut e, mut s) = healthy();
        e.model = Some(Known::said(Model::PrimaryRemote));
        e.clusters[1].role = Some(Known::said(Role::Remote));
        e.clusters[1].primary = Some("c1".into());
        // A remote holds no Gateway of its own: the primary's count.
        s[1].gateways.clear();
        let mc404 = |f: &[(String, String, String)]| -> Vec<String> {
            f.iter()
                .filter(|x| x.0 == "MC404")
                .map(|x| x.1.clone())
                .collect()
        };
        assert!(mc404(&found(Group::Gateway, &e, &s)).is_empty());
        // None on the primary either: both gateways accept nothing.
        s[0].gateways.clear();
        assert_eq!(mc404(&found(Group::Gateway, &e, &s)), ["c1", "c2"]);
    }

    #[test]
    fn a_missing_gateway_is_found() {
        let (e, mut s) = healthy();
        s[1].eastwest = None;
        assert_eq!(
            found(Group::Gateway, &e, &s),
            vec![(
                "MC401".into(),
                "c2".into(),
                "Service istio-system/istio-eastwestgateway".into()
            )]
        );
    }
}
