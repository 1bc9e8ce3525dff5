//! Signals and children, with the real binary against meshsim: SIGTERM
//! lets running steps finish, a second SIGTERM stops at once and journals
//! what was running, SIGKILL takes the installer down with `migrate`, and
//! resume never runs a second installer beside the first.
//!
//! The stand-in istioctl logs each invocation (`MESHSIM_ISTIOCTL_LOG`) and
//! waits before installing (`MESHSIM_ISTIOCTL_DELAY_MS`), so each test acts
//! while an installer is known to run (its start line is in the log).

use crate::apply::{seeded_with_spec, step_statuses};
use crate::sim_support::SimEnv;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long a test waits for anything that should happen.
const LIMIT: Duration = Duration::from_secs(120);

/// A `migrate apply` running in the background, its output going to files.
struct Background {
    child: Child,
    stderr: PathBuf,
}

impl Background {
    fn start(env: &SimEnv, spec: &Path, extra_env: &[(&str, &str)]) -> Background {
        let stdout = env.path("apply.stdout");
        let stderr = env.path("apply.stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
        cmd.args(["apply", "-f"])
            .arg(spec)
            .arg("--state-dir")
            .arg(&env.state_dir)
            .current_dir(env.dir.path())
            .env("KUBECONFIG", env.kubeconfig())
            .env_remove(migrate::engine::failpoint::ENV)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Background {
            child: cmd.spawn().expect("the migrate binary starts"),
            stderr,
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory effects; the child is ours and not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "signal {signal} to migrate");
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for `migrate` to exit, at most `limit`.
    fn wait(&mut self, env: &SimEnv, limit: Duration) -> ExitStatus {
        let mut status = None;
        env.wait_for("migrate to exit", limit, || {
            status = self.child.try_wait().expect("waiting for migrate");
            status.is_some()
        });
        let status = status.expect("exited");
        env.record_output("stderr of the background apply", &self.stderr());
        status
    }
}

/// One line of the stand-in's invocation log.
#[derive(Debug, Clone, PartialEq)]
struct Invocation {
    start: bool,
    pid: u32,
    command: String,
    file: String,
    code: Option<i32>,
}

fn invocations(log: &Path) -> Vec<Invocation> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let start = words.next()? == "start";
            let mut inv = Invocation {
                start,
                pid: 0,
                command: String::new(),
                file: String::new(),
                code: None,
            };
            for word in words {
                let (k, v) = word.split_once('=')?;
                match k {
                    "pid" => inv.pid = v.parse().ok()?,
                    "command" => inv.command = v.into(),
                    "file" => inv.file = v.into(),
                    "code" => inv.code = v.parse().ok(),
                    _ => {}
                }
            }
            Some(inv)
        })
        .collect()
}

/// The first install the log shows started.
fn wait_for_install(env: &SimEnv, log: &Path) -> Invocation {
    let mut found = None;
    env.wait_for("an istioctl install to start", LIMIT, || {
        found = invocations(log)
            .into_iter()
            .find(|i| i.start && i.command == "install");
        found.is_some()
    });
    found.expect("found")
}

