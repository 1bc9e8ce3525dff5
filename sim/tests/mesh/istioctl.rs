//! The istioctl stand-in against simulated clusters: what `install` puts
//! there (seen through kubectl), what `uninstall` takes away, `version`,
//! `remote-clusters` without istiod, and mistakes on the command line.

use meshsim::{Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/bin/kubectl";

pub async fn start(clusters: usize) -> Sim {
    Sim::start(SimConfig {
        clusters,
        ready_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("sim starts")
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

/// The real kubectl against one simulated cluster.
pub async fn kubectl(sim: &Sim, cluster: &str, args: &[&str]) -> Kubectl {
    let path = sim.kubeconfig_path();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(path)
            .arg("--context")
            .arg(format!("sim-{cluster}"))
            .arg("--cache-dir")
            .arg(path.with_extension("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("kubectl finishes within 60s")
    .expect("kubectl runs");
    Kubectl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Re-runs kubectl until `cond` holds on its stdout, with a deadline.
pub async fn kubectl_until(
    sim: &Sim,
    cluster: &str,
    args: &[&str],
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(sim, cluster, args).await;
        if out.code == 0 && cond(&out.stdout) {
            return out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} {}",
            out.stdout,
            out.stderr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// istioctl in process: exit status as `main` reports it, and what it printed.
pub async fn istioctl(
    args: &[&str],
    stdin: &str,
) -> (Result<(), meshsim::istioctl::IstioctlError>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    let mut input = stdin.as_bytes();
    let result = meshsim::istioctl::run(&args, &mut out, &mut input).await;
    (result, String::from_utf8_lossy(&out).into_owned())
}

fn kc(sim: &Sim) -> String {
    sim.kubeconfig_path().display().to_string()
}

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(rel)
}

/// What src/phases/install.rs generates for a primary (meshID, clusterName, network, trust domain).
const PRIMARY: &str = "\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    trustDomain: cluster.local
  values:
    global:
      meshID: mesh1
      multiCluster:
        clusterName: cluster1
      network: network1
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "istioctl-mesh-test-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn fastrand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

async fn install(sim: &Sim, context: &str, file: &str) -> String {
    let kubeconfig = kc(sim);
    let (result, out) = istioctl(
        &[
            "install",
            "-y",
            "-f",
            file,
            "--context",
            context,
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    if let Err(e) = result {
        panic!("istioctl install -f {file} failed: {e}\n{out}");
    }
    out
}

fn env_value(deployment_json: &str, container: usize, name: &str) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(deployment_json).expect("json");
    d["spec"]["template"]["spec"]["containers"][container]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_a_primary_and_an_east_west_gateway_then_purge() {
    let sim = start(2).await;
    // Istio's real CRDs are served already: install must leave them alone.
    let crds = shared("istio/crds/crd-all.gen.yaml");
    kubectl(
        &sim,
        "cluster2",
        &["apply", "--server-side", "-f", &crds.display().to_string()],
    )
    .await
    .ok();
    let dir = temp_dir();
    let primary = write(
        &dir,
        "istio-cluster2.yaml",
        &PRIMARY.replace("cluster1", "cluster2"),
    );
    let out = install(&sim, "sim-cluster2", &primary).await;
    assert_eq!(
        out,
        "✔ Istio core installed ⛵️\n✔ Istiod installed 🧠\n✔ Ingress gateways installed 🛬\n✔ Installation complete\n\
         Made this installation the default for cluster-wide operations.\n"
    );
    let eastwest =
        shared("istio/samples/multicluster/eastwest-gateway-iop.network1.generated.yaml");
    let out = install(&sim, "sim-cluster2", &eastwest.display().to_string()).await;
    assert_eq!(
        out,
        "✔ Ingress gateways installed 🛬\n✔ Installation complete\n"
    );

    // istiod: available, with the cluster's CLUSTER_ID, applied by field manager istio-operator (as istioctl's installer).
    let istiod = kubectl(
        &sim,
        "cluster2",
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
    let istiod_json = istiod.ok();
    assert_eq!(
        env_value(istiod_json, 0, "CLUSTER_ID").as_deref(),
        Some("cluster2")
    );
    let d: serde_json::Value = serde_json::from_str(istiod_json).unwrap();
    assert_eq!(d["status"]["availableReplicas"], 1, "{istiod_json}");
    assert!(
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "istio-operator"),
        "{istiod_json}"
    );
    kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "cm",
            "istio",
            "istio-sidecar-injector",
            "values",
            "-n",
            "istio-system",
        ],
    )
    .await
    .ok();
    let injector = kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "cm",
            "istio-sidecar-injector",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.data.values}",
        ],
    )
    .await;
    let values: serde_json::Value = serde_json::from_str(injector.ok()).unwrap();
    assert_eq!(values["global"]["network"], "network1");
    assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster2");
    kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "sa",
            "istio-reader-service-account",
            "-n",
            "istio-system",
        ],
    )
    .await
    .ok();
    kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "clusterrole",
            "istio-reader-clusterrole-istio-system",
        ],
    )
    .await
    .ok();
    kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector",
        ],
    )
    .await
    .ok();
    // The real CRD stayed the real one (meshsim's permissive ones carry a label).
    let gw_crd = kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "crd",
            "gateways.networking.istio.io",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    )
    .await;
    assert!(
        !gw_crd.ok().contains("meshsim.io/permissive"),
        "{}",
        gw_crd.stdout
    );
    // No installed-state CR since 1.21, so no IstioOperator kind either (FACTS 4.2).
    let iops = kubectl(&sim, "cluster2", &["get", "istiooperators", "-A"]).await;
    assert_ne!(iops.code, 0, "{}", iops.stdout);
    // The east-west gateway: network label, a LoadBalancer address.
    let ip = kubectl_until(
        &sim,
        "cluster2",
        &[
            "get",
            "svc",
            "istio-eastwestgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ],
        "the east-west gateway's address",
        |s| !s.is_empty(),
    )
    .await;
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
    let net = kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "svc",
            "istio-eastwestgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.metadata.labels.topology\\.istio\\.io/network}",
        ],
    )
    .await;
    assert_eq!(net.ok(), "network1");
    kubectl_until(
        &sim,
        "cluster2",
        &[
            "get",
            "deploy",
            "istio-eastwestgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        "the east-west gateway available",
        |s| s == "1",
    )
    .await;
    // --context chose cluster2: cluster1 has no Istio.
    let other = kubectl(
        &sim,
        "cluster1",
        &["get", "deploy", "-n", "istio-system", "-o", "name"],
    )
    .await;
    assert_eq!(other.stdout.trim(), "", "{}", other.stderr);

    // Installing again is a no-op apply.
    install(&sim, "sim-cluster2", &primary).await;

    let kubeconfig = kc(&sim);
    let (result, out) = istioctl(
        &[
            "uninstall",
            "--purge",
            "-y",
            "--context",
            "sim-cluster2",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.expect("uninstall --purge");
    assert!(
        out.contains("All Istio resources will be pruned from the cluster"),
        "{out}"
    );
    assert!(
        out.contains("  Removed apps/v1, Kind=Deployment/istiod.istio-system."),
        "{out}"
    );
    assert!(out.ends_with("✔ Uninstall complete\n"), "{out}");
    for (kind, name) in [
        ("deploy", "istiod"),
        ("deploy", "istio-eastwestgateway"),
        ("svc", "istio-eastwestgateway"),
        ("svc", "istiod"),
        ("cm", "istio"),
        ("cm", "istio-sidecar-injector"),
        ("cm", "values"),
        ("sa", "istio-reader-service-account"),
    ] {
        let got = kubectl(&sim, "cluster2", &["get", kind, name, "-n", "istio-system"]).await;
        assert_ne!(got.code, 0, "{kind} {name} survived the purge");
        assert!(
            got.stderr.contains("NotFound") || got.stderr.contains("not found"),
            "{}",
            got.stderr
        );
    }
    for (kind, name) in [
        ("clusterrole", "istio-reader-clusterrole-istio-system"),
        (
            "clusterrolebinding",
            "istio-reader-clusterrole-istio-system",
        ),
        ("mutatingwebhookconfiguration", "istio-sidecar-injector"),
    ] {
        let got = kubectl(&sim, "cluster2", &["get", kind, name]).await;
        assert_ne!(got.code, 0, "{kind} {name} survived the purge");
    }
    // Istio's own CRDs (no component label) and the namespace stay, as with the real istioctl.
    kubectl(
        &sim,
        "cluster2",
        &["get", "crd", "gateways.networking.istio.io"],
    )
    .await
    .ok();
    kubectl(&sim, "cluster2", &["get", "ns", "istio-system"])
        .await
        .ok();
    let left = kubectl(
        &sim,
        "cluster2",
        &[
            "get",
            "deploy,svc,cm,sa",
            "-n",
            "istio-system",
            "-l",
            "operator.istio.io/component",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(left.ok().trim(), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crds_install_creates_are_purged_and_uninstall_f_removes_only_that_operator() {
    let sim = start(1).await;
    let dir = temp_dir();
    let primary = write(&dir, "istio.yaml", PRIMARY);
    install(&sim, "sim-cluster1", &primary).await;
    // istioctl created istio-system, so it labelled it with the network (CreateNamespace).
    let net = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "ns",
            "istio-system",
            "-o",
            "jsonpath={.metadata.labels.topology\\.istio\\.io/network}",
        ],
    )
    .await;
    assert_eq!(net.ok(), "network1");
    // No Istio CRDs were served: install created them (the base component's).
    let crd = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "crd",
            "virtualservices.networking.istio.io",
            "-o",
            "jsonpath={.metadata.labels.operator\\.istio\\.io/component}",
        ],
    )
    .await;
    assert_eq!(crd.ok(), "Base");
    kubectl(&sim, "cluster1", &["get", "virtualservices", "-A"])
        .await
        .ok();
    let eastwest =
        shared("istio/samples/multicluster/eastwest-gateway-iop.network1.generated.yaml")
            .display()
            .to_string();
    install(&sim, "sim-cluster1", &eastwest).await;

    // The migrate tool's rollback of the east-west step: only that operator goes.
    let kubeconfig = kc(&sim);
    let (result, out) = istioctl(
        &[
            "uninstall",
            "-y",
            "-f",
            &eastwest,
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.expect("uninstall -f eastwest");
    assert!(
        out.contains("Kind=Service/istio-eastwestgateway.istio-system."),
        "{out}"
    );
    let gone = kubectl(
        &sim,
        "cluster1",
        &["get", "svc", "istio-eastwestgateway", "-n", "istio-system"],
    )
    .await;
    assert_ne!(gone.code, 0);
    kubectl(
        &sim,
        "cluster1",
        &["get", "deploy", "istiod", "-n", "istio-system"],
    )
    .await
    .ok();
    kubectl(
        &sim,
        "cluster1",
        &["get", "svc", "istio-ingressgateway", "-n", "istio-system"],
    )
    .await
    .ok();

    let (result, _) = istioctl(
        &[
            "uninstall",
            "--purge",
            "-y",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.expect("purge");
    let crd = kubectl(
        &sim,
        "cluster1",
        &["get", "crd", "virtualservices.networking.istio.io"],
    )
    .await;
    assert_ne!(crd.code, 0, "the CRD install created survived --purge");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_local_and_remote() {
    let (result, out) = istioctl(&["version", "--remote=false"], "").await;
    result.unwrap();
    assert_eq!(
        out,
        format!("client version: {}\n", meshsim::istioctl::VERSION)
    );
    assert_eq!(meshsim::istioctl::VERSION, "1.30.3");

    let sim = start(1).await;
    let kubeconfig = kc(&sim);
    let (result, out) = istioctl(
        &[
            "version",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.unwrap();
    assert_eq!(
        out,
        "Istio is not present in the cluster: no running Istio pods in \"istio-system\"\nclient version: 1.30.3\n"
    );
    let dir = temp_dir();
    install(&sim, "sim-cluster1", &write(&dir, "istio.yaml", PRIMARY)).await;
    let (result, out) = istioctl(
        &[
            "version",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.unwrap();
    assert!(
        out.starts_with("client version: 1.30.3\ncontrol plane version: 1.30.3\n"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_clusters_without_istiod_is_a_clear_error() {
    let sim = start(1).await;
    let kubeconfig = kc(&sim);
    let (result, out) = istioctl(
        &[
            "remote-clusters",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    let err = result.expect_err("no istiod");
    assert_eq!(err.to_string(), "unable to find any Istiod instances");
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_refused_before_touching_the_cluster() {
    let sim = start(1).await;
    let kubeconfig = kc(&sim);
    let (result, _) = istioctl(&["install", "--bogus", "--kubeconfig", &kubeconfig], "").await;
    assert_eq!(result.unwrap_err().to_string(), "unknown flag: --bogus");
    let (result, _) = istioctl(&["upgrade-everything"], "").await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "unknown command \"upgrade-everything\" for \"istioctl\""
    );

    let dir = temp_dir();
    let bad = write(
        &dir,
        "not-an-iop.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let (result, _) = istioctl(
        &[
            "install",
            "-y",
            "-f",
            &bad,
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("not-an-iop.yaml") && text.contains("IstioOperator"),
        "{text}"
    );
    let broken = write(
        &dir,
        "broken.yaml",
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: [\n",
    );
    let (result, _) = istioctl(
        &[
            "install",
            "-y",
            "-f",
            &broken,
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    assert!(result.unwrap_err().to_string().contains("broken.yaml"));
    let unknown_profile = write(
        &dir,
        "p.yaml",
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: ambientish}\n",
    );
    let (result, _) = istioctl(
        &[
            "install",
            "-y",
            "-f",
            &unknown_profile,
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    assert!(result.unwrap_err().to_string().contains("ambientish"));
    let (result, _) = istioctl(
        &[
            "install",
            "-y",
            "--context",
            "no-such-context",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    assert!(result.unwrap_err().to_string().contains("no-such-context"));
    // Declining the prompt changes nothing.
    let (result, out) = istioctl(
        &[
            "install",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "n\n",
    )
    .await;
    assert!(matches!(
        result,
        Err(meshsim::istioctl::IstioctlError::Cancelled)
    ));
    assert!(out.contains("This will install the Istio 1.30.3 \"default\" profile (with components: Istio core, Istiod, and Ingress gateways) into the cluster. Proceed? (y/N)"), "{out}");
    let nothing = kubectl(
        &sim,
        "cluster1",
        &["get", "deploy", "-n", "istio-system", "-o", "name"],
    )
    .await;
    assert_eq!(nothing.stdout.trim(), "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `main` as the busybox entry sees it: exit codes only (it prints to the process's stdout/stderr).
#[test]
fn main_exit_codes() {
    assert_eq!(
        meshsim::istioctl::main(vec!["version".into(), "--remote=false".into()]),
        0
    );
    assert_eq!(
        meshsim::istioctl::main(vec!["install".into(), "--bogus".into()]),
        1
    );
    assert_eq!(
        meshsim::istioctl::main(vec!["uninstall".into(), "-y".into()]),
        1
    );
    assert_eq!(
        meshsim::istioctl::main(vec![
            "install".into(),
            "-y".into(),
            "-f".into(),
            "/nonexistent/iop.yaml".into()
        ]),
        1
    );
}

/// What src/phases/install.rs generates for a remote, the placeholder resolved to the primary's gateway address.
const REMOTE: &str = "\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: remote
  values:
    istiodRemote:
      injectionPath: /inject/cluster/cluster2/net/network2
    global:
      meshID: mesh1
      multiCluster:
        clusterName: cluster2
      network: network2
      remotePilotAddress: 172.18.1.10
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_gets_an_istiod_service_pointing_at_the_primary() {
    let sim = start(1).await;
    let dir = temp_dir();
    let out = install(&sim, "sim-cluster1", &write(&dir, "remote.yaml", REMOTE)).await;
    assert_eq!(out, "✔ Istio core installed ⛵️\n✔ Installation complete\n");
    let none = kubectl(
        &sim,
        "cluster1",
        &["get", "deploy", "-n", "istio-system", "-o", "name"],
    )
    .await;
    assert_eq!(none.ok().trim(), "", "a remote runs no istiod");
    let slice = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "endpointslice",
            "istiod",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]} {.metadata.labels.kubernetes\\.io/service-name}",
        ],
    )
    .await;
    assert_eq!(slice.ok(), "172.18.1.10 istiod");
    let ports = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "svc",
            "istiod",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.spec.ports[*].port}",
        ],
    )
    .await;
    assert_eq!(ports.ok(), "15012 443");
    let hook = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector",
            "-o",
            "jsonpath={.webhooks[0].clientConfig.service.path}",
        ],
    )
    .await;
    assert_eq!(hook.ok(), "/inject/cluster/cluster2/net/network2");
    let kubeconfig = kc(&sim);
    let (result, _) = istioctl(
        &[
            "uninstall",
            "-y",
            "--purge",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &kubeconfig,
        ],
        "",
    )
    .await;
    result.unwrap();
    let gone = kubectl(
        &sim,
        "cluster1",
        &["get", "endpointslice", "istiod", "-n", "istio-system"],
    )
    .await;
    assert_ne!(gone.code, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

const NO_INGRESS: &str = "\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  components:
    ingressGateways:
      - name: istio-ingressgateway
        enabled: false
  values:
    global:
      meshID: mesh1
      multiCluster:
        clusterName: cluster1
      network: network1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_again_prunes_what_the_operator_no_longer_renders() {
    let sim = start(1).await;
    // The namespace exists before the install (the migrate tool labels it first).
    kubectl(&sim, "cluster1", &["create", "namespace", "istio-system"])
        .await
        .ok();
    let dir = temp_dir();
    let primary = write(&dir, "istio.yaml", PRIMARY);
    install(&sim, "sim-cluster1", &primary).await;
    let eastwest =
        shared("istio/samples/multicluster/eastwest-gateway-iop.network1.generated.yaml")
            .display()
            .to_string();
    install(&sim, "sim-cluster1", &eastwest).await;

    // A named operator installed again prunes only among its own objects.
    let out = install(&sim, "sim-cluster1", &eastwest).await;
    assert!(!out.contains("Removed"), "{out}");

    // The unnamed operator without the ingress gateway: its gateway goes, and
    // so does the separately installed east-west gateway (same revision, no
    // owner to tell them apart), as with istioctl 1.30.
    let out = install(
        &sim,
        "sim-cluster1",
        &write(&dir, "no-ingress.yaml", NO_INGRESS),
    )
    .await;
    assert!(
        out.contains("  Removed apps/v1, Kind=Deployment/istio-ingressgateway.istio-system.\n"),
        "{out}"
    );
    assert!(
        out.contains("  Removed /v1, Kind=Service/istio-eastwestgateway.istio-system.\n"),
        "{out}"
    );
    assert!(out.ends_with("✔ Installation complete\nMade this installation the default for cluster-wide operations.\n"), "{out}");
    let gateways = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "deploy,svc,sa",
            "-n",
            "istio-system",
            "-l",
            "operator.istio.io/component=IngressGateways",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(gateways.ok().trim(), "");
    let istiod = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "deploy",
            "istiod",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
    )
    .await;
    assert_eq!(istiod.ok(), "1");
    // The namespace existed: istioctl does not label it (migrate does, FACTS 4.1).
    let labels = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "ns",
            "istio-system",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    )
    .await;
    assert!(
        !labels.ok().contains("topology.istio.io/network"),
        "{}",
        labels.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}
