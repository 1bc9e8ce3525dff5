//! `pods/{name}/portforward` over a websocket, with kube's own port-forward
//! client: istiod's monitoring port answers `debug/clusterz` to the
//! forwarded (localhost) request, while the API server's service proxy gets
//! istiod's 401; a port nothing listens on gets the kubelet's error; RBAC
//! asks for `create` on `pods/portforward`.

use crate::common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use meshsim::Sim;
use meshsim::seed::seed_source_mesh;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLUSTERZ_PROXY: &str =
    "/api/v1/namespaces/istio-system/services/http:istiod:15014/proxy/debug/clusterz";

/// A seeded source mesh in cluster1; the name of its istiod pod once it serves.
async fn mesh() -> (Sim, String) {
    let sim = start(2).await;
    seed_source_mesh(&sim, "cluster1").await.expect("seed");
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "istio-system");
    let list = pods
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .expect("list istiod pods");
    let name = list.items.first().expect("an istiod pod").name_any();
    (sim, name)
}

/// One raw HTTP/1.1 request through a port-forward, answered and closed by the pod side;
/// the whole answer, and what the error channel said.
async fn forwarded(
    client: Client,
    pod: &str,
    port: u16,
    request: &str,
) -> (String, Option<String>) {
    let pods: Api<Pod> = Api::namespaced(client, "istio-system");
    let mut forward = pods.portforward(pod, &[port]).await.expect("port-forward");
    let mut stream = forward.take_stream(port).expect("stream");
    let error = forward.take_error(port).expect("error channel");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the pod side closes")
        .expect("read");
    // The error channel ends with the session: kube ends it once our side is closed too.
    drop(stream);
    let error = tokio::time::timeout(Duration::from_secs(10), error)
        .await
        .expect("the error channel ends");
    (String::from_utf8_lossy(&answer).into_owned(), error)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost:15014\r\nConnection: close\r\n\r\n")
}

/// Status, headers (lower-cased) and body of an HTTP/1.1 answer with Content-Length.
fn parse(answer: &str) -> (u16, Vec<(String, String)>, String) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines();
    let status = lines.next().expect("status line");
    let code = status
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (code, headers, body.to_string())
}

/// istiod's 15014 may take a moment after the Deployment is available (its CA choice).
async fn clusterz_when_served(sim: &Sim, pod: &str) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (answer, error) = forwarded(
            client(sim, "cluster1").await,
            pod,
            15014,
            &get("/debug/clusterz"),
        )
        .await;
        if error.is_none() || Instant::now() > deadline {
            return (answer, error);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_reads_clusterz_where_the_service_proxy_gets_401() {
    let (sim, pod) = mesh().await;
    let before = sim.cluster("cluster1").streams().port_forwards();

    let (answer, error) = clusterz_when_served(&sim, &pod).await;
    assert_eq!(error, None);
    let (code, headers, body) = parse(&answer);
    assert_eq!(code, 200, "{answer}");
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse::<usize>().expect("a number"));
    assert_eq!(length, Some(body.len()), "{answer}");
    let rows: Vec<Value> = serde_json::from_str(&body).expect("clusterz is JSON");
    // The seeded mesh has no clusterName: istiod calls itself Kubernetes.
    assert!(
        rows.iter()
            .any(|r| r["ID"] == "Kubernetes" && r["SyncStatus"] == "synced"),
        "{rows:?}"
    );
    assert!(sim.cluster("cluster1").streams().port_forwards() > before);

    // Other paths: istiod's mux says 404.
    let (answer, _) = forwarded(
        client(&sim, "cluster1").await,
        &pod,
        15014,
        &get("/debug/nothing"),
    )
    .await;
    assert_eq!(parse(&answer).0, 404, "{answer}");

    // The same endpoint through the API server's service proxy: the request
    // reaches istiod from the API server, unauthenticated: 401.
    let proxied = sim.cluster("cluster1").streams().proxied_debug();
    let request = http::Request::get(CLUSTERZ_PROXY).body(Vec::new()).unwrap();
    match client(&sim, "cluster1").await.request_text(request).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("the proxy answered {other:?}"),
    }
    assert_eq!(
        sim.cluster("cluster1").streams().proxied_debug(),
        proxied + 1
    );
    let raw = kubectl(&sim, "cluster1", &["get", "--raw", CLUSTERZ_PROXY]).await;
    assert_ne!(raw.code, 0, "{}", raw.stdout);
    // kubectl's words for a bare 401, as against a real istiod.
    assert!(
        raw.stderr.contains("You must be logged in"),
        "{}",
        raw.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_nothing_listens_on_gets_the_kubelets_error() {
    let (sim, pod) = mesh().await;
    let (answer, error) = forwarded(client(&sim, "cluster1").await, &pod, 15015, &get("/")).await;
    assert_eq!(answer, "");
    let error = error.expect("an error on the error channel");
    assert!(
        error.contains(&format!(
            "error forwarding port 15015 to pod {pod}_istio-system"
        )) && error.contains("failed to connect to localhost:15015"),
        "{error}"
    );
    // A pod that does not exist: 404 before any upgrade.
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "istio-system");
    match pods.portforward("no-such-pod", &[15014]).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404, "{s:?}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a port-forward to a pod that does not exist"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_asks_for_create_on_pods_portforward() {
    let (sim, pod) = mesh().await;
    let rbac = "apiVersion: v1
kind: ServiceAccount
metadata: {name: watcher, namespace: istio-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: istio-system}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: watcher, namespace: istio-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: watcher, namespace: istio-system}
";
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], rbac)
        .await
        .ok();
    let token = sim
        .cluster("cluster1")
        .mint_token("istio-system", "watcher");
    let watcher = token_client(&sim, &token).await;
    let pods: Api<Pod> = Api::namespaced(watcher.clone(), "istio-system");
    match pods.portforward(&pod, &[15014]).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(s.message.contains("pods/portforward"), "{}", s.message);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a port-forward without pods/portforward"),
    }
    let grant = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: istio-system}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ['']
  resources: [pods/portforward]
  verbs: [create]
";
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], grant)
        .await
        .ok();
    let (answer, error) = forwarded(watcher, &pod, 15014, &get("/debug/clusterz")).await;
    assert_eq!(error, None);
    assert_eq!(parse(&answer).0, 200, "{answer}");
}

/// A client of cluster1 that authenticates with `token` (also for the exec tests).
pub async fn token_client(sim: &Sim, token: &str) -> Client {
    use base64::Engine;
    let c = sim.cluster("cluster1");
    let ca = base64::engine::general_purpose::STANDARD.encode(c.ca_pem());
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{certificate-authority-data: {ca}, server: '{}'}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
users:
- name: u
  user: {{token: {token}}}
",
        c.server_url()
    );
    let path = sim.kubeconfig_path().with_file_name("watcher.kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    client_for(&path, "c").await
}
