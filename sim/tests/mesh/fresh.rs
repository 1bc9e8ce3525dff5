//! A fresh simulated cluster is a fresh cluster: it serves no Istio kinds
//! until Istio is installed, takes Istio's own CRDs as a real one does, and
//! the stand-in's install registers kinds that refuse unknown fields under
//! `--validate=strict`, as Istio's CRDs make a real cluster do.

use crate::harness::*;
use crate::istioctl::istioctl;
use meshsim::{Sim, SimConfig};

/// What `migrate sim serve --clusters N` starts (without `--seed`).
async fn serve(clusters: usize) -> Sim {
    start_with(SimConfig {
        clusters,
        ..Default::default()
    })
    .await
}

fn destination_rule(traffic_policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy: {traffic_policy}
"
    )
}

/// `kubectl apply --validate=strict` of `text`.
async fn apply_strict(sim: &Sim, cluster: &str, text: &str) -> Kubectl {
    kubectl_in(
        sim,
        cluster,
        &["apply", "--validate=strict", "-f", "-"],
        Some(text),
    )
    .await
}

async fn serves_no_istio_kind(sim: &Sim, cluster: &str) {
    for group in [
        "networking.istio.io",
        "security.istio.io",
        "telemetry.istio.io",
    ] {
        let served = k(
            sim,
            cluster,
            &["api-resources", "--api-group", group, "-o", "name"],
        )
        .await;
        assert_eq!(served, "", "{cluster} serves {group}");
    }
    let missing = kubectl(sim, cluster, &["get", "destinationrules"]).await;
    assert_ne!(missing.code, 0, "{cluster} serves DestinationRules");
    assert!(
        missing.stderr.contains("doesn't have a resource type"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istios_own_crds_apply_to_a_fresh_cluster_and_refuse_unknown_fields() {
    let Some(crds) = istio(
        "crds/crd-all.gen.yaml",
        "istios_own_crds_apply_to_a_fresh_cluster_and_refuse_unknown_fields",
    ) else {
        return;
    };
    let sim = serve(2).await;
    let crds = crds.display().to_string();
    for cluster in ["cluster1", "cluster2"] {
        serves_no_istio_kind(&sim, cluster).await;
        let applied = k(&sim, cluster, &["apply", "--server-side", "-f", &crds]).await;
        assert!(
            applied.contains("destinationrules.networking.istio.io serverside-applied"),
            "{applied}"
        );
        k(
            &sim,
            cluster,
            &[
                "wait",
                "--for=condition=Established",
                "crd/destinationrules.networking.istio.io",
                "--timeout=20s",
            ],
        )
        .await;
        let refused = apply_strict(&sim, cluster, &destination_rule("{noSuchField: 1}")).await;
        assert_ne!(refused.code, 0, "{cluster}: {}", refused.stdout);
        assert!(
            refused
                .stderr
                .contains(r#"unknown field "spec.trafficPolicy.noSuchField""#),
            "{}",
            refused.stderr
        );
        let valid = destination_rule("{tls: {mode: ISTIO_MUTUAL}}");
        apply_strict(&sim, cluster, &valid).await.ok();
    }
    sim.shutdown().await;
}

/// One object per kind the product and the docs write, and a field Istio
/// does not know, deep inside it.
const OBJECTS: &[(&str, &str)] = &[
    (
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {localityLbSetting: {enabled: true, failover: [{from: r1, to: r2}]}}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m}
  subsets: [{name: v1, labels: {version: v1}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}]
",
        "spec.subsets[0].trafficPolicy.tls.NOPE",
    ),
    (
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ['*.local']
",
        "spec.servers[0].port.NOPE",
    ),
    (
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-curl, namespace: default}
spec:
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/sample/sa/curl]}}]}]
",
        "spec.rules[0].from[0].source.NOPE",
    ),
    (
        "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
",
        "spec.mtls.NOPE",
    ),
    (
        "apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging: [{providers: [{name: envoy}]}]
",
        "spec.accessLogging[0].providers[0].NOPE",
    ),
    (
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
",
        "spec.ports[0].NOPE",
    ),
];

/// `object` with `NOPE: 1` added where `path` (`spec.a[0].b.NOPE`) points.
fn with_unknown_field(object: &str, path: &str) -> String {
    let mut value: serde_json::Value = serde_yaml::from_str(object).expect("YAML");
    let mut cur = &mut value;
    let steps: Vec<&str> = path.split('.').collect();
    for step in &steps[..steps.len() - 1] {
        cur = match step.split_once('[') {
            Some((name, index)) => {
                let i: usize = index.trim_end_matches(']').parse().expect("index");
                &mut cur[name][i]
            }
            None => &mut cur[*step],
        };
    }
    cur["NOPE"] = serde_json::json!(1);
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_ins_install_registers_kinds_that_refuse_unknown_fields() {
    let sim = serve(1).await;
    serves_no_istio_kind(&sim, "cluster1").await;
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let (result, out) = istioctl(
        &[
            "install",
            "-y",
            "--set",
            "profile=minimal",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    assert!(result.is_ok(), "{result:?}\n{out}");
    assert_jsonpaths(
        &sim,
        "cluster1",
        &[
            (
                &["crd", "destinationrules.networking.istio.io"],
                "{.spec.versions[*].name} {.spec.names.shortNames} {.spec.names.categories}",
                r#"v1 v1alpha3 v1beta1 ["dr"] ["istio-io","networking-istio-io"]"#,
            ),
            (
                &["crd", "telemetries.telemetry.istio.io"],
                "{.spec.versions[?(@.storage==true)].name}",
                "v1alpha1",
            ),
        ],
    )
    .await;
    for (object, path) in OBJECTS {
        let refused = apply_strict(&sim, "cluster1", &with_unknown_field(object, path)).await;
        assert_ne!(refused.code, 0, "{path} accepted: {}", refused.stdout);
        assert!(
            refused
                .stderr
                .contains(&format!("unknown field \"{path}\"")),
            "{path}: {}",
            refused.stderr
        );
        apply_strict(&sim, "cluster1", object).await.ok();
    }
    sim.shutdown().await;
}
