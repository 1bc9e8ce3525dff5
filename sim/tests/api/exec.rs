//! `pods/{name}/exec` and `pods/{name}/attach` over websockets, with kube's own client and the
//! real kubectl: output on stdout and stderr, the exit status on the error channel (a
//! metav1.Status: `NonZeroExitCode` with the `ExitCode` cause), 127 for a command sh does not
//! find, `sh` reading stdin line by line (and on a terminal: prompt and echo), attach to a
//! container whose program is `sh` with `stdinOnce`, and RBAC asking for `create` on
//! `pods/exec` and `pods/attach`.

use crate::common::{client, kubectl, kubectl_in, start};
use crate::portforward::token_client;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, AttachedProcess, PostParams};
use meshsim::Sim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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

/// A sim with helloworld in `sample` and a running pod `name` there (`container` merged in).
async fn with_pod(name: &str, container: Value) -> (Sim, Api<Pod>) {
    let sim = start(2).await;
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], HELLOWORLD)
        .await
        .ok();
    let pods: Api<Pod> = Api::namespaced(client(&sim, "cluster1").await, "sample");
    let mut c = json!({"name": "main", "image": "curlimages/curl"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        c.extend(extra.clone());
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [c]},
    }))
    .expect("a pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    wait_phase(&pods, name, "Running").await;
    (sim, pods)
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = serde_json::to_value(pods.get(name).await.expect("get pod")).expect("json");
        if p.pointer("/status/phase") == Some(&json!(phase)) {
            return p;
        }
        assert!(Instant::now() < deadline, "{name} never reached {phase}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_all(r: Option<impl AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    if let Some(mut r) = r {
        tokio::time::timeout(Duration::from_secs(10), r.read_to_string(&mut text))
            .await
            .expect("the stream ends")
            .expect("read");
    }
    text
}

/// stdout, stderr and the status of a finished process.
async fn finish(mut p: AttachedProcess) -> (String, String, Status) {
    let status = p.take_status().expect("status");
    let (out, err) = tokio::join!(read_all(p.stdout()), read_all(p.stderr()));
    let status = tokio::time::timeout(Duration::from_secs(10), status)
        .await
        .expect("the status arrives")
        .expect("a status");
    (out, err, status)
}

