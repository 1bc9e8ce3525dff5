//! Test fixtures: correct meshes as the Istio docs install them, and small helpers so
//! each test states only what differs.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

pub const SHARED_ROOT: &str = "root-shared";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn istiod(cluster_id: &str) -> Istiod {
    Istiod {
        cluster_id: cluster_id.into(),
        mesh_id: "mesh1".into(),
        trust_domain: DEFAULT_TRUST_DOMAIN.into(),
        trust_domain_aliases: vec![],
        ca: CaState {
            trusted_roots: vec![SHARED_ROOT.into()],
            signing_root: SHARED_ROOT.into(),
            source: CaSource::PluggedIn,
        },
        external_istiod: false,
        remote_clusters: vec![],
    }
}

pub fn remote_secret(of: &str) -> RemoteCluster {
    RemoteCluster {
        cluster_id: of.into(),
        secret: format!("istio-system/istio-remote-secret-{of}"),
        target: Some(of.into()),
        status: SyncStatus::Synced,
    }
}

/// `gen-eastwest-gateway.sh --network <net>` installed, with an LB address.
fn eastwest(network: &str, address: &str) -> GatewayService {
    GatewayService {
        namespace: "istio-system".into(),
        name: "istio-eastwestgateway".into(),
        network: Some(network.into()),
        gateway_port: None,
        addresses: vec![address.into()],
        ports: vec![15021, 15443, 15012, 15017],
        pod_labels: labels(&[
            ("istio", "eastwestgateway"),
            ("app", "istio-eastwestgateway"),
        ]),
        ready_pods: 1,
    }
}

/// `samples/multicluster/expose-services.yaml`.
pub fn cross_network_gateway() -> IstioGateway {
    IstioGateway {
        namespace: "istio-system".into(),
        name: "cross-network-gateway".into(),
        selector: labels(&[("istio", "eastwestgateway")]),
        servers: vec![GatewayServer {
            port: 15443,
            protocol: "TLS".into(),
            tls_mode: Some("AUTO_PASSTHROUGH".into()),
            hosts: vec!["*.local".into()],
        }],
    }
}

/// `samples/multicluster/expose-istiod.yaml` (the Gateway half).
fn istiod_gateway() -> IstioGateway {
    IstioGateway {
        namespace: "istio-system".into(),
        name: "istiod-gateway".into(),
        selector: labels(&[("istio", "eastwestgateway")]),
        servers: [15012, 15017]
            .into_iter()
            .map(|port| GatewayServer {
                port,
                protocol: "tls".into(),
                tls_mode: Some("PASSTHROUGH".into()),
                hosts: vec!["*".into()],
            })
            .collect(),
    }
}

fn helloworld_service() -> Service {
    Service {
        namespace: "sample".into(),
        name: "helloworld".into(),
        ports: vec![5000],
        selector: labels(&[("app", "helloworld")]),
    }
}

/// A cluster with nodes in one zone, istio-system labelled with `network`, the helloworld
/// Service, and nothing of Istio yet.
fn bare_cluster(name: &str, network: &str, region: &str) -> ClusterView {
    ClusterView {
        name: name.into(),
        pod_network: network.into(),
        nodes: BTreeMap::from([(
            format!("{name}-node"),
            Locality::new(region, &format!("{region}-1a"), ""),
        )]),
        network: Some(network.into()),
        services: vec![helloworld_service()],
        ..Default::default()
    }
}

/// The docs' multi-primary, multi-network mesh: cluster1 (network1, us-west) runs helloworld v1,
/// cluster2 (network2, us-east) runs v2; shared root; remote secrets both ways.
pub fn multi_primary() -> MeshView {
    let mut c1 = bare_cluster("cluster1", "network1", "us-west");
    let mut c2 = bare_cluster("cluster2", "network2", "us-east");
    for (c, other, addr) in [
        (&mut c1, "cluster2", "172.18.0.10"),
        (&mut c2, "cluster1", "172.18.0.20"),
    ] {
        let mut i = istiod(&c.name.clone());
        i.remote_clusters.push(remote_secret(other));
        c.istiod = Some(i);
        let net = c.network.clone().unwrap_or_default();
        c.gateways.push(eastwest(&net, addr));
        c.istio_gateways.push(cross_network_gateway());
    }
    let mut view = MeshView {
        clusters: vec![c1, c2],
    };
    deploy(&mut view, "cluster1", "v1");
    deploy(&mut view, "cluster2", "v2");
    view
}

/// The docs' primary-remote, multi-network mesh: cluster1 primary (EXTERNAL_ISTIOD, istiod
/// exposed), cluster2 remote configured by it; v1 in cluster1, v2 in cluster2.
pub fn primary_remote() -> MeshView {
    let mut c1 = bare_cluster("cluster1", "network1", "us-west");
    let mut c2 = bare_cluster("cluster2", "network2", "us-east");
    let mut i = istiod("cluster1");
    i.external_istiod = true;
    i.remote_clusters.push(remote_secret("cluster2"));
    c1.istiod = Some(i);
    c1.gateways.push(eastwest("network1", "172.18.0.10"));
    c1.istio_gateways.push(cross_network_gateway());
    c1.istio_gateways.push(istiod_gateway());
    c2.control_plane_clusters = vec!["cluster1".into()];
    c2.remote = Some(RemoteProfile {
        cluster_id: "cluster2".into(),
        remote_pilot_address: "172.18.0.10".into(),
    });
    c2.gateways.push(eastwest("network2", "172.18.0.20"));
    let mut view = MeshView {
        clusters: vec![c1, c2],
    };
    deploy(&mut view, "cluster1", "v1");
    deploy(&mut view, "cluster2", "v2");
    view
}

