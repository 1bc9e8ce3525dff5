//! The run's state in a namespace of a cluster (`--state kubernetes://CONTEXT/NAMESPACE`): a third simulated
//! cluster plays the team's management cluster, the demo migrates the other two. SIGKILL at random moments then
//! resume equals an uninterrupted run; two `apply` at once: one proceeds, the other names the holder; a holder
//! paused past its Lease loses it and writes nothing more; another working directory (another machine) sees the
//! run and rolls it back; nothing of it is in a ConfigMap.

use crate::crash::{demo_spec, effects};
use crate::sim_support::{Backend, STATE_NAMESPACE as NAMESPACE, SimEnv};
use meshsim::SimConfig;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRIALS: usize = 6;

/// The demo's two clusters, seeded, and a third holding the state's namespace (where `env.migrate` points
/// `--state` unless told `--state-dir`).
fn world() -> SimEnv {
    let mut config = SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(10),
        ..Default::default()
    };
    config.faults.latency = Duration::from_millis(5);
    let env = SimEnv::start_with_state(config, Backend::Kubernetes);
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

/// `migrate ARGS --state LOCATION` from `cwd` (another machine's working directory when not the env's).
fn migrate_at(
    env: &SimEnv,
    cwd: &Path,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> crate::sim_support::Run {
    let mut all: Vec<&str> = args.to_vec();
    let loc = env.state_location();
    all.extend(["--state", &loc]);
    if cwd == env.dir.path() {
        env.migrate_env(&all, extra_env)
    } else {
        let out = Command::new(env!("CARGO_BIN_EXE_migrate"))
            .args(&all)
            .current_dir(cwd)
            .env("KUBECONFIG", env.kubeconfig())
            .env_remove("RUST_LOG")
            .output()
            .expect("migrate runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        env.record_output("stdout elsewhere", &text(&out.stdout));
        env.record_output("stderr elsewhere", &text(&out.stderr));
        crate::sim_support::Run {
            args: all.iter().map(|s| s.to_string()).collect(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
            code: out.status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&out.status),
        }
    }
}

fn migrate(env: &SimEnv, args: &[&str]) -> crate::sim_support::Run {
    migrate_at(env, env.dir.path(), args, &[])
}

/// `migrate apply` on the Kubernetes backend as a child of this test, its stderr collected by a thread.
fn spawn_apply(
    env: &SimEnv,
    spec: &Path,
    resume: bool,
    lease_seconds: Option<&str>,
) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(["apply", "-f"])
        .arg(spec)
        .args(["--state", &env.state_location()])
        .current_dir(env.dir.path())
        .env("KUBECONFIG", env.kubeconfig())
        .env(
            "PATH",
            format!(
                "{}:{}",
                env.path("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume");
    }
    if let Some(s) = lease_seconds {
        cmd.env("MIGRATE_STATE_LEASE_SECONDS", s);
    }
    let mut child = cmd.spawn().expect("migrate starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("piped");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

/// The objects of the state's namespace of `kind` (`Secret`, `Lease`, `ConfigMap`), read from the simulator's
/// store (not through kubectl, whose output the secret scan reads: the log's Secrets hold snapshots).
fn objects(env: &SimEnv, kind: &str) -> Vec<Value> {
    let api_version = if kind == "Lease" {
        "coordination.k8s.io/v1"
    } else {
        "v1"
    };
    let store = env.sim.cluster("cluster3").store();
    let rt = store
        .resolve_kind(api_version, kind)
        .expect("a served kind");
    store
        .list(&rt, Some(NAMESPACE))
        .0
        .into_iter()
        .map(|o| (*o).clone())
        .collect()
}

fn log_entries(env: &SimEnv) -> usize {
    entry_seqs(env).len()
}

/// The sequence numbers of the log's entries.
fn entry_seqs(env: &SimEnv) -> Vec<u64> {
    objects(env, "Secret")
        .iter()
        .filter(|s| {
            s.pointer("/metadata/labels/migrate.meshops.dev~1role") == Some(&Value::from("entry"))
        })
        .filter_map(|s| {
            s.pointer("/metadata/labels/migrate.meshops.dev~1seq")?
                .as_str()?
                .parse()
                .ok()
        })
        .collect()
}

fn lease_holder(env: &SimEnv) -> Option<String> {
    objects(env, "Lease")
        .iter()
        .find_map(|l| {
            l.pointer("/spec/holderIdentity")?
                .as_str()
                .map(str::to_string)
        })
        .filter(|h| !h.is_empty())
}

fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("migrate {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_json(env: &SimEnv) -> Value {
    let run = migrate(env, &["status", "-o", "json", "--events"]);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.describe("status")))
}

#[test]
fn sigkill_at_random_moments_then_resume_with_the_kubernetes_backend() {
    let env = world();
    let spec = demo_spec(&env);
    let spec_arg = spec.to_string_lossy().into_owned();
    let started = Instant::now();
    let run = migrate(&env, &["apply", "-f", &spec_arg]);
    let took = started.elapsed();
    assert!(run.ok(), "{}", run.describe("the uninterrupted run"));
    let want = env.settled_dump();
    let want_effects = effects(&env);
    env.assert_no_secrets_in_outputs();
    drop(env);

    let seed = std::env::var("MIGRATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    for trial in 1..=TRIALS {
        let env = world();
        let spec = demo_spec(&env);
        let spec_arg = spec.to_string_lossy().into_owned();
        // The random delay is the experiment (where the kill lands), not a wait for anything.
        let delay = took.mul_f64(rng.f64());
        // A short Lease: the resume need not wait long for the killed holder's to lapse.
        let (mut child, _) = spawn_apply(&env, &spec, false, Some("3"));
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let context = format!("MIGRATE_CRASH_SEED={seed}, trial {trial}, killed after {delay:?}");
        // The killed holder's Lease lapses after its duration: the resume waits for it (a condition, with a deadline).
        let deadline = Instant::now() + Duration::from_secs(60);
        let finished = loop {
            let has_run = status_json(&env).get("run").is_some_and(|r| !r.is_null());
            let mut args = vec!["apply", "-f", spec_arg.as_str()];
            if has_run {
                args.push("--resume");
            }
            let run = migrate(&env, &args);
            if run.ok() || !run.stderr.contains("in use by") || Instant::now() > deadline {
                break run;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert!(
            finished.ok(),
            "{}",
            finished.describe(&format!("{context}: the resume"))
        );
        env.settled_dump().assert_eq(&want, &context);
        assert_eq!(effects(&env), want_effects, "{context}");
    }
}

#[test]
fn two_applies_at_once_one_proceeds_the_other_names_the_holder() {
    let env = world();
    let spec = demo_spec(&env);
    let (mut first, _) = spawn_apply(&env, &spec, false, None);
    env.wait_for(
        "the first apply holds the Lease",
        Duration::from_secs(30),
        || lease_holder(&env).is_some(),
    );
    let holder = lease_holder(&env).unwrap();
    assert!(holder.contains(&format!("pid {}", first.id())), "{holder}");
    let second = migrate(&env, &["apply", "-f", &spec.to_string_lossy()]);
    assert!(!second.ok(), "{}", second.describe("the second apply"));
    assert!(
        second.stderr.contains("in use by")
            && second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.describe("the second apply names the holder")
    );
    // Nor is a copy of the store pulled while a run writes it.
    let into = env.dir.path().join("pulled");
    let pull = migrate(&env, &["state", "pull", "--to", &into.to_string_lossy()]);
    assert!(
        !pull.ok() && pull.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        pull.describe("a pull while the Lease is held names the holder")
    );
    assert!(!into.exists(), "nothing left of a refused pull");
    let status = wait_child(&mut first, Duration::from_secs(120));
    assert!(status.success(), "the first apply carried on: {status:?}");
    assert_eq!(status_json(&env)["run"]["outcome"], "succeeded");
    assert_eq!(lease_holder(&env), None, "released at exit");
}

#[test]
fn a_holder_paused_past_its_lease_loses_it_and_writes_nothing() {
    let env = world();
    let spec = demo_spec(&env);
    let spec_arg = spec.to_string_lossy().into_owned();
    let (mut paused, lines) = spawn_apply(&env, &spec, false, Some("2"));
    env.wait_for(
        "the first steps are checkpointed",
        Duration::from_secs(30),
        || log_entries(&env) >= 5,
    );
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(paused.id() as i32, libc::SIGSTOP) }, 0);
    // Another member of the team takes over once the Lease lapsed, and finishes the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let taker = loop {
        let run = migrate(&env, &["apply", "-f", &spec_arg, "--resume"]);
        if run.ok() || !run.stderr.contains("in use by") || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(taker.ok(), "{}", taker.describe("the taker"));
    let before = status_json(&env);
    assert_eq!(before["run"]["outcome"], "succeeded");
    let newest = entry_seqs(&env).into_iter().max();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(paused.id() as i32, libc::SIGCONT) }, 0);
    let status = wait_child(&mut paused, Duration::from_secs(60));
    let stderr = lines.lock().unwrap().join("\n");
    assert!(!status.success(), "the paused holder stops: {stderr}");
    assert!(stderr.contains("lost its Lease"), "{stderr}");
    // It wrote nothing: the run and its journal are as the taker left them.
    assert_eq!(status_json(&env), before);
    // No entry after the taker's newest. (A write of the paused holder already on the wire may land under a
    // name the taker's checkpoint freed: below the newest checkpoint, where nothing is read.)
    assert_eq!(
        entry_seqs(&env).into_iter().max(),
        newest,
        "no entry after the taker's"
    );
}

