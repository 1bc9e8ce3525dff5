//! The cluster you mean (issue 12 items 1 and 6): the kubeconfig a resume or
//! rollback reaches each cluster by (typed flag > spec > recorded >
//! $KUBECONFIG), the identity recorded at apply and checked before any
//! change, and certDir taken from the spec's directory, never needed by a
//! rollback.

use crate::apply::{apply, killed, seeded, seeded_with_spec};
use crate::sim_support::{Run, SimEnv};
use crate::specs::two_cluster;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the sim's kubeconfig (good credentials) at `name`.
fn kubeconfig_copy(env: &SimEnv, name: &str) -> PathBuf {
    let path = env.path(name);
    std::fs::copy(env.kubeconfig(), &path).unwrap();
    path
}

/// Replaces every admin token in the kubeconfig at `path` with one the
/// clusters reject (401): a credential rotated since.
fn break_credentials(env: &SimEnv, path: &Path) {
    let mut text = std::fs::read_to_string(path).unwrap();
    for c in env.sim.clusters() {
        assert!(text.contains(c.admin_token()));
        text = text.replace(c.admin_token(), "msim-admin.00000000000000000000");
    }
    std::fs::write(path, text).unwrap();
}

/// The two-cluster spec with each cluster reached through `kubeconfig`.
fn with_kubeconfig(spec: &str, kubeconfig: &Path) -> String {
    let k = kubeconfig.display();
    spec.replace(
        "context: sim-cluster1",
        &format!("context: sim-cluster1, kubeconfig: \"{k}\""),
    )
    .replace(
        "context: sim-cluster2",
        &format!("context: sim-cluster2, kubeconfig: \"{k}\""),
    )
}

fn kube_system_uid(env: &SimEnv, cluster: &str) -> String {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    assert!(out.status.success(), "kubectl get namespace kube-system");
    String::from_utf8(out.stdout).unwrap()
}

/// The installer too must take the kubeconfig typed now: the plan once named
/// the spec's file in istioctl's arguments, so undoing the install phase
/// with that file's credential rotated failed with 401 whatever was typed.
#[test]
fn a_kubeconfig_typed_at_rollback_overrides_the_recorded_one() {
    let env = seeded();
    let before = env.settled_dump();
    let recorded = kubeconfig_copy(&env, "recorded.kubeconfig");
    let spec = env.write_spec("spec.yaml", &with_kubeconfig(&two_cluster(), &recorded));
    apply(&env, &spec, &[], None).expect_ok();
    break_credentials(&env, &recorded);
    let good = kubeconfig_copy(&env, "good.kubeconfig");
    let good_arg = good.to_string_lossy();
    // Without the override the recorded (broken) credential is used.
    let refused = env.migrate(&["rollback", "--to", "phase0"]);
    assert!(
        !refused.ok(),
        "{}",
        refused.describe("rollback with a rotated credential")
    );
    let run = env.migrate(&["rollback", "--to", "phase0", "--kubeconfig", &good_arg]);
    assert!(run.ok(), "{}", run.describe("rollback with --kubeconfig"));
    assert!(
        run.stderr
            .contains(&format!("cluster1: context sim-cluster1 of {good_arg}")),
        "which kubeconfig reaches each cluster is not shown:\n{}",
        run.stderr
    );
    env.settled_dump()
        .assert_eq(&before, "rollback to phase0 through the typed kubeconfig");
    env.assert_no_secrets_in_outputs();
}

