//! Pure readings of Kubernetes objects into the snapshot's types.

use super::{
    Cacerts, Cert, DestinationRule, Gateway, GatewayService, InjectorWebhook, Istiod, Proxy,
    RemoteKubeconfig, RemoteSecret, Service, ServicePort,
};
use base64::Engine;
use serde_json::Value;
use sha2::Digest;
use std::collections::BTreeMap;

/// The remote secrets' annotation naming the cluster read.
pub const CLUSTER_ANNOTATION: &str = "networking.istio.io/cluster";
/// The network label (namespace, gateway Service).
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
/// The injector's record on every pod it injected.
const INJECTED_ANNOTATION: &str = "sidecar.istio.io/status";
/// The sidecar's container name.
const PROXY_CONTAINER: &str = "istio-proxy";

/// The certificates in PEM `text`, in order.
pub fn cert_list(text: &str) -> Vec<Cert> {
    crate::ca::cert_bodies(text)
        .iter()
        .filter_map(|body| base64::engine::general_purpose::STANDARD.decode(body).ok())
        .map(|der| cert_of(&der))
        .collect()
}

fn cert_of(der: &[u8]) -> Cert {
    let fingerprint = format!("sha256:{}", hex::encode(sha2::Sha256::digest(der)));
    let subject = match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(_) => "an unreadable certificate".to_string(),
    };
    Cert {
        subject,
        fingerprint,
    }
}