#[test]
fn pushed_state_is_seen_and_rolled_back_from_another_working_directory() {
    let env = world();
    let before = env.settled_dump();
    let spec = demo_spec(&env);
    // Applied with a local state directory, then shared.
    let state_dir = env.state_dir.to_string_lossy().into_owned();
    let run = env.migrate(&[
        "apply",
        "-f",
        &spec.to_string_lossy(),
        "--state-dir",
        &state_dir,
    ]);
    assert!(run.ok(), "{}", run.describe("apply"));
    let local = env.migrate(&["status", "-o", "json", "--state-dir", &state_dir]);
    let local: Value = serde_json::from_str(&local.stdout).unwrap();
    let push = env.migrate(&[
        "state",
        "push",
        "--state-dir",
        &state_dir,
        "--to",
        &env.state_location(),
    ]);
    assert!(push.ok(), "{}", push.describe("state push"));
    assert!(
        push.stdout.contains("read back identical"),
        "{}",
        push.stdout
    );
    let again = env.migrate(&[
        "state",
        "push",
        "--state-dir",
        &state_dir,
        "--to",
        &env.state_location(),
    ]);
    assert!(
        !again.ok() && again.stderr.contains("already holds runs"),
        "{}",
        again.describe("a second push")
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let status = migrate_at(&env, elsewhere.path(), &["status", "-o", "json"], &[]);
    assert!(status.ok(), "{}", status.describe("status elsewhere"));
    let there: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(there["run"], local["run"]);
    assert_eq!(there["run"]["outcome"], "succeeded");
    let back = migrate_at(&env, elsewhere.path(), &["rollback", "--to", "phase0"], &[]);
    assert!(back.ok(), "{}", back.describe("rollback elsewhere"));
    env.settled_dump()
        .assert_eq(&before, "rolled back from another directory");
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none(),
        "nothing written in the other directory"
    );
    // The snapshots (the CA's key among them) are in Secrets only.
    let configmaps = serde_json::to_string(&objects(&env, "ConfigMap")).unwrap();
    assert!(
        !configmaps.contains("PRIVATE KEY") && !configmaps.contains("managed-by"),
        "{configmaps}"
    );
    let secrets = objects(&env, "Secret");
    for s in secrets {
        assert_eq!(s["type"], "migrate.meshops.dev/state", "{s}");
        assert_eq!(
            s.pointer("/metadata/labels/app.kubernetes.io~1managed-by"),
            Some(&Value::from("migrate"))
        );
    }
    env.assert_no_secrets_in_outputs();
}

