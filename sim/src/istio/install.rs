//! What `istioctl install -f IOP` puts in a cluster, as a pure function from
//! an IstioOperator to objects (FACTS.md 1.5, 2.1, 3.1, 4.1, 4.2, 7).
//!
//! Profiles: `default` (istiod + ingress gateway), `minimal` (istiod),
//! `empty` (only the listed components, as the east-west gateway IOP uses),
//! `remote` (no istiod: the injector webhook and an `istiod` Service that
//! points at the primary's east-west gateway).
//!
//! Revisions (`spec.revision` or `values.revision`): a control plane of
//! revision `1-26-4` is Deployment and Service `istiod-1-26-4`, ConfigMaps
//! `istio-1-26-4`, `istio-sidecar-injector-1-26-4` and `values-1-26-4`, and a
//! webhook `istio-sidecar-injector-1-26-4` that selects namespaces labelled
//! `istio.io/rev=1-26-4`, as Istio's charts name them. The default revision
//! keeps the bare names.

use serde_json::{Map, Value, json};

/// The Istio release the stand-in plays (istioctl's client version, image tags, labels).
pub const VERSION: &str = "1.30.3";
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// Every object istioctl installs carries these labels. `uninstall -f` finds
/// them by owner and component, `uninstall --purge` by component alone.
pub const OWNER_LABEL: &str = "install.operator.istio.io/owning-resource";
pub const OWNER_NAMESPACE_LABEL: &str = "install.operator.istio.io/owning-resource-namespace";
pub const COMPONENT_LABEL: &str = "operator.istio.io/component";
/// Every object istioctl manages; install prunes among these.
pub const MANAGED_LABEL: &str = "operator.istio.io/managed";
pub const VERSION_LABEL: &str = "operator.istio.io/version";
/// The owner name when the IstioOperator has none (the charts' default).
pub const UNNAMED_OWNER: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error(
        "{0}: not an IstioOperator (expected apiVersion install.istio.io/v1alpha1, kind IstioOperator)"
    )]
    NotAnIop(String),
    #[error(
        "unsupported profile {0:?} (this istioctl knows default, minimal, empty, remote, demo)"
    )]
    UnknownProfile(String),
    #[error("invalid IstioOperator: {0}")]
    Invalid(String),
}

/// The IstioOperator, read for what installing it means.
#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    pub name: String,
    pub profile: String,
    pub version: String,
    pub values: Value,
    pub mesh_config: Value,
    /// `values.global.multiCluster.clusterName`, or `Kubernetes` (istiod's default CLUSTER_ID).
    pub cluster_id: String,
    pub mesh_id: String,
    pub network: String,
    pub trust_domain: String,
    pub istiod: bool,
    pub remote: bool,
    pub gateways: Vec<Value>,
    /// The control plane's revision; empty for the default one.
    pub revision: String,
}

/// `base` for the default revision, `base-<revision>` otherwise (Istio's naming).
pub fn revisioned(base: &str, revision: &str) -> String {
    if revision.is_empty() || revision == "default" {
        base.to_string()
    } else {
        format!("{base}-{revision}")
    }
}

