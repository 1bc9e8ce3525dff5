//! East-west gateway addresses that are DNS names, not IPs: a LoadBalancer
//! Service whose `status.loadBalancer.ingress[]` carries a `hostname` and no
//! `ip`, as AWS load balancers (EKS) do. What Istio makes of one depends on
//! what the address is for:
//!
//! - **istiod exposed to a remote** (primary-remote): the remote's install
//!   sets `global.remotePilotAddress` to the primary's east-west address.
//!   Istio's chart makes the remote's `istiod` Service `type: ExternalName`
//!   for a hostname (`remote-istiod-service.yaml`; an Endpoints/EndpointSlice
//!   for an IP), and the Kubernetes API server does not call an admission
//!   webhook through an ExternalName Service ("unsupported service type
//!   ExternalName"): sidecar injection in the remote fails, and with the
//!   webhook's `failurePolicy: Fail` so does creating pods in injected
//!   namespaces. Sources: istio.io, "Install Primary-Remote" (its warning
//!   that the instructions do not suit an AWS EKS primary); istio/istio#45014
//!   and #37331. Not supported: the plan refuses when the gateway already
//!   has a hostname, and warns when the cluster's other load balancers do.
//! - **cross-network traffic** (multi-network): supported since Istio 1.13.
//!   istiod resolves the hostname itself and uses every IP as the network's
//!   gateway (`RESOLVE_HOSTNAME_GATEWAYS`, on by default); istiod's pods
//!   must be able to resolve that name. Sources: Istio 1.13 change notes,
//!   istio/istio#29359. A note, not a warning.
//!
//! Pure: `plan` (before the run) and the engine (before a step that fills
//! `remotePilotAddress`) read the Services; this judges them against the plan.

use super::{Action, Condition, FileContent, ObjectRef, Plan, RuntimeValue, Step};
use serde::Serialize;
use std::collections::BTreeMap;

/// A LoadBalancer Service whose address the plan waits for (an east-west
/// gateway), and the remotes whose `remotePilotAddress` it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayUse {
    /// The cluster the Service is in.
    pub cluster: String,
    /// The Service.
    pub service: ObjectRef,
    /// Each remote that reaches its istiod through it, with the step that installs it.
    pub remote_pilot_for: Vec<(String, String)>,
}

/// What the command line saw in one cluster before the plan runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenAddresses {
    /// Each LoadBalancer Service that exists, with its `status.loadBalancer.ingress[]`.
    pub load_balancers: BTreeMap<ObjectRef, Vec<Ingress>>,
}

/// One `status.loadBalancer.ingress[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingress {
    /// Its `ip`.
    pub ip: Option<String>,
    /// Its `hostname`.
    pub hostname: Option<String>,
}

/// How much a hostname address matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weight {
    /// Supported; said so the user knows what istiod does with it.
    Note,
    /// Likely to break the plan: seen on another load balancer of the cluster.
    Warning,
    /// Breaks the plan: the gateway itself has a hostname and no IP.
    Refuse,
}

/// One finding about a hostname address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostnameFinding {
    /// How much it matters.
    pub weight: Weight,
    /// The cluster of the gateway.
    pub cluster: String,
    /// The gateway Service.
    pub service: ObjectRef,
    /// What was seen, what follows, and the source that says so.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// Where Istio says a hostname address breaks a remote's injection.
pub const PRIMARY_REMOTE_SOURCE: &str = "istio.io \"Install Primary-Remote\" (not suitable for an AWS EKS primary: the remote's istiod Service becomes ExternalName); istio/istio#45014";
/// Where Istio says hostname gateways work across networks.
pub const MULTI_NETWORK_SOURCE: &str = "Istio 1.13 change notes (hostname multi-network gateways, RESOLVE_HOSTNAME_GATEWAYS); istio/istio#29359";

/// Every east-west gateway of the plan: each Service a step waits on for a
/// load-balancer address, with the remotes whose `remotePilotAddress` it is.
pub fn gateway_uses(plan: &Plan) -> Vec<GatewayUse> {
    let mut uses: Vec<GatewayUse> = Vec::new();
    for step in &plan.steps {
        add_step(&mut uses, step);
    }
    uses
}

/// The east-west gateways whose address `step` puts into a remote's
/// `remotePilotAddress` (what `apply` judges before the step runs).
pub fn remote_pilot_uses(step: &Step) -> Vec<GatewayUse> {
    let mut uses = Vec::new();
    add_step(&mut uses, step);
    uses.retain(|u| !u.remote_pilot_for.is_empty());
    uses
}

fn add_step(uses: &mut Vec<GatewayUse>, step: &Step) {
    for action in &step.forward {
        match action {
            Action::Wait {
                cluster,
                object,
                condition: Condition::LoadBalancerAddress,
                ..
            } => {
                entry(uses, cluster, object);
            }
            _ => {
                for (remote, placeholder_cluster, service) in remote_pilot_addresses(action) {
                    let i = entry(uses, &placeholder_cluster, &service);
                    let pair = (remote, step.id.clone());
                    if !uses[i].remote_pilot_for.contains(&pair) {
                        uses[i].remote_pilot_for.push(pair);
                    }
                }
            }
        }
    }
}