/// A Secret's data value, decoded as text.
fn data_text(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret.pointer("/data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

fn data_keys(secret: &Value) -> Vec<String> {
    let mut keys: Vec<String> = secret
        .pointer("/data")
        .and_then(Value::as_object)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn name_of(v: &Value) -> String {
    str_at(v, "/metadata/name").unwrap_or("?").to_string()
}

fn namespace_of(v: &Value) -> String {
    str_at(v, "/metadata/namespace").unwrap_or("").to_string()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `cacerts`: its key names and certificates; `ca-key.pem` is never decoded.
pub fn cacerts(secret: &Value) -> Cacerts {
    Cacerts {
        keys: data_keys(secret),
        root: data_text(secret, "root-cert.pem")
            .map(|t| cert_list(&t))
            .unwrap_or_default(),
        chain: data_text(secret, "cert-chain.pem")
            .map(|t| cert_list(&t))
            .unwrap_or_default(),
    }
}

/// A remote secret: each data key's kubeconfig read for server, CA and
/// whether credentials are present; the credentials themselves dropped.
pub fn remote_secret(secret: &Value) -> RemoteSecret {
    let keys = data_keys(secret);
    let kubeconfigs = keys
        .iter()
        .map(|key| match data_text(secret, key) {
            Some(text) => kubeconfig(key, &text),
            None => RemoteKubeconfig {
                key: key.clone(),
                server: None,
                ca: None,
                ca_file: false,
                insecure: false,
                has_credentials: false,
                error: Some("not base64-encoded UTF-8 text".into()),
            },
        })
        .collect();
    RemoteSecret {
        name: name_of(secret),
        annotation: secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CLUSTER_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_string),
        keys,
        kubeconfigs,
    }
}

/// The current context's cluster and user of a kubeconfig, reduced to what
/// the checks need. A parse error never quotes the text (it holds a token).
fn kubeconfig(key: &str, text: &str) -> RemoteKubeconfig {
    let mut out = RemoteKubeconfig {
        key: key.to_string(),
        server: None,
        ca: None,
        ca_file: false,
        insecure: false,
        has_credentials: false,
        error: None,
    };
    let doc: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(_) => {
            out.error = Some(
                "not valid kubeconfig YAML (its text is not shown: it holds credentials)".into(),
            );
            return out;
        }
    };
    let doc: Value = match serde_json::to_value(doc) {
        Ok(doc) => doc,
        Err(_) => {
            out.error = Some("not a kubeconfig document".into());
            return out;
        }
    };
    let named = |list: &str, name: Option<&str>| -> Option<Value> {
        let items = doc.get(list)?.as_array()?;
        match name {
            Some(n) => items
                .iter()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(n))
                .cloned(),
            None => items.first().cloned(),
        }
    };
    let current = doc.get("current-context").and_then(Value::as_str);
    let context = named("contexts", current);
    let cluster_name = context
        .as_ref()
        .and_then(|c| str_at(c, "/context/cluster"))
        .map(str::to_string);
    let user_name = context
        .as_ref()
        .and_then(|c| str_at(c, "/context/user"))
        .map(str::to_string);
    let Some(cluster) = named("clusters", cluster_name.as_deref()) else {
        out.error = Some("no cluster entry for its current context".into());
        return out;
    };
    out.server = str_at(&cluster, "/cluster/server").map(str::to_string);
    out.insecure = cluster
        .pointer("/cluster/insecure-skip-tls-verify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    out.ca_file = str_at(&cluster, "/cluster/certificate-authority").is_some();
    out.ca = str_at(&cluster, "/cluster/certificate-authority-data")
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|pem| String::from_utf8(pem).ok())
        .and_then(|pem| {
            let certs = cert_list(&pem);
            let ders: Vec<Vec<u8>> = crate::ca::cert_bodies(&pem)
                .iter()
                .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .collect();
            if certs.is_empty() {
                None
            } else {
                crate::cluster::ca_fingerprint(&ders)
            }
        });
    if let Some(user) = named("users", user_name.as_deref()) {
        out.has_credentials = [
            "token",
            "tokenFile",
            "client-certificate-data",
            "client-certificate",
            "exec",
            "auth-provider",
        ]
        .iter()
        .any(|k| {
            user.pointer(&format!("/user/{k}"))
                .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
        });
    }
    out
}

/// An istiod Deployment.
pub fn istiod(deployment: &Value) -> Istiod {
    let plane = crate::cluster::inventory::revisions::control_plane(deployment);
    Istiod {
        deployment: plane.deployment,
        revision: plane.revision,
        version: plane.version,
        cluster_id: crate::cluster::inventory::env(deployment, "CLUSTER_ID").map(str::to_string),
    }
}

/// The east-west gateway among the control plane's Services: the one
/// labelled `istio: eastwestgateway`, else the one named `istio-eastwestgateway`.
pub fn eastwest(services: &[Value]) -> Option<GatewayService> {
    let found = services
        .iter()
        .find(|s| str_at(s, "/metadata/labels/istio") == Some("eastwestgateway"))
        .or_else(|| {
            services
                .iter()
                .find(|s| name_of(s) == "istio-eastwestgateway")
        })?;
    let mut addresses: Vec<String> = found
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    addresses.extend(
        found
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string)),
    );
    Some(GatewayService {
        name: name_of(found),
        network: found
            .pointer("/metadata/labels")
            .and_then(|l| l.get(NETWORK_LABEL))
            .and_then(Value::as_str)
            .map(str::to_string),
        addresses,
        ports: found
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("port")?.as_u64().and_then(|p| u16::try_from(p).ok()))
            .collect(),
        selector: string_map(found.pointer("/spec/selector")),
    })
}

/// An Istio Gateway.
pub fn gateway(object: &Value) -> Gateway {
    let passthrough_15443 = object
        .pointer("/spec/servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| {
            s.pointer("/port/number").and_then(Value::as_u64) == Some(15443)
                && str_at(s, "/tls/mode") == Some("AUTO_PASSTHROUGH")
        });
    Gateway {
        namespace: namespace_of(object),
        name: name_of(object),
        selector: string_map(object.pointer("/spec/selector")),
        passthrough_15443,
    }
}

