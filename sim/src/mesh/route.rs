//! The decision: which endpoints a client's request can go to, and what one
//! attempt to each of them would meet. Load balancing over them is in `balance`.

use super::locality;
use super::respond::{self, AppReply, Failure};
use super::target::{self, Target};
use super::view::{
    ClusterView, DestinationRule, GatewayService, Istiod, MeshView, MtlsMode, OutlierDetection,
    Pod, SyncStatus,
};

/// The port istiod is exposed on through the east-west gateway (`expose-istiod.yaml`).
const ISTIOD_TLS_PORT: u16 = 15012;

/// One request from a client pod.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The sim cluster the client pod runs in.
    pub cluster: &'a str,
    /// The client pod (the probe's pod: it need not be in the view's pod list).
    pub client: &'a Pod,
    /// `http://<svc>.<ns>[.svc.cluster.local]:<port>/<path>`.
    pub url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    #[error("cluster {0:?} is not in the mesh view")]
    UnknownCluster(String),
}

/// Where requests from one client to one URL can go.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Every request fails before reaching any upstream; the line curl prints.
    Fails(String),
    /// No sidecar: kube-proxy balances over the client cluster's ready endpoints.
    Plain {
        target: Target,
        endpoints: Vec<Endpoint>,
    },
    /// Through the client's sidecar: Envoy balances over what its istiod sent it.
    Mesh {
        target: Target,
        endpoints: Vec<Endpoint>,
        policy: LbPolicy,
    },
}

/// The load-balancing policy istiod programs for the client's outbound cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbPolicy {
    /// `outlierDetection` of the DestinationRule for the host, if any.
    pub outlier: Option<OutlierDetection>,
    /// Whether endpoints carry locality priorities (see `locality::failover_applies`).
    pub locality_failover: bool,
    /// The DestinationRule that applies (`<namespace>/<name>`), for messages.
    pub rule: Option<String>,
}

/// One endpoint as the client's proxy (or kube-proxy) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Sim cluster of the pod.
    pub cluster: String,
    /// The cluster ID the client's istiod files the endpoint under (`topology.istio.io/cluster`).
    pub cluster_id: String,
    pub namespace: String,
    pub pod: String,
    /// The endpoint's network: pod label, else its cluster's istio-system label, else empty.
    pub network: String,
    /// Set when the client reaches it through a network gateway: `<cluster>/<ns>/<name>`.
    pub gateway: Option<String>,
    /// The host Envoy balances over and ejects: the pod, or the gateway address standing for
    /// every endpoint behind it.
    pub host: String,
    /// Locality priority (0 = preferred); all 0 without locality failover.
    pub priority: u32,
    /// `region/zone/subzone` of the pod's node (empty when unknown).
    pub locality: String,
    /// The weight of the endpoint's locality under `distribute`; `None` without it.
    pub locality_weight: Option<u32>,
    /// What one attempt to this endpoint meets.
    pub hop: Hop,
    /// The app's version, for `Answer::served_by`.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    Reply(AppReply),
    Fail(Failure),
    /// Plaintext from a client without a sidecar into a STRICT sidecar.
    PlainReset,
}

