//! The status copy a holder keeps for `migrate status` (sled): current when a transition returns, written
//! afresh at a run's start, and after a resume once its deferred rewrite is done.

use super::*;

/// The copy's state of `step`.
fn copied(dir: &Path, step: &str) -> StepState {
    let (_, copy) = mirror::read(dir).unwrap();
    copy.states[step].clone()
}

#[test]
fn the_copy_shows_each_transition_when_it_returns_and_a_resume_once_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let s = open(&dir);
    let run = s.begin_run(new_run(&["a", "b"])).unwrap().id;
    assert_eq!(copied(&dir, "a").status, StepStatus::Pending);
    s.set_step_status(run, "a", StepStatus::Running, None)
        .unwrap();
    assert_eq!(copied(&dir, "a").status, StepStatus::Running);
    s.finish_step(run, "a", StepStatus::Done, Vec::new())
        .unwrap();
    assert_eq!(copied(&dir, "a").status, StepStatus::Done);
    s.finish_run(run, Outcome::Interrupted).unwrap();
    assert_eq!(
        mirror::read(&dir).unwrap().1.run.outcome,
        Outcome::Interrupted
    );
    drop(s);

    // Another process resumes: the copy is rewritten on the side, what changes meanwhile follows it.
    let s = open(&dir);
    s.resume_run(run).unwrap();
    s.set_step_status(run, "b", StepStatus::Running, None)
        .unwrap();
    s.set_step_status(run, "b", StepStatus::Failed, Some("boom"))
        .unwrap();
    s.status_copy_written();
    let (_, copy) = mirror::read(&dir).unwrap();
    assert_eq!(copy.run.outcome, Outcome::Running);
    assert_eq!(copy.states["a"].status, StepStatus::Done);
    assert_eq!(
        (copy.states["b"].status, copy.states["b"].attempts),
        (StepStatus::Failed, 1)
    );
    // And from then on, when each call returns.
    s.set_step_status(run, "b", StepStatus::Running, None)
        .unwrap();
    assert_eq!(copied(&dir, "b").attempts, 2);
    s.finish_run(run, Outcome::Failed).unwrap();
    drop(s);
    assert_eq!(mirror::read(&dir).unwrap().1.run.outcome, Outcome::Failed);
}
