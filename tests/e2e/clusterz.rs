//! The discovery phase proves each istiod synced its peer by reading
//! `debug/clusterz` as `istioctl remote-clusters` does: through a
//! port-forward to an istiod pod (a localhost request, which istiod answers
//! on every version), never through the API server's service proxy (which
//! real istiod refuses with 401). With two istiod replicas every one is
//! asked: one that has not synced its peer fails the discovery gate, named,
//! though the other (the newest, the one a single read would have picked)
//! has synced it.

use crate::apply::{apply, seeded_with_spec, step_statuses};
use crate::crash::{demo_spec, world};
use crate::sim_support::SimEnv;
use meshsim::istio::monitoring::ANN_CLUSTERZ_SYNCING;
use serde_json::Value;
use std::time::Duration;

#[test]
fn discovery_reads_clusterz_through_a_port_forward_never_the_service_proxy() {
    let (env, spec) = seeded_with_spec();
    let before: Vec<u64> = ["cluster1", "cluster2"]
        .iter()
        .map(|c| env.sim.cluster(c).streams().port_forwards())
        .collect();
    apply(&env, &spec, &[], None).expect_ok();

    let statuses = step_statuses(&env);
    // discovery/cluster1<-cluster2 and back: each waits until its istiod reports the peer synced.
    let discovery: Vec<_> = statuses
        .iter()
        .filter(|(id, _)| id.starts_with("discovery/") && id.contains("<-"))
        .collect();
    assert_eq!(discovery.len(), 2, "{statuses:?}");
    assert!(discovery.iter().all(|(_, s)| s == "done"), "{discovery:?}");
    for (i, c) in ["cluster1", "cluster2"].iter().enumerate() {
        let streams = env.sim.cluster(c).streams();
        // Each istiod was asked about its peer on its own cluster.
        assert!(
            streams.port_forwards() > before[i],
            "{c}: no port-forward session"
        );
        assert_eq!(
            streams.proxied_debug(),
            0,
            "{c}: the service proxy was used"
        );
    }
    env.assert_no_secrets_in_outputs();
}

/// The istiod pods of cluster1 that serve (Ready, CA chosen), oldest first.
fn serving_istiods(env: &SimEnv) -> Vec<String> {
    let out = env.kubectl(
        "cluster1",
        &[
            "-n",
            "istio-system",
            "get",
            "pods",
            "-l",
            "app=istiod",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("a pod list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["metadata"]["annotations"]["meshsim.dev/ca-mode"].is_string()
                && p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn kubectl_ok(env: &SimEnv, args: &[&str]) {
    let out = env.kubectl("cluster1", args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_replica_that_has_not_synced_its_peer_fails_the_discovery_gate_until_it_does() {
    let env = world();
    let spec = demo_spec(&env);
    let spec_arg = spec.to_string_lossy().to_string();
    // Discovery's steps done (each istiod reports its peer synced), its gate not yet run.
    let killed = env.migrate_env(
        &["apply", "-f", &spec_arg],
        &[(
            migrate::engine::failpoint::ENV,
            "before-step:gate/discovery",
        )],
    );
    assert_eq!(
        killed.signal,
        Some(9),
        "{}",
        killed.describe("the failpoint")
    );

    kubectl_ok(
        &env,
        &[
            "-n",
            "istio-system",
            "scale",
            "deployment/istiod",
            "--replicas=2",
        ],
    );
    env.wait_for(
        "two serving istiod replicas",
        Duration::from_secs(60),
        || serving_istiods(&env).len() == 2,
    );
    let pods = serving_istiods(&env);
    // The older replica lags; the newest, which a single read asks, has synced cluster2.
    let lagging = &pods[0];
    kubectl_ok(
        &env,
        &[
            "-n",
            "istio-system",
            "annotate",
            "pod",
            lagging,
            &format!("{ANN_CLUSTERZ_SYNCING}=cluster2"),
        ],
    );

    let forwards = env.sim.cluster("cluster1").streams().port_forwards();
    let failed = env.migrate(&["apply", "-f", &spec_arg, "--resume"]);
    assert_eq!(
        failed.code,
        Some(1),
        "{}",
        failed.describe("a lagging replica fails the gate")
    );
    let said = format!("{}{}", failed.stdout, failed.stderr);
    let object = format!("Pod istio-system/{lagging}");
    assert!(
        said.contains(&format!(
            "MC507 cluster1 {object}: istiod replica {lagging} reports cluster cluster2 as syncing"
        )),
        "{}",
        failed.describe("the lagging pod is named")
    );
    // Both replicas were asked (a port-forward each), and nothing after the gate ran.
    assert!(
        env.sim.cluster("cluster1").streams().port_forwards() >= forwards + 2,
        "not every replica was asked"
    );
    let statuses = step_statuses(&env);
    let status_of = |id: &str| {
        statuses
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, st)| st.clone())
            .unwrap_or_default()
    };
    assert_eq!(status_of("gate/discovery"), "failed", "{statuses:?}");
    assert!(
        statuses
            .iter()
            .filter(|(id, _)| id.starts_with("routing/"))
            .all(|(_, s)| s == "pending"),
        "{statuses:?}"
    );

    // The replica catches up: the gate passes and the run completes.
    kubectl_ok(
        &env,
        &[
            "-n",
            "istio-system",
            "annotate",
            "pod",
            lagging,
            &format!("{ANN_CLUSTERZ_SYNCING}-"),
        ],
    );
    let done = env
        .migrate(&["apply", "-f", &spec_arg, "--resume"])
        .expect_ok();
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    let statuses = step_statuses(&env);
    assert!(
        statuses
            .iter()
            .any(|(id, s)| id == "gate/discovery" && s == "done"),
        "{statuses:?}"
    );
    env.assert_no_secrets_in_outputs();
}