/// Decides where requests from `req.client` to `req.url` can go.
pub fn route(view: &MeshView, req: &Request) -> Result<Route, MeshError> {
    let home = view
        .cluster(req.cluster)
        .ok_or_else(|| MeshError::UnknownCluster(req.cluster.to_string()))?;
    let target = match target::parse_url(req.url) {
        Ok(t) => t,
        Err(line) => return Ok(Route::Fails(line)),
    };
    // DNS is per cluster (FACTS 8 step 3, 9 item 14): the name needs a Service here.
    let Some(svc) = target::service_candidates(&target.host, &req.client.namespace)
        .into_iter()
        .find_map(|(ns, name)| {
            home.services
                .iter()
                .find(|s| s.namespace == ns && s.name == name)
        })
    else {
        return Ok(Route::Fails(respond::curl_unresolved(&target.host)));
    };
    if !svc.ports.contains(&target.port) {
        // Nothing serves that port on the ClusterIP.
        return Ok(Route::Fails(respond::curl_refused(
            &target.host,
            target.port,
        )));
    }
    let (ns, name) = (svc.namespace.clone(), svc.name.clone());

    let Some(client_sidecar) = &req.client.sidecar else {
        let endpoints = ready_pods(home, &ns, &name, target.port)
            .map(|pod| {
                let strict = pod.sidecar.is_some()
                    && mtls_mode(view, home, &pod.namespace) == MtlsMode::Strict;
                let hop = if strict {
                    Hop::PlainReset
                } else {
                    app_hop(pod, &target.path)
                };
                Endpoint {
                    cluster: home.name.clone(),
                    cluster_id: cluster_identity(home).unwrap_or_default(),
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    network: endpoint_network(home, pod),
                    gateway: None,
                    host: format!("{}/{}", home.name, pod.name),
                    priority: 0,
                    locality: locality_key(node_locality(home, pod).as_ref()),
                    locality_weight: None,
                    hop,
                    version: version(pod),
                }
            })
            .collect();
        return Ok(Route::Plain { target, endpoints });
    };

    // A proxy without configuration has no listener on 15001: the redirected connection is refused.
    // It gets none when no istiod serves its cluster, or when it cannot verify istiod's serving
    // certificate (signed by istiod's CA) with the roots it was started with (FACTS 3.4).
    let cp = match control_plane(view, home) {
        Ok(cp)
            if client_sidecar
                .trusted_roots
                .contains(&cp.istiod.ca.signing_root) =>
        {
            cp
        }
        _ => {
            return Ok(Route::Fails(respond::curl_refused(
                &target.host,
                target.port,
            )));
        }
    };
    let home_id = cluster_identity(home).unwrap_or_default();
    // FACTS 9 items 7, 8: a proxy baked with another cluster ID than the one its istiod knows its
    // cluster by gets no service instances; istiod cannot place it (no locality, no labels) and
    // its cross-cluster traffic fails with 503 until the pod is recreated.
    let client_stale = client_sidecar.cluster_id != home_id;
    let client_locality = if client_stale {
        None
    } else {
        node_locality(home, req.client)
    };
    let client_place = locality::place(
        &req.client.labels,
        client_locality.as_ref(),
        &client_sidecar.cluster_id,
        &client_sidecar.network,
    );

    let fqdn = target::fqdn(&ns, &name);
    let rule = destination_rule(cp.config, &fqdn);
    let policy = LbPolicy {
        outlier: rule.and_then(|r| r.outlier_detection.clone()),
        locality_failover: locality::failover_applies(rule),
        rule: rule.map(|r| format!("{}/{}", r.namespace, r.name)),
    };

    let mut endpoints = Vec::new();
    let mut places = Vec::new();
    for (cluster, cluster_id) in &cp.known {
        let local = cluster.name == home.name;
        if !local {
            // Different meshID: the model treats the peer as another mesh and ignores it (Istio
            // requires one meshID across a mesh, FACTS 4.1; it does not define the failure).
            if let Ok(peer_cp) = control_plane(view, cluster)
                && peer_cp.istiod.effective_mesh_id() != client_sidecar.effective_mesh_id()
            {
                continue;
            }
        }
        for pod in ready_pods(cluster, &ns, &name, target.port) {
            let network = endpoint_network(cluster, pod);
            let mtls = pod.sidecar.is_some()
                && mtls_mode(view, cluster, &pod.namespace) != MtlsMode::Disable;
            // istiod's network filter (istio: `pilot/pkg/xds/endpoints/ep_filters.go`,
            // `EndpointsByNetworkFilter`): an empty network on either side counts as the same
            // network (FACTS 9 item 9), and so does a network without a usable gateway: both
            // are sent straight to the pod IP. Through a gateway, the endpoint needs mTLS (SNI
            // routing) or istiod drops it.
            let cross_network = !network.is_empty()
                && !client_sidecar.network.is_empty()
                && network != client_sidecar.network;
            let gateway = if cross_network {
                network_gateway(&cp, &network, &cluster.name)
            } else {
                None
            };
            if gateway.is_some() && !mtls {
                continue;
            }
            let server_stale = pod.sidecar.as_ref().is_some_and(|s| {
                Some(s.cluster_id.as_str()) != cluster_identity(cluster).as_deref()
            });
            let hop = hop(HopInput {
                view,
                home,
                server_cluster: cluster,
                client: req.client,
                client_istiod: cp.istiod,
                pod,
                gateway: gateway.as_ref(),
                fqdn: &fqdn,
                mtls,
                identity_unknown: !local && (client_stale || server_stale),
                path: &target.path,
            });
            let host = match &gateway {
                Some((_, g)) => format!("{}:{}", g.addresses[0], g.mtls_port()),
                None => format!("{}/{}", cluster.name, pod.name),
            };
            places.push(locality::place(
                &pod.labels,
                node_locality(cluster, pod).as_ref(),
                cluster_id,
                &network,
            ));
            endpoints.push(Endpoint {
                cluster: cluster.name.clone(),
                cluster_id: cluster_id.clone(),
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                network,
                gateway: gateway.map(|(gc, g)| format!("{}/{}/{}", gc.name, g.namespace, g.name)),
                host,
                priority: 0,
                locality: locality_key(node_locality(cluster, pod).as_ref()),
                locality_weight: None,
                hop,
                version: version(pod),
            });
        }
    }
    if let Some(setting) = rule
        .and_then(|r| r.locality_lb.as_ref())
        .filter(|_| locality::distribute_applies(rule))
    {
        let weights = locality::locality_weights(
            &setting.distribute,
            client_place.locality.as_ref(),
            &places,
        );
        let mut kept = Vec::new();
        for (mut ep, w) in endpoints.into_iter().zip(weights) {
            // Localities `distribute` gives no weight lose their endpoints.
            if w.is_some() {
                ep.locality_weight = w;
                kept.push(ep);
            }
        }
        endpoints = kept;
    } else if policy.locality_failover {
        let setting = rule.and_then(|r| r.locality_lb.as_ref());
        for (ep, p) in
            endpoints
                .iter_mut()
                .zip(locality::priorities(setting, &client_place, &places))
        {
            ep.priority = p;
        }
    }
    Ok(Route::Mesh {
        target,
        endpoints,
        policy,
    })
}