/// The value of the `istio.io/rev` label for a revision (`default` when empty).
pub fn rev_label(revision: &str) -> &str {
    if revision.is_empty() {
        "default"
    } else {
        revision
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

fn get_str(v: &Value, path: &[&str]) -> String {
    get(v, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Install {
    /// Reads an IstioOperator document. `version` is the istioctl version
    /// (image tags and the version label).
    pub fn from_iop(iop: &Value, version: &str) -> Result<Install, InstallError> {
        let api = get_str(iop, &["apiVersion"]);
        if get_str(iop, &["kind"]) != "IstioOperator" || !api.starts_with("install.istio.io/") {
            return Err(InstallError::NotAnIop(if api.is_empty() {
                "document".into()
            } else {
                api
            }));
        }
        let spec = iop.get("spec").cloned().unwrap_or(json!({}));
        let profile = match get_str(&spec, &["profile"]).as_str() {
            "" => "default".to_string(),
            p @ ("default" | "minimal" | "empty" | "remote" | "demo") => p.to_string(),
            other => return Err(InstallError::UnknownProfile(other.into())),
        };
        let values = spec.get("values").cloned().unwrap_or(json!({}));
        let mesh_config = spec.get("meshConfig").cloned().unwrap_or(json!({}));
        let remote =
            profile == "remote" || get(&values, &["istiodRemote", "enabled"]) == Some(&json!(true));
        let pilot_enabled =
            get(&spec, &["components", "pilot", "enabled"]).and_then(Value::as_bool);
        let istiod = !remote && pilot_enabled.unwrap_or(profile != "empty");
        let listed: Vec<Value> = get(&spec, &["components", "ingressGateways"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // The default and demo profiles bring istio-ingressgateway unless the
        // operator lists it (enabled or not: `enabled: false` turns it off).
        let default_gateway = (profile == "default" || profile == "demo")
            && !listed
                .iter()
                .any(|g| get_str(g, &["name"]) == "istio-ingressgateway");
        let mut gateways: Vec<Value> = listed
            .into_iter()
            .filter(|g| g.get("enabled").and_then(Value::as_bool).unwrap_or(true))
            .collect();
        if default_gateway {
            gateways.insert(
                0,
                json!({"name": "istio-ingressgateway", "enabled": true,
                "label": {"istio": "ingressgateway", "app": "istio-ingressgateway"}}),
            );
        }
        for g in &gateways {
            if get_str(g, &["name"]).is_empty() {
                return Err(InstallError::Invalid(
                    "spec.components.ingressGateways[].name is required".into(),
                ));
            }
        }
        let trust_domain = match get_str(&mesh_config, &["trustDomain"]) {
            t if t.is_empty() => "cluster.local".to_string(),
            t => t,
        };
        let cluster_id = match get_str(&values, &["global", "multiCluster", "clusterName"]) {
            c if c.is_empty() => "Kubernetes".to_string(),
            c => c,
        };
        let mut revision = get_str(&spec, &["revision"]);
        if revision.is_empty() {
            revision = get_str(&values, &["revision"]);
        }
        if revision == "default" {
            revision.clear();
        }
        Ok(Install {
            revision,
            name: match get_str(iop, &["metadata", "name"]) {
                n if n.is_empty() => UNNAMED_OWNER.into(),
                n => n,
            },
            profile,
            version: version.to_string(),
            mesh_id: get_str(&values, &["global", "meshID"]),
            network: get_str(&values, &["global", "network"]),
            trust_domain,
            cluster_id,
            istiod,
            remote,
            gateways,
            values,
            mesh_config,
        })
    }

    fn labels(&self, component: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(OWNER_LABEL.into(), json!(self.name));
        m.insert(OWNER_NAMESPACE_LABEL.into(), json!(ISTIO_NAMESPACE));
        m.insert(COMPONENT_LABEL.into(), json!(component));
        m.insert(VERSION_LABEL.into(), json!(self.version));
        m.insert(MANAGED_LABEL.into(), json!("Reconcile"));
        m.insert("istio.io/rev".into(), json!(rev_label(&self.revision)));
        m
    }

    fn meta(&self, name: &str, namespaced: bool, component: &str, extra: Value) -> Value {
        let mut labels = self.labels(component);
        if let Some(e) = extra.as_object() {
            labels.extend(e.clone());
        }
        let mut meta = json!({"name": name, "labels": labels});
        if namespaced {
            meta["namespace"] = json!(ISTIO_NAMESPACE);
        }
        meta
    }

    /// Every object the install creates or updates, in apply order. The
    /// Namespace is only created when absent, then labelled with the
    /// network if one is set (istioctl's `CreateNamespace`): an existing
    /// namespace is never labelled (FACTS 4.1). CustomResourceDefinitions
    /// are never meant to replace one already served.
    pub fn objects(&self) -> Vec<Value> {
        let mut namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE}});
        if !self.network.is_empty() {
            namespace["metadata"]["labels"] = json!({"topology.istio.io/network": self.network});
        }
        let mut out = vec![namespace];
        if self.istiod || self.remote {
            out.extend(self.crds());
            out.extend(self.reader_rbac());
            out.push(self.values_configmap());
        }
        if self.istiod {
            out.push(self.mesh_configmap());
            out.push(self.injector_configmap());
            out.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": self.meta(&self.istiod_name(), true, "Pilot", json!({"app": "istiod"}))}));
            out.push(self.istiod_deployment());
            out.push(self.istiod_service());
        }
        if self.remote {
            out.extend(self.remote_istiod_service());
        }
        if self.istiod || self.remote {
            out.push(self.injector_webhook());
        }
        for g in &self.gateways {
            out.extend(self.gateway(g));
        }
        out
    }

    /// The base component's CRDs: Istio's kinds with structural schemas
    /// ([`crate::istio::crds`]). `IstioOperator` is not among them: neither
    /// istioctl nor Helm installs it since 1.21 (FACTS 4.2).
    fn crds(&self) -> Vec<Value> {
        crate::istio::crds::crds()
            .into_iter()
            .map(|mut crd| {
                crd["metadata"]["labels"] = Value::Object(self.labels("Base"));
                crd
            })
            .collect()
    }

    /// The selector of istiod's pods: `key: value` for the default revision (as the
    /// stand-in always rendered it, so state recorded by earlier releases restores
    /// exactly), plus `istio.io/rev` for a revision, so two control planes never share pods.
    fn istiod_selector(&self, key: &str, value: &str) -> Value {
        let mut selector = json!({ key: value });
        if !self.revision.is_empty() {
            selector["istio.io/rev"] = json!(self.revision);
        }
        selector
    }

    /// `istiod` or `istiod-<revision>`.
    pub fn istiod_name(&self) -> String {
        revisioned("istiod", &self.revision)
    }

    fn reader_rbac(&self) -> Vec<Value> {
        let name = format!("istio-reader-clusterrole-{ISTIO_NAMESPACE}");
        let mut rules = vec![
            json!({"apiGroups": ["config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io",
                                 "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"],
                   "resources": ["*"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": [""], "resources": ["endpoints", "pods", "services", "nodes", "replicationcontrollers",
                                                     "namespaces", "secrets", "configmaps"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["networking.istio.io"], "resources": ["workloadentries"], "verbs": ["get", "watch", "list"]}),
            json!({"apiGroups": ["networking.x-k8s.io", "gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get", "watch", "list"]}),
            json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"], "verbs": ["get", "list", "watch", "create", "delete"]}),
            json!({"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}),
            json!({"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}),
        ];
        if self.remote {
            rules.push(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "watch", "update"]}));
            rules.push(json!({"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
                              "verbs": ["get", "list", "watch", "update", "patch"]}));
            rules.push(json!({"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
                              "verbs": ["get", "list", "watch", "update"]}));
        }
        let reader_labels =
            json!({"app": "istio-reader", "app.kubernetes.io/name": "istio-reader"});
        vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": self.meta("istio-reader-service-account", true, "Base", reader_labels.clone())}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": self.meta(&name, false, "Pilot", reader_labels.clone()), "rules": rules}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": self.meta(&name, false, "Pilot", reader_labels),
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": "istio-reader-service-account", "namespace": ISTIO_NAMESPACE}]}),
        ]
    }

    /// `values` (1.26+): what the user asked for, and the merged result.
    fn values_configmap(&self) -> Value {
        let merged = json!({"global": {"meshID": self.mesh_id, "network": self.network,
            "multiCluster": {"clusterName": self.cluster_id}, "istioNamespace": ISTIO_NAMESPACE},
            "profile": self.profile, "revision": self.revision});
        let mut merged_all = self.values.clone();
        merge_into(&mut merged_all, &merged);
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": revisioned("values", &self.revision), "namespace": ISTIO_NAMESPACE, "labels": self.labels("Pilot"),
                     "annotations": {"kubernetes.io/description": "This ConfigMap contains the Helm values used during chart rendering. This ConfigMap is rendered for debugging purposes and external tooling; modifying these values has no effect."}},
        "data": {
            "original-values": json!({"spec": {"profile": self.profile, "values": self.values, "meshConfig": self.mesh_config}}).to_string(),
            "merged-values": merged_all.to_string(),
        }})
    }

    /// The `istio` ConfigMap: mesh config (YAML) and meshNetworks.
    fn mesh_configmap(&self) -> Value {
        let mut mesh = json!({
            "defaultConfig": {"discoveryAddress": format!("{}.istio-system.svc:15012", self.istiod_name()), "meshId": self.mesh_id_or_domain()},
            "defaultProviders": {"metrics": ["prometheus"]},
            "enablePrometheusMerge": true,
            "rootNamespace": ISTIO_NAMESPACE,
            "trustDomain": self.trust_domain,
        });
        merge_into(&mut mesh, &self.mesh_config);
        let mesh_yaml = serde_yaml::to_string(&mesh).unwrap_or_default();
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": self.meta(&revisioned("istio", &self.revision), true, "Pilot", json!({"app": "istiod"})),
            "data": {"mesh": mesh_yaml, "meshNetworks": "networks: {}"}})
    }

    fn mesh_id_or_domain(&self) -> String {
        if self.mesh_id.is_empty() {
            self.trust_domain.clone()
        } else {
            self.mesh_id.clone()
        }
    }

    /// `istio-sidecar-injector`: the values the injector bakes into every pod.
    fn injector_configmap(&self) -> Value {
        let values = json!({
            "global": {
                "meshID": self.mesh_id,
                "network": self.network,
                "multiCluster": {"clusterName": self.cluster_id},
                "istioNamespace": ISTIO_NAMESPACE,
                "tag": self.version,
                "hub": "docker.io/istio",
                "proxy": {"image": "proxyv2"},
            },
            "revision": self.revision,
            "sidecarInjectorWebhook": {"enableNamespacesByDefault": false},
        });
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": self.meta(&revisioned("istio-sidecar-injector", &self.revision), true, "Pilot", json!({"app": "sidecar-injector"})),
            "data": {"values": values.to_string(), "config": "defaultTemplates: [sidecar]\npolicy: enabled\n"}})
    }

    fn istiod_deployment(&self) -> Value {
        let mut env = vec![
            json!({"name": "REVISION", "value": rev_label(&self.revision)}),
            json!({"name": "PILOT_CERT_PROVIDER", "value": "istiod"}),
            json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
            json!({"name": "CLUSTER_ID", "value": self.cluster_id}),
        ];
        if get(&self.values, &["global", "externalIstiod"]) == Some(&json!(true)) {
            env.push(json!({"name": "EXTERNAL_ISTIOD", "value": "true"}));
        }
        if let Some(extra) = get(&self.values, &["pilot", "env"]).and_then(Value::as_object) {
            for (k, v) in extra {
                let value = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                env.retain(|e| e["name"] != json!(k));
                env.push(json!({"name": k, "value": value}));
            }
        }
        let rev = rev_label(&self.revision);
        let labels = json!({"app": "istiod", "istio": "pilot", "istio.io/rev": rev});
        // The chart's `pilot.replicaCount` (default 1): each replica syncs remote clusters on its own.
        let replicas = get(&self.values, &["pilot", "replicaCount"])
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .unwrap_or(1);
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": self.meta(&self.istiod_name(), true, "Pilot", json!({"app": "istiod", "istio": "pilot"})),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": self.istiod_selector("istio", "pilot")},
            "template": {
                "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": self.istiod_name(),
                    "containers": [{
                        "name": "discovery",
                        "image": format!("docker.io/istio/pilot:{}", self.version),
                        "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info", "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 15010, "protocol": "TCP"},
                                  {"containerPort": 15017, "protocol": "TCP"}],
                        "env": env,
                        "volumeMounts": [{"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": true}]
                    }],
                    "volumes": [{"name": "cacerts", "secret": {"secretName": "cacerts", "optional": true}}]
                }
            }
        }})
    }

    fn istiod_service(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": self.meta(&self.istiod_name(), true, "Pilot", json!({"app": "istiod", "istio": "pilot"})),
            "spec": {"selector": self.istiod_selector("app", "istiod"), "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]}})
    }

    /// Remote profile: `istiod` in the remote points at the primary's
    /// east-west gateway (an IP gives Service + EndpointSlice, a hostname an
    /// ExternalName Service).
    fn remote_istiod_service(&self) -> Vec<Value> {
        let address = get_str(&self.values, &["global", "remotePilotAddress"]);
        let ports = json!([{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"},
                           {"name": "tcp-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"}]);
        if address.parse::<std::net::IpAddr>().is_ok() {
            vec![
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": self.meta("istiod", true, "Pilot", json!({"app": "istiod"})),
                    "spec": {"ports": ports, "clusterIP": "None"}}),
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": self.meta("istiod", true, "Pilot", json!({"kubernetes.io/service-name": "istiod"})),
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [address]}],
                    "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"},
                              {"name": "tcp-webhook", "port": 15017, "protocol": "TCP"}]}),
            ]
        } else {
            vec![json!({"apiVersion": "v1", "kind": "Service",
                "metadata": self.meta("istiod", true, "Pilot", json!({"app": "istiod"})),
                "spec": {"type": "ExternalName", "externalName": address, "ports": ports}})]
        }
    }

    fn injector_webhook(&self) -> Value {
        let client_config = match get_str(&self.values, &["istiodRemote", "injectionURL"]) {
            url if !url.is_empty() => json!({"url": url}),
            _ => {
                let path = match get_str(&self.values, &["istiodRemote", "injectionPath"]) {
                    p if !p.is_empty() => p,
                    _ => "/inject".to_string(),
                };
                json!({"service": {"name": self.istiod_name(), "namespace": ISTIO_NAMESPACE, "path": path, "port": 443}})
            }
        };
        // The default revision answers `istio-injection=enabled`; a revision
        // answers `istio.io/rev=<revision>` where no `istio-injection` is set.
        let (name, hook, selector) = if self.revision.is_empty() {
            (
                "namespace.sidecar-injector.istio.io",
                "istio-sidecar-injector".to_string(),
                json!({"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}),
            )
        } else {
            (
                "rev.namespace.sidecar-injector.istio.io",
                revisioned("istio-sidecar-injector", &self.revision),
                json!({"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [self.revision]},
                                         {"key": "istio-injection", "operator": "DoesNotExist"}]}),
            )
        };
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": self.meta(&hook, false, "Pilot", json!({"app": "sidecar-injector"})),
        "webhooks": [{
            "name": name,
            "clientConfig": client_config,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "namespaceSelector": selector
        }]})
    }

    fn gateway(&self, g: &Value) -> Vec<Value> {
        let name = get_str(g, &["name"]);
        let mut labels = get(g, &["label"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.entry("app".to_string()).or_insert(json!(name));
        labels
            .entry("istio".to_string())
            .or_insert(json!(name.trim_start_matches("istio-")));
        let ports = get(g, &["k8s", "service", "ports"])
            .cloned()
            .unwrap_or_else(|| {
                json!([{"name": "status-port", "port": 15021, "targetPort": 15021},
                   {"name": "http2", "port": 80, "targetPort": 8080},
                   {"name": "https", "port": 443, "targetPort": 8443}])
            });
        let mut env = vec![json!({"name": "ISTIO_META_CLUSTER_ID", "value": self.cluster_id})];
        if !self.network.is_empty() {
            env.push(json!({"name": "ISTIO_META_NETWORK", "value": self.network}));
        }
        if let Some(extra) = get(g, &["k8s", "env"]).and_then(Value::as_array) {
            env.extend(extra.iter().cloned());
        }
        let selector: Map<String, Value> = labels
            .iter()
            .filter(|(k, _)| *k == "app" || *k == "istio")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let container_ports: Vec<Value> = ports
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| json!({"containerPort": p.get("targetPort").or(p.get("port")).cloned().unwrap_or(json!(0)), "protocol": "TCP"}))
                    .collect()
            })
            .unwrap_or_default();
        vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": self.meta(&format!("{name}-service-account"), true, "IngressGateways", Value::Object(labels.clone()))}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": self.meta(&name, true, "IngressGateways", Value::Object(labels.clone())),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                    "spec": {
                        "serviceAccountName": format!("{name}-service-account"),
                        "containers": [{"name": "istio-proxy", "image": format!("docker.io/istio/proxyv2:{}", self.version),
                                        "args": ["proxy", "router"], "env": env, "ports": container_ports}]
                    }
                }
            }}),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": self.meta(&name, true, "IngressGateways", Value::Object(labels)),
                "spec": {"type": "LoadBalancer", "selector": selector, "ports": ports}}),
        ]
    }
}

