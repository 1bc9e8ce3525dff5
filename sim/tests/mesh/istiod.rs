//! istiod: the CA it chooses at start, `istio-ca-root-cert` everywhere, remote secrets and
//! `debug/clusterz` (FACTS 1.6, 3).

use crate::harness::*;
use meshsim::Sim;
use meshsim::istio::ca::INCOMPLETE_BUNDLE;

async fn openssl_subject(pem: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(pem.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "openssl could not read the certificate"
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A field of istiod's self-signed `istio-ca-secret` in cluster1.
async fn ca_secret(sim: &Sim, path: &str) -> String {
    jsonpath(
        sim,
        "cluster1",
        &["secret", "istio-ca-secret", "-n", "istio-system"],
        path,
    )
    .await
}

fn b64(s: &str) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .expect("base64"),
    )
    .expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_then_cacerts_after_a_restart() {
    let sim = start(1).await;
    install(
        sim.cluster("cluster1").store(),
        &primary_iop("cluster1", "network1"),
    );
    istiod_running(&sim, "cluster1").await;

    // No cacerts: a self-signed istio-ca-secret, O=<trust domain>.
    let secret_type = ca_secret(&sim, "{.type}").await;
    assert_eq!(secret_type, "istio.io/ca-root");
    let ca_cert = b64(&ca_secret(&sim, "{.data.ca-cert\\.pem}").await);
    let subject = openssl_subject(&ca_cert).await;
    assert!(
        subject.replace(' ', "") == "subject=O=cluster.local",
        "subject: {subject}"
    );
    let key = b64(&ca_secret(&sim, "{.data.ca-key\\.pem}").await);
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"));

    // Its root in every namespace but the skipped ones.
    for ns in ["default", "kube-system", "istio-system"] {
        root_cert_becomes(&sim, "cluster1", ns, &ca_cert).await;
    }
    assert_eq!(root_cert_of(&sim, "cluster1", "kube-public").await, None);
    assert_jsonpath(
        &sim,
        "cluster1",
        &["configmap", "istio-ca-root-cert", "-n", "default"],
        "{.metadata.labels.istio\\.io/config}",
        "true",
    )
    .await;

    // A new cacerts is ignored by the running istiod: a namespace created after it still
    // gets the self-signed root.
    let roots = Roots::new("Istio");
    create_cacerts(&sim, "cluster1", &roots.cacerts("cluster1")).await;
    k(&sim, "cluster1", &["create", "namespace", "after-cacerts"]).await;
    root_cert_becomes(&sim, "cluster1", "after-cacerts", &ca_cert).await;
    assert_eq!(
        root_cert_of(&sim, "cluster1", "default")
            .await
            .unwrap()
            .trim(),
        ca_cert.trim()
    );

    // After a restart the plugged-in root is served everywhere, new namespaces included.
    rollout_restart(&sim, "cluster1", "istio-system", "istiod").await;
    let new_root = roots.root_pem();
    for ns in ["default", "after-cacerts", "kube-system"] {
        root_cert_becomes(&sim, "cluster1", ns, &new_root).await;
    }
    k(&sim, "cluster1", &["create", "namespace", "later"]).await;
    root_cert_becomes(&sim, "cluster1", "later", &new_root).await;
    let pod = istiod_running(&sim, "cluster1").await;
    assert_jsonpath(
        &sim,
        "cluster1",
        &["pod", &pod, "-n", "istio-system"],
        "{.metadata.annotations.meshsim\\.dev/ca-mode}",
        "plugged-in",
    )
    .await;
    // A deleted istio-ca-root-cert comes back.
    k(
        &sim,
        "cluster1",
        &["delete", "configmap", "istio-ca-root-cert", "-n", "later"],
    )
    .await;
    root_cert_becomes(&sim, "cluster1", "later", &new_root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_cacerts_fail_the_istiod_pod() {
    let sim = start_slow(1).await;
    k(&sim, "cluster1", &["create", "namespace", "istio-system"]).await;
    let files = Roots::new("Istio").cacerts("cluster1");
    create_cacerts(&sim, "cluster1", &files[..2]).await;
    install(
        sim.cluster("cluster1").store(),
        &primary_iop("cluster1", "network1"),
    );
    let message = kubectl_until(
        &sim,
        "cluster1",
        &[
            "get",
            "pods",
            "-n",
            "istio-system",
            "-l",
            "app=istiod",
            "-o",
            "jsonpath={.items[0].status.message}",
        ],
        "the istiod pod to fail",
        |message| !message.is_empty(),
    )
    .await;
    assert_eq!(message, INCOMPLETE_BUNDLE);
    assert_jsonpath(
        &sim,
        "cluster1",
        &["pods", "-n", "istio-system", "-l", "app=istiod"],
        "{.items[0].status.containerStatuses[0].state.waiting.reason}",
        "CrashLoopBackOff",
    )
    .await;
    // No CA: nothing distributed, no self-signed secret, no clusterz.
    assert_eq!(root_cert_of(&sim, "cluster1", "default").await, None);
    absent(
        &sim,
        "cluster1",
        &["secret", "istio-ca-secret", "-n", "istio-system"],
    )
    .await;
    // No endpoint behind istiod's Service: the proxy's 503.
    let raw = absent(&sim, "cluster1", &["--raw", CLUSTERZ]).await;
    assert!(
        raw.stderr.contains("ServiceUnavailable") || raw.stderr.contains("no endpoints"),
        "{}",
        raw.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_secrets_register_with_their_sync_status() {
    let sim = start(3).await;
    for c in ["cluster1", "cluster2"] {
        install(sim.cluster(c).store(), &primary_iop(c, "network1"));
        istiod_running(&sim, c).await;
    }
    // A reader token of cluster2: synced.
    link(&sim, "cluster2", "cluster1").await;
    let rows = clusterz(&sim, "cluster1").await;
    assert!(
        rows.contains(&serde_json::json!({"ID": "cluster2",
            "SecretName": "istio-system/istio-remote-secret-cluster2", "SyncStatus": "synced"})),
        "{rows:?}"
    );
    assert_eq!(status_of(&rows, "cluster1").as_deref(), Some("synced"));

    k(
        &sim,
        "cluster3",
        &["create", "serviceaccount", "nobody", "-n", "default"],
    )
    .await;
    let nobody = sim.cluster("cluster3").mint_token("default", "nobody");
    for (name, id, kubeconfig) in [
        // A bogus token: timeout. A token of an account with no RBAC: timeout.
        (
            "cluster3",
            "cluster3",
            remote_kubeconfig(&sim, "cluster3", "msim-sa.bogus.token.value"),
        ),
        ("weak", "weak", remote_kubeconfig(&sim, "cluster3", &nobody)),
        // A value that is no kubeconfig builds no client: not registered at all.
        ("garbage", "garbage", "not a kubeconfig".to_string()),
        // Its own ID and an ID registered already are ignored.
        ("self", "cluster1", remote_kubeconfig(&sim, "cluster2", "x")),
        (
            "zz-dup",
            "cluster2",
            remote_kubeconfig(&sim, "cluster3", "y"),
        ),
    ] {
        apply(&sim, "cluster1", &[], &remote_secret(name, id, &kubeconfig)).await;
    }

    let rows = clusterz(&sim, "cluster1").await;
    assert_eq!(status_of(&rows, "cluster3").as_deref(), Some("timeout"));
    assert_eq!(status_of(&rows, "weak").as_deref(), Some("timeout"));
    assert_eq!(status_of(&rows, "garbage"), None);
    assert_eq!(status_of(&rows, "cluster2").as_deref(), Some("synced"));
    assert_eq!(rows.iter().filter(|r| r["ID"] == "cluster2").count(), 1);
    assert_eq!(rows.iter().filter(|r| r["ID"] == "cluster1").count(), 1);
    assert_eq!(
        rows.iter().find(|r| r["ID"] == "cluster1").unwrap()["SecretName"],
        ""
    );

    // Through the API server's service proxy (with or without the scheme prefix) the request
    // reaches istiod from the API server, unauthenticated: istiod's bare 401.
    for path in [
        CLUSTERZ,
        "/api/v1/namespaces/istio-system/services/istiod:15014/proxy/debug/clusterz",
    ] {
        let raw = absent(&sim, "cluster1", &["--raw", path]).await;
        assert!(
            raw.stderr.contains("You must be logged in"),
            "{}",
            raw.stderr
        );
    }

    // A remote API server that is down cannot be synced.
    sim.cluster("cluster2").faults().set_down(true);
    let rows = clusterz(&sim, "cluster1").await;
    assert_eq!(status_of(&rows, "cluster2").as_deref(), Some("timeout"));
    sim.cluster("cluster2").faults().set_down(false);
    let rows = clusterz(&sim, "cluster1").await;
    assert_eq!(status_of(&rows, "cluster2").as_deref(), Some("synced"));

    // Deleting the secret unregisters the cluster; the duplicate istiod ignored stays ignored
    // until it changes, then registers the ID.
    k(
        &sim,
        "cluster1",
        &[
            "delete",
            "secret",
            "istio-remote-secret-cluster2",
            "-n",
            "istio-system",
        ],
    )
    .await;
    let rows = clusterz(&sim, "cluster1").await;
    assert_eq!(status_of(&rows, "cluster2"), None, "{rows:?}");
    k(
        &sim,
        "cluster1",
        &[
            "annotate",
            "secret",
            "istio-remote-secret-zz-dup",
            "-n",
            "istio-system",
            "touched=yes",
        ],
    )
    .await;
    let rows = eventually("the changed duplicate to register", || async {
        let rows = clusterz(&sim, "cluster1").await;
        status_of(&rows, "cluster2").map(|_| rows)
    })
    .await;
    let row = rows.iter().find(|r| r["ID"] == "cluster2").unwrap();
    assert_eq!(row["SecretName"], "istio-system/istio-remote-secret-zz-dup");
    assert_eq!(row["SyncStatus"], "timeout");

    // No istiod in cluster3: 404.
    let raw = absent(&sim, "cluster3", &["--raw", CLUSTERZ]).await;
    assert!(raw.stderr.contains("NotFound"), "{}", raw.stderr);
}