#[test]
fn pulled_state_is_seen_and_rolled_back_from_a_local_directory() {
    use std::os::unix::fs::PermissionsExt;
    let env = world();
    let before = env.settled_dump();
    let spec = demo_spec(&env);
    let run = migrate(&env, &["apply", "-f", &spec.to_string_lossy()]);
    assert!(
        run.ok(),
        "{}",
        run.describe("apply on the Kubernetes backend")
    );
    let shared = status_json(&env);
    assert_eq!(shared["run"]["outcome"], "succeeded");
    let entries = entry_seqs(&env);
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("pulled");
    let dir_arg = dir.to_string_lossy().into_owned();
    let pull = migrate(&env, &["state", "pull", "--to", &dir_arg]);
    assert!(pull.ok(), "{}", pull.describe("state pull"));
    assert!(
        pull.stdout.contains("pulled 1 run(s)") && pull.stdout.contains("read back identical"),
        "{}",
        pull.stdout
    );
    assert_eq!(
        entry_seqs(&env),
        entries,
        "pull writes nothing to the store"
    );
    // Private, as every state directory.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in walk(&dir) {
        let m = mode(&entry);
        let want = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m, want, "{} is {m:o}", entry.display());
    }
    // Into a directory that is not empty: refused, nothing changed.
    let again = migrate(&env, &["state", "pull", "--to", &dir_arg]);
    assert!(
        !again.ok() && again.stderr.contains("not empty"),
        "{}",
        again.describe("a second pull")
    );
    let local = env.migrate(&["status", "-o", "json", "--events", "--state-dir", &dir_arg]);
    assert!(
        local.ok(),
        "{}",
        local.describe("status of the pulled directory")
    );
    let local: Value = serde_json::from_str(&local.stdout).unwrap();
    assert_eq!(local["run"], shared["run"]);
    assert_eq!(local["steps"], shared["steps"]);
    assert_eq!(local["events"], shared["events"]);
    let back = env.migrate(&["rollback", "--to", "phase0", "--state-dir", &dir_arg]);
    assert!(
        back.ok(),
        "{}",
        back.describe("rollback from the pulled directory")
    );
    env.settled_dump()
        .assert_eq(&before, "rolled back from the pulled directory");
    env.assert_no_secrets_in_outputs();
}