/// A Service's `status.loadBalancer.ingress[]` (empty strings count as absent).
pub fn ingress_of(service: &serde_json::Value) -> Vec<Ingress> {
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    service
        .pointer("/status/loadBalancer/ingress")
        .and_then(|i| i.as_array())
        .into_iter()
        .flatten()
        .map(|i| Ingress {
            ip: text(i, "ip"),
            hostname: text(i, "hostname"),
        })
        .collect()
}

/// The index of `service` of `cluster` in `uses`, added if new.
fn entry(uses: &mut Vec<GatewayUse>, cluster: &str, service: &ObjectRef) -> usize {
    if let Some(i) = uses
        .iter()
        .position(|u| u.cluster == cluster && u.service == *service)
    {
        return i;
    }
    uses.push(GatewayUse {
        cluster: cluster.to_string(),
        service: service.clone(),
        remote_pilot_for: Vec::new(),
    });
    uses.len() - 1
}

/// The `remotePilotAddress` substitutions of an install action: (the
/// remote installed, the cluster of the Service, the Service).
fn remote_pilot_addresses(action: &Action) -> Vec<(String, String, ObjectRef)> {
    let (cluster, placeholders): (&str, Vec<&super::Substitution>) = match action {
        Action::HelmUpgrade {
            cluster,
            values,
            substitutions,
            ..
        } => {
            let address = values
                .pointer("/global/remotePilotAddress")
                .and_then(|v| v.as_str());
            (
                cluster,
                substitutions
                    .iter()
                    .filter(|s| address == Some(s.placeholder.as_str()))
                    .collect(),
            )
        }
        Action::Exec {
            cluster,
            file:
                Some(super::GeneratedFile {
                    content:
                        FileContent::Inline {
                            text,
                            substitutions,
                        },
                    ..
                }),
            ..
        } => (
            cluster,
            substitutions
                .iter()
                .filter(|s| {
                    text.lines()
                        .any(|l| l.contains("remotePilotAddress") && l.contains(&s.placeholder))
                })
                .collect(),
        ),
        _ => return Vec::new(),
    };
    placeholders
        .into_iter()
        .map(|s| {
            let RuntimeValue::LoadBalancerAddress {
                cluster: at,
                service,
            } = &s.value;
            (cluster.to_string(), at.clone(), service.clone())
        })
        .collect()
}

/// The hostname-only addresses of a Service's `ingress[]` (none when it has an IP).
fn hostnames_only(ingress: &[Ingress]) -> Option<&str> {
    if ingress.iter().any(|i| i.ip.is_some()) {
        return None;
    }
    ingress.iter().find_map(|i| i.hostname.as_deref())
}

/// Judges the plan's gateways against what was seen per cluster.
pub fn judge(uses: &[GatewayUse], seen: &BTreeMap<String, SeenAddresses>) -> Vec<HostnameFinding> {
    let mut out = Vec::new();
    for u in uses {
        let Some(s) = seen.get(&u.cluster) else {
            continue;
        };
        let own = s
            .load_balancers
            .get(&u.service)
            .and_then(|i| hostnames_only(i));
        // Where the gateway has no address yet, another load balancer of the
        // cluster that got a hostname says how this one will be addressed.
        let other = s
            .load_balancers
            .iter()
            .filter(|(svc, _)| **svc != u.service)
            .find_map(|(svc, i)| hostnames_only(i).map(|h| (svc, h)));
        let has_own_address = s
            .load_balancers
            .get(&u.service)
            .is_some_and(|i| !i.is_empty());
        let (weight, seen_text) = match (own, other) {
            (Some(h), _) => (Weight::Refuse, format!("has the hostname {h} and no IP")),
            (None, Some((svc, h))) if !has_own_address => (
                Weight::Warning,
                format!(
                    "has no address yet, and this cluster's load balancers get hostnames ({svc} is {h}, no IP)"
                ),
            ),
            _ => continue,
        };
        let gateway = format!("{}'s east-west gateway {}", u.cluster, short(&u.service));
        if u.remote_pilot_for.is_empty() {
            out.push(HostnameFinding {
                weight: Weight::Note,
                cluster: u.cluster.clone(),
                service: u.service.clone(),
                message: format!(
                    "{gateway} {seen_text}: across networks istiod resolves the name and uses each of its IPs (supported since Istio 1.13, RESOLVE_HOSTNAME_GATEWAYS on by default); source: {MULTI_NETWORK_SOURCE}"
                ),
                fix: "nothing to change; istiod's pods must resolve that name, and RESOLVE_HOSTNAME_GATEWAYS must not be false".into(),
            });
            continue;
        }
        let remotes: Vec<&str> = u.remote_pilot_for.iter().map(|(r, _)| r.as_str()).collect();
        let steps: Vec<&str> = u.remote_pilot_for.iter().map(|(_, s)| s.as_str()).collect();
        out.push(HostnameFinding {
            weight,
            cluster: u.cluster.clone(),
            service: u.service.clone(),
            message: format!(
                "{gateway} {seen_text}: {} sets global.remotePilotAddress to it, Istio's chart then makes {}'s istiod Service an ExternalName Service, and the API server does not call the sidecar injector through one (\"unsupported service type ExternalName\"): injection in {} would fail; source: {PRIMARY_REMOTE_SOURCE}",
                steps.join(", "),
                remotes.join(", "),
                remotes.join(", ")
            ),
            fix: format!(
                "give {}'s east-west gateway a load balancer whose status carries an IP, or make {} a primary (topology: multi-primary)",
                u.cluster,
                remotes.join(", ")
            ),
        });
    }
    out
}