pub fn cluster<'v>(view: &'v mut MeshView, name: &str) -> &'v mut ClusterView {
    view.clusters
        .iter_mut()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

pub fn istiod_mut<'v>(view: &'v mut MeshView, name: &str) -> &'v mut Istiod {
    cluster(view, name).istiod.as_mut().expect("istiod")
}

/// What injection bakes into a pod created in `cluster` now.
pub fn sidecar_now(view: &MeshView, name: &str) -> Sidecar {
    let c = view.cluster(name).expect("cluster");
    let (cluster_id, istiod) = match (&c.istiod, &c.remote) {
        (Some(i), _) => (i.cluster_id.clone(), i),
        (None, Some(r)) => {
            let primary = view
                .clusters
                .iter()
                .find_map(|p| {
                    p.istiod.as_ref().filter(|_| {
                        p.gateways
                            .iter()
                            .any(|g| g.addresses.contains(&r.remote_pilot_address))
                    })
                })
                .expect("primary");
            (r.cluster_id.clone(), primary)
        }
        (None, None) => panic!("no control plane for {name}"),
    };
    Sidecar {
        cluster_id,
        // values.global.network, which the fixtures keep equal to the namespace label.
        network: c.network.clone().unwrap_or_default(),
        mesh_id: istiod.mesh_id.clone(),
        trust_domain: istiod.trust_domain.clone(),
        trusted_roots: istiod.ca.trusted_roots.clone(),
        cert_root: istiod.ca.signing_root.clone(),
    }
}

/// `helloworld-<version>` with one ready, injected replica.
pub fn deploy(view: &mut MeshView, name: &str, version: &str) {
    let sidecar = sidecar_now(view, name);
    let c = cluster(view, name);
    let node = c.nodes.keys().next().cloned();
    c.pods.push(Pod {
        namespace: "sample".into(),
        name: format!("helloworld-{version}-5d4f8c7b9-{name}"),
        labels: labels(&[("app", "helloworld"), ("version", version)]),
        ready: true,
        node,
        app: App::HelloWorld {
            version: version.into(),
        },
        sidecar: Some(sidecar),
    });
}

/// Scales every helloworld deployment in `cluster` to zero.
pub fn drain(view: &mut MeshView, name: &str) {
    cluster(view, name)
        .pods
        .retain(|p| p.labels.get("app").map(String::as_str) != Some("helloworld"));
}

/// Recreates every pod in `cluster` (rollout restart): they bake today's values.
pub fn restart_pods(view: &mut MeshView, name: &str) {
    let sidecar = sidecar_now(view, name);
    for p in &mut cluster(view, name).pods {
        if p.sidecar.is_some() {
            p.sidecar = Some(sidecar.clone());
        }
    }
}

/// The `curl` sample pod, injected now.
pub fn curl_pod(view: &MeshView, cluster: &str) -> Pod {
    let c = view.cluster(cluster).expect("cluster");
    Pod {
        namespace: "sample".into(),
        name: "curl-6c8b7f9d4-x2x9q".into(),
        labels: labels(&[("app", "curl")]),
        ready: true,
        node: c.nodes.keys().next().cloned(),
        app: App::Other,
        sidecar: Some(sidecar_now(view, cluster)),
    }
}

/// `count` requests to the docs' URL from `client` in `cluster`.
pub fn ask_as(
    view: &MeshView,
    cluster: &str,
    client: &Pod,
    count: u32,
    opts: &Options,
) -> Vec<Answer> {
    let req = Request {
        cluster,
        client,
        url: "http://helloworld.sample:5000/hello",
    };
    answer(view, &req, count, opts).expect("answer")
}

/// `count` requests from a freshly injected curl pod in `cluster`, Istio's defaults.
pub fn ask(view: &MeshView, cluster: &str, count: u32) -> Vec<Answer> {
    ask_as(
        view,
        cluster,
        &curl_pod(view, cluster),
        count,
        &Options::default(),
    )
}

/// The sim clusters that answered.
pub fn answered_by(answers: &[Answer]) -> BTreeSet<String> {
    answers
        .iter()
        .filter_map(|a| a.served_by.as_ref().map(|s| s.cluster.clone()))
        .collect()
}

pub fn outputs(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .map(|a| a.output.trim_end().to_string())
        .collect()
}

/// Every failure Envoy met, over all attempts.
pub fn failures(answers: &[Answer]) -> Vec<(String, Failure)> {
    answers
        .iter()
        .flat_map(|a| &a.attempts)
        .filter_map(|t| t.failure.map(|f| (t.cluster.clone(), f)))
        .collect()
}

/// A DestinationRule on helloworld with locality LB and outlier detection, in `cluster`.
pub fn failover_rule(view: &mut MeshView, name: &str, od: Option<OutlierDetection>) {
    cluster(view, name).destination_rules.push(DestinationRule {
        namespace: "sample".into(),
        name: "helloworld".into(),
        host: "helloworld.sample.svc.cluster.local".into(),
        locality_lb: Some(LocalityLbSetting {
            enabled: Some(true),
            failover_priority: vec![REGION_LABEL.into()],
            ..Default::default()
        }),
        outlier_detection: od,
    });
}
