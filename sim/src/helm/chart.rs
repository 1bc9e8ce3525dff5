//! Istio's charts `base`, `istiod` and `gateway` as the stand-in renders them:
//! not from templates, but from the same objects the istioctl stand-in
//! installs ([`crate::istio::install`]), chosen by component and relabelled
//! as Helm-rendered objects. The chart's values drive them: `revision`,
//! `global.meshID`, `global.multiCluster.clusterName`, `global.network`,
//! `global.tag` (else the chart version) for the Istio version, `pilot.env`,
//! `meshConfig`, and for `gateway`: `networkGateway`, `labels`, `service.ports`.
//! Other values are recorded but change nothing (`global.hub` included: images
//! are always `docker.io/istio/...`).
//!
//! `profile: remote` (on `base` and `istiod`, Istio 1.24+) merges Istio's
//! `manifests/helm-profiles/remote.yaml` between the chart's defaults and the
//! user's values, as the charts' `zzz_profile.yaml` does: `istiod` then
//! renders what the istioctl stand-in's `remote` profile renders for the
//! Pilot component (no istiod Deployment, no mesh or injector ConfigMap; the
//! injector webhook to Service `istiod`, whose endpoints are
//! `global.remotePilotAddress`; the reader ClusterRole with the remote's
//! extra rules; the `values` ConfigMap). On 1.30+, `global.enableReaderRBAC:
//! false` leaves out the reader ServiceAccount (base) and ClusterRole and
//! binding (istiod), as the charts' templates do.

use crate::istio::install::{
    COMPONENT_LABEL, ISTIO_NAMESPACE, Install, MANAGED_LABEL, VERSION, VERSION_LABEL, merge_into,
};
use serde_json::{Value, json};
use std::path::Path;

/// The label every Helm-rendered object carries (Istio's charts set it from `.Release.Service`).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Helm's ownership annotations, checked before Helm adopts an existing object.
pub const RELEASE_NAME_ANNOTATION: &str = "meta.helm.sh/release-name";
/// See [`RELEASE_NAME_ANNOTATION`].
pub const RELEASE_NAMESPACE_ANNOTATION: &str = "meta.helm.sh/release-namespace";

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "chart {0:?} is not one the stand-in knows (base, istiod, gateway; as istio/NAME or a directory)"
    )]
    Unknown(String),
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}")]
    Values(String),
}

/// A chart reference resolved: which chart, which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// `base`, `istiod` or `gateway`.
    pub name: String,
    /// The chart version, which is the Istio version of Istio's charts.
    pub version: String,
}

