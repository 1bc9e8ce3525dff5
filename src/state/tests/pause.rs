//! A run paused after a phase (`apply --until`): its record on both stores, across an abort, and in the
//! shape older builds read.

use super::*;

#[test]
fn a_paused_run_is_interrupted_with_its_phase_until_it_goes_on() {
    both(|s| {
        let run = s
            .begin_run(new_run(&["trust/a", "discovery/a"]))
            .unwrap()
            .id;
        s.set_step_status(run, "trust/a", StepStatus::Running, None)
            .unwrap();
        s.set_step_status(run, "trust/a", StepStatus::Done, None)
            .unwrap();
        let paused = s.pause_run(run, "trust").unwrap();
        assert_eq!(paused.outcome, Outcome::Interrupted);
        assert_eq!(paused.paused_after.as_deref(), Some("trust"));
        assert_eq!(paused.standing(), "paused after trust");
        assert!(paused.finished.is_some());
        assert_eq!(s.run(run).unwrap(), paused);
        let last = s.events(run, 0).unwrap().pop().unwrap();
        assert_eq!(last.kind, EventKind::RunFinished);
        assert_eq!(last.message, "run paused after trust");
        assert_eq!(last.details.unwrap()["pausedAfter"], "trust");
        // A paused run changes no step until it goes on.
        assert!(matches!(
            s.set_step_status(run, "discovery/a", StepStatus::Running, None),
            Err(StateError::RunNotRunning { .. })
        ));
        assert!(s.pause_run(run, "trust").is_err(), "not running");
        let resumed = s.resume_run(run).unwrap();
        assert_eq!(resumed.paused_after, None);
        assert_eq!(resumed.outcome, Outcome::Running);
        let note = s.events(run, 0).unwrap().pop().unwrap();
        assert_eq!(note.message, "resumed after it paused after trust");
        assert!(s.pause_run(run, " ").is_err(), "a pause names its phase");
        let done = s.finish_run(run, Outcome::Succeeded).unwrap();
        assert_eq!(
            (done.paused_after.clone(), done.standing()),
            (None, "succeeded".into())
        );
    });
}

#[test]
fn a_record_without_the_pause_reads_as_before_and_is_written_as_before() {
    let s = MemoryStore::new();
    let run = s.begin_run(new_run(&["a"])).unwrap();
    let written = serde_json::to_value(&run).unwrap();
    assert!(
        written.get("paused_after").is_none(),
        "older builds read the same record: {written}"
    );
    let back: RunInfo = serde_json::from_value(written).unwrap();
    assert_eq!(back, run);
    let paused = s.pause_run(run.id, "routing").unwrap();
    let written = serde_json::to_value(&paused).unwrap();
    assert_eq!(written["paused_after"], "routing");
    assert_eq!(written["outcome"], "interrupted", "what older builds see");
}

const PAUSE_DIR: &str = "MIGRATE_STATE_TEST_PAUSE_DIR";

/// Child half of `a_pause_survives_an_abort_right_after_it_returns`: pauses a run, then aborts (no destructor,
/// no flush).
#[test]
fn pause_child() {
    let Ok(dir) = std::env::var(PAUSE_DIR) else {
        return;
    };
    let s = open(Path::new(&dir));
    let run = s.begin_run(new_run(&["trust/a"])).unwrap().id;
    s.set_step_status(run, "trust/a", StepStatus::Running, None)
        .unwrap();
    s.set_step_status(run, "trust/a", StepStatus::Done, None)
        .unwrap();
    s.pause_run(run, "trust").unwrap();
    std::process::abort();
}

#[test]
fn a_pause_survives_an_abort_right_after_it_returns() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let mut child = spawn_child(
        "state::tests::pause::pause_child",
        &[(PAUSE_DIR, dir.display().to_string())],
    );
    let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(60));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "child ended with {status}"
    );
    let s = open(&dir);
    let run = s.latest_run().unwrap().unwrap();
    assert_eq!(run.outcome, Outcome::Interrupted);
    assert_eq!(run.paused_after.as_deref(), Some("trust"));
    s.verify().unwrap();
}
