//! Helm as the installer for primary-remote: meshsim's cluster1 runs Istio
//! 1.30.3 from Istio's charts; `plans/helm-primary-remote.yaml` makes
//! cluster2 its remote (charts base and istiod with profile=remote) with the
//! real binary and the `helm` stand-in, runs the failover drill and rolls
//! back to before the migration. Checked with the real kubectl, helm's own
//! `get values` / `list`, and the stand-in's log of every helm that changed
//! something (no effect twice).

use crate::sim_support::{Dump, SimEnv};
use crate::support::repo_root;
use meshsim::helm::invocation_log::{LOG_ENV, ended};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const VERSION: &str = "1.30.3";

/// cluster1 seeded by Helm (default revision); cluster2 with helloworld v2
/// in an injection-enabled namespace and no mesh.
fn world() -> SimEnv {
    let env = SimEnv::start(2);
    let mesh = meshsim::seed::SourceMesh {
        installer: meshsim::seed::Installer::Helm,
        revision: String::new(),
        istio_version: VERSION.into(),
        ambient: false,
    };
    env.rt.block_on(async {
        meshsim::seed::seed_mesh(&env.sim, "cluster1", &mesh)
            .await
            .expect("the Helm mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
    });
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    meshsim::helm::link(&bin, Path::new(env!("CARGO_BIN_EXE_migrate"))).unwrap();
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn kubectl_json(env: &SimEnv, cluster: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = env.kubectl(cluster, &all);
    ok(&out, &format!("kubectl {all:?} in {cluster}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `helm ARGS -o json` against one cluster's istio-system.
fn helm_json(env: &SimEnv, cluster: &str, args: &[&str]) -> Value {
    let out = Command::new(env.path("bin").join("helm"))
        .args(args)
        .args(["-n", "istio-system", "-o", "json", "--kube-context"])
        .arg(env.sim.cluster(cluster).context())
        .env("KUBECONFIG", env.kubeconfig())
        .env_remove(LOG_ENV)
        .output()
        .expect("the helm link runs");
    env.record_output(&format!("helm {}", args.join(" ")), &text(&out.stdout));
    ok(&out, &format!("helm {args:?} in {cluster}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// plans/helm-primary-remote.yaml with this test's cert dir.
fn example_spec(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("plans/helm-primary-remote.yaml")).unwrap();
    assert!(text.contains("certDir: ./migrate-certs"));
    env.write_spec(
        "helm-primary-remote.yaml",
        &text.replace("certDir: ./migrate-certs", "certDir: \"@CERTS@\""),
    )
}

/// The dump minus Helm's release records: a rollback is a new revision by
/// design (the history shows it), everything it rendered is compared.
fn without_release_records(mut dump: Dump) -> Dump {
    for objects in dump.clusters.values_mut() {
        objects.retain(|key, _| !key.contains("/sh.helm.release.v1."));
    }
    dump
}

/// `(command, release, cluster)` of every helm that ended, per the stand-in's
/// log, sorted; every one exited 0.
fn helm_runs(env: &SimEnv, log: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines().filter(|l| l.starts_with("end ")) {
        assert!(line.ends_with(" code=0"), "a helm failed: {line}\n{text}");
    }
    let context_of = |context: &str| {
        ["cluster1", "cluster2"]
            .into_iter()
            .find(|c| env.sim.cluster(c).context() == context)
            .unwrap_or("?")
            .to_string()
    };
    let mut runs: Vec<_> = ended(&text)
        .into_iter()
        .map(|(command, release, context)| (command, release, context_of(&context)))
        .collect();
    runs.sort();
    runs
}

fn run(command: &str, release: &str, cluster: &str) -> (String, String, String) {
    (command.into(), release.into(), cluster.into())
}

/// The address of cluster1's east-west gateway, read with kubectl.
fn eastwest_address(env: &SimEnv) -> String {
    let svc = kubectl_json(
        env,
        "cluster1",
        &[
            "get",
            "service",
            "-n",
            "istio-system",
            "istio-eastwestgateway",
        ],
    );
    svc.pointer("/status/loadBalancer/ingress/0/ip")
        .and_then(Value::as_str)
        .expect("the east-west gateway has an address")
        .to_string()
}

/// What the remote runs, read with kubectl and helm: Helm's release records,
/// no istiod, the injector webhook and Service istiod leading to cluster1.
fn assert_cluster2_is_a_helm_remote_of_cluster1(env: &SimEnv) {
    let mut names = release_records(env, "cluster2");
    names.sort();
    assert_eq!(
        names,
        [
            ("sh.helm.release.v1.istio-base.v1".into(), "deployed".into()),
            (
                "sh.helm.release.v1.istio-eastwestgateway.v1".into(),
                "deployed".into()
            ),
            ("sh.helm.release.v1.istiod.v1".into(), "deployed".into())
        ],
        "one release record each, installed once (the remote's own east-west gateway: multi-network)"
    );
    let istiods = kubectl_json(
        env,
        "cluster2",
        &[
            "get",
            "deployments",
            "-n",
            "istio-system",
            "-l",
            "app=istiod",
        ],
    );
    assert_eq!(
        istiods["items"],
        serde_json::json!([]),
        "a remote runs no istiod"
    );
    let hook = kubectl_json(
        env,
        "cluster2",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector",
        ],
    );
    assert_eq!(
        hook["webhooks"][0]["clientConfig"]["service"],
        serde_json::json!({"name": "istiod", "namespace": "istio-system",
                           "path": "/inject/cluster/cluster2/net/network2", "port": 443})
    );
    assert_eq!(
        hook["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let address = eastwest_address(env);
    let slice = kubectl_json(
        env,
        "cluster2",
        &["get", "endpointslice", "-n", "istio-system", "istiod"],
    );
    assert_eq!(
        slice["endpoints"][0]["addresses"][0], *address,
        "Service istiod in cluster2 leads to cluster1's east-west gateway"
    );
    let values = helm_json(env, "cluster2", &["get", "values", "istiod"]);
    assert_eq!(values["profile"], "remote");
    assert_eq!(values["global"]["remotePilotAddress"], *address);
    assert_eq!(values["global"]["multiCluster"]["clusterName"], "cluster2");
    assert_eq!(values["global"]["network"], "network2");
    let base = helm_json(env, "cluster2", &["get", "values", "istio-base"]);
    assert_eq!(base, serde_json::json!({"profile": "remote"}));
    // The primary leads its remote.
    let istiod = kubectl_json(
        env,
        "cluster1",
        &["get", "deployment", "-n", "istio-system", "istiod"],
    );
    let container_env = istiod["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(container_env.contains("EXTERNAL_ISTIOD"), "{container_env}");
}

#[test]
fn a_helm_mesh_gets_a_helm_remote_drills_and_rolls_back() {
    let env = world();
    let before = without_release_records(env.settled_dump());
    let spec = example_spec(&env);
    let spec = spec.to_string_lossy();
    let log = env.path("helm.log");
    let log_s = log.to_string_lossy().into_owned();
    let applied = env
        .migrate_env(&["apply", "-f", &spec], &[(LOG_ENV, &log_s)])
        .expect_ok();
    for table in ["baseline", "drain"] {
        let line = format!("probe failover/{table} from cluster1: 20 requests PASSED");
        assert!(
            applied.stderr.contains(&line),
            "{}",
            applied.describe(&format!("no {line:?}"))
        );
    }
    assert_cluster2_is_a_helm_remote_of_cluster1(&env);
    // Each release upgraded exactly once: istiod and the east-west gateway
    // on the primary, base, istiod and the east-west gateway on the remote.
    assert_eq!(
        helm_runs(&env, &log),
        [
            run("upgrade", "istio-base", "cluster2"),
            run("upgrade", "istio-eastwestgateway", "cluster1"),
            run("upgrade", "istio-eastwestgateway", "cluster2"),
            run("upgrade", "istiod", "cluster1"),
            run("upgrade", "istiod", "cluster2"),
        ]
    );
    // Applying again changes nothing: no helm runs.
    let again = env
        .migrate_env(&["apply", "-f", &spec, "--resume"], &[(LOG_ENV, &log_s)])
        .expect_ok();
    assert_eq!(helm_runs(&env, &log).len(), 5, "{}", again.stderr);

    std::fs::remove_file(&log).unwrap();
    env.migrate_env(&["rollback", "--to", "phase0"], &[(LOG_ENV, &log_s)])
        .expect_ok();
    env.assert_no_secrets_in_outputs();
    let after = without_release_records(env.settled_dump());
    after.assert_eq(&before, "after rollback --to phase0");
    // The remote's releases were migrate's own: uninstalled, their CRDs gone
    // with them (the dump compared above); the primary's rolled back.
    assert_eq!(
        helm_runs(&env, &log),
        [
            run("rollback", "istiod", "cluster1"),
            run("uninstall", "istio-base", "cluster2"),
            run("uninstall", "istio-eastwestgateway", "cluster1"),
            run("uninstall", "istio-eastwestgateway", "cluster2"),
            run("uninstall", "istiod", "cluster2"),
        ]
    );
    assert_eq!(
        helm_json(&env, "cluster2", &["list"]),
        serde_json::json!([])
    );
    let status = helm_json(&env, "cluster1", &["status", "istiod"]);
    assert_eq!(status["info"]["description"], "Rollback to 1", "{status}");
    assert_eq!(release_records(&env, "cluster2"), []);
}

/// Helm's release records in `cluster` (name, status label), read with
/// kubectl; their payload is never printed (it holds the values).
fn release_records(env: &SimEnv, cluster: &str) -> Vec<(String, String)> {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-l",
            "owner=helm",
            "--no-headers",
            "-o",
            "custom-columns=NAME:.metadata.name,STATUS:.metadata.labels.status",
        ],
    );
    ok(&out, "kubectl get the release records");
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// The newest record of `release` in `cluster`'s istio-system, read from meshsim's store.
fn latest_record(env: &SimEnv, cluster: &str, release: &str) -> Option<(u64, String)> {
    let store = env.sim.cluster(cluster).store();
    let rt = store.resolve_kind("v1", "Secret")?;
    store
        .list(&rt, Some("istio-system"))
        .0
        .iter()
        .filter(|s| s.pointer("/metadata/labels/name").and_then(Value::as_str) == Some(release))
        .filter(|s| s.pointer("/metadata/labels/owner").and_then(Value::as_str) == Some("helm"))
        .filter_map(|s| {
            let l = |k: &str| s.pointer(&format!("/metadata/labels/{k}"))?.as_str();
            Some((l("version")?.parse().ok()?, l("status")?.to_string()))
        })
        .max()
}

/// SIGKILLed while helm's install of the remote's istiod has applied its
/// objects but not finished (its record pending-install), then rolled back:
/// the half-installed release goes whole (webhook, Service istiod...), each
/// helm runs once, and the clusters end as before the migration.
/// Starts `apply` of the example with the helm log at `log`, and SIGKILLs
/// it once helm's install of istiod on cluster2 has applied its objects and
/// not finished (its record pending-install).
fn kill_mid_remote_istiod_install(env: &SimEnv, spec: &Path, log: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(["apply", "-f", &spec.to_string_lossy(), "--state-dir"])
        .arg(&env.state_dir)
        .current_dir(env.path(""))
        .env("KUBECONFIG", env.kubeconfig())
        .env("PATH", path_with(&env.path("bin")))
        .env(LOG_ENV, log)
        .env(meshsim::helm::invocation_log::DELAY_ENV, "1500")
        .env_remove(migrate::engine::failpoint::ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("migrate starts");
    env.wait_for(
        "helm's install of istiod on cluster2 applied and pending",
        Duration::from_secs(120),
        || {
            latest_record(env, "cluster2", "istiod") == Some((1, "pending-install".into()))
                && has_injector_webhook(env, "cluster2")
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let hook = env.kubectl(
        "cluster2",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-sidecar-injector",
        ],
    );
    ok(&hook, "the killed install applied the webhook");
    assert_eq!(
        latest_record(env, "cluster2", "istiod"),
        Some((1, "pending-install".into())),
        "helm died with migrate"
    );
}

#[test]
fn a_remote_install_killed_mid_helm_is_undone_by_rollback() {
    let env = world();
    let before = without_release_records(env.settled_dump());
    let spec = example_spec(&env);
    let log = env.path("helm.log");
    kill_mid_remote_istiod_install(&env, &spec, &log);

    env.migrate_env(
        &["rollback", "--to", "phase0"],
        &[(LOG_ENV, &log.to_string_lossy())],
    )
    .expect_ok();
    let after = without_release_records(env.settled_dump());
    after.assert_eq(&before, "after the killed run's rollback --to phase0");
    assert_eq!(
        helm_json(&env, "cluster2", &["list"]),
        serde_json::json!([])
    );
    let runs = helm_runs_started(&log);
    for r in [
        run("upgrade", "istiod", "cluster1"),
        run("upgrade", "istio-eastwestgateway", "cluster1"),
        run("upgrade", "istio-base", "cluster2"),
        run("upgrade", "istiod", "cluster2"),
        run("uninstall", "istiod", "cluster2"),
        run("uninstall", "istio-base", "cluster2"),
        run("rollback", "istiod", "cluster1"),
        run("uninstall", "istio-eastwestgateway", "cluster1"),
    ] {
        let started = runs
            .iter()
            .filter(|(c, rl, ctx)| {
                *c == r.0 && *rl == r.1 && env.sim.cluster(&r.2).context() == *ctx
            })
            .count();
        assert_eq!(started, 1, "{r:?} started {started} times: {runs:?}");
    }
    assert_eq!(runs.len(), 8, "{runs:?}");
    env.assert_no_secrets_in_outputs();
}

/// Whether `cluster` has the injector webhook, read from meshsim's store.
fn has_injector_webhook(env: &SimEnv, cluster: &str) -> bool {
    let store = env.sim.cluster(cluster).store();
    store
        .resolve_kind(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        )
        .is_some_and(|rt| {
            store.list(&rt, None).0.iter().any(|w| {
                w.pointer("/metadata/name").and_then(Value::as_str)
                    == Some("istio-sidecar-injector")
            })
        })
}

/// `(command, release, context)` of every helm that started, killed or not.
fn helm_runs_started(log: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let as_ended: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("start "))
        .map(|l| format!("end {l} code=0\n"))
        .collect();
    ended(&as_ended)
}

/// `dir` first on PATH.
fn path_with(dir: &Path) -> String {
    match std::env::var("PATH") {
        Ok(p) => format!("{}:{p}", dir.display()),
        Err(_) => dir.display().to_string(),
    }
}

/// Killed the same way, then resumed: the pending record the killed helm
/// left is cleared and the install redone once; the run completes.
#[test]
fn a_remote_install_killed_mid_helm_is_redone_once_on_resume() {
    let env = world();
    let spec = example_spec(&env);
    let log = env.path("helm.log");
    kill_mid_remote_istiod_install(&env, &spec, &log);
    env.migrate_env(
        &["apply", "-f", &spec.to_string_lossy(), "--resume"],
        &[(LOG_ENV, &log.to_string_lossy())],
    )
    .expect_ok();
    assert_cluster2_is_a_helm_remote_of_cluster1(&env);
    let runs = helm_runs_started(&log);
    let count = |command: &str, release: &str, cluster: &str| {
        let context = env.sim.cluster(cluster).context();
        runs.iter()
            .filter(|(c, r, ctx)| c == command && r == release && *ctx == context)
            .count()
    };
    assert_eq!(
        count("upgrade", "istiod", "cluster2"),
        2,
        "killed, then redone: {runs:?}"
    );
    for (release, cluster) in [
        ("istiod", "cluster1"),
        ("istio-eastwestgateway", "cluster1"),
        ("istio-base", "cluster2"),
        ("istio-eastwestgateway", "cluster2"),
    ] {
        assert_eq!(
            count("upgrade", release, cluster),
            1,
            "{release}@{cluster}: {runs:?}"
        );
    }
    env.assert_no_secrets_in_outputs();
}
