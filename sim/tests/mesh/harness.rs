//! Shared helpers for the mesh tests: a simulation, the real kubectl, Istio installed the way
//! `istioctl install` does it (its objects written into the store), CA bundles like Istio's
//! `tools/certs` Makefiles make, and waiting on conditions with a deadline.

use meshsim::istio::install::Install;
use meshsim::{Sim, SimConfig, Store};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The kubectl on PATH: the binary this machine's users run.
pub const KUBECTL: &str = "kubectl";
pub const VERSION: &str = "1.30.3";
/// istiod's `debug/clusterz` through the API server's service proxy: istiod refuses it (401).
pub const CLUSTERZ: &str =
    "/api/v1/namespaces/istio-system/services/http:istiod:15014/proxy/debug/clusterz";

/// A file or directory of Istio's own (`crds/...`, `samples/...`), or `None` after saying that
/// `test` skipped: a test that needs them starts with this.
pub fn istio(rel: &str, test: &str) -> Option<PathBuf> {
    meshsim::testdata::istio_file(rel, test)
}

/// A file of Istio's own, in a test that has checked with [`istio`] that they are there.
pub fn istio_path(rel: &str) -> PathBuf {
    meshsim::testdata::istio_dir()
        .expect("the test checked for Istio's files first")
        .join(rel)
}

pub fn sample(rel: &str) -> String {
    std::fs::read_to_string(istio_path("samples").join(rel)).expect("sample file reads")
}

pub async fn start_with(config: SimConfig) -> Sim {
    Sim::start(config).await.expect("sim starts")
}

/// Fresh clusters (no Istio kinds until Istio is installed) with pods ready at once.
pub async fn start(clusters: usize) -> Sim {
    start_with(SimConfig {
        clusters,
        ready_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
}

/// Like [`start`], with pods that take a moment to become ready (the sim's default).
pub async fn start_slow(clusters: usize) -> Sim {
    start_with(SimConfig {
        clusters,
        ..Default::default()
    })
    .await
}

/// Writes `text` to `name` in the simulation's own directory (removed with the sim); its path.
pub fn scratch_file(sim: &Sim, name: &str, text: &str) -> String {
    let path = sim.kubeconfig_path().with_file_name(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("scratch dir");
    }
    std::fs::write(&path, text).expect("write scratch file");
    path.display().to_string()
}

pub struct Kubectl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "kubectl failed: {}", self.stderr);
        &self.stdout
    }
}

/// Runs kubectl against one cluster of the simulation.
pub async fn kubectl(sim: &Sim, cluster: &str, args: &[&str]) -> Kubectl {
    kubectl_in(sim, cluster, args, None).await
}

