//! Brownfield sources: the Helm stand-in (release Secrets as Helm writes
//! them, upgrade, rollback, uninstall), revisioned control planes and
//! revision tags as injection honours them, and the ambient seed; checked
//! with the real kubectl.

use crate::harness::*;
use meshsim::Sim;
use meshsim::helm::release::{self, Release};
use meshsim::seed::{Installer, SourceMesh, seed_mesh};
use serde_json::Value;

/// helm in process against cluster1, as `migrate` would run the `helm` link.
async fn helm(sim: &Sim, args: &[&str]) -> Result<String, meshsim::helm::HelmError> {
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for a in [
        "--kube-context",
        "sim-cluster1",
        "--kubeconfig",
        &kubeconfig,
    ] {
        all.push(a.to_string());
    }
    let mut out = Vec::new();
    meshsim::helm::run(&all, &mut out, &mut std::io::empty()).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The release records of `release` in istio-system, read with kubectl and decoded, by version.
async fn records(sim: &Sim, release: &str) -> Vec<(Value, Release)> {
    let selector = format!("owner=helm,name={release}");
    let text = k(
        sim,
        "cluster1",
        &[
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-l",
            &selector,
            "-o",
            "json",
        ],
    )
    .await;
    let list: Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(Value, Release)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s.clone(), release::from_secret(s).expect("a Helm record")))
        .collect();
    out.sort_by_key(|(_, r)| r.version);
    out
}

