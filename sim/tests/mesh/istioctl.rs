//! The istioctl stand-in against simulated clusters: what `install` puts
//! there (seen through kubectl), what `uninstall` takes away, `version`,
//! `remote-clusters` without istiod, and mistakes on the command line.

use crate::harness::*;
use meshsim::Sim;
use meshsim::istioctl::IstioctlError;

/// istioctl in process: exit status as `main` reports it, and what it printed.
pub async fn istioctl(args: &[&str], stdin: &str) -> (Result<(), IstioctlError>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    let mut input = stdin.as_bytes();
    let result = meshsim::istioctl::run(&args, &mut out, &mut input).await;
    (result, String::from_utf8_lossy(&out).into_owned())
}

/// istioctl against one context of the simulation's kubeconfig.
async fn istioctl_on(
    sim: &Sim,
    context: &str,
    args: &[&str],
    stdin: &str,
) -> (Result<(), IstioctlError>, String) {
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let mut args = args.to_vec();
    args.extend_from_slice(&["--context", context, "--kubeconfig", &kubeconfig]);
    istioctl(&args, stdin).await
}

/// `istioctl install -y -f <file>` that must succeed; what it printed.
async fn install_file(sim: &Sim, context: &str, file: &str) -> String {
    let (result, out) = istioctl_on(sim, context, &["install", "-y", "-f", file], "").await;
    if let Err(e) = result {
        panic!("istioctl install -f {file} failed: {e}\n{out}");
    }
    out
}

/// `istioctl uninstall -y <args>` that must succeed; what it printed.
async fn uninstall(sim: &Sim, context: &str, args: &[&str]) -> String {
    let mut all = vec!["uninstall", "-y"];
    all.extend_from_slice(args);
    let (result, out) = istioctl_on(sim, context, &all, "").await;
    if let Err(e) = result {
        panic!("istioctl uninstall {args:?} failed: {e}\n{out}");
    }
    out
}

