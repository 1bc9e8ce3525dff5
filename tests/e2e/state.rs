//! The state directory seen from the binary: one writer (the holder named),
//! a dead holder taken over, damaged directories refused with a clear error
//! and never a panic.

use crate::sim_support::{Run, SimEnv};
use crate::specs::two_cluster;
use std::path::Path;

/// A state directory left by a run killed (SIGKILL) right after its first
/// checkpoint.
fn crashed_run(env: &SimEnv, state_dir: &Path) -> Run {
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let run = env.migrate_env(
        &[
            "apply",
            "-f",
            &spec.to_string_lossy(),
            "--state-dir",
            &state_dir.to_string_lossy(),
            // Several crashed directories on one mesh: a killed run's claim would hold it for its duration.
            "--no-mesh-lease",
        ],
        &[("MIGRATE_FAILPOINT", "before-step:preflight/cluster1")],
    );
    assert_eq!(run.signal, Some(9), "{}", run.describe("expected SIGKILL"));
    run
}

fn status(env: &SimEnv, state_dir: &Path) -> Run {
    env.migrate(&["status", "--state-dir", &state_dir.to_string_lossy()])
}

/// A refusal: a non-zero exit code (not a panic's 101, not a signal) and no
/// panic message.
fn assert_refused(run: &Run, needle: &str) {
    assert!(
        matches!(run.code, Some(1 | 2)),
        "{}",
        run.describe("expected exit 1 or 2")
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{}",
        run.describe("panic")
    );
    assert!(
        run.stderr.contains(needle),
        "{}",
        run.describe(&format!("expected {needle:?} on stderr"))
    );
}

#[test]
fn a_second_writer_is_refused_with_the_holder_named() {
    let env = SimEnv::start(2);
    let dir = env.path("held");
    let held = migrate::state::SledStore::open(&dir).expect("the test holds the state directory");
    let pid = std::process::id();
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let apply = env.migrate(&[
        "apply",
        "-f",
        &spec.to_string_lossy(),
        "--state-dir",
        &dir.to_string_lossy(),
    ]);
    assert_refused(&apply, &format!("in use by pid {pid}"));
    assert_refused(&status(&env, &dir), &format!("in use by pid {pid}"));
    let rollback = env.migrate(&[
        "rollback",
        "--to",
        "phase0",
        "--state-dir",
        &dir.to_string_lossy(),
    ]);
    assert_refused(&rollback, &format!("in use by pid {pid}"));
    drop(held);
    let after = status(&env, &dir);
    assert!(after.ok(), "{}", after.describe("status once released"));
    assert!(after.stdout.contains("no run yet"), "{}", after.stdout);
}

#[test]
fn a_dead_holder_is_detected_and_taken_over() {
    let env = SimEnv::start(2);
    let dir = env.path("crashed");
    crashed_run(&env, &dir);
    let st = status(&env, &dir);
    assert!(st.ok(), "{}", st.describe("status after a crash"));
    assert!(
        st.stderr.contains("note:") && st.stderr.contains("pid"),
        "{}",
        st.describe("expected a takeover note naming the dead holder")
    );
    assert!(st.stdout.contains("preflight/cluster1"), "{}", st.stdout);
    env.assert_no_secrets_in_outputs();
}

#[test]
fn garbage_in_the_database_gives_a_clear_error_not_a_panic() {
    let env = SimEnv::start(2);
    let dir = env.path("garbage");
    crashed_run(&env, &dir);
    let mut damaged = 0;
    for entry in walk(&dir.join("db")) {
        let len = std::fs::metadata(&entry).unwrap().len().max(64) as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&entry, garbage).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "no sled files found under {}", dir.display());
    let st = status(&env, &dir);
    assert_refused(&st, "state directory");
    assert!(
        st.stderr.contains("damaged") || st.stderr.contains("database"),
        "{}",
        st.describe("expected the damage named")
    );
}

#[test]
fn a_wrong_schema_marker_gives_a_clear_error() {
    let env = SimEnv::start(2);
    for (case, edit, needle) in [
        ("newer", r#""schema":99"#, "newer migrate"),
        ("format", r#""format":"something-else""#, "state directory"),
    ] {
        let dir = env.path(case);
        crashed_run(&env, &dir);
        let marker = dir.join("migrate-state.json");
        let text = std::fs::read_to_string(&marker).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut map = value.as_object().unwrap().clone();
        let (k, v) = edit.split_once(':').unwrap();
        map.insert(k.trim_matches('"').into(), serde_json::from_str(v).unwrap());
        std::fs::write(&marker, serde_json::to_string(&map).unwrap()).unwrap();
        assert_refused(&status(&env, &dir), needle);
    }
    // Not JSON at all.
    let dir = env.path("unreadable");
    crashed_run(&env, &dir);
    std::fs::write(dir.join("migrate-state.json"), "{{{ not json").unwrap();
    assert_refused(&status(&env, &dir), "migrate-state.json");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// While another process runs a plan it holds the store; `status` shows the
/// copy that process keeps, and says whose run it is.
#[test]
fn status_shows_a_run_in_progress_in_another_process() {
    use migrate::state::{NewRun, RunKind, StepStatus, Store};
    let env = SimEnv::start(2);
    let dir = env.path("busy");
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let loaded = migrate::spec::load_file(&spec).expect("the spec loads");
    let plan = migrate::phases::plan(&loaded.spec).expect("it plans");
    let stored = migrate::engine::StoredPlan::new(&plan, Default::default());
    let held = migrate::state::SledStore::open(&dir)
        .expect("the test holds the state directory")
        .store;
    let run = held
        .begin_run(NewRun {
            fingerprint: plan.fingerprint.clone(),
            spec_name: plan.header.name.clone(),
            kind: RunKind::Apply,
            plan: serde_json::to_value(&stored).unwrap(),
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
        })
        .unwrap();
    held.set_step_status(run.id, "preflight/cluster1", StepStatus::Running, None)
        .unwrap();

    let st = status(&env, &dir);
    assert!(st.ok(), "{}", st.describe("status of a busy directory"));
    let pid = std::process::id();
    assert!(
        st.stdout.contains(&format!("in progress in pid {pid}")),
        "{}",
        st.stdout
    );
    let line = st
        .stdout
        .lines()
        .find(|l| l.contains("preflight/cluster1"))
        .unwrap_or_default();
    assert!(line.contains("running"), "{}", st.stdout);

    // The copy follows the holder's checkpoints.
    held.set_step_status(run.id, "preflight/cluster1", StepStatus::Done, None)
        .unwrap();
    let st = status(&env, &dir);
    let line = st
        .stdout
        .lines()
        .find(|l| l.contains("preflight/cluster1"))
        .unwrap_or_default();
    assert!(line.contains("done"), "{}", st.stdout);
}