fn exit_code(s: &Status) -> Option<String> {
    assert_eq!(s.status.as_deref(), Some("Failure"), "{s:?}");
    assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"), "{s:?}");
    let cause = s.details.as_ref()?.causes.as_ref()?.first()?;
    assert_eq!(cause.reason.as_deref(), Some("ExitCode"));
    cause.message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_round_trip_with_exit_status() {
    let (_sim, pods) = with_pod("client", json!({"command": ["sleep", "infinity"]})).await;
    let both = AttachParams::default().stdout(true).stderr(true);
    let p = pods
        .exec(
            "client",
            ["sh", "-c", "curl -s helloworld:5000/hello; echo oops >&2"],
            &both,
        )
        .await
        .expect("exec");
    let (out, err, status) = finish(p).await;
    assert!(
        out.starts_with("Hello version: v1, instance: helloworld-v1-"),
        "{out}"
    );
    assert_eq!(err, "oops\n");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");

    let p = pods
        .exec("client", ["sh", "-c", "echo a; exit 3"], &both)
        .await
        .expect("exec");
    let (out, _, status) = finish(p).await;
    assert_eq!(out, "a\n");
    assert_eq!(exit_code(&status).as_deref(), Some("3"));

    // What sh does not find: its line and 127.
    let p = pods
        .exec("client", ["sh", "-c", "nosuch --flag"], &both)
        .await
        .expect("exec");
    let (_, err, status) = finish(p).await;
    assert_eq!(err, "sh: nosuch: not found\n");
    assert_eq!(exit_code(&status).as_deref(), Some("127"));
    let p = pods.exec("client", ["nosuch"], &both).await.expect("exec");
    let (_, err, status) = finish(p).await;
    assert!(
        err.contains("\"nosuch\": executable file not found"),
        "{err}"
    );
    assert_eq!(exit_code(&status).as_deref(), Some("127"));

    // A container the pod does not have, before any upgrade.
    let c = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .container("nope");
    match pods.exec("client", ["true"], &c).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert_eq!(s.message, "container nope is not valid for pod client");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("exec into a container that does not exist"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sh_reads_stdin_line_by_line() {
    let (_sim, pods) = with_pod("client", json!({"command": ["sleep", "infinity"]})).await;
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let mut p = pods.exec("client", ["sh"], &ap).await.expect("exec");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    // Each line runs as it arrives: its answer comes before the next line is sent.
    stdin.write_all(b"echo one\n").await.expect("write");
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut buf))
        .await
        .expect("the first line's output")
        .expect("read");
    assert_eq!(&buf, b"one\n");
    stdin
        .write_all(b"curl -s helloworld:5000/hello\nexit 5\necho never\n")
        .await
        .expect("write");
    let rest = read_all(Some(stdout)).await;
    assert!(rest.starts_with("Hello version: v1"), "{rest}");
    assert!(!rest.contains("never"));
    let status = p.take_status().expect("status").await.expect("a status");
    assert_eq!(exit_code(&status).as_deref(), Some("5"));

    // On a terminal: the prompt, the echo, \r\n; Ctrl-D ends it.
    let tty = AttachParams::interactive_tty();
    let mut p = pods.exec("client", ["sh"], &tty).await.expect("exec");
    let mut stdin = p.stdin().expect("stdin");
    stdin.write_all(b"echo hi\r").await.expect("write");
    stdin.write_all(b"\x04").await.expect("write");
    let (out, _, status) = finish(p).await;
    assert_eq!(out, "~ $ echo hi\r\nhi\r\n~ $ \r\n");
    assert_eq!(status.status.as_deref(), Some("Success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_a_shell_with_stdin_once() {
    let (_sim, pods) = with_pod(
        "client",
        json!({"command": ["sh"], "stdin": true, "stdinOnce": true}),
    )
    .await;
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .container("main");
    let mut p = pods.attach("client", &ap).await.expect("attach");
    let mut stdin = p.stdin().expect("stdin");
    stdin
        .write_all(b"curl -s helloworld:5000/hello\n")
        .await
        .expect("write");
    let mut stdout = p.stdout().expect("stdout");
    let mut line = vec![0u8; "Hello version: v1".len()];
    tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut line))
        .await
        .expect("the answer")
        .expect("read");
    assert_eq!(line, b"Hello version: v1");
    // Closing stdin (v5's close signal) ends the shell: stdinOnce.
    stdin.shutdown().await.expect("close stdin");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), p.take_status().expect("status"))
        .await
        .expect("the status arrives")
        .expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    let done = wait_phase(&pods, "client", "Succeeded").await;
    assert_eq!(
        done.pointer("/status/containerStatuses/0/state/terminated/exitCode"),
        Some(&json!(0))
    );
    // The log has what the shell wrote.
    let log = pods
        .logs("client", &Default::default())
        .await
        .expect("logs");
    assert!(log.starts_with("Hello version: v1"), "{log}");
    // A completed pod: the API server's refusal.
    match pods.attach("client", &ap).await {
        Err(kube::Error::Api(s)) => assert_eq!(
            s.message,
            "cannot attach to a container in a completed pod; current phase is Succeeded"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("attached to a completed pod"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_asks_for_create_on_exec_and_attach() {
    let (sim, _) = with_pod("client", json!({"command": ["sleep", "infinity"]})).await;
    let rbac = "apiVersion: v1
kind: ServiceAccount
metadata: {name: watcher, namespace: sample}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: sample}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: watcher, namespace: sample}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: watcher, namespace: sample}
";
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], rbac)
        .await
        .ok();
    let token = sim.cluster("cluster1").mint_token("sample", "watcher");
    let pods: Api<Pod> = Api::namespaced(token_client(&sim, &token).await, "sample");
    let ap = AttachParams::default().stdout(true).stderr(true);
    for sub in ["exec", "attach"] {
        let refused = if sub == "exec" {
            pods.exec("client", ["true"], &ap).await.map(|_| ())
        } else {
            pods.attach("client", &ap).await.map(|_| ())
        };
        match refused {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 403, "{s:?}");
                assert!(
                    s.message
                        .contains(&format!("cannot create resource \"pods/{sub}\"")),
                    "{}",
                    s.message
                );
            }
            Err(e) => panic!("{e}"),
            Ok(()) => panic!("{sub} without create on pods/{sub}"),
        }
    }
    let grant = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: sample}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ['']
  resources: [pods/exec]
  verbs: [create]
