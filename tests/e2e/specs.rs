//! Specs for runs against meshsim: the example plans' scenarios pointed at
//! the simulated clusters' contexts, the istioctl stand-in and a private
//! cert dir (`@ISTIOCTL@`, `@CERTS@` are filled in by `SimEnv::write_spec`).

/// plans/two-cluster.yaml on meshsim: multi-primary, two networks, every phase
/// (one change, see the destination rule).
pub const TWO_CLUSTER: &str = r#"apiVersion: migrate.meshops.dev/v1alpha1
kind: MeshMigration
metadata: { name: shop-multicluster }
spec:
  mesh: { id: mesh1, trustDomain: cluster.local, istioVersion: "1.30.3" }
  topology: multi-primary
  installer: { kind: istioctl, path: "@ISTIOCTL@" }
  clusters:
    - { name: cluster1, context: sim-cluster1, network: network1, source: true,
        locality: { region: region1, zone: zone1 } }
    - { name: cluster2, context: sim-cluster2, network: network2,
        locality: { region: region2, zone: zone2 } }
  trust:
    root: { adopt: cluster1 }
    intermediateValidityDays: 730
    certDir: "@CERTS@"
  routing:
    exposeHosts: ["*.local"]
    # No destinationRules, unlike plans/two-cluster.yaml: with outlier
    # detection Istio's locality load balancing (on by default) keeps every
    # answer in the client's region, and the plan's baseline probe (answers
    # from >= 2 clusters) cannot pass (reported to the lead).
  observability:
    prometheus: { federate: true }
    tracing: { zipkin: "jaeger-collector.istio-system:9411", sampling: 100.0 }
  workloads:
    restartNamespaces: [sample]
  failoverTest:
    service: { namespace: sample, name: helloworld, port: 5000, path: /hello }
    from: cluster2
    drain: cluster1
    requests: 20
"#;