/// An istiod and the clusters whose endpoints it knows.
pub(crate) struct ControlPlane<'v> {
    /// The cluster istiod runs in; its config (Gateways, DestinationRules, PeerAuthentications)
    /// is what the proxies it configures get.
    pub config: &'v ClusterView,
    pub istiod: &'v Istiod,
    /// Its own cluster and every remote it registered, with the ID it files each under, in the
    /// view's cluster order.
    pub known: Vec<(&'v ClusterView, String)>,
}

/// The istiod that configures proxies in `cluster`: its own, or for a remote, the primary its
/// `remotePilotAddress` reaches. `Err` says why there is none.
pub(crate) fn control_plane<'v>(
    view: &'v MeshView,
    cluster: &'v ClusterView,
) -> Result<ControlPlane<'v>, String> {
    if let Some(istiod) = &cluster.istiod {
        return Ok(ControlPlane {
            config: cluster,
            istiod,
            known: known_clusters(view, cluster, istiod),
        });
    }
    let Some(remote) = &cluster.remote else {
        return Err(format!("no istiod runs in or for cluster {}", cluster.name));
    };
    let (primary, istiod) = view
        .clusters
        .iter()
        .filter(|p| exposes_istiod(p, &remote.remote_pilot_address))
        .find_map(|p| p.istiod.as_ref().map(|i| (p, i)))
        .ok_or_else(|| {
            format!(
                "remotePilotAddress {:?} of cluster {} reaches no istiod",
                remote.remote_pilot_address, cluster.name
            )
        })?;
    let known = known_clusters(view, primary, istiod);
    // FACTS 9 item 11: without a working remote secret the primary rejects the remote's proxies
    // (KubeJWTAuthenticator: could not get cluster <id>'s kube client).
    if !known
        .iter()
        .any(|(c, id)| c.name == cluster.name && *id == remote.cluster_id)
    {
        return Err(format!(
            "istiod in {} has no synced remote secret for cluster {:?}",
            primary.name, remote.cluster_id
        ));
    }
    Ok(ControlPlane {
        config: primary,
        istiod,
        known,
    })
}

