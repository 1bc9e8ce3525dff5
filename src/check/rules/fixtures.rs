//! A healthy two-cluster multi-primary, multi-network mesh as the rules'
//! unit tests start from; each test breaks one thing.

use crate::check::expect::{ClusterExpect, Expect, Known, Model};
use crate::check::snapshot::*;
use crate::cluster::ClusterTarget;
use std::collections::BTreeMap;

fn cert(name: &str) -> Cert {
    Cert {
        subject: format!("CN={name}"),
        fingerprint: format!("sha256:{:0>64}", name.len()),
    }
}

/// The root both clusters share.
pub fn root() -> Cert {
    cert("root")
}

/// Another root.
pub fn other_root() -> Cert {
    cert("other-root-ca")
}

fn selector() -> BTreeMap<String, String> {
    BTreeMap::from([("istio".to_string(), "eastwestgateway".to_string())])
}

/// The snapshot of `name` (`c1` or `c2`) whose peer is `peer`.
pub fn snapshot(name: &str, peer: &str, n: u8) -> ClusterSnapshot {
    ClusterSnapshot {
        cluster: name.into(),
        server: format!("https://10.0.0.{n}:6443"),
        api_ca: Some(format!("sha256:api{n}")),
        istiods: vec![Istiod {
            deployment: "istiod".into(),
            revision: "default".into(),
            version: Some("1.30.3".into()),
            cluster_id: Some(name.into()),
        }],
        mesh_id: Some("mesh1".into()),
        values_network: Some(format!("network{n}")),
        network_label: Some(format!("network{n}")),
        served_roots: Some(vec![root()]),
        cacerts: Some(Cacerts {
            keys: [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem",
            ]
            .map(String::from)
            .to_vec(),
            root: vec![root()],
            chain: vec![cert(&format!("intermediate-{name}")), root()],
        }),
        remote_secrets: vec![RemoteSecret {
            name: format!("istio-remote-secret-{peer}"),
            annotation: Some(peer.into()),
            keys: vec![peer.into()],
            kubeconfigs: vec![RemoteKubeconfig {
                key: peer.into(),
                server: Some(format!("https://10.0.0.{}:6443", 3 - n)),
                ca: Some(format!("sha256:api{}", 3 - n)),
                ca_file: false,
                insecure: false,
                has_credentials: true,
                error: None,
            }],
        }],
        eastwest: Some(GatewayService {
            name: "istio-eastwestgateway".into(),
            network: Some(format!("network{n}")),
            addresses: vec![format!("172.18.{n}.1")],
            ports: vec![15021, 15443, 15012, 15017],
            selector: selector(),
        }),
        gateways: vec![Gateway {
            namespace: "istio-system".into(),
            name: "cross-network-gateway".into(),
            selector: selector(),
            passthrough_15443: true,
        }],
        destination_rules: vec![DestinationRule {
            namespace: "sample".into(),
            name: "helloworld".into(),
            host: "helloworld.sample.svc.cluster.local".into(),
            failover: true,
            outlier_with_failover: true,
            consecutive_errors: vec![],
        }],
        services: vec![Service {
            namespace: "sample".into(),
            name: "helloworld".into(),
            kind: "ClusterIP".into(),
            headless: false,
            ports: vec![ServicePort {
                name: "http".into(),
                port: 5000,
                protocol: "TCP".into(),
            }],
        }],
        mesh_namespaces: vec!["sample".into()],
        injectors: vec![InjectorWebhook {
            configuration: "istio-sidecar-injector".into(),
            webhook: "namespace.sidecar-injector.istio.io".into(),
            url: None,
            service: Some("istio-system/istiod".into()),
            ca_bundle: true,
        }],
        reader: Reader {
            service_account: true,
            cluster_roles: vec!["istio-reader-clusterrole-istio-system".into()],
            bindings: vec!["istio-reader-clusterrole-istio-system".into()],
        },
        proxies: vec![Proxy {
            namespace: "sample".into(),
            pod: format!("helloworld-{name}-abc"),
            workload: Some("helloworld".into()),
            cluster_id: Some(name.into()),
            network: Some(format!("network{n}")),
            mesh_id: Some("mesh1".into()),
        }],
        peers: Some(vec![PeerSync {
            cluster: peer.into(),
            status: "synced".into(),
            pod: None,
        }]),
        ..Default::default()
    }
}

/// The expectation a spec gives for the two clusters.
pub fn expect() -> Expect {
    let cluster = |name: &str, n: u8| ClusterExpect {
        cluster_name: Some(Known::said(name.to_string())),
        network: Some(Known::said(format!("network{n}"))),
        ..ClusterExpect::new(ClusterTarget {
            name: name.into(),
            context: format!("ctx-{name}"),
            kubeconfig: None,
        })
    };
    let mut e = Expect::from_targets(vec![], None);
    e.clusters = vec![cluster("c1", 1), cluster("c2", 2)];
    e.mesh_id = Some(Known::said("mesh1".into()));
    e.model = Some(Known::said(Model::MultiPrimary));
    e.multi_network = Some(Known::said(true));
    e.istio_version = Some("1.30.3".into());
    e
}

/// Both healthy snapshots.
pub fn healthy() -> (Expect, Vec<ClusterSnapshot>) {
    (
        expect(),
        vec![snapshot("c1", "c2", 1), snapshot("c2", "c1", 2)],
    )
}

/// The findings of `group` (codes, clusters, objects).
pub fn found(
    group: crate::check::Group,
    e: &Expect,
    s: &[ClusterSnapshot],
) -> Vec<(String, String, String)> {
    super::run(group, e, s)
        .into_iter()
        .map(|f| (f.code, f.cluster, f.object))
        .collect()
}

/// Every group is quiet on the healthy mesh (no finding at all).
#[test]
fn the_healthy_mesh_has_no_findings() {
    let (e, s) = healthy();
    for g in crate::check::Group::ALL {
        let f = super::run(g, &e, &s);
        assert!(f.is_empty(), "{g}: {f:#?}");
    }
}
