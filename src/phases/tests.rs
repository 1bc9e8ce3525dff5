//! Unit tests of the phases and of the plan they build.

use super::*;
use crate::plan::{
    Action, CaMode, Check, Condition, ConfigEdit, FileContent, LocalOp, Phase, Plan, Risk,
    RuntimeValue, ScaleTarget, SecretSource, Step,
};
use crate::spec::MeshMigration;
use std::collections::{BTreeSet, HashMap};

/// A spec from YAML through the typed model (not the located parser: these
/// tests pin the planner, not validation).
fn spec(yaml: &str) -> MeshMigration {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    serde_json::from_value(value).unwrap()
}

fn doc(topology: &str, clusters: &str, root: &str, extra: &str) -> MeshMigration {
    spec(&format!(
        r#"
apiVersion: migrate.meshops.dev/v1alpha1
kind: MeshMigration
metadata: {{ name: t }}
spec:
  mesh: {{ id: mesh1, trustDomain: cluster.local, istioVersion: "1.30.3" }}
  topology: {topology}
  installer: {{ kind: istioctl, path: istioctl }}
  clusters:
{clusters}
  trust:
    root: {root}
    certDir: /certs
  workloads:
    restartNamespaces: [sample]
{extra}
"#
    ))
}

fn clusters(n: usize, networks: bool) -> String {
    (1..=n)
        .map(|i| {
            let net = if networks {
                format!("network{i}")
            } else {
                "net".into()
            };
            format!(
                "    - {{ name: c{i}, context: ctx{i}, network: {net}{} }}\n",
                if i == 1 { ", source: true" } else { "" }
            )
        })
        .collect()
}

const ROUTING: &str = r#"  routing:
    destinationRules:
      - host: helloworld.sample.svc.cluster.local
        localityLb: { failoverPriority: [topology.kubernetes.io/region] }
        outlierDetection: { consecutiveErrors: 7, interval: 30s }
  observability:
    prometheus: { federate: true }
    tracing: { zipkin: "zipkin.istio-system:9411", sampling: 10.0 }
  failoverTest:
    service: { namespace: sample, name: helloworld, port: 5000, path: /hello }
    from: c2
    drain: c1
    requests: 20
"#;

fn multi_primary(n: usize, networks: bool) -> Plan {
    plan(&doc(
        "multi-primary",
        &clusters(n, networks),
        "{ adopt: c1 }",
        ROUTING,
    ))
    .unwrap()
}

fn primary_remote(networks: bool) -> Plan {
    let nets = |i: usize| {
        if networks {
            format!("network{i}")
        } else {
            "net".into()
        }
    };
    let clusters = format!(
        "    - {{ name: c1, context: ctx1, network: {}, source: true, role: primary }}\n    - {{ name: c2, context: ctx2, network: {}, role: remote, primary: c1 }}\n    - {{ name: c3, context: ctx3, network: {}, role: remote, primary: c1 }}\n",
        nets(1),
        nets(2),
        nets(3)
    );
    plan(&doc("primary-remote", &clusters, "{ adopt: c1 }", ROUTING)).unwrap()
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.id.as_str()).collect()
}

fn step<'a>(plan: &'a Plan, id: &str) -> &'a Step {
    plan.step(id)
        .unwrap_or_else(|| panic!("no step {id} in {:?}", ids(plan)))
}

fn applied<'a>(s: &'a Step, kind: &str) -> Vec<&'a serde_json::Value> {
    s.forward
        .iter()
        .filter_map(|a| match a {
            Action::Apply {
                object, manifest, ..
            } if object.kind == kind => Some(manifest),
            _ => None,
        })
        .collect()
}

fn exec_file(s: &Step) -> (String, Vec<crate::plan::Substitution>) {
    s.forward
        .iter()
        .find_map(|a| match a {
            Action::Exec { file: Some(f), .. } => match &f.content {
                FileContent::Inline {
                    text,
                    substitutions,
                } => Some((text.clone(), substitutions.clone())),
                _ => None,
            },
            _ => None,
        })
        .unwrap()
}

// ---- preflight ----

#[test]
fn preflight_checks_the_source_mesh_and_the_installer() {
    let p = multi_primary(2, true);
    let src = step(&p, "preflight/c1");
    assert!(
        src.forward
            .iter()
            .all(|a| matches!(a, Action::Check { .. }))
    );
    let checks: Vec<&Check> = src
        .forward
        .iter()
        .filter_map(|a| match a {
            Action::Check { check, .. } => Some(check),
            _ => None,
        })
        .collect();
    assert!(checks.contains(&&Check::Reachable));
    assert!(checks.iter().any(|c| matches!(c, Check::CaMode { expected: CaMode::SelfSigned, ca_secret, .. } if ca_secret.name == "istio-ca-secret")));
    assert!(checks.iter().any(|c| matches!(c, Check::ClusterName { env, default, planned, .. } if env == "CLUSTER_ID" && default == "Kubernetes" && planned == "c1")));
    let other = step(&p, "preflight/c2");
    assert!(other.forward.iter().any(|a| matches!(
        a,
        Action::Check {
            check: Check::NoMesh { .. },
            ..
        }
    )));
    let local = step(&p, "preflight/local");
    assert!(
        matches!(&local.forward[0], Action::Check { cluster: None, check: Check::InstallerVersion { expected, .. } } if expected == "1.30.3")
    );
    assert!(
        p.select(Some(Phase::Preflight))
            .iter()
            .all(|s| s.rollback.is_empty())
    );
}

// ---- install ----

