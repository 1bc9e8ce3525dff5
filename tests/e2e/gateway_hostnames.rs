//! `migrate plan` against clusters whose load balancers get DNS names (as
//! on AWS EKS): a primary-remote plan whose primary's east-west gateway has
//! a hostname and no IP is refused with Istio's reason and source; with an
//! IP it is not; across networks a hostname gateway is only a note. A
//! refused plan is not saved (`--out`), and a file saved before stays.
//! `apply` looks again before the step that fills the remote's
//! `remotePilotAddress`: the gateway gets its address during the run.

use crate::sim_support::{Dump, SimEnv};
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
fn a_refused_plan_is_not_saved_and_an_old_saved_plan_stays() {
    let env = SimEnv::start(2);
    let spec = env.write_spec("pr.yaml", &primary_remote());
    let spec = spec.to_string_lossy();
    eastwest(&env, "cluster1", json!({"hostname": ELB}));
    let out = env.path("plan.json");
    let out_arg = out.to_string_lossy();
    let plan_out = || env.migrate(&["plan", "-f", &spec, "--out", &out_arg]);

    let refused = plan_out();
    assert_eq!(refused.code, Some(1), "{}", refused.describe("refused"));
    assert!(
        !out.exists(),
        "{}",
        refused.describe("no file after a refused plan")
    );
    for part in ["error: the plan is refused", "error: not saved to"] {
        assert!(refused.stderr.contains(part), "{}", refused.describe(part));
    }
    assert!(
        !refused.stderr.contains("plan saved to"),
        "{}",
        refused.stderr
    );

    // Saved while the gateway has an IP; refused again once it is a hostname:
    // the file saved before is left byte for byte (and `apply --plan` still
    // checks it against the clusters).
    eastwest(&env, "cluster1", json!({"ip": "203.0.113.7"}));
    let saved = plan_out().expect_ok();
    assert!(saved.stderr.contains("plan saved to"), "{}", saved.stderr);
    let before = std::fs::read(&out).expect("the saved plan");
    eastwest(&env, "cluster1", json!({"hostname": ELB}));
    let refused = plan_out();
    assert_eq!(
        refused.code,
        Some(1),
        "{}",
        refused.describe("refused again")
    );
    assert_eq!(
        std::fs::read(&out).expect("the saved plan"),
        before,
        "{}",
        refused.describe("the old file is left as it was")
    );
    let dir: Vec<String> = std::fs::read_dir(env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".plan.json."))
        .collect();
    assert!(dir.is_empty(), "no temporary file left: {dir:?}");
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

/// Only `cluster` of a dump.
fn only(dump: Dump, cluster: &str) -> Dump {
    Dump {
        clusters: dump
            .clusters
            .into_iter()
            .filter(|(c, _)| c == cluster)
            .collect(),
    }
}

#[test]
fn apply_stops_before_a_remote_is_pointed_at_a_hostname_gateway() {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
    });
    // From now on cluster1's load balancers get DNS names, as on EKS; the
    // plan cannot see it (the east-west gateway does not exist yet).
    env.sim
        .cluster("cluster1")
        .set_load_balancer_hostnames(true);
    let spec = env.write_spec("pr.yaml", &primary_remote());
    let spec = spec.to_string_lossy();
    let remote_before = only(env.dump(), "cluster2");

    let refused = env.migrate(&["apply", "-f", &spec]);
    assert_eq!(refused.code, Some(1), "{}", refused.describe("refused"));
    let service = env
        .kubectl(
            "cluster1",
            &[
                "get",
                "service",
                "-n",
                "istio-system",
                "istio-eastwestgateway",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].hostname}",
            ],
        )
        .stdout;
    let hostname = String::from_utf8_lossy(&service).trim().to_string();
    assert!(hostname.ends_with(".amazonaws.com"), "{hostname:?}");
    for part in [
        "FAILED install/cluster2".to_string(),
        format!(
            "cluster1's east-west gateway istio-system/istio-eastwestgateway has the hostname {hostname} and no IP"
        ),
        "ExternalName".into(),
        "source: istio.io \"Install Primary-Remote\"".into(),
        "fix: give cluster1's east-west gateway a load balancer whose status carries an IP".into(),
    ] {
        assert!(
            refused.stderr.contains(&part),
            "{}",
            refused.describe(&part)
        );
    }
    // Nothing of the remote changed: not even its namespace's labels.
    only(env.dump(), "cluster2").assert_eq(&remote_before, "the remote after the refusal");
    let status = env.migrate(&["status", "-o", "json"]).expect_ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let step = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "install/cluster2")
        .unwrap();
    assert_eq!(step["status"], "failed", "{step}");
    // No first change was marked: rollback has nothing to undo for it.
    assert_eq!(step["nothingToUndo"], true, "{step}");

    // The gateway gets an IP: the resumed run completes, the remote pointed at it.
    env.sim
        .cluster("cluster1")
        .set_load_balancer_hostnames(false);
    eastwest(&env, "cluster1", json!({"ip": "203.0.113.7"}));
    let resumed = env.migrate(&["apply", "-f", &spec, "--resume"]).expect_ok();
    assert!(
        !resumed.stderr.contains("ExternalName"),
        "{}",
        resumed.stderr
    );
    let status = env.migrate(&["status", "-o", "json"]).expect_ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    for step in status["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{step}");
    }
    env.assert_no_secrets_in_outputs();
}
