//! The istiod stand-in per Istio version (issue 13's table): before 1.31 a changed remote
//! secret is not picked up until istiod restarts; before 1.27 a `cacerts` without
//! `ca-key.pem` is ignored (self-signed), from 1.27 it is fatal.

use crate::harness::*;
use meshsim::istio::ca::INCOMPLETE_BUNDLE;

/// cluster2 read by cluster1 at `version`; then its remote secret is rotated to a token that
/// does not authenticate. Returns cluster2's status in cluster1's clusterz once istiod has
/// processed the change (a later Secret, for cluster3, is registered: events are handled in
/// order).
async fn status_after_rotation(version: &str) -> (meshsim::Sim, Option<String>) {
    let sim = start(3).await;
    for c in ["cluster1", "cluster2", "cluster3"] {
        install_version(sim.cluster(c).store(), &primary_iop(c, "network1"), version);
        istiod_running(&sim, c).await;
    }
    link(&sim, "cluster2", "cluster1").await;
    eventually("cluster2 synced in cluster1", || async {
        let rows = clusterz(&sim, "cluster1").await;
        (status_of(&rows, "cluster2").as_deref() == Some("synced")).then_some(())
    })
    .await;
    let bogus = remote_kubeconfig(&sim, "cluster2", "msim-sa.bogus.token.value");
    apply(
        &sim,
        "cluster1",
        &[],
        &remote_secret("cluster2", "cluster2", &bogus),
    )
    .await;
    link(&sim, "cluster3", "cluster1").await;
    let rows = eventually("cluster3 registered in cluster1", || async {
        let rows = clusterz(&sim, "cluster1").await;
        status_of(&rows, "cluster3").map(|_| rows)
    })
    .await;
    let status = status_of(&rows, "cluster2");
    (sim, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_1_31_a_rotated_remote_secret_waits_for_an_istiod_restart() {
    let (sim, status) = status_after_rotation("1.30.3").await;
    assert_eq!(status.as_deref(), Some("synced"), "stale: the old client");
    rollout_restart(&sim, "cluster1", "istio-system", "istiod").await;
    eventually(
        "the restarted istiod to load the rotated secret",
        || async {
            let rows = clusterz(&sim, "cluster1").await;
            (status_of(&rows, "cluster2").as_deref() == Some("timeout")).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_1_31_a_rotated_remote_secret_is_picked_up_at_once() {
    let (_sim, status) = status_after_rotation("1.31.0").await;
    assert_eq!(status.as_deref(), Some("timeout"));
}

/// istiod at `version` started with a `cacerts` that lacks `ca-key.pem`: the pod's message,
/// or `None` once it serves (self-signed).
async fn start_without_ca_key(version: &str) -> (meshsim::Sim, Option<String>) {
    let sim = start_slow(1).await;
    k(&sim, "cluster1", &["create", "namespace", "istio-system"]).await;
    let files: Vec<(&str, String)> = Roots::new("Istio")
        .cacerts("cluster1")
        .into_iter()
        .filter(|(k, _)| *k != "ca-key.pem")
        .collect();
    create_cacerts(&sim, "cluster1", &files).await;
    install_version(
        sim.cluster("cluster1").store(),
        &primary_iop("cluster1", "network1"),
        version,
    );
    let store = sim.cluster("cluster1").store().clone();
    let outcome = eventually("istiod to serve or fail", || {
        let store = store.clone();
        async move {
            if meshsim::istio::istiod_pod::serving_istiod_pod(&store).is_some() {
                return Some(None);
            }
            let rt = store.resolve("", "v1", "pods")?;
            store
                .list(&rt, Some("istio-system"))
                .0
                .iter()
                .find_map(|p| p.pointer("/status/message").and_then(|m| m.as_str()))
                .map(|m| Some(m.to_string()))
        }
    })
    .await;
    (sim, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_1_27_a_cacerts_without_key_falls_back_to_self_signed() {
    let (sim, failed) = start_without_ca_key("1.26.4").await;
    assert_eq!(failed, None);
    let ty = jsonpath(
        &sim,
        "cluster1",
        &["secret", "istio-ca-secret", "-n", "istio-system"],
        "{.type}",
    )
    .await;
    assert_eq!(ty, "istio.io/ca-root", "self-signed root created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_1_27_a_cacerts_without_key_is_fatal() {
    let (_sim, failed) = start_without_ca_key("1.27.0").await;
    assert_eq!(failed.as_deref(), Some(INCOMPLETE_BUNDLE));
}