#[test]
fn install_sets_mesh_identity_and_labels_the_network() {
    let p = multi_primary(2, true);
    for c in ["c1", "c2"] {
        let s = step(&p, &format!("install/{c}"));
        let (text, subs) = exec_file(s);
        let iop: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(iop["kind"], "IstioOperator");
        let global = &iop["spec"]["values"]["global"];
        assert_eq!(global["meshID"], "mesh1");
        assert_eq!(global["multiCluster"]["clusterName"], c);
        assert_eq!(global["network"], format!("network{}", &c[1..]));
        assert!(subs.is_empty());
        let ns = applied(s, "Namespace");
        assert_eq!(
            ns[0]["metadata"]["labels"]["topology.istio.io/network"],
            format!("network{}", &c[1..])
        );
    }
}

#[test]
fn install_snapshots_what_rollback_restores_on_the_source() {
    let p = multi_primary(2, true);
    let s = step(&p, "install/c1");
    assert!(s.risks.contains(&Risk::SourceReconfigure));
    let snap: Vec<String> = s
        .forward
        .iter()
        .filter_map(|a| match a {
            Action::Snapshot { object, .. } => Some(object.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        snap,
        [
            "ConfigMap istio-system/values",
            "ConfigMap istio-system/istio-sidecar-injector",
            "ConfigMap istio-system/istio",
            "Deployment istio-system/istiod",
            "Namespace istio-system"
        ]
    );
    // Snapshots come before the first mutation.
    let first_mutation = s.forward.iter().position(Action::is_mutating).unwrap();
    assert!(
        s.forward[..first_mutation]
            .iter()
            .all(|a| matches!(a, Action::Snapshot { .. }))
    );
    let restored: BTreeSet<String> = s
        .rollback
        .iter()
        .filter_map(|a| match a {
            Action::Restore { object, .. } => Some(object.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(restored, snap.iter().cloned().collect());
    // The source is re-installed from its own values, never uninstalled.
    assert!(s.rollback.iter().any(|a| matches!(a, Action::Exec { file: Some(f), .. }
        if matches!(&f.content, FileContent::IstioOperatorFromSnapshot { key, .. } if key == "original-values"))));
    assert!(
        !s.rollback
            .iter()
            .any(|a| matches!(a, Action::Exec { args, .. } if args[0] == "uninstall"))
    );
    let restart = step(&p, "install/c1/restart-workloads");
    assert!(restart.risks.contains(&Risk::WorkloadRestart));
    assert!(
        matches!(&restart.forward[0], Action::RestartWorkloads { namespace, .. } if namespace == "sample")
    );
    assert!(p.step("install/c2/restart-workloads").is_none());
}

#[test]
fn an_adopted_mesh_is_checked_reconfigured_and_never_uninstalled() {
    let clusters = "    - { name: c1, context: ctx1, network: network1, source: true }\n    - { name: c2, context: ctx2, network: network2, existingMesh: adopt }\n    - { name: c3, context: ctx3, network: network3 }\n";
    let p = plan(&doc("multi-primary", clusters, "{ adopt: c1 }", ROUTING)).unwrap();
    let checks = |id: &str| -> Vec<Check> {
        step(&p, id)
            .forward
            .iter()
            .filter_map(|a| match a {
                Action::Check { check, .. } => Some(check.clone()),
                _ => None,
            })
            .collect()
    };
    let adopted = checks("preflight/c2");
    assert!(
        adopted
            .iter()
            .any(|c| matches!(c, Check::MeshPresent { .. }))
    );
    assert!(
        adopted.iter().any(
            |c| matches!(c, Check::TrustDomain { expected, .. } if expected == "cluster.local")
        )
    );
    // Its CA is replaced by the shared root's cacerts whatever it is.
    assert!(adopted.iter().any(|c| matches!(
        c,
        Check::CaMode {
            expected: CaMode::Any,
            ..
        }
    )));
    assert!(!adopted.iter().any(|c| matches!(c, Check::NoMesh { .. })));
    assert!(
        checks("preflight/c3")
            .iter()
            .any(|c| matches!(c, Check::NoMesh { .. }))
    );

    let uninstalls = |s: &Step| {
        s.rollback
            .iter()
            .any(|a| matches!(a, Action::Exec { args, .. } if args[0] == "uninstall"))
    };
    let reinstalls = |s: &Step| {
        s.rollback.iter().any(|a| {
            matches!(a, Action::Exec { file: Some(f), .. }
            if matches!(&f.content, FileContent::IstioOperatorFromSnapshot { .. }))
        })
    };
    let c2 = step(&p, "install/c2");
    assert!(c2.risks.contains(&Risk::SourceReconfigure));
    assert!(
        c2.description.contains("existingMesh: adopt"),
        "{}",
        c2.description
    );
    assert!(reinstalls(c2) && !uninstalls(c2));
    assert!(
        c2.forward
            .iter()
            .any(|a| matches!(a, Action::Snapshot { object, .. } if object.name == "values"))
    );
    // Its workloads carry the old cluster name: restarted like the source's,
    // before its trust step restarts them again.
    assert!(p.step("install/c2/restart-workloads").is_some());
    assert!(
        step(&p, "trust/c2")
            .needs
            .contains(&"install/c2/restart-workloads".to_string())
    );
    let c3 = step(&p, "install/c3");
    assert!(uninstalls(c3) && !reinstalls(c3));
}

#[test]
fn eastwest_gateways_only_where_networks_differ() {
    let multi = multi_primary(3, true);
    for c in ["c1", "c2", "c3"] {
        let s = step(&multi, &format!("install/{c}/eastwest"));
        let (text, _) = exec_file(s);
        let iop: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let gw = &iop["spec"]["components"]["ingressGateways"][0];
        assert_eq!(gw["name"], "istio-eastwestgateway");
        assert_eq!(gw["label"]["istio"], "eastwestgateway");
        assert_eq!(
            gw["label"]["topology.istio.io/network"],
            format!("network{}", &c[1..])
        );
        assert_eq!(
            gw["k8s"]["env"][0]["name"],
            "ISTIO_META_REQUESTED_NETWORK_VIEW"
        );
        let ports: Vec<u64> = gw["k8s"]["service"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_u64().unwrap())
            .collect();
        assert_eq!(ports, [15021, 15443, 15012, 15017]);
        assert_eq!(iop["spec"]["profile"], "empty");
        assert_eq!(
            iop["spec"]["values"]["gateways"]["istio-ingressgateway"]["injectionTemplate"],
            "gateway"
        );
    }
    let one = multi_primary(3, false);
    assert!(
        !ids(&one).iter().any(|id| id.ends_with("/eastwest")),
        "{:?}",
        ids(&one)
    );
    for s in one.select(Some(Phase::Routing)) {
        assert!(
            applied(s, "Gateway").is_empty(),
            "no cross-network gateway on one network"
        );
    }
}

#[test]
fn primary_remote_installs_a_remote_profile_pointed_at_the_primary_gateway() {
    let p = primary_remote(true);
    let primary = step(&p, "install/c1");
    let (text, _) = exec_file(primary);
    let iop: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(iop["spec"]["values"]["global"]["externalIstiod"], true);
    step(&p, "install/c1/eastwest");
    let expose = step(&p, "install/c1/expose-istiod");
    let gw = applied(expose, "Gateway");
    assert_eq!(gw[0]["metadata"]["name"], "istiod-gateway");
    assert_eq!(gw[0]["spec"]["servers"][0]["port"]["number"], 15012);
    assert_eq!(gw[0]["spec"]["servers"][1]["port"]["number"], 15017);
    assert_eq!(gw[0]["spec"]["servers"][0]["tls"]["mode"], "PASSTHROUGH");
    let vs = applied(expose, "VirtualService");
    assert_eq!(vs[0]["metadata"]["name"], "istiod-vs");
    assert_eq!(vs[0]["spec"]["tls"][1]["match"][0]["port"], 15017);
    assert_eq!(
        vs[0]["spec"]["tls"][1]["route"][0]["destination"]["port"]["number"],
        443
    );

    for r in ["c2", "c3"] {
        let s = step(&p, &format!("install/{r}"));
        assert!(s.needs.contains(&"install/c1/expose-istiod".to_string()));
        let (text, subs) = exec_file(s);
        let iop: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(iop["spec"]["profile"], "remote");
        let n = &r[1..];
        assert_eq!(
            iop["spec"]["values"]["istiodRemote"]["injectionPath"],
            format!("/inject/cluster/{r}/net/network{n}")
        );
        let addr = iop["spec"]["values"]["global"]["remotePilotAddress"]
            .as_str()
            .unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].placeholder, addr);
        assert_eq!(
            subs[0].value,
            RuntimeValue::LoadBalancerAddress {
                cluster: "c1".into(),
                service: crate::plan::ObjectRef::service("istio-system", "istio-eastwestgateway")
            }
        );
        let ns = applied(s, "Namespace");
        assert_eq!(
            ns[0]["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"],
            "c1"
        );
        // No istiod of its own: it waits for the Service the remote profile renders.
        assert!(s.forward.iter().any(|a| matches!(a, Action::Wait { object, condition: Condition::Present, .. } if object.kind == "Service" && object.name == "istiod")));
        assert!(p.step(&format!("trust/{r}")).is_none());
        assert!(p.step(&format!("install/{r}/eastwest")).is_none());
        step(&p, &format!("discovery/{r}/eastwest"));
    }
    // One network: the primary still gets a gateway (for istiod), remotes none.
    let single = primary_remote(false);
    step(&single, "install/c1/eastwest");
    assert!(
        !ids(&single)
            .iter()
            .any(|id| id.starts_with("discovery/") && id.ends_with("/eastwest"))
    );
    let (text, _) = exec_file(step(&single, "install/c2"));
    assert!(text.contains("/inject/cluster/c2/net/net"), "{text}");
}

// ---- trust ----

fn cacerts_sources(s: &Step) -> Vec<(String, SecretSource)> {
    s.forward
        .iter()
        .filter_map(|a| match a {
            Action::Apply {
                object,
                manifest,
                secret_data,
                ..
            } if object.name == "cacerts" => {
                assert!(manifest.get("data").is_none() && manifest.get("stringData").is_none());
                Some(secret_data.clone().into_iter().collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn adopt_signs_one_intermediate_per_primary_from_the_live_root() {
    let p = multi_primary(3, true);
    let root = step(&p, "trust/root");
    assert!(
        matches!(&root.forward[0], Action::Local { op: LocalOp::FetchLiveRoot { cluster, secret, .. } } if cluster == "c1" && secret.name == "istio-ca-secret")
    );
    for c in ["c1", "c2", "c3"] {
        let s = step(&p, &format!("trust/{c}"));
        let sources = cacerts_sources(s);
        let keys: Vec<&str> = sources.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem"
            ]
        );
        for (k, src) in &sources {
            assert_eq!(src, &SecretSource::File(format!("/certs/{c}/{k}").into()));
        }
        // istiod restarted, the root waited for, then workloads restarted.
        let kinds: Vec<&str> = s.forward.iter().map(Action::kind).collect();
        let restart = kinds.iter().position(|k| *k == "restart").unwrap();
        let apply = kinds.iter().position(|k| *k == "apply").unwrap();
        let workloads = kinds
            .iter()
            .position(|k| *k == "restart-workloads")
            .unwrap();
        assert!(apply < restart && restart < workloads);
        assert!(s.forward.iter().any(|a| matches!(a, Action::Wait { object, condition: Condition::ConfigMapHasRoots { contains, .. }, .. }
            if object.name == "istio-ca-root-cert" && contains == &vec![std::path::PathBuf::from("/certs/root/root-cert.pem")])));
        assert_eq!(s.risks.contains(&Risk::CaSwitchOnSource), c == "c1");
    }
}

#[test]
fn a_new_root_goes_through_the_multi_root_transition() {
    let d = doc(
        "multi-primary",
        &clusters(2, true),
        "{ generate: { algorithm: ecdsa-p256, validityDays: 3650, org: Acme } }",
        "",
    );
    let p = plan(&d).unwrap();
    step(&p, "trust/c1/trust-both");
    assert!(p.step("trust/c2/trust-both").is_none());
    let drop = step(&p, "trust/c2/drop-old-root");
    assert!(drop.needs.contains(&"trust/c1/new-signer".to_string()));
    assert!(drop.needs.contains(&"trust/c2/new-signer".to_string()));
    assert!(drop.forward.iter().any(
        |a| matches!(a, Action::Wait { condition: Condition::ConfigMapHasRoots { lacks, .. }, .. }
        if lacks == &vec![std::path::PathBuf::from("/certs/root-old/root-cert.pem")])
    ));
    // Rolling back a stage puts back the cacerts it found (the previous
    // stage's), from its snapshot: never from certDir files.
    for id in [
        "trust/c1/drop-old-root",
        "trust/c1/new-signer",
        "trust/c1/trust-both",
    ] {
        let rollback = &step(&p, id).rollback;
        assert!(
            matches!(rollback.first(), Some(Action::Restore { object, .. }) if object.name == "cacerts"),
            "{id}: {rollback:?}"
        );
        assert!(
            !rollback.iter().any(|a| matches!(a, Action::Apply { .. })),
            "{id}"
        );
    }
    let (text, _) = exec_file(step(&p, "install/c1"));
    assert!(text.contains("ISTIO_MULTIROOT_MESH"), "{text}");
    assert!(text.contains("PROXY_CONFIG_XDS_AGENT"), "{text}");
    let discovery = step(&p, "discovery/c1<-c2");
    assert!(
        discovery
            .needs
            .contains(&"trust/c1/drop-old-root".to_string())
    );

    let d = doc(
        "multi-primary",
        &clusters(2, true),
        "{ generate: { algorithm: ecdsa-p256, validityDays: 3650, org: Acme, transition: restart-all } }",
        "",
    );
    let p = plan(&d).unwrap();
    assert!(step(&p, "trust/c2").risks.contains(&Risk::Downtime));
}

// ---- discovery ----

#[test]
fn multi_primary_places_n_times_n_minus_one_remote_secrets() {
    for n in [2, 3, 5] {
        let p = multi_primary(n, true);
        let pairs: Vec<&Step> = p
            .select(Some(Phase::Discovery))
            .into_iter()
            .filter(|s| s.id.contains("<-"))
            .collect();
        assert_eq!(pairs.len(), n * (n - 1));
        let readers = p
            .select(Some(Phase::Discovery))
            .iter()
            .filter(|s| s.id.ends_with("/reader"))
            .count();
        assert_eq!(readers, n);
    }
    let p = multi_primary(2, true);
    let s = step(&p, "discovery/c1<-c2");
    assert_eq!(s.clusters, ["c1"]);
    let Action::Apply {
        cluster,
        manifest,
        secret_data,
        ..
    } = &s.forward[0]
    else {
        panic!("{:?}", s.forward[0])
    };
    assert_eq!(cluster, "c1");
    assert_eq!(manifest["metadata"]["name"], "istio-remote-secret-c2");
    assert_eq!(manifest["metadata"]["namespace"], "istio-system");
    assert_eq!(manifest["metadata"]["labels"]["istio/multiCluster"], "true");
    assert_eq!(
        manifest["metadata"]["annotations"]["networking.istio.io/cluster"],
        "c2"
    );
    assert_eq!(secret_data.keys().collect::<Vec<_>>(), ["c2"]);
    let SecretSource::RemoteKubeconfig(k) = &secret_data["c2"] else {
        panic!()
    };
    assert_eq!((k.cluster.as_str(), k.context.as_str()), ("c2", "ctx2"));
    assert_eq!(
        k.token_secret.name,
        "istio-reader-service-account-istio-remote-secret-token"
    );
    // 1.30.3: before 1.31 istiod is restarted after the remote secret, then the sync is awaited.
    assert!(
        matches!(&s.forward[1], Action::Restart { cluster, object, only_if_changed: Some(changed) } if changed.name == "istio-remote-secret-c2" && cluster == "c1" && object.name == "istiod")
    );
    assert!(
        matches!(&s.forward[3], Action::Wait { cluster, condition: Condition::RemoteClusterSynced { remote }, .. } if cluster == "c1" && remote == "c2")
    );
}

#[test]
fn reader_objects_follow_istioctl() {
    let p = multi_primary(2, true);
    let s = step(&p, "discovery/c2/reader");
    let token = applied(s, "Secret");
    assert_eq!(token[0]["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        token[0]["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        "istio-reader-service-account"
    );
    let role = applied(s, "ClusterRole");
    assert_eq!(
        role[0]["metadata"]["name"],
        "istio-reader-clusterrole-istio-system"
    );
    assert!(role[0]["metadata"].get("namespace").is_none());
    let rules = role[0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 11);
    assert!(
        rules
            .iter()
            .any(|r| r["resources"] == serde_json::json!(["tokenreviews"])
                && r["verbs"] == serde_json::json!(["create"]))
    );
    let binding = applied(s, "ClusterRoleBinding");
    assert_eq!(binding[0]["subjects"][0]["namespace"], "istio-system");
    // A remote's reader role carries the remote profile's extra rules.
    let pr = primary_remote(true);
    let role = applied(step(&pr, "discovery/c2/reader"), "ClusterRole")[0].clone();
    assert_eq!(role["rules"].as_array().unwrap().len(), 14);
}

#[test]
fn primary_remote_reads_remotes_from_the_primary_only() {
    let p = primary_remote(true);
    let pairs: Vec<&str> = ids(&p).into_iter().filter(|id| id.contains("<-")).collect();
    assert_eq!(pairs, ["discovery/c1<-c2", "discovery/c1<-c3"]);
    let s = step(&p, "discovery/c1<-c2");
    assert!(s.forward.iter().any(|a| matches!(a, Action::Wait { cluster, object, .. } if cluster == "c2" && object.name == "istio-ca-root-cert")));
    // Workloads there get injected by the primary only after a restart, and
    // the remote's install rollback restarts them again, uninjected.
    assert!(
        matches!(s.forward.last(), Some(Action::RestartWorkloads { cluster, namespace, .. }) if cluster == "c2" && namespace == "sample")
    );
    assert!(
        step(&p, "install/c2")
            .rollback
            .iter()
            .any(|a| matches!(a, Action::RestartWorkloads { cluster, .. } if cluster == "c2"))
    );
    // Configuration lives on the primary.
    let routing: Vec<&str> = p
        .select(Some(Phase::Routing))
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| !gates::is_gate(id))
        .collect();
    assert_eq!(routing, ["routing/c1"]);
    // The remote's east-west gateway comes after its remote secret.
    assert!(
        step(&p, "discovery/c2/eastwest")
            .needs
            .contains(&"discovery/c1<-c2".to_string())
    );
}

#[test]
fn remote_kubeconfig_has_the_istioctl_shape() {
    let text = discovery::remote_kubeconfig("c2", "https://10.0.0.2:6443", "Q0E=", "t0k");
    let v: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "Config");
    assert_eq!(v["clusters"][0]["name"], "c2");
    assert_eq!(
        v["clusters"][0]["cluster"]["server"],
        "https://10.0.0.2:6443"
    );
    assert_eq!(
        v["clusters"][0]["cluster"]["certificate-authority-data"],
        "Q0E="
    );
    assert_eq!(v["contexts"][0]["name"], "c2");
    assert_eq!(
        v["contexts"][0]["context"],
        serde_json::json!({"cluster": "c2", "user": "c2"})
    );
    assert_eq!(v["current-context"], "c2");
    assert_eq!(v["users"][0]["name"], "c2");
    assert_eq!(v["users"][0]["user"]["token"], "t0k");
}

// ---- routing ----

#[test]
fn destination_rules_use_consecutive_5xx_errors_and_v1() {
    let p = multi_primary(2, true);
    let s = step(&p, "routing/c1");
    let dr = applied(s, "DestinationRule")[0];
    assert_eq!(dr["apiVersion"], "networking.istio.io/v1");
    assert_eq!(dr["metadata"]["namespace"], "sample");
    let policy = &dr["spec"]["trafficPolicy"];
    assert_eq!(policy["outlierDetection"]["consecutive5xxErrors"], 7);
    assert!(
        policy["outlierDetection"]
            .get("consecutiveErrors")
            .is_none()
    );
    assert_eq!(
        policy["loadBalancer"]["localityLbSetting"]["failoverPriority"],
        serde_json::json!(["topology.kubernetes.io/region"])
    );
    let gw = applied(s, "Gateway")[0];
    assert_eq!(gw["metadata"]["name"], "cross-network-gateway");
    assert_eq!(gw["spec"]["servers"][0]["tls"]["mode"], "AUTO_PASSTHROUGH");
    assert_eq!(gw["spec"]["servers"][0]["port"]["number"], 15443);
    assert_eq!(
        gw["spec"]["servers"][0]["hosts"],
        serde_json::json!(["*.local"])
    );
}

#[test]
fn strict_mtls_virtual_services_and_cluster_filters() {
    let extra = r#"  routing:
    strictMtls: true
    virtualServices:
      - { name: vs1, namespace: sample, clusters: [c2], spec: { hosts: [a] } }
    serviceEntries:
      - { name: se1, namespace: sample, spec: { hosts: [b.example.com] } }
"#;
    let p = plan(&doc(
        "multi-primary",
        &clusters(2, false),
        "{ adopt: c1 }",
        extra,
    ))
    .unwrap();
    let c1 = step(&p, "routing/c1");
    assert!(applied(c1, "VirtualService").is_empty());
    assert_eq!(
        applied(c1, "ServiceEntry")[0]["spec"]["hosts"][0],
        "b.example.com"
    );
    let pa = applied(c1, "PeerAuthentication")[0];
    assert_eq!(pa["apiVersion"], "security.istio.io/v1");
    assert_eq!(pa["metadata"]["namespace"], "istio-system");
    assert_eq!(pa["spec"]["mtls"]["mode"], "STRICT");
    assert!(c1.risks.contains(&Risk::MeshWidePolicy));
    let c2 = step(&p, "routing/c2");
    assert_eq!(applied(c2, "VirtualService")[0]["metadata"]["name"], "vs1");
}

#[test]
fn authorization_policies_name_callers_in_every_trust_domain() {
    let extra = r#"  routing:
    authorizationPolicies:
      - name: hello-callers
        namespace: sample
        clusters: [c2]
        selector: { app: helloworld }
        allow: [sample/curl]
"#;
    let mut d = doc("multi-primary", &clusters(2, false), "{ adopt: c1 }", extra);
    d.spec.mesh.trust_domain_aliases = vec!["old.example".into()];
    let p = plan(&d).unwrap();
    assert!(p.step("routing/c1").is_none(), "the policy goes to c2 only");
    let c2 = step(&p, "routing/c2");
    let ap = applied(c2, "AuthorizationPolicy")[0];
    assert_eq!(ap["apiVersion"], "security.istio.io/v1");
    assert_eq!(ap["metadata"]["namespace"], "sample");
    assert_eq!(ap["spec"]["action"], "ALLOW");
    assert_eq!(ap["spec"]["selector"]["matchLabels"]["app"], "helloworld");
    assert_eq!(
        ap["spec"]["rules"][0]["from"][0]["source"]["principals"],
        serde_json::json!([
            "cluster.local/ns/sample/sa/curl",
            "old.example/ns/sample/sa/curl"
        ])
    );
    // Rolled back like every routing object: restored to what was there.
    assert!(
        c2.rollback
            .iter()
            .any(|a| a.object().is_some_and(|o| o.kind == "AuthorizationPolicy"))
    );
}

// ---- observability ----

#[test]
fn observability_edits_prometheus_and_mesh_config_with_exact_rollback() {
    let p = multi_primary(3, true);
    let s = step(&p, "observability/c1");
    let Action::EditConfig {
        object,
        key,
        edits,
        substitutions,
        ..
    } = &s.forward[0]
    else {
        panic!()
    };
    assert_eq!(
        (object.name.as_str(), key.as_str()),
        ("prometheus", "prometheus.yml")
    );
    assert!(
        matches!(&edits[0], ConfigEdit::Set { path, value } if path.join(".") == "global.external_labels.cluster" && value == "c1")
    );
    let jobs: Vec<&str> = edits
        .iter()
        .filter_map(|e| match e {
            ConfigEdit::Upsert { item, .. } => item["job_name"].as_str(),
            _ => None,
        })
        .collect();
    assert_eq!(jobs, ["federate-c2", "federate-c3"]);
    assert_eq!(substitutions.len(), 2);
    let Action::EditConfig { object, edits, .. } = &s.forward[1] else {
        panic!()
    };
    assert_eq!(object.name, "istio");
    assert!(
        matches!(&edits[0], ConfigEdit::Set { path, value } if path.join(".") == "defaultConfig.tracing.zipkin.address" && value == "zipkin.istio-system:9411")
    );
    assert!(
        matches!(&edits[1], ConfigEdit::Set { path, value } if path.join(".") == "defaultConfig.tracing.sampling" && value == 10.0)
    );
    let restored: Vec<String> = s
        .rollback
        .iter()
        .filter_map(|a| a.object().map(|o| o.name.clone()))
        .collect();
    assert_eq!(restored, ["istio", "prometheus"]);
    // Only the source federates.
    let c2 = step(&p, "observability/c2");
    assert!(matches!(&c2.forward[0], Action::EditConfig { edits, .. } if edits.len() == 1));
}

// ---- failover ----

#[test]
fn failover_baseline_wants_several_clusters_without_locality_preference() {
    let routing = ROUTING.replace(
        "        localityLb: { failoverPriority: [topology.kubernetes.io/region] }\n",
        "",
    );
    let p = plan(&doc(
        "multi-primary",
        &clusters(2, true),
        "{ adopt: c1 }",
        &routing,
    ))
    .unwrap();
    let base = step(&p, "failover/baseline");
    let expect = base
        .forward
        .iter()
        .find_map(|a| match a {
            Action::Probe { expect, .. } => Some(expect),
            _ => None,
        })
        .unwrap();
    assert_eq!(expect.min_clusters, 2);
}

#[test]
fn failover_probes_drains_and_always_restores() {
    let p = multi_primary(2, true);
    let base = step(&p, "failover/baseline");
    let Some(Action::Probe {
        cluster,
        manifest,
        requests,
        expect,
        ..
    }) = base.forward.iter().find(|a| a.kind() == "probe")
    else {
        panic!()
    };
    assert_eq!(cluster, "c2");
    assert_eq!(*requests, 20);
    // The routing above prefers the caller's region: the baseline only
    // asks that every request is answered.
    assert_eq!(expect.min_clusters, 1);
    // That the simulator runs this Job is pinned by tests/e2e/probe_contract.rs.
    let env = &manifest["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["value"], "http://helloworld.sample:5000/hello");
    assert_eq!(env[1]["value"], "20");
    assert_eq!(
        manifest["spec"]["template"]["spec"]["restartPolicy"],
        "Never"
    );

    let drain = step(&p, "failover/drain");
    assert!(drain.risks.contains(&Risk::TrafficShift));
    assert!(
        matches!(&drain.forward[0], Action::Scale { cluster, target: ScaleTarget::ServiceBackends(svc), replicas: 0 } if cluster == "c1" && svc.name == "helloworld")
    );
    assert!(
        drain
            .forward
            .iter()
            .any(|a| matches!(a, Action::Probe { expect, .. } if expect.not_from == ["c1"]))
    );
    assert!(matches!(&drain.finally[0], Action::RestoreScale { cluster, .. } if cluster == "c1"));
    assert!(
        drain
            .finally
            .iter()
            .any(|a| matches!(a, Action::Delete { object, .. } if object.kind == "Job"))
    );
    assert!(
        drain
            .rollback
            .iter()
            .any(|a| matches!(a, Action::RestoreScale { .. }))
    );
}

// ---- the plan as a whole ----

fn all_plans() -> Vec<Plan> {
    let mut out = vec![
        multi_primary(2, true),
        multi_primary(3, true),
        multi_primary(4, false),
        primary_remote(true),
        primary_remote(false),
    ];
    for root in [
        "{ generate: { algorithm: ecdsa-p256, validityDays: 3650, org: Acme } }",
        "{ files: { cert: /r/root.pem, key: /r/root-key.pem } }",
    ] {
        out.push(plan(&doc("multi-primary", &clusters(3, true), root, ROUTING)).unwrap());
    }
    out
}

#[test]
fn needs_point_to_earlier_steps() {
    for p in all_plans() {
        let position: HashMap<&str, usize> = p
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        for (i, s) in p.steps.iter().enumerate() {
            for need in &s.needs {
                assert!(position[need.as_str()] < i, "{} needs later {need}", s.id);
                // Never a later phase: phase-wise rollback relies on it.
                assert!(
                    step(&p, need).phase <= s.phase,
                    "{} needs {need} of a later phase",
                    s.id
                );
            }
        }
    }
}

/// The transitive needs of a step.
fn ancestors<'a>(p: &'a Plan, id: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = step(p, id).needs.iter().map(String::as_str).collect();
    while let Some(n) = todo.pop() {
        if seen.insert(step(p, n).id.as_str()) {
            todo.extend(step(p, n).needs.iter().map(String::as_str));
        }
    }
    seen
}

#[test]
fn every_mutating_action_has_a_rollback() {
    for p in all_plans() {
        for s in &p.steps {
            for a in s.forward.iter().filter(|a| a.is_mutating()) {
                let same_object = |r: &Action| {
                    r.cluster() == a.cluster() && r.object().is_some() && r.object() == a.object()
                };
                let ok = match a {
                    Action::Exec { .. } => s
                        .rollback
                        .iter()
                        .any(|r| r.kind() == "exec" && r.cluster() == a.cluster()),
                    Action::Probe { .. } => s
                        .rollback
                        .iter()
                        .any(|r| r.kind() == "delete" && same_object(r)),
                    // "Restart again after restore": in this step's rollback or
                    // in that of a step it needs (rolled back after it).
                    Action::Restart { .. } | Action::RestartWorkloads { .. } => {
                        let mut steps = vec![s];
                        steps.extend(ancestors(&p, &s.id).into_iter().map(|id| step(&p, id)));
                        steps.iter().any(|st| {
                            st.rollback.iter().any(|r| {
                                r.kind() == a.kind()
                                    && r.cluster() == a.cluster()
                                    && match (r, a) {
                                        (
                                            Action::RestartWorkloads { namespace: x, .. },
                                            Action::RestartWorkloads { namespace: y, .. },
                                        ) => x == y,
                                        _ => r.object() == a.object(),
                                    }
                            })
                        })
                    }
                    _ => s.rollback.iter().any(same_object),
                };
                assert!(ok, "{}: no rollback for `{a}`", s.id);
            }
        }
    }
}

#[test]
fn independent_clusters_do_not_wait_for_each_other() {
    let p = multi_primary(3, true);
    for (a, b) in [("c2", "c3"), ("c3", "c2"), ("c2", "c1"), ("c1", "c2")] {
        let needs = ancestors(&p, &format!("install/{a}"));
        assert!(
            !needs.iter().any(|n| n.starts_with(&format!("install/{b}"))),
            "install/{a} waits for {b}"
        );
        let needs = ancestors(&p, &format!("trust/{a}"));
        assert!(
            !needs.iter().any(|n| n.starts_with(&format!("trust/{b}"))),
            "trust/{a} waits for trust/{b}"
        );
    }
    // Pairs into different clusters are independent too.
    let needs = ancestors(&p, "discovery/c2<-c3");
    assert!(!needs.iter().any(|n| n.contains("<-")));
}

#[test]
fn plans_are_deterministic_and_the_fingerprint_tracks_the_spec() {
    let d = doc(
        "multi-primary",
        &clusters(3, true),
        "{ adopt: c1 }",
        ROUTING,
    );
    let a = plan(&d).unwrap();
    let b = plan(&d).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a.document(None)).unwrap(),
        serde_json::to_string(&b.document(None)).unwrap()
    );
    // Steps handed over in another order give the same plan.
    let mut shuffled = steps(&d);
    shuffled.reverse();
    shuffled.rotate_left(7);
    let c = Plan::new(a.header.clone(), shuffled).unwrap();
    assert_eq!(c.fingerprint, a.fingerprint);
    assert_eq!(ids(&c), ids(&a));
    // A changed spec changes the fingerprint; a reworded description does not.
    let mut changed = d.clone();
    changed.spec.clusters[1].network = Some("elsewhere".into());
    assert_ne!(plan(&changed).unwrap().fingerprint, a.fingerprint);
    let mut reworded = steps(&d);
    reworded[0].description.push_str(" (reworded)");
    assert_eq!(
        Plan::new(a.header.clone(), reworded).unwrap().fingerprint,
        a.fingerprint
    );
}

#[test]
fn no_secret_material_in_any_serialised_plan() {
    for p in all_plans() {
        let json = serde_json::to_string(&p.document(None)).unwrap();
        let yaml = serde_yaml::to_string(&p.document(None)).unwrap();
        for text in [&json, &yaml] {
            for needle in ["BEGIN", "PRIVATE KEY", "\"token\":", "token: "] {
                assert!(!text.contains(needle), "`{needle}` in a serialised plan");
            }
        }
        // Every Secret we apply carries references only.
        for s in &p.steps {
            for a in s.forward.iter().chain(&s.rollback) {
                if let Action::Apply {
                    object, manifest, ..
                } = a
                    && object.kind == "Secret"
                {
                    assert!(
                        manifest.get("data").is_none() && manifest.get("stringData").is_none(),
                        "{}",
                        s.id
                    );
                }
            }
        }
    }
}

#[test]
fn critical_path_is_a_chain_of_needs() {
    for p in all_plans() {
        let cp = &p.critical_path.steps;
        assert!(cp.len() >= 7, "{cp:?}");
        assert!(cp.first().unwrap().starts_with("preflight/"));
        assert_eq!(cp.last().unwrap(), "failover/drain");
        for w in cp.windows(2) {
            assert!(
                step(&p, &w[1]).needs.contains(&w[0]),
                "{} does not need {}",
                w[1],
                w[0]
            );
        }
        assert!(p.critical_path.estimated_seconds > 0);
    }
}

#[test]
fn a_plan_read_back_from_json_keeps_its_fingerprint() {
    for p in all_plans() {
        let text = serde_json::to_string(&p).unwrap();
        let back: Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert!(back.verify_fingerprint());
        let mut tampered = back.clone();
        tampered.steps[3].forward.pop();
        assert!(!tampered.verify_fingerprint());
    }
}

// ---- gates ----

/// The gate of `phase` in `p`, and its check.
fn gate_of(p: &Plan, phase: Phase) -> (&Step, Vec<String>, crate::plan::GateExpectations) {
    let s = step(p, &gates::id(phase));
    let [
        Action::Check {
            cluster: None,
            check: Check::Gate {
                groups,
                expectations,
            },
        },
    ] = s.forward.as_slice()
    else {
        panic!("{} is not one gate check: {:?}", s.id, s.forward);
    };
    (s, groups.clone(), expectations.clone())
}

#[test]
fn each_gate_ends_its_phase_and_the_next_phase_waits_for_it() {
    for p in all_plans() {
        for (phase, groups) in gates::GATED {
            let (gate, named, _) = gate_of(&p, phase);
            assert_eq!(gate.phase, phase);
            assert_eq!(
                named,
                groups.iter().map(|g| g.to_string()).collect::<Vec<_>>()
            );
            // It needs every other step of its phase ...
            let members: BTreeSet<&str> = p
                .steps
                .iter()
                .filter(|s| s.phase == phase && s.id != gate.id)
                .map(|s| s.id.as_str())
                .collect();
            let needs: BTreeSet<&str> = gate.needs.iter().map(String::as_str).collect();
            assert_eq!(needs, members, "{}", gate.id);
            // ... changes nothing, so has nothing to undo ...
            assert!(gate.rollback.is_empty() && gate.finally.is_empty());
            assert!(gate.forward.iter().all(|a| !a.is_mutating()));
            // ... reads every cluster ...
            let all: Vec<String> = (1..=p.header.clusters.len())
                .map(|i| format!("c{i}"))
                .collect();
            assert_eq!(gate.clusters, all, "{}", gate.id);
            // ... and nothing of a later phase starts before it passed.
            for s in p.steps.iter().filter(|s| s.phase > phase) {
                let before: BTreeSet<&str> = ancestors(&p, &s.id);
                assert!(
                    !s.needs.iter().any(|n| members.contains(n.as_str()))
                        || before.contains(gate.id.as_str()),
                    "{} builds on {phase} without its gate",
                    s.id
                );
            }
            let next = Phase::ALL.into_iter().find(|x| *x > phase).unwrap();
            for s in p.steps.iter().filter(|s| s.phase == next) {
                let waits = if gates::is_gate(&s.id) {
                    ancestors(&p, &s.id).contains(gate.id.as_str())
                } else {
                    s.needs.contains(&gate.id)
                };
                assert!(waits, "{} does not wait for {}", s.id, gate.id);
            }
        }
        // No gate for phases that verify themselves (preflight, the drill).
        let gated: Vec<&str> = ids(&p).into_iter().filter(|i| gates::is_gate(i)).collect();
        assert_eq!(gated, ["gate/trust", "gate/discovery", "gate/routing"]);
    }
}

#[test]
fn a_gate_expects_what_the_spec_says() {
    let (_, _, e) = gate_of(&primary_remote(true), Phase::Discovery);
    assert_eq!(e.namespace, "istio-system");
    assert_eq!(e.mesh_id, "mesh1");
    assert_eq!(e.topology, "primary-remote");
    assert_eq!(e.istio_version, "1.30.3");
    assert!(e.multi_network());
    let names: Vec<(&str, bool, Option<&str>)> = e
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.remote, c.primary.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("c1", false, None),
            ("c2", true, Some("c1")),
            ("c3", true, Some("c1"))
        ]
    );
    let (_, _, e) = gate_of(&multi_primary(4, false), Phase::Trust);
    assert_eq!(e.topology, "multi-primary");
    assert!(!e.multi_network());
    assert!(
        e.clusters
            .iter()
            .all(|c| !c.remote && c.network.as_deref() == Some("net"))
    );
}

#[test]
fn a_phase_without_steps_has_no_gate() {
    // One network, no routing section: phase 4 has nothing to verify.
    let p = plan(&doc(
        "multi-primary",
        &clusters(2, false),
        "{ adopt: c1 }",
        "",
    ))
    .unwrap();
    assert!(
        p.steps.iter().all(|s| s.phase != Phase::Routing),
        "{:?}",
        ids(&p)
    );
    assert!(p.step("gate/routing").is_none());
    assert!(p.step("gate/discovery").is_some());
}

#[test]
fn preflight_asks_for_what_the_gates_read() {
    let p = multi_primary(2, true);
    let Some(Action::Check {
        check: Check::Permissions { needs },
        ..
    }) = step(&p, "preflight/c2").forward.iter().find(|a| {
        matches!(
            a,
            Action::Check {
                check: Check::Permissions { .. },
                ..
            }
        )
    })
    else {
        panic!("no permissions check on c2");
    };
    let by_gate = |verb: &str, resource: &str, sub: Option<&str>| {
        needs.iter().any(|n| {
            n.access.verb == verb
                && n.access.resource == resource
                && n.access.subresource.as_deref() == sub
                && n.steps.iter().any(|s| gates::is_gate(s))
        })
    };
    for (verb, resource, sub) in [
        ("list", "destinationrules", None),
        ("list", "gateways", None),
        ("list", "pods", None),
        ("list", "configmaps", None),
        ("list", "clusterrolebindings", None),
        ("create", "pods", Some("portforward")),
    ] {
        assert!(
            by_gate(verb, resource, sub),
            "{verb} {resource} {sub:?} not asked for a gate"
        );
    }
}