/// Every file and directory under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// The mesh's Lease on `cluster` (`migrate-mesh` in kube-system), if any.
fn mesh_lease(env: &SimEnv, cluster: &str) -> Option<Value> {
    let store = env.sim.cluster(cluster).store();
    let rt = store
        .resolve_kind("coordination.k8s.io/v1", "Lease")
        .expect("a served kind");
    store
        .list(&rt, Some("kube-system"))
        .0
        .into_iter()
        .map(|o| (*o).clone())
        .find(|l| l.pointer("/metadata/name") == Some(&Value::from("migrate-mesh")))
}

#[test]
fn a_mesh_claimed_by_a_paused_run_refuses_another_store_until_it_finishes() {
    let env = world();
    let spec = demo_spec(&env);
    let spec_arg = spec.to_string_lossy().into_owned();
    let first_dir = env.state_dir.to_string_lossy().into_owned();
    let other = env.dir.path().join("other-team");
    let other_dir = other.to_string_lossy().into_owned();
    // Paused between invocations, the run keeps its claim on both clusters it changes.
    let paused = env.migrate(&[
        "apply",
        "-f",
        &spec_arg,
        "--until",
        "trust",
        "--state-dir",
        &first_dir,
    ]);
    assert!(paused.ok(), "{}", paused.describe("apply --until trust"));
    for cluster in ["cluster1", "cluster2"] {
        let lease = mesh_lease(&env, cluster).unwrap_or_else(|| panic!("a claim on {cluster}"));
        let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
        assert!(
            holder.contains(&first_dir) && holder.contains("run 1"),
            "{lease}"
        );
        assert!(
            lease["spec"]["leaseDurationSeconds"].as_i64() > Some(3600),
            "kept: {lease}"
        );
    }
    assert!(
        mesh_lease(&env, "cluster3").is_none(),
        "only the mesh's clusters"
    );
    // Another team's store: refused before any change, naming the first.
    let before = env.settled_dump();
    let refused = env.migrate(&["apply", "-f", &spec_arg, "--state-dir", &other_dir]);
    assert!(
        !refused.ok(),
        "{}",
        refused.describe("apply from another store")
    );
    assert!(
        refused.stderr.contains("claimed by another state store")
            && refused.stderr.contains(&first_dir),
        "{}",
        refused.describe("the refusal names the holder")
    );
    env.settled_dump()
        .assert_eq(&before, "a refused run changes nothing");
    // The same store resumes: it takes the claim over, finishes, and gives it up.
    let resumed = env.migrate(&[
        "apply",
        "-f",
        &spec_arg,
        "--resume",
        "--state-dir",
        &first_dir,
    ]);
    assert!(
        resumed.ok(),
        "{}",
        resumed.describe("resume from the same store")
    );
    for cluster in ["cluster1", "cluster2"] {
        assert_eq!(mesh_lease(&env, cluster), None, "released on {cluster}");
    }
    env.assert_no_secrets_in_outputs();
}