/// The sim cluster whose istiod configures proxies in `cluster` (itself for a primary), or why
/// none does. For the kubelet and the istiod stand-in: an injected pod in a cluster without one
/// gets no listeners.
pub fn configured_by(view: &MeshView, cluster: &str) -> Result<String, String> {
    let c = view
        .cluster(cluster)
        .ok_or_else(|| format!("cluster {cluster:?} is not in the mesh view"))?;
    control_plane(view, c).map(|cp| cp.config.name.clone())
}

/// Whether the primary's istiod leads the remote `cluster` (FACTS 3.4, 7 step 1): it runs there
/// the namespace controller that writes `istio-ca-root-cert` (which injected pods mount) and
/// patches the webhook caBundle only with `EXTERNAL_ISTIOD` and the remote's istio-system
/// annotation `topology.istio.io/controlPlaneClusters` naming its CLUSTER_ID or `*`.
/// A cluster with its own istiod is led by it.
pub fn leads(view: &MeshView, cluster: &str) -> bool {
    let Some(c) = view.cluster(cluster) else {
        return false;
    };
    if c.istiod.is_some() {
        return true;
    }
    match control_plane(view, c) {
        Ok(cp) => {
            cp.istiod.external_istiod
                && c.control_plane_clusters
                    .iter()
                    .any(|id| id == "*" || *id == cp.istiod.cluster_id)
        }
        Err(_) => false,
    }
}

/// The ID a cluster's own proxies are injected with: its istiod's `CLUSTER_ID`, or a remote's
/// `clusterName`.
pub(crate) fn cluster_identity(cluster: &ClusterView) -> Option<String> {
    match (&cluster.istiod, &cluster.remote) {
        (Some(i), _) => Some(i.cluster_id.clone()),
        (None, Some(r)) => Some(r.cluster_id.clone()),
        (None, None) => None,
    }
}

/// Remote-secret registration (FACTS 1.6): a key equal to istiod's own ID is ignored, a key
/// already registered is ignored, only synced clients serve endpoints. A key that is not the
/// target cluster's own ID is treated as not registering it (FACTS "discovery": the key must
/// equal the peer's CLUSTER_ID).
fn known_clusters<'v>(
    view: &'v MeshView,
    own: &'v ClusterView,
    istiod: &Istiod,
) -> Vec<(&'v ClusterView, String)> {
    let mut known = vec![(own, istiod.cluster_id.clone())];
    let mut seen = vec![istiod.cluster_id.clone()];
    for rc in &istiod.remote_clusters {
        if seen.contains(&rc.cluster_id) {
            continue;
        }
        seen.push(rc.cluster_id.clone());
        if rc.status != SyncStatus::Synced {
            continue;
        }
        let Some(target) = rc.target.as_deref().and_then(|t| view.cluster(t)) else {
            continue;
        };
        if target.name == own.name || known.iter().any(|(c, _)| c.name == target.name) {
            continue;
        }
        if cluster_identity(target).as_deref() == Some(rc.cluster_id.as_str()) {
            known.push((target, rc.cluster_id.clone()));
        }
    }
    // Keep the view's cluster order so balancing does not depend on secret order.
    known.sort_by_key(|(c, _)| view.clusters.iter().position(|v| v.name == c.name));
    known
}

/// Whether `address` is an east-west gateway of `primary` that passes 15012 through to istiod.
fn exposes_istiod(primary: &ClusterView, address: &str) -> bool {
    primary.gateways.iter().any(|g| {
        g.addresses.iter().any(|a| a == address)
            && g.ports.contains(&ISTIOD_TLS_PORT)
            && g.ready_pods > 0
            && primary.istio_gateways.iter().any(|gw| {
                selects(&gw.selector, &g.pod_labels)
                    && gw.servers.iter().any(|s| {
                        s.port == ISTIOD_TLS_PORT
                            && s.tls_mode.as_deref() == Some("PASSTHROUGH")
                            && s.hosts.iter().any(|h| h == "*" || h.ends_with("/*"))
                    })
            })
    })
}