/// `pid` runs istioctl (not a zombie, not a reused pid running something else).
fn is_istioctl(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    if state == Some("Z") {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    Path::new(&*String::from_utf8_lossy(argv0)).file_name() == Some("istioctl".as_ref())
}

/// No installer the log names is alive, waiting at most `LIMIT` for one to go.
fn assert_no_installer_alive(env: &SimEnv, log: &Path) {
    let pids: Vec<u32> = invocations(log).iter().map(|i| i.pid).collect();
    env.wait_for("every installer to be gone", LIMIT, || {
        pids.iter().all(|p| !is_istioctl(*p))
    });
}

/// Control-plane installs (`istio-CLUSTER.yaml`) per file: (started, ended with 0).
fn control_plane_installs(log: &Path, cluster: &str) -> (usize, usize) {
    let file = format!("istio-{cluster}.yaml");
    let all = invocations(log);
    let of = |i: &&Invocation| i.command == "install" && i.file == file;
    (
        all.iter().filter(of).filter(|i| i.start).count(),
        all.iter()
            .filter(of)
            .filter(|i| !i.start && i.code == Some(0))
            .count(),
    )
}

/// `apply --resume`, its installers logging to `log`.
fn resume(env: &SimEnv, spec: &Path, log: &str) -> crate::sim_support::Run {
    let spec = spec.to_string_lossy();
    env.migrate_env(
        &["apply", "-f", &spec, "--resume"],
        &[("MESHSIM_ISTIOCTL_LOG", log)],
    )
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn sigterm_during_install_lets_it_finish_and_resume_installs_once_per_cluster() {
    let (env, spec) = seeded_with_spec();
    let log = env.path("istioctl.log");
    let log_s = log.to_string_lossy().into_owned();
    let mut run = Background::start(
        &env,
        &spec,
        &[
            ("MESHSIM_ISTIOCTL_LOG", &log_s),
            ("MESHSIM_ISTIOCTL_DELAY_MS", "1500"),
        ],
    );
    let install = wait_for_install(&env, &log);
    run.signal(libc::SIGTERM);
    let status = run.wait(&env, LIMIT);
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(1), "interrupted, not killed:\n{stderr}");
    assert!(stderr.contains("interrupted (SIGTERM)"), "{stderr}");
    // The installer caught running finished, and so did its step.
    let ended = invocations(&log)
        .into_iter()
        .any(|i| !i.start && i.pid == install.pid && i.code == Some(0));
    assert!(
        ended,
        "install {install:?} did not finish:\n{}",
        log_text(&log)
    );
    assert_no_installer_alive(&env, &log);
    let statuses = step_statuses(&env);
    assert!(
        statuses.iter().all(|(_, s)| s != "running"),
        "a step was left running: {statuses:?}"
    );
    assert!(
        statuses.iter().any(|(_, s)| s == "pending"),
        "SIGTERM stopped nothing: {statuses:?}"
    );
    resume(&env, &spec, &log_s).expect_ok();
    for cluster in ["cluster1", "cluster2"] {
        assert_eq!(
            control_plane_installs(&log, cluster),
            (1, 1),
            "{cluster}: (installs started, succeeded) over both runs\n{}",
            log_text(&log)
        );
    }
    assert_no_installer_alive(&env, &log);
    env.assert_no_secrets_in_outputs();
}

#[test]
fn sigkill_takes_the_installer_down_and_resume_installs_once() {
    let (env, spec) = seeded_with_spec();
    let log = env.path("istioctl.log");
    let log_s = log.to_string_lossy().into_owned();
    let mut run = Background::start(
        &env,
        &spec,
        &[
            ("MESHSIM_ISTIOCTL_LOG", &log_s),
            ("MESHSIM_ISTIOCTL_DELAY_MS", "60000"),
        ],
    );
    let install = wait_for_install(&env, &log);
    assert!(is_istioctl(install.pid), "{install:?} is not running");
    run.signal(libc::SIGKILL);
    let status = run.wait(&env, LIMIT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // Well before its 60 s delay is over: the parent-death signal killed it.
    env.wait_for(
        "the orphaned installer to die",
        Duration::from_secs(20),
        || !is_istioctl(install.pid),
    );
    assert_no_installer_alive(&env, &log);
    let killed_ended = invocations(&log)
        .iter()
        .any(|i| !i.start && i.pid == install.pid);
    assert!(
        !killed_ended,
        "the killed installer finished:\n{}",
        log_text(&log)
    );
    resume(&env, &spec, &log_s).expect_ok();
    for cluster in ["cluster1", "cluster2"] {
        let (_, succeeded) = control_plane_installs(&log, cluster);
        assert_eq!(succeeded, 1, "{cluster}\n{}", log_text(&log));
    }
    assert_no_installer_alive(&env, &log);
}

#[test]
fn a_second_sigterm_stops_at_once_and_journals_the_running_steps() {
    let (env, spec) = seeded_with_spec();
    let log = env.path("istioctl.log");
    let log_s = log.to_string_lossy().into_owned();
    let mut run = Background::start(
        &env,
        &spec,
        &[
            ("MESHSIM_ISTIOCTL_LOG", &log_s),
            ("MESHSIM_ISTIOCTL_DELAY_MS", "60000"),
        ],
    );
    let install = wait_for_install(&env, &log);
    run.signal(libc::SIGTERM);
    // Two signals sent back to back may be delivered as one: the second
    // goes only once the first was handled.
    env.wait_for("the first SIGTERM to be handled", LIMIT, || {
        run.stderr().contains("interrupted (SIGTERM)")
    });
    run.signal(libc::SIGTERM);
    // At once: long before the installer's 60 s delay is over.
    let status = run.wait(&env, Duration::from_secs(20));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("quitting at once (SIGTERM)"), "{stderr}");
    env.wait_for(
        "the installer to be killed",
        Duration::from_secs(20),
        || !is_istioctl(install.pid),
    );
    assert_no_installer_alive(&env, &log);

    let status = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    let running: Vec<String> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "running")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !running.is_empty(),
        "no step left running: {}",
        status.stdout
    );
    let note = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["stoppedBy"] == "SIGTERM")
        .unwrap_or_else(|| panic!("no note of the stop: {}", status.stdout));
    let journalled: Vec<String> = note["details"]["runningSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(journalled, running, "{note}");
    let message = note["message"].as_str().unwrap();
    assert!(running.iter().all(|s| message.contains(s)), "{message}");

    resume(&env, &spec, &log_s).expect_ok();
    for cluster in ["cluster1", "cluster2"] {
        let (_, succeeded) = control_plane_installs(&log, cluster);
        assert_eq!(succeeded, 1, "{cluster}\n{}", log_text(&log));
    }
}
