//! Shared helpers: starting a simulation, running kubectl, kube clients.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use meshsim::{ResourceType, Sim, SimConfig, Store, WriteOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// The kubectl on PATH: the binary this machine's users run.
pub const KUBECTL: &str = "kubectl";

/// Istio's CRDs, or `None` after saying that `test` skipped.
pub fn crd_file(test: &str) -> Option<PathBuf> {
    meshsim::testdata::istio_file("crds/crd-all.gen.yaml", test)
}

pub async fn start(clusters: usize) -> Sim {
    Sim::start(SimConfig {
        clusters,
        ready_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("sim starts")
}

/// kubectl's result.
pub struct Kubectl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// Asserts success with nothing on stderr (no warnings about the server).
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "kubectl failed: {}", self.stderr);
        assert_eq!(self.stderr, "", "kubectl wrote to stderr");
        &self.stdout
    }
}

fn to_result(out: Output) -> Kubectl {
    Kubectl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kubectl against the simulation (with a private cache directory).
pub async fn kubectl_with(
    kubeconfig: &Path,
    context: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Kubectl {
    use tokio::io::AsyncWriteExt;
    let cache = kubeconfig.with_extension("cache");
    let mut cmd = tokio::process::Command::new(KUBECTL);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--context")
        .arg(context)
        .arg("--cache-dir")
        .arg(&cache)
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
    to_result(out)
}

pub async fn kubectl(sim: &Sim, cluster: &str, args: &[&str]) -> Kubectl {
    kubectl_with(sim.kubeconfig_path(), &format!("sim-{cluster}"), args, None).await
}

pub async fn kubectl_in(sim: &Sim, cluster: &str, args: &[&str], stdin: &str) -> Kubectl {
    kubectl_with(
        sim.kubeconfig_path(),
        &format!("sim-{cluster}"),
        args,
        Some(stdin),
    )
    .await
}

/// A kube client for a context of a kubeconfig file (no retries: tests see every answer).
pub async fn client_for(path: &Path, context: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig reads");
    let opts = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .expect("config");
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(5));
    Client::try_from(config).expect("client")
}

pub async fn client(sim: &Sim, cluster: &str) -> Client {
    client_for(sim.kubeconfig_path(), &format!("sim-{cluster}")).await
}

/// Waits for `cond` (re-evaluated) with a deadline.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Changes a live object through the store as a careful client does when a controller also
/// writes it: reads it, applies `change`, writes it with that resourceVersion, and on 409
/// Conflict (the controller got there first) reads and changes it again, within a deadline.
#[track_caller]
pub fn update_retrying(
    store: &Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    change: impl Fn(&mut Value),
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut obj = store.get(rt, namespace, name).expect("the object exists");
        change(&mut obj);
        match store.update(rt, obj, &WriteOptions::default()) {
            Ok(written) => return written,
            Err(e) if e.code == 409 && Instant::now() < deadline => continue,
            Err(e) => panic!("updating {name}: {} {}: {}", e.code, e.reason, e.message),
        }
    }
}

/// One raw HTTP/1.1 GET over TLS (status line and headers included in the text).
pub async fn raw_get(cluster: &meshsim::ClusterHandle, path: &str, token: &str) -> String {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cluster.ca_pem().as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port()))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("ip name");
    let mut tls = connector.connect(name, tcp).await.expect("tls");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}