/// A run started with a kubeconfig whose credential was since rotated is
/// resumed, and rolled back, through the file the spec names now.
#[test]
fn a_spec_kubeconfig_overrides_the_recorded_one_at_resume_and_rollback() {
    let env = seeded();
    let before = env.settled_dump();
    let recorded = kubeconfig_copy(&env, "recorded.kubeconfig");
    let first = env.write_spec("first.yaml", &two_cluster());
    let recorded_arg = recorded.to_string_lossy();
    let at = "after-step:5";
    killed(
        apply(&env, &first, &["--kubeconfig", &recorded_arg], Some(at)),
        at,
    );
    break_credentials(&env, &recorded);
    let good = kubeconfig_copy(&env, "good.kubeconfig");
    let second = env.write_spec("second.yaml", &with_kubeconfig(&two_cluster(), &good));
    let run = apply(&env, &second, &["--resume"], None);
    assert!(
        run.ok(),
        "{}",
        run.describe("resume through the spec's kubeconfig")
    );
    assert!(
        run.stderr.contains(&format!(
            "cluster2: context sim-cluster2 of {}",
            good.display()
        )),
        "{}",
        run.stderr
    );
    let second_arg = second.to_string_lossy();
    let back = env.migrate(&["rollback", "--to", "phase0", "-f", &second_arg]);
    assert!(back.ok(), "{}", back.describe("rollback -f SPEC"));
    env.settled_dump()
        .assert_eq(&before, "rollback to phase0 through the spec's kubeconfig");
    env.assert_no_secrets_in_outputs();
}

/// cluster1 and cluster2 seeded as `apply::seeded`, plus a cluster3.
fn three_clusters() -> SimEnv {
    let env = SimEnv::start(3);
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    env
}

/// Points `context` of the kubeconfig at `path` to `cluster`'s server and user.
fn repoint(path: &Path, context: &str, cluster: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).unwrap();
    let contexts = doc["contexts"].as_array_mut().unwrap();
    let entry = contexts
        .iter_mut()
        .find(|c| c["name"] == context)
        .expect("the context exists");
    entry["context"]["cluster"] = Value::from(cluster);
    entry["context"]["user"] = Value::from(format!("{cluster}-admin"));
    std::fs::write(path, serde_yaml::to_string(&doc).unwrap()).unwrap();
}

fn assert_names_both(run: &Run, what: &str, recorded_uid: &str, live_uid: &str) {
    assert!(!run.ok(), "{}", run.describe(what));
    let err = &run.stderr;
    for expected in [
        "cluster cluster2 (context sim-cluster2)",
        &recorded_uid[..8],
        &live_uid[..8],
        "CA sha256:",
        "nothing was changed",
    ] {
        assert!(
            err.contains(expected),
            "{what}: `{expected}` missing in:\n{err}"
        );
    }
}

/// A context that now reaches another cluster is refused before any change,
/// at resume and at rollback, naming both identities.
#[test]
fn a_context_re_pointed_at_another_cluster_is_refused() {
    let env = three_clusters();
    let kubeconfig = kubeconfig_copy(&env, "run.kubeconfig");
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let k = kubeconfig.to_string_lossy();
    let at = "after-step:5";
    killed(apply(&env, &spec, &["--kubeconfig", &k], Some(at)), at);
    let recorded_uid = kube_system_uid(&env, "cluster2");
    let live_uid = kube_system_uid(&env, "cluster3");
    assert_ne!(recorded_uid, live_uid);
    repoint(&kubeconfig, "sim-cluster2", "cluster3");
    let before = env.settled_dump();

    // The run recorded this kubeconfig: no flag needed for it to be used.
    let resumed = apply(&env, &spec, &["--resume"], None);
    assert_names_both(&resumed, "apply --resume", &recorded_uid, &live_uid);
    env.settled_dump()
        .assert_eq(&before, "a refused resume changes nothing");

    let rolled = env.migrate(&["rollback", "--to", "phase0"]);
    assert_names_both(&rolled, "rollback", &recorded_uid, &live_uid);
    env.settled_dump()
        .assert_eq(&before, "a refused rollback changes nothing");

    // The dry run reads the clusters too: it names the wrong cluster rather
    // than reporting the drift of another cluster's objects.
    let dry = env.migrate(&["rollback", "--to", "phase0", "--dry-run"]);
    assert_names_both(&dry, "rollback --dry-run", &recorded_uid, &live_uid);
    assert!(
        dry.stderr.contains("wrong cluster") && !dry.stdout.contains("DRIFTED"),
        "{}",
        dry.describe("rollback --dry-run")
    );
    env.assert_no_secrets_in_outputs();
}