/// Runs kubectl against one cluster of the simulation, `stdin` on its standard input.
pub async fn kubectl_in(sim: &Sim, cluster: &str, args: &[&str], stdin: Option<&str>) -> Kubectl {
    use tokio::io::AsyncWriteExt;
    let path = sim.kubeconfig_path();
    let mut cmd = tokio::process::Command::new(KUBECTL);
    cmd.arg("--kubeconfig")
        .arg(path)
        .arg("--context")
        .arg(format!("sim-{cluster}"))
        .arg("--cache-dir")
        .arg(path.with_extension("cache"))
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl finishes within 60s")
        .expect("kubectl output");
    Kubectl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl ... ` that must succeed; its stdout.
pub async fn k(sim: &Sim, cluster: &str, args: &[&str]) -> String {
    kubectl(sim, cluster, args).await.ok().to_string()
}

/// `kubectl get <target...> -o jsonpath=<path>` that must succeed; its stdout.
pub async fn jsonpath(sim: &Sim, cluster: &str, target: &[&str], path: &str) -> String {
    let output = format!("jsonpath={path}");
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["-o", &output]);
    k(sim, cluster, &args).await
}

/// Asserts that `kubectl get <target...> -o jsonpath=<path>` prints `want`.
pub async fn assert_jsonpath(sim: &Sim, cluster: &str, target: &[&str], path: &str, want: &str) {
    let got = jsonpath(sim, cluster, target, path).await;
    assert_eq!(got, want, "{cluster}: {target:?} {path}");
}

/// [`assert_jsonpath`] row by row: `(target, path, want)`.
pub async fn assert_jsonpaths(sim: &Sim, cluster: &str, rows: &[(&[&str], &str, &str)]) {
    for (target, path, want) in rows {
        assert_jsonpath(sim, cluster, target, path, want).await;
    }
}

/// `kubectl get <target...>` fails because the object is not there.
pub async fn absent(sim: &Sim, cluster: &str, target: &[&str]) -> Kubectl {
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    let out = kubectl(sim, cluster, &args).await;
    assert_ne!(out.code, 0, "{target:?} is there: {}", out.stdout);
    out
}

/// `kubectl apply -f -` of YAML or JSON text.
pub async fn apply(sim: &Sim, cluster: &str, extra: &[&str], text: &str) {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    kubectl_in(sim, cluster, &args, Some(text)).await.ok();
}

/// Polls `cond` until it is `Ok`, with a deadline; on timeout the last `Err` says what was seen.
pub async fn poll<T, F, Fut>(what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = match cond().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}{seen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for `cond` with a deadline; its last value.
pub async fn eventually<T, F, Fut>(what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll(what, || {
        let fut = cond();
        async move { fut.await.ok_or_else(String::new) }
    })
    .await
}

/// Re-runs kubectl until it succeeds with a stdout `cond` accepts, with a deadline; that stdout.
pub async fn kubectl_until(
    sim: &Sim,
    cluster: &str,
    args: &[&str],
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    poll(what, || async {
        let out = kubectl(sim, cluster, args).await;
        if out.code == 0 && cond(&out.stdout) {
            Ok(out.stdout)
        } else {
            Err(format!(": {} {}", out.stdout, out.stderr))
        }
    })
    .await
}

/// Waits until the east-west gateway of `cluster` has a LoadBalancer address; the address.
pub async fn eastwest_address(sim: &Sim, cluster: &str) -> String {
    kubectl_until(
        sim,
        cluster,
        &[
            "get",
            "service",
            "istio-eastwestgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ],
        "the east-west gateway's LB address",
        |ip| !ip.is_empty(),
    )
    .await
}

/// `kubectl rollout status deployment/<name>` until the rollout is done.
pub async fn rollout_status(sim: &Sim, cluster: &str, ns: &str, deploy: &str) {
    let target = format!("deployment/{deploy}");
    k(
        sim,
        cluster,
        &["rollout", "status", &target, "-n", ns, "--timeout=30s"],
    )
    .await;
}

/// `kubectl create namespace <ns>` labelled `istio-injection=enabled`.
pub async fn injection_namespace(sim: &Sim, cluster: &str, ns: &str) {
    k(sim, cluster, &["create", "namespace", ns]).await;
    k(
        sim,
        cluster,
        &["label", "namespace", ns, "istio-injection=enabled"],
    )
    .await;
}

/// Waits until the serving istiod of a cluster's store runs with CLUSTER_ID `id`.
pub async fn istiod_with_cluster_id(store: &Store, id: &str) {
    eventually(&format!("istiod with CLUSTER_ID {id}"), || async {
        meshsim::istio::istiod_pod::serving_istiod_pod(store)
            .filter(|p| meshsim::istio::istiod_pod::pod_cluster_id(p) == id)
            .map(|_| ())
    })
    .await
}

/// istiod's Deployment in a cluster, managed fields included.
pub async fn istiod_deployment(sim: &Sim, cluster: &str) -> Value {
    let text = k(
        sim,
        cluster,
        &[
            "get",
            "deploy",
            "istiod",
            "-n",
            "istio-system",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )
    .await;
    serde_json::from_str(&text).expect("the istiod Deployment is JSON")
}

/// The `values` the sidecar injector renders with (`istio-sidecar-injector` ConfigMap).
pub async fn injector_values(sim: &Sim, cluster: &str) -> Value {
    let text = jsonpath(
        sim,
        cluster,
        &["cm", "istio-sidecar-injector", "-n", "istio-system"],
        "{.data.values}",
    )
    .await;
    serde_json::from_str(&text).expect("the injector's values are JSON")
}

/// The CLUSTER_ID env of a Deployment's first container (istiod's).
pub fn cluster_id_of(deploy: &Value) -> Option<String> {
    env_value(
        &deploy["spec"]["template"]["spec"]["containers"][0]["env"],
        "CLUSTER_ID",
    )
}

/// The `value` of env var `name` in a container's `env` list.
pub fn env_value(env: &Value, name: &str) -> Option<String> {
    env.as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

/// Writes every object of `istioctl install -f <iop>` into the cluster's store (create, or
/// replace what is there), as the istioctl stand-in does. A replace re-reads and retries when
/// a controller wrote the object in between (409 Conflict: a Deployment's status, a Service's
/// address).
pub fn install(store: &Store, iop_yaml: &str) {
    install_version(store, iop_yaml, VERSION)
}

/// [`install`] of Istio `version` (its image tags: what the istiod stand-in behaves as).
pub fn install_version(store: &Store, iop_yaml: &str, version: &str) {
    let iop: Value = serde_yaml::from_str(iop_yaml).expect("IOP parses");
    let install = Install::from_iop(&iop, version).expect("IOP reads");
    for obj in install.objects() {
        let api = obj["apiVersion"].as_str().unwrap();
        let kind = obj["kind"].as_str().unwrap();
        let rt = store.resolve_kind(api, kind).expect("type served");
        let ns = obj["metadata"]["namespace"].as_str();
        let name = obj["metadata"]["name"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let written = match store.get(&rt, ns, name) {
                Ok(existing) => {
                    let mut new = obj.clone();
                    new["metadata"] = existing["metadata"].clone();
                    let labels = obj["metadata"].get("labels").cloned();
                    if let Some(l) = labels {
                        new["metadata"]["labels"] = l;
                    }
                    if let Some(s) = existing.get("status") {
                        new["status"] = s.clone();
                    }
                    store.update(&rt, new, &Default::default())
                }
                Err(_) => store.create(&rt, obj.clone(), &Default::default()),
            };
            match written {
                Ok(_) => break,
                Err(e) if e.code == 409 && Instant::now() < deadline => continue,
                Err(e) => panic!("install {kind} {name}: {} {}", e.code, e.message),
            }
        }
    }
}

/// A primary IOP (FACTS 4.1 values).
pub fn primary_iop(cluster_name: &str, network: &str) -> String {
    format!(
        "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  values:
    global:
      meshID: mesh1
      multiCluster:
        clusterName: {cluster_name}
      network: {network}
"
    )
}

/// `gen-eastwest-gateway.sh --network <net>` output.
pub fn eastwest_iop(network: &str) -> String {
    sample("multicluster/eastwest-gateway-iop.network1.generated.yaml").replace("network1", network)
}

/// A root CA and per-cluster intermediates, as `tools/certs` makes them (ECDSA here).
pub struct Roots {
    root: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Roots {
    pub fn new(org: &str) -> Roots {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.distinguished_name.push(DnType::CommonName, "Root CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let root = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Roots { root }
    }

    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// The four `cacerts` files for one cluster.
    pub fn cacerts(&self, cluster: &str) -> Vec<(&'static str, String)> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut p = CertificateParams::new(vec!["istiod.istio-system.svc".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, "Istio");
        p.distinguished_name
            .push(DnType::CommonName, "Intermediate CA");
        p.distinguished_name.push(DnType::LocalityName, cluster);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &*self.root).unwrap();
        let root = self.root_pem();
        vec![
            ("ca-cert.pem", cert.pem()),
            ("ca-key.pem", key.serialize_pem()),
            ("root-cert.pem", root.clone()),
            ("cert-chain.pem", format!("{}{}", cert.pem(), root)),
        ]
    }
}

/// `kubectl create secret generic cacerts -n istio-system --from-file=...` (FACTS 3.1).
pub async fn create_cacerts(sim: &Sim, cluster: &str, files: &[(&str, String)]) {
    let mut args: Vec<String> = [
        "create",
        "secret",
        "generic",
        "cacerts",
        "-n",
        "istio-system",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, text) in files {
        let path = scratch_file(sim, &format!("cacerts-{cluster}/{name}"), text);
        args.push(format!("--from-file={path}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    k(sim, cluster, &args).await;
}

/// The `root-cert.pem` of `istio-ca-root-cert` in a namespace, read with kubectl.
pub async fn root_cert_of(sim: &Sim, cluster: &str, ns: &str) -> Option<String> {
    let out = kubectl(
        sim,
        cluster,
        &[
            "get",
            "configmap",
            "istio-ca-root-cert",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.root-cert\\.pem}",
        ],
    )
    .await;
    (out.code == 0 && !out.stdout.is_empty()).then_some(out.stdout)
}

/// `kubectl rollout restart deployment/<name>` and wait until the rollout is done.
pub async fn rollout_restart(sim: &Sim, cluster: &str, ns: &str, deploy: &str) {
    let target = format!("deployment/{deploy}");
    k(sim, cluster, &["rollout", "restart", &target, "-n", ns]).await;
    rollout_status(sim, cluster, ns, deploy).await;
}

/// The kubeconfig `istioctl create-remote-secret` embeds (FACTS 1.2) for `of`, with `token`.
pub fn remote_kubeconfig(sim: &Sim, of: &str, token: &str) -> String {
    use base64::Engine;
    let c = sim.cluster(of);
    let ca = base64::engine::general_purpose::STANDARD.encode(c.ca_pem());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {of}
  cluster:
    certificate-authority-data: {ca}
    server: {}
contexts:
- name: {of}
  context:
    cluster: {of}
    user: {of}
current-context: {of}
users:
- name: {of}
  user:
    token: {token}
",
        c.server_url()
    )
}

/// The remote Secret (FACTS 1.1) for cluster `of` with data key `id`.
pub fn remote_secret(name_of: &str, id: &str, kubeconfig: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("istio-remote-secret-{name_of}"),
            "namespace": "istio-system",
            "labels": {"istio/multiCluster": "true"},
            "annotations": {"networking.istio.io/cluster": name_of},
        },
        "stringData": {id: kubeconfig},
    })
    .to_string()
}

/// `istioctl create-remote-secret --context=<of> --name=<of> | kubectl apply --context=<into>`,
/// with a token of the reader service account.
pub async fn link(sim: &Sim, of: &str, into: &str) {
    let token = sim
        .cluster(of)
        .mint_token("istio-system", "istio-reader-service-account");
    let kc = remote_kubeconfig(sim, of, &token);
    apply(sim, into, &[], &remote_secret(of, of, &kc)).await;
}

/// `debug/clusterz` of a cluster's istiod, read as istioctl reads it: a port-forward to the
/// serving pod's 15014 (istiod answers the service proxy with 401).
pub async fn clusterz(sim: &Sim, cluster: &str) -> Vec<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pod = istiod_running(sim, cluster).await;
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sim.kubeconfig_path()).expect("kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: Some(sim.cluster(cluster).context()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client, "istio-system");
    let mut forward = pods
        .portforward(&pod, &[15014])
        .await
        .expect("port-forward");
    let mut stream = forward.take_stream(15014).expect("stream");
    stream
        .write_all(
            b"GET /debug/clusterz HTTP/1.1\r\nHost: localhost:15014\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("istiod answers")
        .expect("read");
    forward.abort();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(body).expect("clusterz is JSON")
}

pub fn status_of(rows: &[Value], id: &str) -> Option<String> {
    rows.iter()
        .find(|r| r["ID"] == id)
        .and_then(|r| r["SyncStatus"].as_str())
        .map(str::to_string)
}

/// Waits until istiod in `cluster` serves (its pod ready with a CA) and returns the pod name.
pub async fn istiod_running(sim: &Sim, cluster: &str) -> String {
    let store = sim.cluster(cluster).store().clone();
    eventually("istiod to serve", || {
        let store = store.clone();
        async move {
            meshsim::istio::istiod_pod::serving_istiod_pod(&store)
                .and_then(|p| p["metadata"]["name"].as_str().map(str::to_string))
        }
    })
    .await
}

/// Waits until `istio-ca-root-cert` in `ns` holds `pem`.
pub async fn root_cert_becomes(sim: &Sim, cluster: &str, ns: &str, pem: &str) {
    eventually(&format!("istio-ca-root-cert in {cluster}/{ns}"), || async {
        root_cert_of(sim, cluster, ns)
            .await
            .filter(|c| c.trim() == pem.trim())
            .map(|_| ())
    })
    .await
}