/// The MutatingWebhookConfiguration `istio-revision-tag-<tag>` that `istioctl tag set <tag>
/// --revision <revision>` writes: namespaces labelled `istio.io/rev=<tag>` are injected by
/// `istiod-<revision>`; the `default` tag also answers `istio-injection=enabled`.
pub fn revision_tag_webhook(tag: &str, revision: &str) -> Value {
    let service = json!({"name": revisioned("istiod", revision), "namespace": ISTIO_NAMESPACE,
                         "path": "/inject", "port": 443});
    let hook = |name: &str, selector: Value| {
        json!({"name": name, "clientConfig": {"service": service}, "sideEffects": "None",
               "admissionReviewVersions": ["v1"], "failurePolicy": "Fail", "reinvocationPolicy": "Never",
               "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
               "namespaceSelector": selector})
    };
    let mut webhooks = vec![hook(
        "rev.namespace.sidecar-injector.istio.io",
        json!({"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [tag]},
                                    {"key": "istio-injection", "operator": "DoesNotExist"}]}),
    )];
    if tag == "default" {
        webhooks.push(hook(
            "namespace.sidecar-injector.istio.io",
            json!({"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}),
        ));
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": format!("istio-revision-tag-{tag}"),
                        "labels": {"app": "sidecar-injector", "istio.io/rev": rev_label(revision), "istio.io/tag": tag}},
           "webhooks": webhooks})
}