fn eastwest_file() -> String {
    istio_path("samples/multicluster/eastwest-gateway-iop.network1.generated.yaml")
        .display()
        .to_string()
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

/// `kubectl get deploy -n istio-system -o name` in one cluster.
async fn istio_system_deployments(sim: &Sim, cluster: &str) -> Kubectl {
    kubectl(
        sim,
        cluster,
        &["get", "deploy", "-n", "istio-system", "-o", "name"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_a_primary_and_an_east_west_gateway_then_purge() {
    let Some(crds) = istio(
        "crds/crd-all.gen.yaml",
        "install_a_primary_and_an_east_west_gateway_then_purge",
    ) else {
        return;
    };
    let sim = start(2).await;
    // Istio's real CRDs are served already: install must leave them alone.
    let crds = crds.display().to_string();
    k(&sim, "cluster2", &["apply", "--server-side", "-f", &crds]).await;
    let primary = scratch_file(
        &sim,
        "istio-cluster2.yaml",
        &PRIMARY.replace("cluster1", "cluster2"),
    );
    let out = install_file(&sim, "sim-cluster2", &primary).await;
    assert_eq!(
        out,
        "✔ Istio core installed ⛵️\n✔ Istiod installed 🧠\n✔ Ingress gateways installed 🛬\n✔ Installation complete\n\
         Made this installation the default for cluster-wide operations.\n"
    );
    let out = install_file(&sim, "sim-cluster2", &eastwest_file()).await;
    assert_eq!(
        out,
        "✔ Ingress gateways installed 🛬\n✔ Installation complete\n"
    );

    // istiod: available, with the cluster's CLUSTER_ID, applied by field manager istio-operator (as istioctl's installer).
    let d = istiod_deployment(&sim, "cluster2").await;
    assert_eq!(cluster_id_of(&d).as_deref(), Some("cluster2"));
    assert_eq!(d["status"]["availableReplicas"], 1, "{d}");
    assert!(
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "istio-operator"),
        "{d}"
    );
    k(
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
    .await;
    let values = injector_values(&sim, "cluster2").await;
    assert_eq!(values["global"]["network"], "network1");
    assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster2");
    for target in [
        &["sa", "istio-reader-service-account", "-n", "istio-system"][..],
        &["clusterrole", "istio-reader-clusterrole-istio-system"],
        &["mutatingwebhookconfiguration", "istio-sidecar-injector"],
    ] {
        k(&sim, "cluster2", &[&["get"][..], target].concat()).await;
    }
    // The real CRD stayed the real one (the stand-in's carry its component label).
    let gw_labels = jsonpath(
        &sim,
        "cluster2",
        &["crd", "gateways.networking.istio.io"],
        "{.metadata.labels}",
    )
    .await;
    assert!(gw_labels.contains("istio-pilot"), "{gw_labels}");
    assert!(
        !gw_labels.contains("operator.istio.io/component"),
        "{gw_labels}"
    );
    // No installed-state CR since 1.21, so no IstioOperator kind either (FACTS 4.2).
    absent(&sim, "cluster2", &["istiooperators", "-A"]).await;
    // The east-west gateway: network label, a LoadBalancer address.
    let ip = eastwest_address(&sim, "cluster2").await;
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
    assert_jsonpath(
        &sim,
        "cluster2",
        &["svc", "istio-eastwestgateway", "-n", "istio-system"],
        "{.metadata.labels.topology\\.istio\\.io/network}",
        "network1",
    )
    .await;
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
    let other = istio_system_deployments(&sim, "cluster1").await;
    assert_eq!(other.stdout.trim(), "", "{}", other.stderr);

    // Installing again is a no-op apply.
    install_file(&sim, "sim-cluster2", &primary).await;

    let out = uninstall(&sim, "sim-cluster2", &["--purge"]).await;
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
        let got = absent(&sim, "cluster2", &[kind, name, "-n", "istio-system"]).await;
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
        absent(&sim, "cluster2", &[kind, name]).await;
    }
    // Istio's own CRDs (no component label) and the namespace stay, as with the real istioctl.
    k(
        &sim,
        "cluster2",
        &["get", "crd", "gateways.networking.istio.io"],
    )
    .await;
    k(&sim, "cluster2", &["get", "ns", "istio-system"]).await;
    let left = k(
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
    assert_eq!(left.trim(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crds_install_creates_are_purged_and_uninstall_f_removes_only_that_operator() {
    let Some(_) = istio(
        "samples",
        "the_crds_install_creates_are_purged_and_uninstall_f_removes_only_that_operator",
    ) else {
        return;
    };
    let sim = start(1).await;
    let primary = scratch_file(&sim, "istio.yaml", PRIMARY);
    install_file(&sim, "sim-cluster1", &primary).await;
    // istioctl created istio-system, so it labelled it with the network (CreateNamespace).
    // No Istio CRDs were served: install created them (the base component's).
    assert_jsonpaths(
        &sim,
        "cluster1",
        &[
            (
                &["ns", "istio-system"],
                "{.metadata.labels.topology\\.istio\\.io/network}",
                "network1",
            ),
            (
                &["crd", "virtualservices.networking.istio.io"],
                "{.metadata.labels.operator\\.istio\\.io/component}",
                "Base",
            ),
        ],
    )
    .await;
    k(&sim, "cluster1", &["get", "virtualservices", "-A"]).await;
    let eastwest = eastwest_file();
    install_file(&sim, "sim-cluster1", &eastwest).await;

    // The migrate tool's rollback of the east-west step: only that operator goes.
    let out = uninstall(&sim, "sim-cluster1", &["-f", &eastwest]).await;
    assert!(
        out.contains("Kind=Service/istio-eastwestgateway.istio-system."),
        "{out}"
    );
    absent(
        &sim,
        "cluster1",
        &["svc", "istio-eastwestgateway", "-n", "istio-system"],
    )
    .await;
    k(
        &sim,
        "cluster1",
        &["get", "deploy", "istiod", "-n", "istio-system"],
    )
    .await;
    k(
        &sim,
        "cluster1",
        &["get", "svc", "istio-ingressgateway", "-n", "istio-system"],
    )
    .await;

    uninstall(&sim, "sim-cluster1", &["--purge"]).await;
    let crd = kubectl(
        &sim,
        "cluster1",
        &["get", "crd", "virtualservices.networking.istio.io"],
    )
    .await;
    assert_ne!(crd.code, 0, "the CRD install created survived --purge");
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
    let (result, out) = istioctl_on(&sim, "sim-cluster1", &["version"], "").await;
    result.unwrap();
    assert_eq!(
        out,
        "Istio is not present in the cluster: no running Istio pods in \"istio-system\"\nclient version: 1.30.3\n"
    );
    let primary = scratch_file(&sim, "istio.yaml", PRIMARY);
    install_file(&sim, "sim-cluster1", &primary).await;
    let (result, out) = istioctl_on(&sim, "sim-cluster1", &["version"], "").await;
    result.unwrap();
    assert!(
        out.starts_with("client version: 1.30.3\ncontrol plane version: 1.30.3\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_clusters_without_istiod_is_a_clear_error() {
    let sim = start(1).await;
    let (result, out) = istioctl_on(&sim, "sim-cluster1", &["remote-clusters"], "").await;
    let err = result.expect_err("no istiod");
    assert_eq!(err.to_string(), "unable to find any Istiod instances");
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_refused_before_touching_the_cluster() {
    let sim = start(1).await;
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let (result, _) = istioctl(&["install", "--bogus", "--kubeconfig", &kubeconfig], "").await;
    assert_eq!(result.unwrap_err().to_string(), "unknown flag: --bogus");
    let (result, _) = istioctl(&["upgrade-everything"], "").await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "unknown command \"upgrade-everything\" for \"istioctl\""
    );

    let bad = scratch_file(
        &sim,
        "not-an-iop.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let (result, _) = istioctl_on(&sim, "sim-cluster1", &["install", "-y", "-f", &bad], "").await;
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("not-an-iop.yaml") && text.contains("IstioOperator"),
        "{text}"
    );
    let broken = scratch_file(
        &sim,
        "broken.yaml",
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: [\n",
    );
    let (result, _) =
        istioctl_on(&sim, "sim-cluster1", &["install", "-y", "-f", &broken], "").await;
    assert!(result.unwrap_err().to_string().contains("broken.yaml"));
    let unknown_profile = scratch_file(
        &sim,
        "p.yaml",
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: ambientish}\n",
    );
    let (result, _) = istioctl_on(
        &sim,
        "sim-cluster1",
        &["install", "-y", "-f", &unknown_profile],
        "",
    )
    .await;
    assert!(result.unwrap_err().to_string().contains("ambientish"));
    let (result, _) = istioctl_on(&sim, "no-such-context", &["install", "-y"], "").await;
    assert!(result.unwrap_err().to_string().contains("no-such-context"));
    // Declining the prompt changes nothing.
    let (result, out) = istioctl_on(&sim, "sim-cluster1", &["install"], "n\n").await;
    assert!(matches!(result, Err(IstioctlError::Cancelled)));
    assert!(out.contains("This will install the Istio 1.30.3 \"default\" profile (with components: Istio core, Istiod, and Ingress gateways) into the cluster. Proceed? (y/N)"), "{out}");
    let nothing = istio_system_deployments(&sim, "cluster1").await;
    assert_eq!(nothing.stdout.trim(), "");
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
    let remote = scratch_file(&sim, "remote.yaml", REMOTE);
    let out = install_file(&sim, "sim-cluster1", &remote).await;
    assert_eq!(out, "✔ Istio core installed ⛵️\n✔ Installation complete\n");
    let none = istio_system_deployments(&sim, "cluster1").await;
    assert_eq!(none.ok().trim(), "", "a remote runs no istiod");
    assert_jsonpaths(
        &sim,
        "cluster1",
        &[
            (
                &["endpointslice", "istiod", "-n", "istio-system"],
                "{.endpoints[0].addresses[0]} {.metadata.labels.kubernetes\\.io/service-name}",
                "172.18.1.10 istiod",
            ),
            (
                &["svc", "istiod", "-n", "istio-system"],
                "{.spec.ports[*].port}",
                "15012 443",
            ),
            (
                &["mutatingwebhookconfiguration", "istio-sidecar-injector"],
                "{.webhooks[0].clientConfig.service.path}",
                "/inject/cluster/cluster2/net/network2",
            ),
        ],
    )
    .await;
    uninstall(&sim, "sim-cluster1", &["--purge"]).await;
    absent(
        &sim,
        "cluster1",
        &["endpointslice", "istiod", "-n", "istio-system"],
    )
    .await;
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
    let Some(_) = istio(
        "samples",
        "installing_again_prunes_what_the_operator_no_longer_renders",
    ) else {
        return;
    };
    let sim = start(1).await;
    // The namespace exists before the install (the migrate tool labels it first).
    k(&sim, "cluster1", &["create", "namespace", "istio-system"]).await;
    let primary = scratch_file(&sim, "istio.yaml", PRIMARY);
    install_file(&sim, "sim-cluster1", &primary).await;
    let eastwest = eastwest_file();
    install_file(&sim, "sim-cluster1", &eastwest).await;

    // A named operator installed again prunes only among its own objects.
    let out = install_file(&sim, "sim-cluster1", &eastwest).await;
    assert!(!out.contains("Removed"), "{out}");

    // The unnamed operator without the ingress gateway: its gateway goes, and
    // so does the separately installed east-west gateway (same revision, no
    // owner to tell them apart), as with istioctl 1.30.
    let no_ingress = scratch_file(&sim, "no-ingress.yaml", NO_INGRESS);
    let out = install_file(&sim, "sim-cluster1", &no_ingress).await;
    assert!(
        out.contains("  Removed apps/v1, Kind=Deployment/istio-ingressgateway.istio-system.\n"),
        "{out}"
    );
    assert!(
        out.contains("  Removed /v1, Kind=Service/istio-eastwestgateway.istio-system.\n"),
        "{out}"
    );
    assert!(out.ends_with("✔ Installation complete\nMade this installation the default for cluster-wide operations.\n"), "{out}");
    let gateways = k(
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
    assert_eq!(gateways.trim(), "");
    assert_jsonpath(
        &sim,
        "cluster1",
        &["deploy", "istiod", "-n", "istio-system"],
        "{.status.availableReplicas}",
        "1",
    )
    .await;
    // The namespace existed: istioctl does not label it (migrate does, FACTS 4.1).
    let labels = jsonpath(
        &sim,
        "cluster1",
        &["ns", "istio-system"],
        "{.metadata.labels}",
    )
    .await;
    assert!(!labels.contains("topology.istio.io/network"), "{labels}");
}
