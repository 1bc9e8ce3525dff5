//! Pods run: scheduled on the cluster's node, started with their conditions in order, their
//! commands answered by the mesh model, ended by exit codes, deleted gracefully, evicted under
//! PodDisruptionBudgets, kept Pending on a cordoned node.

use crate::common::{client, kubectl, kubectl_in, start};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const HELLOWORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: sample}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld, namespace: sample, labels: {app: helloworld}}
spec:
  ports: [{port: 5000, name: http}]
  selector: {app: helloworld}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: helloworld-v1, namespace: sample}
spec:
  replicas: 1
  selector: {matchLabels: {app: helloworld, version: v1}}
  template:
    metadata: {labels: {app: helloworld, version: v1}}
    spec:
      containers:
      - name: helloworld
        image: docker.io/istio/examples-helloworld-v1:1.0
        ports: [{containerPort: 5000}]
"#;

fn pod(name: &str, image: &str, command: &[&str], extra: Value) -> Pod {
    let mut spec =
        json!({"restartPolicy": "Never", "containers": [{"name": "main", "image": image}]});
    if !command.is_empty() {
        spec["containers"][0]["command"] = json!(command);
    }
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec}),
    )
    .expect("a pod")
}

/// Waits (with a deadline) until the pod satisfies `cond`; returns it.
async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = pods.get_opt(name).await.expect("get pod") {
            let v = serde_json::to_value(&p).expect("json");
            if cond(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {name}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_gone(pods: &Api<Pod>, name: &str) -> Duration {
    let start = Instant::now();
    while pods.get_opt(name).await.expect("get").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} was never removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn phase(p: &Value) -> &str {
    p.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn exit_code(p: &Value) -> Option<i64> {
    p.pointer("/status/containerStatuses/0/state/terminated/exitCode")
        .and_then(Value::as_i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_pod_runs_with_its_conditions_in_order() {
    let sim = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "default");
    pods.create(
        &PostParams::default(),
        &pod("bare", "busybox:1.36", &["sleep", "3600"], json!({})),
    )
    .await
    .expect("created");
    let p = wait_pod(&pods, "bare", "Ready", |p| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    })
    .await;
    assert_eq!(phase(&p), "Running");
    assert_eq!(p["spec"]["nodeName"], "cluster1-control-plane");
    let kinds: Vec<&str> = p["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "True", "{c}");
            assert!(c["lastTransitionTime"].is_string(), "{c}");
            c["type"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "PodScheduled",
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready"
        ]
    );
    for field in ["hostIP", "podIP", "startTime"] {
        assert!(p["status"][field].is_string(), "{field}: {}", p["status"]);
    }
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(
        (c["name"].as_str(), c["ready"].as_bool()),
        (Some("main"), Some(true))
    );
    assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");
    // Its (empty) log can be read.
    assert_eq!(
        pods.logs("bare", &Default::default()).await.expect("logs"),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_by_the_mesh_model() {
    let sim = start(2).await;
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], HELLOWORLD)
        .await
        .ok();
    // The runbook's check, with the real kubectl.
    kubectl(
        &sim,
        "cluster1",
        &[
            "run",
            "client",
            "--image=curlimages/curl",
            "--restart=Never",
            "-n",
            "sample",
            "--",
            "curl",
            "-s",
            "helloworld.sample:5000/hello",
        ],
    )
    .await
    .ok();
    kubectl(
        &sim,
        "cluster1",
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/client",
            "-n",
            "sample",
            "--timeout=20s",
        ],
    )
    .await
    .ok();
    let logs = kubectl(&sim, "cluster1", &["logs", "client", "-n", "sample"]).await;
    assert!(
        logs.ok()
            .starts_with("Hello version: v1, instance: helloworld-v1-"),
        "{}",
        logs.stdout
    );

    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "sample");
    let script =
        "for i in $(seq 1 3); do curl -s helloworld:5000/hello; done; curl -sS nowhere:5000/";
    pods.create(
        &PostParams::default(),
        &pod("loop", "curlimages/curl", &["sh", "-c", script], json!({})),
    )
    .await
    .expect("created");
    // curl's exit code (6: no such host) is the script's.
    let p = wait_pod(&pods, "loop", "ended", |p| phase(p) == "Failed").await;
    assert_eq!(exit_code(&p), Some(6));
    let log = pods.logs("loop", &Default::default()).await.expect("logs");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[..3]
            .iter()
            .all(|l| l.starts_with("Hello version: v1, instance: ")),
        "{log}"
    );
    assert_eq!(lines[3], "curl: (6) Could not resolve host: nowhere");

    // Another cluster's API server answers an anonymous caller as a real one does.
    let other = sim.cluster("cluster2").server_url();
    let script = format!(
        "curl -sk {other}/version; curl -sk {other}/api/v1/namespaces/default/pods; curl -s {other}/version"
    );
    pods.create(
        &PostParams::default(),
        &pod("api", "curlimages/curl", &["sh", "-c", &script], json!({})),
    )
    .await
    .expect("created");
    let p = wait_pod(&pods, "api", "ended", |p| {
        matches!(phase(p), "Failed" | "Succeeded")
    })
    .await;
    // Without -k the pod does not trust the other cluster's CA: curl's exit 60.
    assert_eq!(exit_code(&p), Some(60));
    let log = pods.logs("api", &Default::default()).await.expect("logs");
    assert!(log.contains(r#""gitVersion": "v1.32.3""#), "{log}");
    assert!(
        log.contains(r#"pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""#),
        "{log}"
    );
    assert!(log.contains(r#""code": 403"#), "{log}");

    // A `while true` loop runs until the pod is deleted; its log grows with time.
    let script = "while true; do curl -s helloworld:5000/hello; sleep 0.1; done";
    pods.create(
        &PostParams::default(),
        &pod(
            "forever",
            "curlimages/curl",
            &["sh", "-c", script],
            json!({"terminationGracePeriodSeconds": 1}),
        ),
    )
    .await
    .expect("created");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = pods
            .logs("forever", &Default::default())
            .await
            .unwrap_or_default();
        if log.lines().count() >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the loop's log does not grow: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = pods.get("forever").await.expect("pod");
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    pods.delete("forever", &DeleteParams::default())
        .await
        .expect("deleted");
    wait_gone(&pods, "forever").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_unknown_and_unmodelled_commands() {
    let sim = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "default");
    let cases: [(&str, &str, i64, &str); 3] = [
        ("fails", "echo bye; exit 3", 3, "bye\n"),
        ("unknown", "nosuch --help", 127, "sh: nosuch: not found\n"),
        (
            "unmodelled",
            "wget -qO- http://helloworld:5000/hello",
            126,
            "meshsim: cannot run 'wget -qO- http://helloworld:5000/hello': ",
        ),
    ];
    for (name, script, _, _) in &cases {
        pods.create(
            &PostParams::default(),
            &pod(name, "busybox", &["sh", "-c", script], json!({})),
        )
        .await
        .expect("created");
    }
    for (name, _, code, log) in cases {
        let p = wait_pod(&pods, name, "Failed", |p| phase(p) == "Failed").await;
        assert_eq!(exit_code(&p), Some(code), "{name}");
        let c = &p["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(c["reason"], "Error", "{name}");
        let text = pods.logs(name, &Default::default()).await.expect("logs");
        assert!(text.starts_with(log), "{name}: {text:?}");
        let ready = p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
            .expect("Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("PodCompleted"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_timeline() {
    let sim = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "default");
    let ready = |p: &Value| phase(p) == "Running";
    // sleep as PID 1 ignores SIGTERM: it is killed when the period ends.
    pods.create(
        &PostParams::default(),
        &pod(
            "slow",
            "busybox",
            &["sleep", "3600"],
            json!({"terminationGracePeriodSeconds": 2}),
        ),
    )
    .await
    .expect("created");
    // A server stops on SIGTERM: removed well within its (default, 30s) period.
    pods.create(
        &PostParams::default(),
        &pod("server", "nginx:1.27", &[], json!({})),
    )
    .await
    .expect("created");
    pods.create(
        &PostParams::default(),
        &pod("forced", "busybox", &["sleep", "3600"], json!({})),
    )
    .await
    .expect("created");
    for name in ["slow", "server", "forced"] {
        wait_pod(&pods, name, "Running", ready).await;
    }
    let started = Instant::now();
    let marked = pods
        .delete("slow", &DeleteParams::default())
        .await
        .expect("deleted");
    let marked = marked.left().expect("a graceful delete returns the pod");
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(2));
    assert!(marked.metadata.deletion_timestamp.is_some());
    // Still there, terminating, until the kubelet is done.
    let p = pods.get("slow").await.expect("still there");
    assert!(p.metadata.deletion_timestamp.is_some());
    let elapsed = wait_gone(&pods, "slow").await;
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "removed after {elapsed:?}: before its grace period ended"
    );

    pods.delete("server", &DeleteParams::default())
        .await
        .expect("deleted");
    assert!(wait_gone(&pods, "server").await < Duration::from_secs(10));

    // --grace-period=0 --force: gone at once.
    let gone = pods
        .delete(
            "forced",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("deleted");
    assert!(gone.is_right(), "a forced delete removes the pod");
    assert!(pods.get_opt("forced").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_honours_disruption_budgets() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["web-1", "web-2"] {
        pods.create(
            &PostParams::default(),
            &pod(name, "nginx:1.27", &[], json!({})),
        )
        .await
        .expect("created");
        wait_pod(&pods, name, "Ready", |p| phase(p) == "Running").await;
    }
    kubectl_in(
        &sim,
        "cluster1",
        &["apply", "-f", "-"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: default}\nspec:\n  minAvailable: 1\n  selector: {matchLabels: {app: web}}\n",
    )
    .await
    .ok();
    let status = pods
        .evict("web-1", &EvictParams::default())
        .await
        .expect("first eviction allowed");
    assert_eq!(status.code, 201);
    let refused = pods
        .evict("web-2", &EvictParams::default())
        .await
        .expect_err("the budget refuses");
    match refused {
        kube::Error::Api(e) => {
            assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
            assert!(e.message.contains("disruption budget"), "{}", e.message);
        }
        other => panic!("expected 429, got {other}"),
    }
    wait_gone(&pods, "web-1").await;
    assert!(pods.get_opt("web-2").await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_node_keeps_new_pods_pending() {
    let sim = start(1).await;
    kubectl(&sim, "cluster1", &["cordon", "cluster1-control-plane"])
        .await
        .ok();
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "default");
    pods.create(
        &PostParams::default(),
        &pod("waits", "busybox", &["sleep", "3600"], json!({})),
    )
    .await
    .expect("created");
    let p = wait_pod(&pods, "waits", "Unschedulable", |p| {
        p.pointer("/status/conditions/0/reason") == Some(&json!("Unschedulable"))
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    assert!(p["spec"]["nodeName"].is_null());
    let c = &p["status"]["conditions"][0];
    assert_eq!(
        (c["type"].as_str(), c["status"].as_str()),
        (Some("PodScheduled"), Some("False"))
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1 node(s) were unschedulable"),
        "{c}"
    );
    // A Deployment's pod waits too.
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], HELLOWORLD)
        .await
        .ok();
    let deployed = Api::<Pod>::namespaced(client(&sim, "cluster1").await, "sample");
    let deadline = Instant::now() + Duration::from_secs(20);
    let name = loop {
        let items = deployed
            .list(&Default::default())
            .await
            .expect("list")
            .items;
        if let Some(n) = items.first().and_then(|p| p.metadata.name.clone()) {
            break n;
        }
        assert!(Instant::now() < deadline, "the Deployment made no pod");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let waiting = wait_pod(&deployed, &name, "Unschedulable", |p| {
        p.pointer("/status/conditions/0/reason") == Some(&json!("Unschedulable"))
    })
    .await;
    assert!(waiting["spec"]["nodeName"].is_null());

    kubectl(&sim, "cluster1", &["uncordon", "cluster1-control-plane"])
        .await
        .ok();
    let p = wait_pod(&pods, "waits", "Running", |p| phase(p) == "Running").await;
    assert_eq!(p["spec"]["nodeName"], "cluster1-control-plane");
    kubectl(
        &sim,
        "cluster1",
        &[
            "rollout",
            "status",
            "deployment/helloworld-v1",
            "-n",
            "sample",
            "--timeout=20s",
        ],
    )
    .await
    .ok();
    let p = wait_pod(&deployed, &name, "Running", |p| phase(p) == "Running").await;
    assert_eq!(p["spec"]["nodeName"], "cluster1-control-plane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_first_in_order() {
    let sim = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "default");
    let init = json!({"initContainers": [
        {"name": "first", "image": "busybox", "command": ["sh", "-c", "echo first"]},
        {"name": "second", "image": "busybox", "command": ["echo", "second"]},
    ]});
    pods.create(
        &PostParams::default(),
        &pod("init", "busybox", &["echo", "main"], init),
    )
    .await
    .expect("created");
    let p = wait_pod(&pods, "init", "Succeeded", |p| phase(p) == "Succeeded").await;
    let inits = p["status"]["initContainerStatuses"]
        .as_array()
        .expect("initContainerStatuses");
    assert_eq!(inits.len(), 2);
    for c in inits {
        assert_eq!(c["state"]["terminated"]["exitCode"], 0, "{c}");
    }
    let log = pods.logs("init", &Default::default()).await.expect("logs");
    assert_eq!(log, "first\nsecond\nmain\n");

    // A failing init container fails a Never pod; the containers never start.
    let init = json!({"initContainers": [
        {"name": "broken", "image": "busybox", "command": ["sh", "-c", "exit 4"]},
    ]});
    pods.create(
        &PostParams::default(),
        &pod("init-fails", "busybox", &["echo", "main"], init),
    )
    .await
    .expect("created");
    let p = wait_pod(&pods, "init-fails", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        4
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
}
