//! The view builder: the mesh model's input ([`MeshView`]) read from every simulated
//! cluster's store at one moment.
//!
//! Where each field comes from is documented on the view types (`mesh/view.rs`); the runtime
//! state of an istiod (its CA) comes from the annotations the istiod stand-in writes on its pod
//! (see [`super::istiod_pod`]), the state injection baked into a pod from the pod itself (see
//! [`super::inject`]), and remote secrets are judged by [`super::remote`].

use super::fields::{annotation, containers, env_of, is_ready, labels, name_of, ns_of, str_map};
use super::install::ISTIO_NAMESPACE;
use super::istiod_pod::{
    ANN_CA_MODE, ANN_SIGNING_ROOT, ANN_TRUSTED_ROOTS, MODE_PLUGGED_IN, istiod_env, pod_cluster_id,
    serving_istiod_pod,
};
use crate::cluster::ClusterSet;
use crate::mesh::{
    self, App, CaSource, CaState, ClusterView, DestinationRule, GatewayServer, GatewayService,
    IstioGateway, Istiod, Locality, LocalityLbSetting, MeshView, MtlsMode, OutlierDetection,
    PeerAuthentication, RemoteProfile, Service, Sidecar,
};
use crate::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Pod annotations injection writes (besides Istio's own `sidecar.istio.io/status`): what the
/// proxy trusts and which root its certificate chains to, as of its start.
pub const ANN_PROXY_TRUSTED_ROOTS: &str = "meshsim.dev/proxy-trusted-roots";
pub const ANN_PROXY_CERT_ROOT: &str = "meshsim.dev/proxy-cert-root";
pub const ANN_PROXY_TRUST_DOMAIN: &str = "meshsim.dev/proxy-trust-domain";
/// Istio's own marker of an injected pod.
pub const ANN_SIDECAR_STATUS: &str = "sidecar.istio.io/status";

/// The mesh as every cluster's store shows it now. Each sim cluster is its own pod network.
pub fn build_view(clusters: &ClusterSet) -> MeshView {
    MeshView {
        clusters: clusters
            .iter()
            .map(|(name, store)| cluster_view(clusters, name, store))
            .collect(),
    }
}

fn list(store: &Store, group: &str, resource: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
    // Istio kinds may be served in any of these versions; the store keeps one copy per object.
    ["v1", "v1beta1", "v1alpha3"]
        .iter()
        .find_map(|v| store.resolve(group, v, resource))
        .map(|rt| store.list(&rt, ns).0)
        .unwrap_or_default()
}

fn get(store: &Store, resource: &str, ns: Option<&str>, name: &str) -> Option<Arc<Value>> {
    let rt = store.resolve("", "v1", resource)?;
    store.get_arc(&rt, ns, name).ok()
}

/// One cluster as the model sees it.
pub fn cluster_view(clusters: &ClusterSet, name: &str, store: &Store) -> ClusterView {
    let system_ns = get(store, "namespaces", None, ISTIO_NAMESPACE);
    let pods = list(store, "", "pods", None);
    let nodes = list(store, "", "nodes", None);
    // The pod network is infrastructure, not an object: the sim notes it on
    // its nodes; a cluster without the note is a network of its own.
    let pod_network = nodes
        .iter()
        .find_map(|n| annotation(n, crate::bootstrap::POD_NETWORK_ANNOTATION))
        .unwrap_or(name)
        .to_string();
    ClusterView {
        name: name.to_string(),
        pod_network,
        nodes: nodes
            .iter()
            .map(|n| {
                let l = labels(n);
                let at = |k: &str| l.get(k).cloned().unwrap_or_default();
                (
                    name_of(n),
                    Locality {
                        region: at(mesh::REGION_LABEL),
                        zone: at(mesh::ZONE_LABEL),
                        subzone: at(mesh::SUBZONE_LABEL),
                    },
                )
            })
            .collect(),
        network: system_ns
            .as_ref()
            .and_then(|n| labels(n).get(mesh::NETWORK_LABEL).cloned()),
        control_plane_clusters: system_ns
            .as_ref()
            .and_then(|n| annotation(n, "topology.istio.io/controlPlaneClusters"))
            .map(|a| {
                a.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        istiod: istiod(clusters, store),
        remote: remote_profile(store),
        gateways: gateways(store, &pods),
        istio_gateways: list(store, "networking.istio.io", "gateways", None)
            .iter()
            .map(|g| istio_gateway(g))
            .collect(),
        destination_rules: list(store, "networking.istio.io", "destinationrules", None)
            .iter()
            .map(|d| destination_rule(d))
            .collect(),
        peer_authentications: list(store, "security.istio.io", "peerauthentications", None)
            .iter()
            .filter(|p| p.pointer("/spec/selector").is_none_or(Value::is_null))
            .map(|p| PeerAuthentication {
                namespace: ns_of(p),
                mode: match p.pointer("/spec/mtls/mode").and_then(Value::as_str) {
                    Some("STRICT") => MtlsMode::Strict,
                    Some("PERMISSIVE") => MtlsMode::Permissive,
                    Some("DISABLE") => MtlsMode::Disable,
                    _ => MtlsMode::Unset,
                },
            })
            .collect(),
        services: list(store, "", "services", None)
            .iter()
            .map(|s| Service {
                namespace: ns_of(s),
                name: name_of(s),
                ports: ports(s),
                selector: str_map(s.pointer("/spec/selector")),
            })
            .collect(),
        pods: pods.iter().map(|p| pod_view(p)).collect(),
    }
}

fn ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("port")?.as_u64()?.try_into().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A pod as the model sees it (also the probe's client pod).
pub fn pod_view(pod: &Value) -> mesh::Pod {
    let labels = labels(pod);
    let app = containers(pod)
        .into_iter()
        .find_map(|c| {
            let image = c.get("image").and_then(Value::as_str)?;
            let (_, after) = image.split_once("examples-helloworld")?;
            let from_image = after
                .strip_prefix('-')
                .map(|v| v.split([':', '@']).next().unwrap_or_default().to_string())
                .filter(|v| !v.is_empty());
            let version = env_of(c, "SERVICE_VERSION")
                .or(from_image)
                .or_else(|| labels.get("version").cloned())
                .unwrap_or_default();
            Some(App::HelloWorld { version })
        })
        .unwrap_or(App::Other);
    let sidecar = annotation(pod, ANN_SIDECAR_STATUS).and_then(|_| {
        // An ordinary container, or a native sidecar (an init container).
        let inits = pod
            .pointer("/spec/initContainers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let proxy = containers(pod)
            .into_iter()
            .chain(inits)
            .find(|c| c.get("name").and_then(Value::as_str) == Some("istio-proxy"))?;
        Some(Sidecar {
            cluster_id: env_of(proxy, "ISTIO_META_CLUSTER_ID")
                .unwrap_or_else(|| mesh::DEFAULT_CLUSTER_ID.into()),
            network: env_of(proxy, "ISTIO_META_NETWORK").unwrap_or_default(),
            mesh_id: env_of(proxy, "ISTIO_META_MESH_ID").unwrap_or_default(),
            trust_domain: annotation(pod, ANN_PROXY_TRUST_DOMAIN)
                .unwrap_or(mesh::DEFAULT_TRUST_DOMAIN)
                .to_string(),
            trusted_roots: split_list(annotation(pod, ANN_PROXY_TRUSTED_ROOTS)),
            cert_root: annotation(pod, ANN_PROXY_CERT_ROOT)
                .unwrap_or_default()
                .to_string(),
        })
    });
    mesh::Pod {
        namespace: ns_of(pod),
        name: name_of(pod),
        ready: is_ready(pod),
        node: pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .map(str::to_string),
        labels,
        app,
        sidecar,
    }
}

/// The mesh config istiod reads (ConfigMap `istio`, or `istio-<rev>` for the serving istiod's
/// revision; key `mesh`), as JSON.
fn mesh_config(store: &Store) -> Value {
    let revision = serving_istiod_pod(store)
        .and_then(|p| {
            p.pointer("/metadata/labels/istio.io~1rev")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    get(
        store,
        "configmaps",
        Some(ISTIO_NAMESPACE),
        &super::install::revisioned("istio", &revision),
    )
    .or_else(|| get(store, "configmaps", Some(ISTIO_NAMESPACE), "istio"))
    .and_then(|cm| {
        let text = cm.pointer("/data/mesh")?.as_str()?;
        serde_yaml::from_str::<Value>(text).ok()
    })
    .unwrap_or(Value::Null)
}

/// The trust domain istiod signs for (`cluster.local` when unset).
pub fn trust_domain(store: &Store) -> String {
    mesh_config(store)
        .get("trustDomain")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(mesh::DEFAULT_TRUST_DOMAIN)
        .to_string()
}

fn istiod(clusters: &ClusterSet, store: &Store) -> Option<Istiod> {
    let pod = serving_istiod_pod(store)?;
    let mesh = mesh_config(store);
    let cluster_id = pod_cluster_id(&pod);
    Some(Istiod {
        remote_clusters: super::remote::registered(clusters, store, &cluster_id),
        cluster_id,
        mesh_id: mesh
            .pointer("/defaultConfig/meshId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        trust_domain: trust_domain(store),
        trust_domain_aliases: strings(mesh.get("trustDomainAliases")),
        ca: CaState {
            trusted_roots: split_list(annotation(&pod, ANN_TRUSTED_ROOTS)),
            signing_root: annotation(&pod, ANN_SIGNING_ROOT)
                .unwrap_or_default()
                .to_string(),
            source: if annotation(&pod, ANN_CA_MODE) == Some(MODE_PLUGGED_IN) {
                CaSource::PluggedIn
            } else {
                CaSource::SelfSigned
            },
        },
        external_istiod: istiod_env(&pod, "EXTERNAL_ISTIOD").as_deref() == Some("true"),
    })
}

/// The `istio-sidecar-injector` webhook's injection path (of its service or URL); `None`
/// without the webhook.
pub fn injection_path(store: &Store) -> Option<String> {
    let rt = store.resolve(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
    )?;
    let hook = store.get_arc(&rt, None, "istio-sidecar-injector").ok()?;
    let config = hook.pointer("/webhooks/0/clientConfig")?;
    let from_url = config.get("url").and_then(Value::as_str).map(|u| {
        // `https://host[:port]/path`: the path part.
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..]).to_string()
    });
    config
        .pointer("/service/path")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(from_url)
        .or(Some("/inject".into()))
}

/// `/inject/k1/v1/k2/v2` as env pairs (`cluster` -> `ISTIO_META_CLUSTER_ID`, `net` ->
/// `ISTIO_META_NETWORK`, others upper-cased; `--slash--` is `/`), FACTS 7.
pub fn injection_envs(path: &str) -> Vec<(String, String)> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .skip_while(|s| *s != "inject")
        .skip(1)
        .collect();
    segs.chunks(2)
        .filter_map(|kv| match kv {
            [k, v] if !k.is_empty() => {
                let key = match *k {
                    "cluster" => "ISTIO_META_CLUSTER_ID".to_string(),
                    "net" => "ISTIO_META_NETWORK".to_string(),
                    other => other.to_uppercase(),
                };
                Some((key, v.replace("--slash--", "/")))
            }
            _ => None,
        })
        .collect()
}

/// The merged install values (ConfigMap `values`, key `merged-values`).
fn merged_values(store: &Store) -> Value {
    get(store, "configmaps", Some(ISTIO_NAMESPACE), "values")
        .and_then(|cm| serde_json::from_str(cm.pointer("/data/merged-values")?.as_str()?).ok())
        .unwrap_or(Value::Null)
}

fn remote_profile(store: &Store) -> Option<RemoteProfile> {
    let deploy = store
        .resolve("apps", "v1", "deployments")
        .and_then(|rt| store.get_arc(&rt, Some(ISTIO_NAMESPACE), "istiod").ok());
    if deploy.is_some() {
        return None;
    }
    let values = merged_values(store);
    let remote = values.get("profile").and_then(Value::as_str) == Some("remote")
        || values.pointer("/istiodRemote/enabled") == Some(&Value::Bool(true));
    if !remote {
        return None;
    }
    let from_path = injection_path(store).and_then(|p| {
        injection_envs(&p)
            .into_iter()
            .find(|(k, _)| k == "ISTIO_META_CLUSTER_ID")
            .map(|(_, v)| v)
    });
    let cluster_id = from_path
        .or_else(|| {
            values
                .pointer("/global/multiCluster/clusterName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| mesh::DEFAULT_CLUSTER_ID.into());
    let from_slice = store
        .resolve("discovery.k8s.io", "v1", "endpointslices")
        .and_then(|rt| store.get_arc(&rt, Some(ISTIO_NAMESPACE), "istiod").ok())
        .and_then(|s| {
            s.pointer("/endpoints/0/addresses/0")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let from_name = get(store, "services", Some(ISTIO_NAMESPACE), "istiod").and_then(|s| {
        s.pointer("/spec/externalName")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let remote_pilot_address = from_slice
        .or(from_name)
        .or_else(|| {
            values
                .pointer("/global/remotePilotAddress")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    Some(RemoteProfile {
        cluster_id,
        remote_pilot_address,
    })
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn gateways(store: &Store, pods: &[Arc<Value>]) -> Vec<GatewayService> {
    list(store, "", "services", None)
        .iter()
        .filter_map(|s| {
            let l = labels(s);
            let network = l.get(mesh::NETWORK_LABEL).cloned();
            let eastwest = ns_of(s) == ISTIO_NAMESPACE && name_of(s) == "istio-eastwestgateway";
            if network.is_none() && !eastwest {
                return None;
            }
            let selector = str_map(s.pointer("/spec/selector"));
            let mut addresses: Vec<String> = strings(s.pointer("/spec/externalIPs"));
            if let Some(ingress) = s
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
            {
                for i in ingress {
                    if let Some(a) = i
                        .get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                    {
                        addresses.push(a.to_string());
                    }
                }
            }
            let ns = ns_of(s);
            let ready_pods = pods
                .iter()
                .filter(|p| ns_of(p) == ns && is_ready(p) && selects(&selector, &labels(p)))
                .count() as u32;
            Some(GatewayService {
                namespace: ns,
                name: name_of(s),
                network,
                gateway_port: l
                    .get("networking.istio.io/gatewayPort")
                    .and_then(|p| p.parse().ok()),
                addresses,
                ports: ports(s),
                pod_labels: selector,
                ready_pods,
            })
        })
        .collect()
}

fn istio_gateway(g: &Value) -> IstioGateway {
    IstioGateway {
        namespace: ns_of(g),
        name: name_of(g),
        selector: str_map(g.pointer("/spec/selector")),
        servers: g
            .pointer("/spec/servers")
            .and_then(Value::as_array)
            .map(|ss| {
                ss.iter()
                    .map(|s| GatewayServer {
                        port: s
                            .pointer("/port/number")
                            .and_then(Value::as_u64)
                            .and_then(|n| n.try_into().ok())
                            .unwrap_or(0),
                        protocol: s
                            .pointer("/port/protocol")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        tls_mode: s
                            .pointer("/tls/mode")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        hosts: strings(s.get("hosts")),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The strings of a JSON array (other items skipped); empty when absent.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn u32_at(v: &Value, key: &str) -> Option<u32> {
    let x = v.get(key)?;
    x.as_u64()
        .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| n.try_into().ok())
}

fn destination_rule(d: &Value) -> DestinationRule {
    let policy = d.pointer("/spec/trafficPolicy");
    let lb = policy.and_then(|p| p.pointer("/loadBalancer/localityLbSetting"));
    DestinationRule {
        namespace: ns_of(d),
        name: name_of(d),
        host: d
            .pointer("/spec/host")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        locality_lb: lb.map(|l| LocalityLbSetting {
            enabled: l.get("enabled").and_then(Value::as_bool),
            failover: l
                .get("failover")
                .and_then(Value::as_array)
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            let s = |k: &str| {
                                f.get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            (s("from"), s("to"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            failover_priority: strings(l.get("failoverPriority")),
            distribute: l
                .get("distribute")
                .and_then(Value::as_array)
                .map(|ds| {
                    ds.iter()
                        .map(|e| {
                            let from = e
                                .get("from")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string();
                            let to = e
                                .get("to")
                                .and_then(Value::as_object)
                                .map(|m| {
                                    m.iter()
                                        .filter_map(|(k, _)| {
                                            u32_at(e.get("to")?, k).map(|w| (k.clone(), w))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            (from, to)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }),
        // consecutiveErrors is ignored by istiod since 1.7 (FACTS 6): not mapped.
        outlier_detection: policy.and_then(|p| p.get("outlierDetection")).map(|o| {
            OutlierDetection {
                consecutive_5xx_errors: u32_at(o, "consecutive5xxErrors"),
                max_ejection_percent: u32_at(o, "maxEjectionPercent"),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &Store, obj: Value) {
        let rt = store
            .resolve_kind(
                obj["apiVersion"].as_str().unwrap(),
                obj["kind"].as_str().unwrap(),
            )
            .unwrap();
        store.create(&rt, obj, &Default::default()).unwrap();
    }

    #[test]
    fn istio_objects_namespace_labels_nodes_and_gateways() {
        use serde_json::json;
        let store = Store::new("c1");
        crate::bootstrap::populate(&store, "c1", &Locality::default(), "c1");
        for crd in crate::istio::crds::crds() {
            put(&store, crd);
        }
        let set = ClusterSet::default();
        set.fill(vec![("c1".into(), store.clone())]);
        put(
            &store,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system",
            "labels": {"topology.istio.io/network": "net1"},
            "annotations": {"topology.istio.io/controlPlaneClusters": "a, b"}}}),
        );
        put(
            &store,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1",
            "labels": {"topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": "z1"}}}),
        );
        put(
            &store,
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "dr", "namespace": "default"},
            "spec": {"host": "helloworld", "trafficPolicy": {
                "loadBalancer": {"localityLbSetting": {"enabled": true,
                    "failover": [{"from": "r1", "to": "r2"}],
                    "distribute": [{"from": "r1/*", "to": {"r1/*": 80, "r2/*": 20}}]}},
                "outlierDetection": {"consecutiveErrors": 1, "maxEjectionPercent": 50}}}}),
        );
        put(
            &store,
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "mesh", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}),
        );
        put(
            &store,
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "one", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "mtls": {"mode": "DISABLE"}}}),
        );
        put(
            &store,
            json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system"},
            "spec": {"type": "LoadBalancer", "selector": {"istio": "eastwestgateway"},
                     "ports": [{"port": 15443}], "externalIPs": ["1.2.3.4"]}}),
        );
        let view = build_view(&set);
        let c = view.cluster("c1").unwrap();
        assert_eq!(c.network.as_deref(), Some("net1"));
        assert_eq!(c.control_plane_clusters, vec!["a", "b"]);
        assert_eq!(c.nodes["n1"], Locality::new("r1", "z1", ""));
        assert!(c.istiod.is_none() && c.remote.is_none());
        let dr = &c.destination_rules[0];
        assert_eq!(dr.host, "helloworld");
        let lb = dr.locality_lb.as_ref().unwrap();
        assert_eq!(lb.enabled, Some(true));
        assert_eq!(lb.failover, vec![("r1".to_string(), "r2".to_string())]);
        assert_eq!(lb.distribute[0].1["r2/*"], 20);
        // consecutiveErrors is ignored; the block itself still counts.
        assert_eq!(
            dr.outlier_detection,
            Some(OutlierDetection {
                consecutive_5xx_errors: None,
                max_ejection_percent: Some(50)
            })
        );
        assert_eq!(c.peer_authentications.len(), 1);
        assert_eq!(c.peer_authentications[0].mode, MtlsMode::Strict);
        // The east-west gateway is listed even without its network label.
        assert_eq!(c.gateways.len(), 1);
        assert_eq!(c.gateways[0].network, None);
        assert_eq!(c.gateways[0].addresses, vec!["1.2.3.4"]);
        assert_eq!(c.gateways[0].ready_pods, 0);
    }

    #[test]
    fn injection_path_envs() {
        assert_eq!(
            injection_envs("/inject/cluster/cluster2/net/network2"),
            vec![
                ("ISTIO_META_CLUSTER_ID".to_string(), "cluster2".to_string()),
                ("ISTIO_META_NETWORK".to_string(), "network2".to_string())
            ]
        );
        assert_eq!(
            injection_envs("/inject/x/a--slash--b"),
            vec![("X".to_string(), "a/b".to_string())]
        );
        assert!(injection_envs("/inject").is_empty());
    }

    #[test]
    fn helloworld_version_from_env_image_or_label() {
        let pod = |image: &str, env: Option<&str>| {
            let mut c = serde_json::json!({"name": "helloworld", "image": image});
            if let Some(v) = env {
                c["env"] = serde_json::json!([{"name": "SERVICE_VERSION", "value": v}]);
            }
            serde_json::json!({"metadata": {"name": "p", "namespace": "s", "labels": {"version": "vL"}},
                "spec": {"containers": [c]}})
        };
        let v = |p: Value| match pod_view(&p).app {
            App::HelloWorld { version } => version,
            App::Other => "other".into(),
        };
        assert_eq!(
            v(pod(
                "registry.istio.io/release/examples-helloworld-v2:1.0",
                None
            )),
            "v2"
        );
        assert_eq!(
            v(pod(
                "registry.istio.io/release/examples-helloworld-v2:1.0",
                Some("v9")
            )),
            "v9"
        );
        assert_eq!(v(pod("example/examples-helloworld:1", None)), "vL");
        assert_eq!(v(pod("curlimages/curl", None)), "other");
    }
}