fn short(service: &ObjectRef) -> String {
    format!(
        "{}/{}",
        service.namespace.as_deref().unwrap_or_default(),
        service.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(file: &str) -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(file);
        let loaded = crate::spec::load_file(&path).unwrap();
        crate::phases::plan(&loaded.spec).unwrap()
    }

    fn eastwest() -> ObjectRef {
        ObjectRef::service("istio-system", "istio-eastwestgateway")
    }

    fn seen(
        cluster: &str,
        services: &[(ObjectRef, Option<&str>, Option<&str>)],
    ) -> BTreeMap<String, SeenAddresses> {
        let mut s = SeenAddresses::default();
        for (svc, ip, host) in services {
            let entry = s.load_balancers.entry(svc.clone()).or_default();
            if ip.is_some() || host.is_some() {
                entry.push(Ingress {
                    ip: ip.map(str::to_string),
                    hostname: host.map(str::to_string),
                });
            }
        }
        BTreeMap::from([(cluster.to_string(), s)])
    }

    const ELB: &str = "a1b2c3-123.us-east-1.elb.amazonaws.com";

    #[test]
    fn a_primary_remote_plan_is_refused_when_the_primarys_gateway_is_a_hostname() {
        for file in ["primary-remote.yaml", "helm-primary-remote.yaml"] {
            let uses = gateway_uses(&plan_of(file));
            let gw = uses
                .iter()
                .find(|u| u.cluster == "cluster1" && u.service == eastwest())
                .unwrap_or_else(|| panic!("{file}: {uses:?}"));
            assert_eq!(gw.remote_pilot_for.len(), 1, "{file}: {gw:?}");
            assert_eq!(gw.remote_pilot_for[0].0, "cluster2", "{file}");

            let found = judge(&uses, &seen("cluster1", &[(eastwest(), None, Some(ELB))]));
            assert_eq!(found.len(), 1, "{file}: {found:?}");
            let f = &found[0];
            assert_eq!((f.weight, f.cluster.as_str()), (Weight::Refuse, "cluster1"));
            for part in [
                ELB,
                "ExternalName",
                "cluster2",
                "remotePilotAddress",
                "Install Primary-Remote",
                "#45014",
            ] {
                assert!(f.message.contains(part), "{file}: {part} in {}", f.message);
            }
            assert!(f.fix.contains("multi-primary"), "{}", f.fix);

            // An IP beside the hostname: the chart writes an EndpointSlice, nothing to say.
            let with_ip = seen("cluster1", &[(eastwest(), Some("203.0.113.7"), Some(ELB))]);
            assert!(judge(&uses, &with_ip).is_empty(), "{file}");
        }
    }

    #[test]
    fn another_load_balancer_with_a_hostname_is_a_warning_before_the_gateway_exists() {
        let uses = gateway_uses(&plan_of("primary-remote.yaml"));
        let ingress = ObjectRef::service("istio-system", "istio-ingressgateway");
        let found = judge(
            &uses,
            &seen("cluster1", &[(ingress.clone(), None, Some(ELB))]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].weight, Weight::Warning);
        assert!(
            found[0]
                .message
                .contains("istio-system/istio-ingressgateway"),
            "{}",
            found[0].message
        );
        // The gateway already has its IP: the other load balancer says nothing of it.
        let found = judge(
            &uses,
            &seen(
                "cluster1",
                &[
                    (ingress, None, Some(ELB)),
                    (eastwest(), Some("203.0.113.7"), None),
                ],
            ),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_hostname_gateway_across_networks_is_a_note() {
        let uses = gateway_uses(&plan_of("two-cluster.yaml"));
        assert!(
            uses.iter().all(|u| u.remote_pilot_for.is_empty()),
            "{uses:?}"
        );
        let found = judge(&uses, &seen("cluster2", &[(eastwest(), None, Some(ELB))]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].weight, found[0].cluster.as_str()),
            (Weight::Note, "cluster2")
        );
        assert!(
            found[0].message.contains("RESOLVE_HOSTNAME_GATEWAYS")
                && found[0].message.contains("1.13")
        );
    }
}