/// The gateway istiod uses for `network`: a Service labelled with it, with an address and the
/// mTLS port, in any cluster it knows (FACTS 2.1); one in the endpoint's own cluster first
/// (`selectNetworkGateways`).
fn network_gateway<'v>(
    cp: &ControlPlane<'v>,
    network: &str,
    endpoint_cluster: &str,
) -> Option<(&'v ClusterView, &'v GatewayService)> {
    let own = cp.known.iter().filter(|(c, _)| c.name == endpoint_cluster);
    let others = cp.known.iter().filter(|(c, _)| c.name != endpoint_cluster);
    own.chain(others).find_map(|(c, _)| {
        c.gateways
            .iter()
            .find(|g| {
                g.network.as_deref() == Some(network)
                    && !g.addresses.is_empty()
                    && g.ports.contains(&g.mtls_port())
            })
            .map(|g| (*c, g))
    })
}

struct HopInput<'a> {
    view: &'a MeshView,
    home: &'a ClusterView,
    server_cluster: &'a ClusterView,
    client: &'a Pod,
    client_istiod: &'a Istiod,
    pod: &'a Pod,
    gateway: Option<&'a (&'a ClusterView, &'a GatewayService)>,
    fqdn: &'a str,
    mtls: bool,
    identity_unknown: bool,
    path: &'a str,
}

/// What one attempt from the client's sidecar to `pod` meets, in the order a connection meets it:
/// the path, then the peers' identities, then the TLS handshake, then the app.
fn hop(i: HopInput) -> Hop {
    match i.gateway {
        None if i.home.pod_network != i.server_cluster.pod_network => {
            return Hop::Fail(Failure::ConnectTimeout);
        }
        None => {}
        Some((gc, g)) => {
            if let Err(f) = through_gateway(i.view, gc, g, i.server_cluster, i.fqdn) {
                return Hop::Fail(f);
            }
        }
    }
    if i.identity_unknown {
        return Hop::Fail(Failure::IdentityUnknown);
    }
    if i.mtls
        && let (Some(c), Some(s)) = (&i.client.sidecar, &i.pod.sidecar)
    {
        // FACTS 9 item 12: each side verifies the other's chain against the roots it trusts; the
        // client also checks the server's SPIFFE trust domain against its istiod's trust domain
        // and aliases.
        let td_ok = s.trust_domain == i.client_istiod.trust_domain
            || i.client_istiod
                .trust_domain_aliases
                .contains(&s.trust_domain);
        if !c.trusted_roots.contains(&s.cert_root) || !td_ok {
            return Hop::Fail(Failure::CertificateVerifyFailed);
        }
        if !s.trusted_roots.contains(&c.cert_root) {
            return Hop::Fail(Failure::UnknownCa);
        }
    }
    app_hop(i.pod, i.path)
}

/// The east-west gateway leg (FACTS 2.1, 2.2, 9 item 13): the gateway pods need a listener on the
/// mTLS port (an AUTO_PASSTHROUGH Gateway selecting them, from their istiod's config), an SNI
/// route for the host (hosts covering it, and the endpoint's cluster known to that istiod) and a
/// route to the pod.
fn through_gateway(
    view: &MeshView,
    gc: &ClusterView,
    g: &GatewayService,
    server_cluster: &ClusterView,
    fqdn: &str,
) -> Result<(), Failure> {
    if g.ready_pods == 0 {
        return Err(Failure::Refused);
    }
    let gcp = control_plane(view, gc).map_err(|_| Failure::Refused)?;
    let servers: Vec<_> = gcp
        .config
        .istio_gateways
        .iter()
        .filter(|gw| selects(&gw.selector, &g.pod_labels))
        .flat_map(|gw| gw.servers.iter())
        .filter(|s| s.port == g.mtls_port() && s.tls_mode.as_deref() == Some("AUTO_PASSTHROUGH"))
        .collect();
    if servers.is_empty() {
        return Err(Failure::Refused);
    }
    if !servers
        .iter()
        .any(|s| s.hosts.iter().any(|h| host_covers(h, fqdn)))
    {
        return Err(Failure::HandshakeReset);
    }
    if !gcp.known.iter().any(|(c, _)| c.name == server_cluster.name) {
        return Err(Failure::HandshakeReset);
    }
    if gc.pod_network != server_cluster.pod_network {
        return Err(Failure::ConnectTimeout);
    }
    Ok(())
}