/// Deep merge of `patch` into `target` (maps merged, everything else replaced).
pub fn merge_into(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) => merge_into(existing, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iop(yaml: &str) -> Install {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        Install::from_iop(&v, "1.30.3").unwrap()
    }

    fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    const PRIMARY: &str = r#"
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  values:
    global:
      meshID: mesh1
      multiCluster: {clusterName: cluster1}
      network: network1
"#;

    #[test]
    fn a_primary_gets_istiod_with_its_cluster_id_and_the_injector_values() {
        let install = iop(PRIMARY);
        let objs = install.objects();
        let istiod = find(&objs, "Deployment", "istiod").unwrap();
        let env = &istiod["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "CLUSTER_ID" && e["value"] == "cluster1")
        );
        assert_eq!(
            istiod["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
            "cacerts"
        );
        let injector = find(&objs, "ConfigMap", "istio-sidecar-injector").unwrap();
        let values: Value =
            serde_json::from_str(injector["data"]["values"].as_str().unwrap()).unwrap();
        assert_eq!(values["global"]["network"], "network1");
        assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster1");
        assert_eq!(values["global"]["meshID"], "mesh1");
        let mesh = find(&objs, "ConfigMap", "istio").unwrap();
        assert!(
            mesh["data"]["mesh"]
                .as_str()
                .unwrap()
                .contains("trustDomain: cluster.local")
        );
        assert!(
            find(&objs, "ConfigMap", "values").unwrap()["data"]["original-values"]
                .as_str()
                .unwrap()
                .contains("cluster1")
        );
        assert!(
            find(
                &objs,
                "ClusterRole",
                "istio-reader-clusterrole-istio-system"
            )
            .is_some()
        );
        assert!(find(&objs, "ServiceAccount", "istio-reader-service-account").is_some());
        // default profile: an ingress gateway too; the network labels the namespace only if istioctl creates it.
        assert!(find(&objs, "Service", "istio-ingressgateway").is_some());
        assert_eq!(
            find(&objs, "Namespace", "istio-system").unwrap()["metadata"]["labels"],
            json!({"topology.istio.io/network": "network1"})
        );
        for o in &objs {
            if o["kind"] != "Namespace" {
                assert_eq!(
                    o["metadata"]["labels"][OWNER_LABEL], UNNAMED_OWNER,
                    "{}",
                    o["metadata"]["name"]
                );
            }
        }
    }

    #[test]
    fn istiod_runs_the_replicas_the_values_ask_for() {
        let one = iop(PRIMARY).objects();
        assert_eq!(
            find(&one, "Deployment", "istiod").unwrap()["spec"]["replicas"],
            1
        );
        let three = iop(&format!("{PRIMARY}    pilot: {{replicaCount: 3}}\n")).objects();
        assert_eq!(
            find(&three, "Deployment", "istiod").unwrap()["spec"]["replicas"],
            3
        );
    }

    #[test]
    fn the_default_ingress_gateway_can_be_turned_off() {
        let install = iop(
            "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  components:\n    ingressGateways: [{name: istio-ingressgateway, enabled: false}]\n",
        );
        assert!(install.gateways.is_empty());
        assert!(find(&install.objects(), "Service", "istio-ingressgateway").is_none());
    }

    #[test]
    fn no_cluster_name_means_kubernetes() {
        let install = iop("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {}\n");
        assert_eq!(install.cluster_id, "Kubernetes");
        let objs = install.objects();
        let ns = find(&objs, "Namespace", "istio-system").unwrap();
        assert!(ns["metadata"].get("labels").is_none(), "{ns}");
    }

    #[test]
    fn the_east_west_gateway_iop_installs_only_the_gateway() {
        let Some(path) = crate::testdata::istio_file(
            "samples/multicluster/eastwest-gateway-iop.network1.generated.yaml",
            "the_east_west_gateway_iop_installs_only_the_gateway",
        ) else {
            return;
        };
        let text = std::fs::read_to_string(path).unwrap();
        let install = iop(&text);
        assert!(!install.istiod);
        let objs = install.objects();
        assert!(find(&objs, "Deployment", "istiod").is_none());
        let svc = find(&objs, "Service", "istio-eastwestgateway").unwrap();
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        assert_eq!(
            svc["metadata"]["labels"]["topology.istio.io/network"],
            "network1"
        );
        assert_eq!(svc["spec"]["selector"]["istio"], "eastwestgateway");
        assert!(
            svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 15443)
        );
        let dep = find(&objs, "Deployment", "istio-eastwestgateway").unwrap();
        let env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        assert!(
            env.iter()
                .any(|e| e["name"] == "ISTIO_META_REQUESTED_NETWORK_VIEW"
                    && e["value"] == "network1")
        );
    }

    #[test]
    fn a_remote_gets_no_istiod_but_a_service_to_the_primary() {
        let install = iop(r#"
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: remote
  values:
    istiodRemote: {injectionPath: /inject/cluster/cluster2/net/network2}
    global: {remotePilotAddress: 172.18.1.10, multiCluster: {clusterName: cluster2}, network: network2}
"#);
        let objs = install.objects();
        assert!(find(&objs, "Deployment", "istiod").is_none());
        assert!(find(&objs, "ConfigMap", "istio").is_none());
        let slice = find(&objs, "EndpointSlice", "istiod").unwrap();
        assert_eq!(slice["endpoints"][0]["addresses"][0], "172.18.1.10");
        let hook = find(
            &objs,
            "MutatingWebhookConfiguration",
            "istio-sidecar-injector",
        )
        .unwrap();
        assert_eq!(
            hook["webhooks"][0]["clientConfig"]["service"]["path"],
            "/inject/cluster/cluster2/net/network2"
        );
        let role = find(
            &objs,
            "ClusterRole",
            "istio-reader-clusterrole-istio-system",
        )
        .unwrap();
        assert!(
            role["rules"]
                .to_string()
                .contains("mutatingwebhookconfigurations")
        );
    }

    #[test]
    fn external_istiod_and_pilot_env() {
        let install = iop(
            "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global: {externalIstiod: true}\n    pilot: {env: {PILOT_X: '1'}}\n",
        );
        let istiod = find(&install.objects(), "Deployment", "istiod")
            .cloned()
            .unwrap();
        let env = istiod["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        assert!(env.contains("EXTERNAL_ISTIOD") && env.contains("PILOT_X"));
    }

    #[test]
    fn refuses_what_is_not_an_iop() {
        let v: Value = serde_yaml::from_str("apiVersion: v1\nkind: ConfigMap\n").unwrap();
        assert!(matches!(
            Install::from_iop(&v, "1"),
            Err(InstallError::NotAnIop(_))
        ));
        let v: Value = serde_yaml::from_str("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: ambientish}\n").unwrap();
        assert!(matches!(
            Install::from_iop(&v, "1"),
            Err(InstallError::UnknownProfile(_))
        ));
    }
}