fn statuses(records: &[(Value, Release)]) -> Vec<(u32, String, String)> {
    records
        .iter()
        .map(|(s, r)| {
            assert_eq!(s["metadata"]["labels"]["status"], r.info.status.as_str());
            assert_eq!(s["metadata"]["labels"]["version"], r.version.to_string());
            (
                r.version,
                r.info.status.clone(),
                r.config["revision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Containers of the pods matching `selector` in `ns`, one list per pod.
async fn pod_containers(sim: &Sim, ns: &str, selector: &str) -> Vec<Value> {
    let text = k(
        sim,
        "cluster1",
        &["get", "pods", "-n", ns, "-l", selector, "-o", "json"],
    )
    .await;
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn proxy_of(pod: &Value) -> Option<&Value> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "istio-proxy")
}

fn injected_revision(pod: &Value) -> Option<String> {
    let status: Value =
        serde_json::from_str(pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()?)
            .ok()?;
    status["revision"].as_str().map(str::to_string)
}

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: example/app:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_installed_revisioned_source_as_kubectl_sees_it() {
    let sim = start(2).await;
    let mesh = SourceMesh {
        installer: Installer::Helm,
        revision: "1-26-4".into(),
        istio_version: "1.26.4".into(),
        ambient: false,
    };
    seed_mesh(&sim, "cluster1", &mesh).await.expect("seed");

    // The release record, as Helm stores it.
    let istiod = records(&sim, "istiod").await;
    assert_eq!(
        statuses(&istiod),
        vec![(1, "deployed".into(), "1-26-4".into())]
    );
    let (secret, record) = &istiod[0];
    assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.istiod.v1");
    assert_eq!(secret["type"], "helm.sh/release.v1");
    assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
    assert_eq!(record.namespace, "istio-system");
    assert_eq!(record.chart.metadata.name, "istiod");
    assert_eq!(record.chart.metadata.version, "1.26.4");
    assert!(record.manifest.contains("name: istiod-1-26-4"));
    for other in ["istio-base", "istio-ingressgateway"] {
        assert_eq!(records(&sim, other).await.len(), 1, "{other}");
    }

    // The control plane of the revision, rendered by Helm.
    let d: Value = serde_json::from_str(
        &k(
            &sim,
            "cluster1",
            &[
                "get",
                "deploy",
                "istiod-1-26-4",
                "-n",
                "istio-system",
                "-o",
                "json",
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(d["metadata"]["labels"]["istio.io/rev"], "1-26-4");
    assert!(
        d["metadata"]["labels"]
            .get("operator.istio.io/managed")
            .is_none()
    );
    assert_eq!(
        d["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "istiod"
    );
    assert_eq!(
        d["metadata"]["annotations"]["meta.helm.sh/release-namespace"],
        "istio-system"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/istio/pilot:1.26.4"
    );
    absent(
        &sim,
        "cluster1",
        &["deploy", "istiod", "-n", "istio-system"],
    )
    .await;
    k(
        &sim,
        "cluster1",
        &["get", "svc", "istiod-1-26-4", "-n", "istio-system"],
    )
    .await;
    k(
        &sim,
        "cluster1",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector-1-26-4",
        ],
    )
    .await;

    // The sample namespace joins by revision; its pods carry that revision's sidecar.
    assert_jsonpath(
        &sim,
        "cluster1",
        &["ns", "sample"],
        "{.metadata.labels.istio\\.io/rev}",
        "1-26-4",
    )
    .await;
    let pods = pod_containers(&sim, "sample", "app=helloworld").await;
    assert_eq!(pods.len(), 1);
    let proxy = proxy_of(&pods[0]).expect("helloworld has a sidecar");
    assert_eq!(proxy["image"], "docker.io/istio/proxyv2:1.26.4");
    assert_eq!(injected_revision(&pods[0]).as_deref(), Some("1-26-4"));

    // A namespace asking for the default revision gets nothing: no default webhook exists.
    injection_namespace(&sim, "cluster1", "legacy").await;
    apply(&sim, "cluster1", &["-n", "legacy"], APP).await;
    rollout_status(&sim, "cluster1", "legacy", "app").await;
    let pods = pod_containers(&sim, "legacy", "app=app").await;
    assert!(proxy_of(&pods[0]).is_none(), "{}", pods[0]);

    // A revision tag: `istio.io/rev=prod` namespaces are injected by istiod-1-26-4.
    let tag = meshsim::istio::install::revision_tag_webhook("prod", "1-26-4");
    apply(&sim, "cluster1", &[], &tag.to_string()).await;
    k(&sim, "cluster1", &["create", "namespace", "tagged"]).await;
    k(
        &sim,
        "cluster1",
        &["label", "namespace", "tagged", "istio.io/rev=prod"],
    )
    .await;
    apply(&sim, "cluster1", &["-n", "tagged"], APP).await;
    rollout_status(&sim, "cluster1", "tagged", "app").await;
    let pods = pod_containers(&sim, "tagged", "app=app").await;
    assert_eq!(
        injected_revision(&pods[0]).as_deref(),
        Some("1-26-4"),
        "{}",
        pods[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_rollback_and_uninstall_leave_what_helm_leaves() {
    let sim = start(1).await;
    let install = |rev: &'static str, mesh_id: &'static str| {
        let set_rev = format!("revision={rev}");
        let set_mesh = format!("global.meshID={mesh_id}");
        let sim = &sim;
        async move {
            helm(
                sim,
                &[
                    "upgrade",
                    "--install",
                    "istiod",
                    "istio/istiod",
                    "-n",
                    "istio-system",
                    "--create-namespace",
                    "--set",
                    &set_rev,
                    "--set",
                    &set_mesh,
                    "--version",
                    "1.26.4",
                    "--wait",
                ],
            )
            .await
            .expect("helm upgrade --install")
        }
    };
    let out = install("1-26-4", "mesh1").await;
    assert!(out.contains("REVISION: 1"), "{out}");
    let out = install("1-26-5", "mesh2").await;
    assert!(
        out.contains("has been upgraded") && out.contains("REVISION: 2"),
        "{out}"
    );
    assert_eq!(
        statuses(&records(&sim, "istiod").await),
        vec![
            (1, "superseded".into(), "1-26-4".into()),
            (2, "deployed".into(), "1-26-5".into())
        ]
    );
    // The upgrade deleted what revision 2 no longer renders.
    absent(
        &sim,
        "cluster1",
        &["deploy", "istiod-1-26-4", "-n", "istio-system"],
    )
    .await;
    absent(
        &sim,
        "cluster1",
        &[
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector-1-26-4",
        ],
    )
    .await;
    k(
        &sim,
        "cluster1",
        &["get", "deploy", "istiod-1-26-5", "-n", "istio-system"],
    )
    .await;

    let out = helm(
        &sim,
        &["rollback", "istiod", "1", "-n", "istio-system", "--wait"],
    )
    .await
    .expect("rollback");
    assert!(out.contains("Rollback was a success"), "{out}");
    let recs = records(&sim, "istiod").await;
    assert_eq!(
        statuses(&recs),
        vec![
            (1, "superseded".into(), "1-26-4".into()),
            (2, "superseded".into(), "1-26-5".into()),
            (3, "deployed".into(), "1-26-4".into())
        ]
    );
    assert_eq!(recs[2].1.config, recs[0].1.config);
    assert_eq!(recs[2].1.manifest, recs[0].1.manifest);
    assert_eq!(recs[2].1.info.description, "Rollback to 1");
    k(
        &sim,
        "cluster1",
        &["get", "deploy", "istiod-1-26-4", "-n", "istio-system"],
    )
    .await;
    absent(
        &sim,
        "cluster1",
        &["deploy", "istiod-1-26-5", "-n", "istio-system"],
    )
    .await;

    let values: Value = serde_json::from_str(
        &helm(
            &sim,
            &[
                "get",
                "values",
                "istiod",
                "-n",
                "istio-system",
                "-o",
                "json",
            ],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        values,
        serde_json::json!({"revision": "1-26-4", "global": {"meshID": "mesh1"}})
    );
    let list: Value = serde_json::from_str(
        &helm(&sim, &["list", "-n", "istio-system", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["name"], "istiod");
    assert_eq!(list[0]["revision"], "3");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["chart"], "istiod-1.26.4");

    // A Helm killed mid-upgrade leaves a pending record: Helm then refuses to act on the release.
    let mut pending = recs[2].1.clone();
    pending.version = 4;
    pending.info.status = release::status::PENDING_UPGRADE.into();
    let secret = release::to_secret(&pending, true, 1).unwrap();
    apply(&sim, "cluster1", &[], &secret.to_string()).await;
    for args in [
        &[
            "upgrade",
            "--install",
            "istiod",
            "istio/istiod",
            "-n",
            "istio-system",
        ][..],
        &["rollback", "istiod", "-n", "istio-system"][..],
    ] {
        assert!(
            matches!(
                helm(&sim, args).await,
                Err(meshsim::helm::HelmError::InProgress)
            ),
            "{args:?}"
        );
    }
    assert_eq!(records(&sim, "istiod").await.len(), 4);

    let out = helm(&sim, &["uninstall", "istiod", "-n", "istio-system"])
        .await
        .unwrap();
    assert!(out.contains("release \"istiod\" uninstalled"), "{out}");
    assert!(records(&sim, "istiod").await.is_empty());
    for (kind, ns) in [
        ("deploy", Some("istio-system")),
        ("svc", Some("istio-system")),
        ("cm", Some("istio-system")),
        ("mutatingwebhookconfiguration", None),
        ("clusterrole", None),
    ] {
        let mut args = vec![
            "get",
            kind,
            "-l",
            "app.kubernetes.io/managed-by=Helm",
            "-o",
            "name",
        ];
        if let Some(ns) = ns {
            args.extend_from_slice(&["-n", ns]);
        }
        let left = k(&sim, "cluster1", &args).await;
        assert_eq!(left.trim(), "", "{kind} left behind");
    }
    assert!(matches!(
        helm(&sim, &["rollback", "istiod", "-n", "istio-system"]).await,
        Err(meshsim::helm::HelmError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ambient_seed_runs_ztunnel_and_no_sidecars() {
    let sim = start(1).await;
    let mesh = SourceMesh {
        ambient: true,
        ..Default::default()
    };
    seed_mesh(&sim, "cluster1", &mesh).await.expect("seed");
    k(
        &sim,
        "cluster1",
        &["get", "daemonset", "ztunnel", "-n", "istio-system"],
    )
    .await;
    assert_jsonpath(
        &sim,
        "cluster1",
        &["ns", "sample"],
        "{.metadata.labels.istio\\.io/dataplane-mode}",
        "ambient",
    )
    .await;
    let pods = pod_containers(&sim, "sample", "app").await;
    assert!(pods.len() >= 2, "helloworld and curl");
    for p in &pods {
        assert!(proxy_of(p).is_none(), "{p}");
    }
    // The istioctl seed at an older release plays that release.
    let sim = start(1).await;
    let mesh = SourceMesh {
        istio_version: "1.24.2".into(),
        ..Default::default()
    };
    seed_mesh(&sim, "cluster1", &mesh).await.expect("seed");
    let pods = pod_containers(&sim, "sample", "app=helloworld").await;
    assert_eq!(
        proxy_of(&pods[0]).unwrap()["image"],
        "docker.io/istio/proxyv2:1.24.2"
    );
    assert_eq!(injected_revision(&pods[0]).as_deref(), Some("default"));
}
