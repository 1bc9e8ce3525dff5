//! `migrate plan` against clusters whose load balancers get DNS names (as
//! on AWS EKS): a primary-remote plan whose primary's east-west gateway has
//! a hostname and no IP is refused with Istio's reason and source; with an
//! IP it is not; across networks a hostname gateway is only a note.

use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use crate::support::repo_root;
use serde_json::{Value, json};

const ELB: &str = "a1b2c3-123.us-east-1.elb.amazonaws.com";

fn primary_remote() -> String {
    let text = std::fs::read_to_string(repo_root().join("plans/primary-remote.yaml")).unwrap();
    let mut out = text;
    for (from, to) in [
        ("context: kind-cluster1", "context: sim-cluster1"),
        ("context: kind-cluster2", "context: sim-cluster2"),
        ("path: istioctl", "path: \"@ISTIOCTL@\""),
        ("certDir: ./migrate-certs", "certDir: \"@CERTS@\""),
    ] {
        assert!(
            out.contains(from),
            "plans/primary-remote.yaml no longer has {from:?}"
        );
        out = out.replace(from, to);
    }
    out
}

/// The east-west gateway Service with a load balancer `ingress` as given.
fn eastwest(env: &SimEnv, cluster: &str, ingress: Value) {
    let store = env.sim.cluster(cluster).store();
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system"},
            "spec": {"type": "LoadBalancer", "selector": {"istio": "eastwestgateway"},
                     "ports": [{"name": "tls", "port": 15443}]},
            "status": {"loadBalancer": {"ingress": [ingress.clone()]}}}),
    ] {
        let rt = store
            .resolve_kind(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
            )
            .unwrap();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
        match store.get(&rt, ns.as_deref(), &name) {
            Ok(mut existing) => {
                existing["status"] = object["status"].clone();
                store.update(&rt, existing, &Default::default()).unwrap();
            }
            Err(_) => {
                store.create(&rt, object, &Default::default()).unwrap();
            }
        }
    }
}

#[test]
fn a_primary_remote_plan_is_refused_when_the_primarys_gateway_is_a_hostname() {
    let env = SimEnv::start(2);
    let spec = env.write_spec("pr.yaml", &primary_remote());
    let spec = spec.to_string_lossy();
    eastwest(&env, "cluster1", json!({"hostname": ELB}));
    let refused = env.migrate(&["plan", "-f", &spec]);
    assert_eq!(
        refused.code,
        Some(1),
        "{}",
        refused.describe("a hostname gateway")
    );
    assert!(
        refused.stdout.contains("install/cluster2"),
        "{}",
        refused.describe("the plan is still shown")
    );
    for part in [
        &format!(
            "error: cluster1's east-west gateway istio-system/istio-eastwestgateway has the hostname {ELB} and no IP"
        ),
        "ExternalName",
        "source: istio.io \"Install Primary-Remote\"",
        "fix: give cluster1's east-west gateway a load balancer whose status carries an IP",
        "error: the plan is refused",
    ] {
        assert!(refused.stderr.contains(part), "{}", refused.describe(part));
    }

    // The same gateway with an IP: nothing to say.
    eastwest(&env, "cluster1", json!({"ip": "203.0.113.7"}));
    let fine = env.migrate(&["plan", "-f", &spec]).expect_ok();
    assert!(!fine.stderr.contains("ExternalName"), "{}", fine.stderr);
    // Offline nothing is read, so nothing is judged.
    eastwest(&env, "cluster1", json!({"hostname": ELB}));
    env.migrate(&["plan", "-f", &spec, "--offline"]).expect_ok();
}

#[test]
fn a_hostname_gateway_across_networks_is_a_note() {
    let env = SimEnv::start(2);
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec = spec.to_string_lossy();
    eastwest(&env, "cluster2", json!({"hostname": ELB}));
    let run = env.migrate(&["plan", "-f", &spec]).expect_ok();
    assert!(
        run.stderr.contains("note: cluster2's east-west gateway")
            && run.stderr.contains("RESOLVE_HOSTNAME_GATEWAYS"),
        "{}",
        run.describe("the note")
    );
}
