//! The `migrate` binary started as `istioctl` (a symlink, as tests and the
//! demo put on PATH) is meshsim's istioctl stand-in: a real client that
//! finds the cluster through $KUBECONFIG or --kubeconfig and --context.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// A directory holding `istioctl -> migrate`.
fn istioctl_link(dir: &Path) -> PathBuf {
    meshsim::istioctl::link(dir, Path::new(env!("CARGO_BIN_EXE_migrate")))
        .expect("symlink istioctl")
}

async fn run(program: &Path, args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("finishes within 120s")
        .expect("runs")
}

async fn kubectl(kubeconfig: &Path, context: &str, args: &[&str]) -> Output {
    let mut all = vec!["--context", context];
    all.extend_from_slice(args);
    run(Path::new("kubectl"), &all, Some(kubeconfig)).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_started_as_istioctl_installs_and_uninstalls() {
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        clusters: 2,
        ready_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("sim starts");
    let kubeconfig = sim.kubeconfig_path().to_path_buf();
    let dir = tempfile::tempdir().expect("temp dir");
    let istioctl = istioctl_link(dir.path());
    let iop = dir.path().join("istio-cluster1.yaml");
    std::fs::write(
        &iop,
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global:\n      meshID: mesh1\n      multiCluster: {clusterName: cluster1}\n      network: network1\n",
    )
    .unwrap();

    let out = run(&istioctl, &["version", "--remote=false"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "client version: 1.30.3\n");

    // The migrate tool's own invocation, the cluster found through $KUBECONFIG.
    let iop_path = iop.display().to_string();
    let out = run(
        &istioctl,
        &[
            "install",
            "-y",
            "-f",
            &iop_path,
            "--context",
            "sim-cluster1",
        ],
        Some(&kubeconfig),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("✔ Istiod installed 🧠\n")
            && text(&out.stdout).contains("✔ Installation complete\n"),
        "{}",
        text(&out.stdout)
    );
    let env = kubectl(
        &kubeconfig,
        "sim-cluster1",
        &["get", "deploy", "istiod", "-n", "istio-system", "-o", "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"CLUSTER_ID\")].value} {.status.availableReplicas}"],
    )
    .await;
    assert_eq!(text(&env.stdout), "cluster1 1", "{}", text(&env.stderr));

    // Mistakes: exit 1 and a message on stderr.
    let out = run(&istioctl, &["install", "--bogus"], Some(&kubeconfig)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Error: unknown flag: --bogus\n"),
        "{}",
        text(&out.stderr)
    );
    let missing = dir.path().join("missing.yaml").display().to_string();
    let out = run(
        &istioctl,
        &["install", "-y", "-f", &missing],
        Some(&kubeconfig),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&missing),
        "{}",
        text(&out.stderr)
    );
    let k = kubeconfig.display().to_string();
    let out = run(
        &istioctl,
        &[
            "remote-clusters",
            "--context",
            "sim-cluster2",
            "--kubeconfig",
            &k,
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: unable to find any Istiod instances\n"
    );

    let out = run(
        &istioctl,
        &[
            "uninstall",
            "--purge",
            "-y",
            "--context",
            "sim-cluster1",
            "--kubeconfig",
            &k,
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let gone = kubectl(
        &kubeconfig,
        "sim-cluster1",
        &["get", "deploy", "istiod", "-n", "istio-system"],
    )
    .await;
    assert_ne!(
        gone.status.code(),
        Some(0),
        "istiod survived uninstall --purge"
    );
    assert!(
        text(&gone.stderr).contains("not found"),
        "{}",
        text(&gone.stderr)
    );
}