";
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], grant)
        .await
        .ok();
    let p = pods
        .exec("client", ["echo", "allowed"], &ap)
        .await
        .expect("exec with create on pods/exec");
    assert_eq!(finish(p).await.0, "allowed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_and_run_interactive() {
    let (sim, _) = with_pod("client", json!({"command": ["sleep", "infinity"]})).await;
    let out = kubectl(
        &sim,
        "cluster1",
        &[
            "exec",
            "client",
            "-n",
            "sample",
            "--",
            "curl",
            "-s",
            "helloworld:5000/hello",
        ],
    )
    .await;
    assert!(out.ok().starts_with("Hello version: v1"), "{}", out.stdout);
    let failed = kubectl(
        &sim,
        "cluster1",
        &["exec", "client", "-n", "sample", "--", "sh", "-c", "nosuch"],
    )
    .await;
    assert_eq!(failed.code, 127, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("sh: nosuch: not found\ncommand terminated with exit code 127"),
        "{}",
        failed.stderr
    );
    let lines = kubectl_in(
        &sim,
        "cluster1",
        &["exec", "-i", "client", "-n", "sample", "--", "sh"],
        "echo first\ncurl -s helloworld:5000/hello\n",
    )
    .await;
    assert!(
        lines.ok().starts_with("first\nHello version: v1"),
        "{}",
        lines.stdout
    );
    // kubectl run -i ... -- sh: attached to the shell, stdin piped; --rm deletes the pod.
    let run = kubectl_in(
        &sim,
        "cluster1",
        &[
            "run",
            "shell",
            "--rm",
            "-i",
            "--restart=Never",
            "--image=curlimages/curl",
            "-n",
            "sample",
            "--",
            "sh",
        ],
        "curl -s helloworld:5000/hello\nexit\n",
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Hello version: v1"), "{}", run.stdout);
    assert!(
        run.stdout.contains("pod \"shell\" deleted"),
        "{}",
        run.stdout
    );
}

/// A pod of an injected namespace: what `kubectl run` gets with and without the native
/// sidecar annotation on v1.32 nodes.
async fn injected(sim: &Sim, name: &str, annotations: Value) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client(sim, "cluster1").await, "sample");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": name, "image": "curlimages/curl",
            "command": ["sh", "-c", "curl -s helloworld:5000/hello"]}]},
    }))
    .expect("a pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sidecars_only_when_the_pod_asks() {
    let sim = start(2).await;
    meshsim::seed::seed_source_mesh(&sim, "cluster1")
        .await
        .expect("seed");
    // Asked for: istio-proxy is the first init container, restartPolicy Always; the kubelet
    // stops it once the client has ended, and the pod succeeds.
    let pods = injected(
        &sim,
        "native",
        json!({"sidecar.istio.io/nativeSidecar": "true"}),
    )
    .await;
    let done = wait_phase(&pods, "native", "Succeeded").await;
    assert_eq!(
        done.pointer("/spec/initContainers/0/name"),
        Some(&json!("istio-proxy"))
    );
    assert_eq!(
        done.pointer("/spec/initContainers/0/restartPolicy"),
        Some(&json!("Always"))
    );
    assert_eq!(done.pointer("/spec/containers/1"), None);
    assert!(
        done.pointer("/status/initContainerStatuses/0/state/terminated")
            .is_some(),
        "{done}"
    );
    // The client went through its sidecar: the mesh answered.
    let log = pods
        .logs("native", &Default::default())
        .await
        .expect("logs");
    assert!(log.starts_with("Hello version: v1"), "{log}");

    // Not asked for (ENABLE_NATIVE_SIDECARS=auto on v1.32 nodes): an ordinary container that
    // outlives the client; the pod stays Running with the client's container terminated.
    let pods = injected(&sim, "classic", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let pod = loop {
        let p = serde_json::to_value(pods.get("classic").await.expect("get")).expect("json");
        if p.pointer("/status/containerStatuses/0/state/terminated")
            .is_some()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the client never ended: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        pod.pointer("/spec/containers/1/name"),
        Some(&json!("istio-proxy"))
    );
    assert_eq!(pod.pointer("/status/phase"), Some(&json!("Running")));
    // The sidecar's own curl, from a sibling container: exec into istio-proxy.
    let ap = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .container("istio-proxy");
    let p = pods
        .exec(
            "classic",
            [
                "curl",
                "-s",
                "helloworld.sample.svc.cluster.local:5000/hello",
            ],
            &ap,
        )
        .await
        .expect("exec into istio-proxy");
    let (out, _, status) = finish(p).await;
    assert!(out.starts_with("Hello version: v1"), "{out}");
    assert_eq!(status.status.as_deref(), Some("Success"));
}