/// The two-cluster spec with a generated root (multi-root transition) and a
/// relative certDir.
fn generated_root_spec(cert_dir: &str) -> String {
    let text = two_cluster()
        .replace(
            "root: { adopt: cluster1 }",
            "root: { generate: { org: Acme, validityDays: 3650, transition: multi-root } }",
        )
        .replace("certDir: \"@CERTS@\"", &format!("certDir: {cert_dir}"));
    assert!(text.contains("generate:") && text.contains(cert_dir));
    text
}

/// The real binary with the sim's environment, from working directory `cwd`.
fn migrate_in(env: &SimEnv, cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(args)
        .current_dir(cwd)
        .env("KUBECONFIG", env.kubeconfig())
        .env("PATH", {
            let bin = env.path("bin");
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            )
        })
        .env_remove(migrate::engine::failpoint::ENV)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let run = Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
        signal: None,
    };
    env.record_output(
        &format!("stdout of migrate {}", args.join(" ")),
        &run.stdout,
    );
    env.record_output(
        &format!("stderr of migrate {}", args.join(" ")),
        &run.stderr,
    );
    run
}

/// A relative certDir is the spec's: resolved against the spec file's
/// directory whatever the working directory, and recorded absolute.
#[test]
fn a_relative_cert_dir_is_taken_from_the_spec_directory() {
    let env = SimEnv::start(1);
    let specs = env.path("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let spec = env.write_spec("specs/spec.yaml", &generated_root_spec("./certs"));
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run = migrate_in(
        &env,
        &elsewhere,
        &[
            "plan",
            "--offline",
            "-o",
            "json",
            "-f",
            &spec.to_string_lossy(),
        ],
    );
    assert!(run.ok(), "{}", run.describe("plan"));
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let root = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "trust/root")
        .expect("a root step");
    let text = root.to_string();
    let expected = specs.join("certs").join("root");
    assert!(
        text.contains(&format!("\"{}\"", expected.display())),
        "the root is not generated into {}: {text}",
        expected.display()
    );
}

/// Rolling back a generated root's trust phase needs neither the working
/// directory of the apply nor certDir: `cacerts` comes back from the
/// state's snapshots. Apply says where the root key is, and status reminds.
#[test]
fn trust_rolls_back_from_another_directory_without_cert_dir() {
    let (env, _) = seeded_with_spec();
    std::fs::create_dir_all(env.path("specs")).unwrap();
    let spec = env.write_spec("specs/spec.yaml", &generated_root_spec("./certs"));
    let spec_arg = spec.to_string_lossy();
    let state = env.state_dir.to_string_lossy().into_owned();
    let before = env.settled_dump();
    let applied = env.migrate(&["apply", "-f", &spec_arg]);
    assert!(applied.ok(), "{}", applied.describe("apply"));
    let cert_dir = env.path("specs").join("certs");
    let key = cert_dir.join("root").join("root-key.pem");
    assert!(key.exists(), "the root key is not under the spec's certDir");
    assert!(
        applied
            .stderr
            .contains(&format!("root key exists only in {}", key.display())),
        "apply does not say where the root key is:\n{}",
        applied.stderr
    );
    let status = env.migrate(&["status"]).expect_ok();
    assert!(
        status
            .stdout
            .contains(&format!("root key exists only in {}", key.display())),
        "{}",
        status.stdout
    );

    // From another directory, with certDir gone.
    std::fs::remove_dir_all(&cert_dir).unwrap();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let rolled = migrate_in(
        &env,
        &elsewhere,
        &["rollback", "--to", "phase0", "--state-dir", &state],
    );
    assert!(
        rolled.ok(),
        "{}",
        rolled.describe("rollback from elsewhere")
    );
    env.settled_dump()
        .assert_eq(&before, "rollback to phase0 without certDir");
    env.assert_no_secrets_in_outputs();
}
