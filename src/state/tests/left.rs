//! What a step left (`finish_step`, `left_objects`): in both stores, replaced as a whole by the step's next
//! finish, durable with the Done mark at no extra fsync, and never holding a Secret value.

use super::*;

fn left(hash: &str) -> Left {
    Left::Present {
        hash: hash.into(),
        content: Some(json!({"spec": {"host": hash}})),
        secret_keys: Vec::new(),
    }
}

#[test]
fn finish_step_replaces_the_steps_records_and_marks_it() {
    both(|s| {
        let run = s.begin_run(new_run(&["a", "b"])).unwrap().id;
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        let (k1, k2) = (key("c1", "one"), key("c2", "two"));
        let state = s
            .finish_step(
                run,
                "a",
                StepStatus::Done,
                vec![(k2.clone(), Left::Absent), (k1.clone(), left("h1"))],
            )
            .unwrap();
        assert_eq!(state.status, StepStatus::Done);
        let got = s.left_objects(run, "a").unwrap();
        assert_eq!(
            got.iter().map(|l| (&l.key, &l.left)).collect::<Vec<_>>(),
            [(&k1, &left("h1")), (&k2, &Left::Absent)],
            "ordered by key"
        );
        assert!(got.iter().all(|l| l.step == "a"));
        assert!(s.left_objects(run, "b").unwrap().is_empty());
        // Applied again after a rollback: the new finish replaces every record.
        s.set_step_status(run, "a", StepStatus::RollingBack, None)
            .unwrap();
        s.set_step_status(run, "a", StepStatus::RolledBack, None)
            .unwrap();
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        s.finish_step(run, "a", StepStatus::Done, vec![(k1.clone(), left("h2"))])
            .unwrap();
        let again = s.left_objects(run, "a").unwrap();
        assert_eq!(again.len(), 1, "the record of k2 went with the old finish");
        assert_eq!(again[0].left, left("h2"));
    });
}

#[test]
fn finish_step_is_refused_like_a_transition() {
    both(|s| {
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        let unknown = s.finish_step(run, "zz", StepStatus::Done, vec![]);
        assert!(
            matches!(unknown, Err(StateError::UnknownStep { .. })),
            "{unknown:?}"
        );
    });
}

#[test]
fn records_and_done_mark_share_one_fsync_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let k = key("c1", "x");
    {
        let s = open(&dir);
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        s.begin_step(run, "a", StepStatus::Running, vec![(k.clone(), None)])
            .unwrap();
        let before = s.fsyncs();
        s.finish_step(run, "a", StepStatus::Done, vec![(k.clone(), left("h"))])
            .unwrap();
        assert_eq!(
            s.fsyncs(),
            before + 1,
            "as many fsyncs as a plain Done mark"
        );
    }
    let s = open(&dir);
    let run = s.latest_run().unwrap().unwrap().id;
    assert_eq!(s.step_state(run, "a").unwrap().status, StepStatus::Done);
    assert_eq!(s.left_objects(run, "a").unwrap()[0].left, left("h"));
}