/// Resolves `istio/istiod`, `istiod`, or a local chart directory (its
/// `Chart.yaml` names the chart and its version); `--version` wins.
pub fn resolve(reference: &str, version: Option<&str>) -> Result<Chart, ChartError> {
    let dir = Path::new(reference);
    let (name, dir_version) = if dir.join("Chart.yaml").is_file() {
        let path = dir.join("Chart.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| ChartError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let meta: Value = serde_yaml::from_str(&text).map_err(|e| ChartError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let field = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        (field("name").unwrap_or_default(), field("version"))
    } else {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        (name.to_string(), None)
    };
    if !matches!(name.as_str(), "base" | "istiod" | "gateway") {
        return Err(ChartError::Unknown(reference.to_string()));
    }
    let version = version
        .map(|v| v.trim_start_matches('v').to_string())
        .or(dir_version)
        .unwrap_or_else(|| VERSION.to_string());
    Ok(Chart { name, version })
}

/// The chart's own default values (what `helm get values --all` adds to the user's).
pub fn defaults(chart: &Chart) -> Value {
    match chart.name.as_str() {
        "gateway" => {
            json!({"labels": {}, "networkGateway": "", "service": {"type": "LoadBalancer"}})
        }
        "base" => {
            json!({"global": {"istioNamespace": ISTIO_NAMESPACE}, "defaultRevision": "default"})
        }
        _ => json!({"revision": "", "meshConfig": {}, "pilot": {"env": {}},
            "global": {"hub": "docker.io/istio", "tag": chart.version, "istioNamespace": ISTIO_NAMESPACE,
                       "meshID": "", "network": "", "multiCluster": {"clusterName": ""}}}),
    }
}

/// The profile whose values the `base` and `istiod` charts merge under the user's.
pub const REMOTE_PROFILE: &str = "remote";

/// Istio's `manifests/helm-profiles/remote.yaml` (identical from 1.24.0 to 1.30.3).
fn remote_profile() -> Value {
    json!({"istiodRemote": {"enabled": true}, "configMap": false, "telemetry": {"enabled": false},
           "global": {"omitSidecarInjectorConfigMap": true}})
}

/// Whether the chart leaves out the reader ServiceAccount and ClusterRole:
/// `global.enableReaderRBAC: false`, read by the charts from 1.30.
fn reader_rbac_disabled(version: &str, all: &Value) -> bool {
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or_default();
    minor >= 30 && all.pointer("/global/enableReaderRBAC") == Some(&json!(false))
}

fn is_reader_rbac(o: &Value) -> bool {
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    name == "istio-reader-service-account" || name.starts_with("istio-reader-clusterrole")
}

/// The objects the chart renders for `release` with the user's `values`, in install order.
pub fn render(
    chart: &Chart,
    release: &str,
    namespace: &str,
    values: &Value,
) -> Result<Vec<Value>, ChartError> {
    let mut all = defaults(chart);
    let remote = chart.name != "gateway"
        && values.get("profile").and_then(Value::as_str) == Some(REMOTE_PROFILE);
    if remote {
        merge_into(&mut all, &remote_profile());
    }
    merge_into(&mut all, values);
    let version = all
        .pointer("/global/tag")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(&chart.version)
        .to_string();
    let (iop, component) = match chart.name.as_str() {
        "gateway" => (gateway_iop(release, &all), "IngressGateways"),
        "base" => (
            json!({"spec": {"profile": "minimal", "values": all.clone()}}),
            "Base",
        ),
        _ => (
            json!({"spec": {"profile": if remote { REMOTE_PROFILE } else { "minimal" }, "values": all.clone(),
                   "meshConfig": all.get("meshConfig").cloned().unwrap_or(json!({})),
                   "revision": all.get("revision").cloned().unwrap_or(json!(""))}}),
            "Pilot",
        ),
    };
    let mut iop = iop;
    iop["apiVersion"] = json!("install.istio.io/v1alpha1");
    iop["kind"] = json!("IstioOperator");
    let install =
        Install::from_iop(&iop, &version).map_err(|e| ChartError::Values(e.to_string()))?;
    let chart_label = format!("{}-{}", chart.name, chart.version);
    let no_reader = reader_rbac_disabled(&version, &all);
    Ok(install
        .objects()
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .filter(|o| o["metadata"]["labels"][COMPONENT_LABEL] == component)
        .filter(|o| !(no_reader && is_reader_rbac(o)))
        .map(|mut o| {
            let meta = &mut o["metadata"];
            if let Some(labels) = meta["labels"].as_object_mut() {
                // istioctl's operator labels; Istio's charts render neither.
                labels.remove(MANAGED_LABEL);
                labels.remove(VERSION_LABEL);
                labels.insert(MANAGED_BY.into(), json!("Helm"));
                labels.insert("helm.sh/chart".into(), json!(chart_label));
                labels.insert("app.kubernetes.io/instance".into(), json!(release));
                labels.insert("app.kubernetes.io/part-of".into(), json!("istio"));
                labels.insert("app.kubernetes.io/version".into(), json!(version));
            }
            if meta.get("namespace").is_some() {
                meta["namespace"] = json!(namespace);
            }
            if !meta["annotations"].is_object() {
                meta["annotations"] = json!({});
            }
            meta["annotations"][RELEASE_NAME_ANNOTATION] = json!(release);
            meta["annotations"][RELEASE_NAMESPACE_ANNOTATION] = json!(namespace);
            o
        })
        .collect())
}

/// The `gateway` chart as an IstioOperator gateway component named after the release.
fn gateway_iop(release: &str, all: &Value) -> Value {
    let network = all
        .get("networkGateway")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut labels = all.get("labels").cloned().unwrap_or(json!({}));
    if !labels.is_object() {
        labels = json!({});
    }
    let mut k8s = json!({});
    if let Some(ports) = all.pointer("/service/ports") {
        k8s["service"] = json!({"ports": ports});
    }
    if !network.is_empty() {
        labels["topology.istio.io/network"] = json!(network);
        k8s["env"] = json!([{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": network}]);
        if k8s.get("service").is_none() {
            k8s["service"] = json!({"ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
                {"name": "tls", "port": 15443, "targetPort": 15443, "protocol": "TCP"},
                {"name": "tls-istiod", "port": 15012, "targetPort": 15012, "protocol": "TCP"},
                {"name": "tls-webhook", "port": 15017, "targetPort": 15017, "protocol": "TCP"}]});
        }
    }
    let mut global = all.get("global").cloned().unwrap_or(json!({}));
    if !network.is_empty() && global.get("network").is_none() {
        global["network"] = json!(network);
    }
    json!({"spec": {"profile": "empty", "values": {"global": global},
        "components": {"ingressGateways": [{"name": release, "enabled": true, "label": labels, "k8s": k8s}]}}})
}

/// The manifest Helm stores: each object as a YAML document under `# Source:`.
pub fn manifest(chart: &Chart, objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or("object").to_ascii_lowercase();
        out.push_str(&format!(
            "---\n# Source: {}/templates/{kind}.yaml\n",
            chart.name
        ));
        out.push_str(&serde_yaml::to_string(o).unwrap_or_default());
    }
    out
}

/// The objects of a stored manifest, in order.
pub fn parse_manifest(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

use serde::Deserialize;

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in {objs:?}"))
    }

    #[test]
    fn istiod_of_a_revision_renders_revisioned_names_and_helm_labels() {
        let chart = resolve("istio/istiod", Some("1.26.4")).unwrap();
        let objs = render(
            &chart,
            "istiod",
            "istio-system",
            &json!({"revision": "1-26-4", "global": {"meshID": "mesh1", "multiCluster": {"clusterName": "c1"}}}),
        )
        .unwrap();
        let d = find(&objs, "Deployment", "istiod-1-26-4");
        assert_eq!(d["metadata"]["labels"][MANAGED_BY], "Helm");
        assert_eq!(d["metadata"]["labels"]["istio.io/rev"], "1-26-4");
        assert!(d["metadata"]["labels"].get(MANAGED_LABEL).is_none());
        assert_eq!(
            d["metadata"]["annotations"][RELEASE_NAME_ANNOTATION],
            "istiod"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "docker.io/istio/pilot:1.26.4"
        );
        find(&objs, "Service", "istiod-1-26-4");
        find(&objs, "ConfigMap", "istio-1-26-4");
        let hook = find(
            &objs,
            "MutatingWebhookConfiguration",
            "istio-sidecar-injector-1-26-4",
        );
        assert!(hook.to_string().contains("1-26-4"));
        assert!(objs.iter().all(|o| o["kind"] != "CustomResourceDefinition"));
        let text = manifest(&chart, &objs);
        assert_eq!(parse_manifest(&text), objs);
    }

    #[test]
    fn the_remote_profile_renders_no_istiod_and_a_webhook_through_the_primary() {
        let chart = resolve("istio/istiod", Some("1.30.3")).unwrap();
        let values = json!({"profile": "remote", "istiodRemote": {"injectionPath": "/inject/cluster/c2/net/n2"},
            "global": {"remotePilotAddress": "172.18.0.9", "multiCluster": {"clusterName": "c2"}, "network": "n2"}});
        let objs = render(&chart, "istiod", "istio-system", &values).unwrap();
        assert!(objs.iter().all(|o| o["kind"] != "Deployment"), "{objs:?}");
        for absent in ["istio", "istio-sidecar-injector"] {
            assert!(
                !objs
                    .iter()
                    .any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == absent),
                "{absent}"
            );
        }
        find(&objs, "ConfigMap", "values");
        find(&objs, "Service", "istiod");
        let slice = find(&objs, "EndpointSlice", "istiod");
        assert_eq!(slice["endpoints"][0]["addresses"][0], "172.18.0.9");
        let hook = find(
            &objs,
            "MutatingWebhookConfiguration",
            "istio-sidecar-injector",
        );
        assert_eq!(
            hook["webhooks"][0]["clientConfig"]["service"],
            json!({"name": "istiod", "namespace": "istio-system", "path": "/inject/cluster/c2/net/n2", "port": 443})
        );
        assert_eq!(hook["metadata"]["labels"][MANAGED_BY], "Helm");
        let role = find(
            &objs,
            "ClusterRole",
            "istio-reader-clusterrole-istio-system",
        );
        assert!(
            role["rules"]
                .to_string()
                .contains("mutatingwebhookconfigurations")
        );
        // base with the remote profile: the CRDs and the reader's ServiceAccount.
        let base = resolve("istio/base", Some("1.30.3")).unwrap();
        let objs = render(
            &base,
            "istio-base",
            "istio-system",
            &json!({"profile": "remote"}),
        )
        .unwrap();
        assert!(objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"));
        find(&objs, "ServiceAccount", "istio-reader-service-account");
    }

    #[test]
    fn enable_reader_rbac_false_drops_the_reader_from_1_30_only() {
        let off = json!({"profile": "remote", "global": {"enableReaderRBAC": false, "remotePilotAddress": "10.0.0.1"}});
        let has_reader = |version: &str, chart: &str| {
            let chart = resolve(chart, Some(version)).unwrap();
            render(&chart, "r", "istio-system", &off)
                .unwrap()
                .iter()
                .any(is_reader_rbac)
        };
        assert!(!has_reader("1.30.3", "istio/istiod"));
        assert!(!has_reader("1.30.3", "istio/base"));
        assert!(
            has_reader("1.29.2", "istio/istiod"),
            "before 1.30 always rendered"
        );
        assert!(has_reader("1.29.2", "istio/base"));
    }

    #[test]
    fn base_renders_the_crds_and_the_gateway_chart_a_network_gateway() {
        let base = resolve("istio/base", None).unwrap();
        let objs = render(&base, "istio-base", "istio-system", &json!({})).unwrap();
        assert!(objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"));
        assert!(objs.iter().all(|o| o["kind"] != "Deployment"));
        let gw = resolve("gateway", None).unwrap();
        let objs = render(
            &gw,
            "istio-eastwestgateway",
            "istio-system",
            &json!({"networkGateway": "network1", "labels": {"istio": "eastwestgateway"}}),
        )
        .unwrap();
        let svc = find(&objs, "Service", "istio-eastwestgateway");
        assert_eq!(svc["spec"]["selector"]["istio"], "eastwestgateway");
        assert!(svc["spec"]["ports"].to_string().contains("15443"));
        assert_eq!(
            svc["metadata"]["labels"]["topology.istio.io/network"],
            "network1"
        );
        assert!(matches!(
            resolve("bitnami/nginx", None),
            Err(ChartError::Unknown(_))
        ));
    }
}