/// A DestinationRule: its failover and outlier detection, top level and per port.
pub fn destination_rule(object: &Value) -> DestinationRule {
    let mut policies: Vec<(String, &Value)> = Vec::new();
    if let Some(p) = object.pointer("/spec/trafficPolicy") {
        policies.push(("spec.trafficPolicy".into(), p));
        for (i, port) in p
            .get("portLevelSettings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            policies.push((format!("spec.trafficPolicy.portLevelSettings[{i}]"), port));
        }
    }
    for (i, subset) in object
        .pointer("/spec/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(p) = subset.get("trafficPolicy") {
            policies.push((format!("spec.subsets[{i}].trafficPolicy"), p));
        }
    }
    let has_failover = |p: &Value| {
        let Some(l) = p.pointer("/loadBalancer/localityLbSetting") else {
            return false;
        };
        let non_empty = |k: &str| {
            l.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        l.get("enabled").and_then(Value::as_bool) != Some(false)
            && (non_empty("failover") || non_empty("failoverPriority"))
    };
    let top_outlier = object
        .pointer("/spec/trafficPolicy/outlierDetection")
        .is_some();
    let failing: Vec<&(String, &Value)> =
        policies.iter().filter(|(_, p)| has_failover(p)).collect();
    DestinationRule {
        namespace: namespace_of(object),
        name: name_of(object),
        host: str_at(object, "/spec/host").unwrap_or("").to_string(),
        failover: !failing.is_empty(),
        outlier_with_failover: failing
            .iter()
            .all(|(_, p)| p.get("outlierDetection").is_some() || top_outlier),
        consecutive_errors: policies
            .iter()
            .filter(|(_, p)| p.pointer("/outlierDetection/consecutiveErrors").is_some())
            .map(|(path, _)| format!("{path}.outlierDetection.consecutiveErrors"))
            .collect(),
    }
}

/// A Service.
pub fn service(object: &Value) -> Service {
    let mut ports: Vec<ServicePort> = object
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(ServicePort {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                port: u16::try_from(p.get("port")?.as_u64()?).ok()?,
                protocol: p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string(),
            })
        })
        .collect();
    ports.sort();
    Service {
        namespace: namespace_of(object),
        name: name_of(object),
        kind: str_at(object, "/spec/type")
            .unwrap_or("ClusterIP")
            .to_string(),
        headless: str_at(object, "/spec/clusterIP") == Some("None"),
        ports,
    }
}

/// The sidecar injection webhooks of a MutatingWebhookConfiguration.
pub fn injectors(configuration: &Value) -> Vec<InjectorWebhook> {
    let name = name_of(configuration);
    configuration
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|w| {
            let wname = w.get("name").and_then(Value::as_str).unwrap_or("");
            wname.contains("sidecar-injector.istio.io")
                || name.starts_with("istio-sidecar-injector")
        })
        .map(|w| InjectorWebhook {
            configuration: name.clone(),
            webhook: w
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            url: str_at(w, "/clientConfig/url").map(str::to_string),
            service: w.pointer("/clientConfig/service").map(|s| {
                format!(
                    "{}/{}",
                    str_at(s, "/namespace").unwrap_or("?"),
                    str_at(s, "/name").unwrap_or("?")
                )
            }),
            ca_bundle: str_at(w, "/clientConfig/caBundle").is_some_and(|b| !b.is_empty()),
        })
        .collect()
}

/// An injected pod's identity; None for a pod the injector did not touch
/// (no `sidecar.istio.io/status`): gateways render their own env from the
/// gateway install, whose clusterName is not the sidecars'.
pub fn proxy(pod: &Value) -> Option<Proxy> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(INJECTED_ANNOTATION))?;
    let containers = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten();
    let sidecar = containers
        .into_iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY_CONTAINER))?;
    let env = |key: &str| {
        sidecar
            .get("env")
            .and_then(Value::as_array)?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(key))?
            .get("value")?
            .as_str()
            .map(str::to_string)
    };
    let workload = pod.pointer("/metadata/ownerReferences/0").map(|o| {
        let name = str_at(o, "/name").unwrap_or("?");
        match str_at(o, "/kind") {
            // Deployment `x` owns ReplicaSet `x-<hash>`.
            Some("ReplicaSet") => name.rsplit_once('-').map_or(name, |(d, _)| d).to_string(),
            _ => name.to_string(),
        }
    });
    Some(Proxy {
        namespace: namespace_of(pod),
        pod: name_of(pod),
        workload,
        cluster_id: env("ISTIO_META_CLUSTER_ID"),
        network: env("ISTIO_META_NETWORK"),
        mesh_id: env("ISTIO_META_MESH_ID"),
    })
}

