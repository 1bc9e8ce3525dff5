//! The real kubectl against meshsim: every command the acceptance lists,
//! with nothing on stderr.

use crate::common::*;
use serde_json::Value;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#;

async fn pod_names(sim: &meshsim::Sim) -> Vec<String> {
    let out = kubectl(
        sim,
        "cluster1",
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    )
    .await;
    out.ok().split_whitespace().map(str::to_string).collect()
}

async fn deploy_rv(sim: &meshsim::Sim) -> String {
    let out = kubectl(
        sim,
        "cluster1",
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .await;
    out.ok().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_output_formats_and_selectors() {
    let sim = start(1).await;
    let objects = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: a1, namespace: default, labels: {app: a, tier: front}}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b1, namespace: default, labels: {app: b}}
"#;
    let out = kubectl_in(&sim, "cluster1", &["create", "-f", "-"], objects).await;
    assert!(out.ok().contains("configmap/a1 created"), "{}", out.stdout);

    let table = kubectl(&sim, "cluster1", &["get", "ns"]).await;
    let table = table.ok();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("default") && l.contains("Active")),
        "{table}"
    );

    let json = kubectl(&sim, "cluster1", &["get", "cm", "a1", "-o", "json"]).await;
    let v: Value = serde_json::from_str(json.ok()).expect("json");
    assert_eq!(v["data"]["k"], "v");
    assert_eq!(v["kind"], "ConfigMap");

    let names = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "cm",
            "-l",
            "app in (a,b),app!=b",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    )
    .await;
    assert_eq!(names.ok(), "a1");
    let names = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "cm",
            "-l",
            "app",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    )
    .await;
    assert_eq!(names.ok(), "a1 b1");
    let none = kubectl(&sim, "cluster1", &["get", "cm", "-l", "app=zzz"]).await;
    assert_eq!(none.code, 0);
    assert!(
        none.stderr.contains("No resources found"),
        "{}",
        none.stderr
    );

    let missing = kubectl(&sim, "cluster1", &["get", "cm", "nope"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("(NotFound)") && missing.stderr.contains("\"nope\" not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_lifecycle() {
    let sim = start(1).await;
    let first = kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        DEPLOYMENT,
    )
    .await;
    assert_eq!(first.ok().trim(), "deployment.apps/web serverside-applied");

    let wait = kubectl(
        &sim,
        "cluster1",
        &[
            "wait",
            "--for=condition=Available",
            "deploy/web",
            "--timeout=20s",
        ],
    )
    .await;
    assert_eq!(wait.ok().trim(), "deployment.apps/web condition met");
    assert_eq!(pod_names(&sim).await.len(), 2);

    // Applying the same object again changes nothing. Compared once the rollout is done: until
    // then the deployment controller itself writes the Deployment (revision, status).
    let status = kubectl(
        &sim,
        "cluster1",
        &["rollout", "status", "deploy/web", "--timeout=20s"],
    )
    .await;
    assert!(status.ok().contains("successfully rolled out"));
    let before = deploy_rv(&sim).await;
    let again = kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        DEPLOYMENT,
    )
    .await;
    assert_eq!(again.ok().trim(), "deployment.apps/web serverside-applied");
    assert_eq!(deploy_rv(&sim).await, before);

    let scaled = kubectl(&sim, "cluster1", &["scale", "deploy/web", "--replicas=3"]).await;
    assert_eq!(scaled.ok().trim(), "deployment.apps/web scaled");
    eventually("3 pods", || async { pod_names(&sim).await.len() == 3 }).await;

    let old = pod_names(&sim).await;
    let restarted = kubectl(&sim, "cluster1", &["rollout", "restart", "deploy/web"]).await;
    assert_eq!(restarted.ok().trim(), "deployment.apps/web restarted");
    let status = kubectl(
        &sim,
        "cluster1",
        &["rollout", "status", "deploy/web", "--timeout=20s"],
    )
    .await;
    assert!(
        status.ok().contains("successfully rolled out"),
        "{}",
        status.stdout
    );
    eventually("new pods replace the old", || async {
        let now = pod_names(&sim).await;
        now.len() == 3 && now.iter().all(|p| !old.contains(p))
    })
    .await;
    for pod in pod_names(&sim).await {
        // name-<10 char hash>-<5 chars>
        let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
        assert_eq!(parts.len(), 3, "{pod}");
        assert_eq!(
            (parts[0].len(), parts[1].len(), parts[2]),
            (5, 10, "web"),
            "{pod}"
        );
    }

    let history = kubectl(&sim, "cluster1", &["rollout", "history", "deploy/web"]).await;
    let history = history.ok();
    assert!(
        history.contains("\n1  ") && history.contains("\n2  "),
        "two revisions: {history}"
    );
    kubectl(&sim, "cluster1", &["rollout", "undo", "deploy/web"])
        .await
        .ok();
    // The deployment controller numbers the revision after the undo's write: wait for it.
    eventually(
        "an undo makes the old ReplicaSet the newest revision (3)",
        || async {
            let revision = kubectl(
                &sim,
                "cluster1",
                &[
                    "get",
                    "deploy",
                    "web",
                    "-o",
                    "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
                ],
            )
            .await;
            revision.ok() == "3"
        },
    )
    .await;
    let status = kubectl(
        &sim,
        "cluster1",
        &["rollout", "status", "deploy/web", "--timeout=20s"],
    )
    .await;
    assert!(status.ok().contains("successfully rolled out"));
    kubectl(&sim, "cluster1", &["label", "deploy", "web", "tier=front"])
        .await
        .ok();
    kubectl(
        &sim,
        "cluster1",
        &["annotate", "deploy", "web", "note=hello"],
    )
    .await
    .ok();
    let labelled = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "deploy",
            "-l",
            "tier=front",
            "-o",
            "jsonpath={.items[0].metadata.annotations.note}",
        ],
    )
    .await;
    assert_eq!(labelled.ok(), "hello");

    let scaled = kubectl(&sim, "cluster1", &["scale", "deploy/web", "--replicas=0"]).await;
    scaled.ok();
    eventually("no pods", || async { pod_names(&sim).await.is_empty() }).await;

    let deleted = kubectl(
        &sim,
        "cluster1",
        &["delete", "deploy", "web", "--timeout=20s"],
    )
    .await;
    assert_eq!(deleted.ok().trim(), "deployment.apps \"web\" deleted");
    let gone = kubectl(&sim, "cluster1", &["get", "deploy", "web"]).await;
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    let rs = kubectl(&sim, "cluster1", &["get", "rs", "-o", "name"]).await;
    assert_eq!(rs.ok(), "", "the ReplicaSets went with their Deployment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_crds_apply_and_strict_validation() {
    let Some(crds) = crd_file("istio_crds_apply_and_strict_validation") else {
        return;
    };
    let sim = start(1).await;
    let applied = kubectl(
        &sim,
        "cluster1",
        &[
            "apply",
            "--server-side",
            "-f",
            crds.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    assert!(
        applied
            .ok()
            .contains("destinationrules.networking.istio.io serverside-applied")
    );
    let established = kubectl(
        &sim,
        "cluster1",
        &[
            "wait",
            "--for=condition=Established",
            "crd/destinationrules.networking.istio.io",
            "--timeout=20s",
        ],
    )
    .await;
    established.ok();

    let bad = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  unknownField: 1
"#;
    let rejected = kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        bad,
    )
    .await;
    assert_eq!(rejected.code, 1);
    assert!(
        rejected
            .stderr
            .contains("unknown field \"spec.unknownField\""),
        "{}",
        rejected.stderr
    );
    let absent = kubectl(&sim, "cluster1", &["get", "dr", "reviews"]).await;
    assert!(absent.stderr.contains("NotFound"), "{}", absent.stderr);

    // Under Warn the field is pruned and reported as a warning.
    let warned = kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "--validate=warn", "-f", "-"],
        bad,
    )
    .await;
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(
        warned
            .stderr
            .contains("Warning: unknown field \"spec.unknownField\""),
        "{}",
        warned.stderr
    );
    let pruned = kubectl(
        &sim,
        "cluster1",
        &["get", "dr", "reviews", "-o", "jsonpath={.spec}"],
    )
    .await;
    assert!(!pruned.ok().contains("unknownField"), "{}", pruned.stdout);
    kubectl(&sim, "cluster1", &["delete", "dr", "reviews"])
        .await
        .ok();

    let good = bad.replace("  unknownField: 1\n", "");
    kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        &good,
    )
    .await
    .ok();
    let host = kubectl(
        &sim,
        "cluster1",
        &["get", "dr", "reviews", "-o", "jsonpath={.spec.host}"],
    )
    .await;
    assert_eq!(host.ok(), "reviews");
    let listed = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "destinationrules.v1beta1.networking.istio.io",
            "-o",
            "jsonpath={.items[0].apiVersion}",
        ],
    )
    .await;
    assert_eq!(listed.ok(), "networking.istio.io/v1beta1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_delete_cascades_and_ends() {
    let sim = start(1).await;
    let objects = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
"#;
    kubectl_in(&sim, "cluster1", &["create", "-f", "-"], objects)
        .await
        .ok();
    kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        &DEPLOYMENT.replace("namespace: default", "namespace: shop"),
    )
    .await
    .ok();
    let deleted = kubectl(&sim, "cluster1", &["delete", "ns", "shop", "--timeout=20s"]).await;
    assert_eq!(deleted.ok().trim(), "namespace \"shop\" deleted");
    let gone = kubectl(&sim, "cluster1", &["get", "ns", "shop"]).await;
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    let pods = kubectl(&sim, "cluster1", &["get", "pods", "-A", "-o", "name"]).await;
    assert_eq!(pods.ok(), "");
    // Creating in a namespace that does not exist names the namespace.
    let orphan = kubectl_in(
        &sim,
        "cluster1",
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: shop}\n",
    )
    .await;
    assert!(
        orphan.stderr.contains("namespaces \"shop\" not found"),
        "{}",
        orphan.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_and_forbidden() {
    let sim = start(1).await;
    let bad = kubectl(&sim, "cluster1", &["--token", "not-a-token", "get", "ns"]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("You must be logged in to the server"),
        "{}",
        bad.stderr
    );

    let rbac = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
"#;
    kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "-f", "-"],
        rbac,
    )
    .await
    .ok();
    let token = sim.cluster("cluster1").mint_token("default", "reader");
    let reads = kubectl(
        &sim,
        "cluster1",
        &["--token", &token, "get", "cm", "-o", "name"],
    )
    .await;
    assert_eq!(reads.ok().trim(), "configmap/kube-root-ca.crt");
    let writes = kubectl_in(
        &sim,
        "cluster1",
        &["--token", &token, "create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n",
    )
    .await;
    assert_eq!(writes.code, 1);
    assert!(
        writes.stderr.contains("(Forbidden)")
            && writes
                .stderr
                .contains("system:serviceaccount:default:reader"),
        "{}",
        writes.stderr
    );
    let can = kubectl(
        &sim,
        "cluster1",
        &["--token", &token, "auth", "can-i", "list", "configmaps"],
    )
    .await;
    assert_eq!(can.ok().trim(), "yes");
    let cannot = kubectl(
        &sim,
        "cluster1",
        &["--token", &token, "auth", "can-i", "create", "configmaps"],
    )
    .await;
    assert_eq!((cannot.code, cannot.stdout.trim()), (1, "no"));
    let admin = kubectl(
        &sim,
        "cluster1",
        &["auth", "can-i", "delete", "deployments"],
    )
    .await;
    assert_eq!(admin.ok().trim(), "yes");
    let secrets = kubectl(&sim, "cluster1", &["--token", &token, "get", "secrets"]).await;
    assert!(secrets.stderr.contains("Forbidden"), "{}", secrets.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators_send_protobuf() {
    let sim = start(1).await;
    assert_eq!(
        kubectl(&sim, "cluster1", &["create", "ns", "foo"])
            .await
            .ok()
            .trim(),
        "namespace/foo created"
    );
    kubectl(
        &sim,
        "cluster1",
        &["create", "cm", "c1", "-n", "foo", "--from-literal=a=b"],
    )
    .await
    .ok();
    kubectl(
        &sim,
        "cluster1",
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "foo",
            "--from-literal=pw=x",
        ],
    )
    .await
    .ok();
    kubectl(&sim, "cluster1", &["create", "sa", "bot", "-n", "foo"])
        .await
        .ok();
    let cm = kubectl(
        &sim,
        "cluster1",
        &["get", "cm", "c1", "-n", "foo", "-o", "jsonpath={.data.a}"],
    )
    .await;
    assert_eq!(cm.ok(), "b");
    let secret = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "secret",
            "s1",
            "-n",
            "foo",
            "-o",
            "jsonpath={.type} {.data.pw}",
        ],
    )
    .await;
    assert_eq!(secret.ok(), "Opaque eA==");
    let sa = kubectl(
        &sim,
        "cluster1",
        &["get", "sa", "bot", "-n", "foo", "-o", "name"],
    )
    .await;
    assert_eq!(sa.ok().trim(), "serviceaccount/bot");
    // Kinds meshsim cannot decode from protobuf say so.
    let dep = kubectl(
        &sim,
        "cluster1",
        &["create", "deployment", "d", "--image=nginx"],
    )
    .await;
    assert!(
        dep.stderr.contains("UnsupportedMediaType") || dep.stderr.contains("protobuf"),
        "{}",
        dep.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_token_gives_a_working_token() {
    let sim = start(1).await;
    let token = kubectl(&sim, "cluster1", &["create", "token", "default"]).await;
    let token = token.ok().trim().to_string();
    // The default service account has no rights: authenticated, then forbidden.
    let denied = kubectl(&sim, "cluster1", &["--token", &token, "get", "cm"]).await;
    assert!(
        denied
            .stderr
            .contains("system:serviceaccount:default:default"),
        "{}",
        denied.stderr
    );
    assert!(denied.stderr.contains("Forbidden"), "{}", denied.stderr);
    let missing = kubectl(&sim, "cluster1", &["create", "token", "nobody"]).await;
    assert!(
        missing.stderr.contains("\"nobody\" not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_conflicts_between_managers() {
    let sim = start(1).await;
    let cm = |v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: shared, namespace: default}}\ndata: {{x: \"{v}\"}}\n"
        )
    };
    kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        &cm("1"),
    )
    .await
    .ok();
    let conflict = kubectl_in(
        &sim,
        "cluster1",
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        &cm("2"),
    )
    .await;
    assert_eq!(conflict.code, 1);
    assert!(
        conflict.stderr.contains("conflict")
            && conflict.stderr.contains("alice")
            && conflict.stderr.contains(".data.x"),
        "{}",
        conflict.stderr
    );
    let forced = kubectl_in(
        &sim,
        "cluster1",
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &cm("2"),
    )
    .await;
    forced.ok();
    let value = kubectl(
        &sim,
        "cluster1",
        &["get", "cm", "shared", "-o", "jsonpath={.data.x}"],
    )
    .await;
    assert_eq!(value.ok(), "2");
}