fn app_hop(pod: &Pod, path: &str) -> Hop {
    match respond::app_reply(&pod.app, &pod.name, path) {
        Some(r) => Hop::Reply(r),
        None => Hop::Fail(Failure::Refused),
    }
}

/// Gateway `hosts` entry (`*`, `*.local`, exact, optionally `ns/` prefixed) against a FQDN.
fn host_covers(pattern: &str, fqdn: &str) -> bool {
    let pattern = pattern.rsplit_once('/').map_or(pattern, |(_, h)| h);
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => fqdn.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(fqdn),
    }
}

/// A non-empty selector whose every label the pod has.
fn selects(
    selector: &std::collections::BTreeMap<String, String>,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Ready pods behind `<ns>/<name>` in `cluster`, if the Service exists there with `port`.
fn ready_pods<'v>(
    cluster: &'v ClusterView,
    ns: &str,
    name: &str,
    port: u16,
) -> impl Iterator<Item = &'v Pod> {
    let svc = cluster
        .services
        .iter()
        .find(|s| s.namespace == ns && s.name == name && s.ports.contains(&port));
    let ns = ns.to_string();
    cluster.pods.iter().filter(move |p| {
        p.ready && p.namespace == ns && svc.is_some_and(|s| selects(&s.selector, &p.labels))
    })
}

/// The endpoint network in istiod: pod label, else the istio-system label (FACTS 4.1).
fn endpoint_network(cluster: &ClusterView, pod: &Pod) -> String {
    pod.labels
        .get(super::view::NETWORK_LABEL)
        .cloned()
        .or_else(|| cluster.network.clone())
        .unwrap_or_default()
}

fn locality_key(l: Option<&super::view::Locality>) -> String {
    l.map_or_else(String::new, |l| {
        format!("{}/{}/{}", l.region, l.zone, l.subzone)
    })
}

fn node_locality(cluster: &ClusterView, pod: &Pod) -> Option<super::view::Locality> {
    pod.node
        .as_ref()
        .and_then(|n| cluster.nodes.get(n))
        .cloned()
}

fn version(pod: &Pod) -> Option<String> {
    match &pod.app {
        super::view::App::HelloWorld { version } => Some(version.clone()),
        super::view::App::Other => None,
    }
}

/// The server's effective PeerAuthentication mode, from its istiod's config cluster: the
/// namespace's rule, else the mesh-wide one in istio-system, else PERMISSIVE.
fn mtls_mode(view: &MeshView, server_cluster: &ClusterView, namespace: &str) -> MtlsMode {
    let config = control_plane(view, server_cluster).map_or(server_cluster, |cp| cp.config);
    let find = |ns: &str| {
        config
            .peer_authentications
            .iter()
            .find(|pa| pa.namespace == ns && pa.mode != MtlsMode::Unset)
            .map(|pa| pa.mode)
    };
    find(namespace)
        .or_else(|| find("istio-system"))
        .unwrap_or(MtlsMode::Permissive)
}

/// The DestinationRule for `fqdn` in the client istiod's config: an exact host first, then the
/// longest wildcard.
fn destination_rule<'v>(config: &'v ClusterView, fqdn: &str) -> Option<&'v DestinationRule> {
    let full = |r: &DestinationRule| {
        if r.host.contains('.') || r.host.starts_with('*') {
            r.host.clone()
        } else {
            target::fqdn(&r.namespace, &r.host)
        }
    };
    config
        .destination_rules
        .iter()
        .find(|r| full(r) == fqdn)
        .or_else(|| {
            config
                .destination_rules
                .iter()
                .filter(|r| r.host.starts_with('*') && host_covers(&r.host, fqdn))
                .max_by_key(|r| r.host.len())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_hosts_cover_like_istio() {
        let fqdn = "helloworld.sample.svc.cluster.local";
        assert!(host_covers("*.local", fqdn));
        assert!(host_covers("*", fqdn));
        assert!(host_covers("*/*.local", fqdn));
        assert!(host_covers(fqdn, fqdn));
        assert!(!host_covers("*.example.com", fqdn));
        assert!(!host_covers("other.sample.svc.cluster.local", fqdn));
    }
}