/// `global.<key>` of a `values` ConfigMap's merged values.
pub fn values_global(values: &Value, key: &str) -> Option<String> {
    let merged = str_at(values, "/data/merged-values")?;
    let doc: Value = serde_json::from_str(merged).ok()?;
    doc.pointer(&format!("/global/{key}"))?
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The mesh config (YAML) of an `istio` ConfigMap, as JSON.
pub fn mesh_config(config_map: &Value) -> Option<Value> {
    let text = str_at(config_map, "/data/mesh")?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    serde_json::to_value(yaml).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn a_remote_secret_keeps_server_and_ca_presence_and_drops_the_token() {
        let kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: c2\n  cluster:\n    server: https://10.0.0.2:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c2\n  context: {cluster: c2, user: c2}\ncurrent-context: c2\nusers:\n- name: c2\n  user:\n    token: sekret-token\n";
        let secret = json!({"metadata": {"name": "istio-remote-secret-c2", "annotations": {CLUSTER_ANNOTATION: "c2"}},
            "data": {"c2": b64(kc)}});
        let r = remote_secret(&secret);
        assert_eq!(r.annotation.as_deref(), Some("c2"));
        let k = &r.kubeconfigs[0];
        assert_eq!(k.server.as_deref(), Some("https://10.0.0.2:6443"));
        assert!(k.insecure && k.has_credentials && k.ca.is_none() && k.error.is_none());
        assert!(!format!("{r:?}").contains("sekret"));
    }

    #[test]
    fn unparsable_kubeconfig_text_is_not_quoted() {
        let secret = json!({"metadata": {"name": "s"}, "data": {"c2": b64("token: sekret: [")}});
        let r = remote_secret(&secret);
        let err = r.kubeconfigs[0].error.clone().unwrap();
        assert!(!err.contains("sekret"), "{err}");
    }

    #[test]
    fn failover_without_outlier_detection_is_seen_per_policy() {
        let dr = json!({"metadata": {"name": "h", "namespace": "n"}, "spec": {"host": "h",
            "trafficPolicy": {"loadBalancer": {"localityLbSetting": {"enabled": true, "failoverPriority": ["topology.kubernetes.io/region"]}}}}});
        let r = destination_rule(&dr);
        assert!(r.failover && !r.outlier_with_failover);
        let ok = json!({"metadata": {"name": "h", "namespace": "n"}, "spec": {"host": "h",
            "trafficPolicy": {"loadBalancer": {"localityLbSetting": {"failover": [{"from": "a", "to": "b"}]}},
                "outlierDetection": {"consecutiveErrors": 1}}}});
        let r = destination_rule(&ok);
        assert!(r.failover && r.outlier_with_failover);
        assert_eq!(
            r.consecutive_errors,
            vec!["spec.trafficPolicy.outlierDetection.consecutiveErrors"]
        );
    }

    #[test]
    fn a_pod_the_injector_did_not_touch_is_no_proxy() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [{"name": "app"}]}});
        assert!(proxy(&pod).is_none());
        let pod = json!({"metadata": {"name": "p", "namespace": "n",
                "annotations": {INJECTED_ANNOTATION: "{}"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f"}]},
            "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy", "env": [{"name": "ISTIO_META_CLUSTER_ID", "value": "c1"}]}]}});
        let p = proxy(&pod).unwrap();
        assert_eq!(
            (p.workload.as_deref(), p.cluster_id.as_deref()),
            (Some("web"), Some("c1"))
        );
    }
}
