//! Store semantics, run against both stores: runs, steps, the journal, snapshots, redaction.

use super::*;

// ---- semantics, both stores ----

#[test]
fn begin_run_records_plan_steps_and_first_event() {
    both(|s| {
        assert!(s.current_run().unwrap().is_none());
        let new = new_run(&["install/cluster1", "discovery/cluster1<-cluster2"]);
        let run = s.begin_run(new.clone()).unwrap();
        assert_eq!(run.id, RunId(1));
        assert_eq!(run.outcome, Outcome::Running);
        assert_eq!(s.current_run().unwrap().as_ref(), Some(&run));
        // The plan comes back exactly, key order included.
        assert_eq!(s.plan(run.id).unwrap().to_string(), new.plan.to_string());
        // And as text, unparsed where the store can.
        assert_eq!(s.plan_json(run.id).unwrap(), new.plan.to_string());
        let steps = s.step_states(run.id).unwrap();
        assert_eq!(steps.len(), 2);
        assert!(steps.values().all(|st| *st == StepState::pending()));
        let events = s.events(run.id, 0).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].seq, events[0].kind), (1, EventKind::RunStarted));
        assert!(matches!(
            s.plan(RunId(9)),
            Err(StateError::UnknownRun { run: RunId(9) })
        ));
    });
}

#[test]
fn begin_run_rejects_bad_step_lists() {
    both(|s| {
        let err = s.begin_run(new_run(&["a", "a"])).unwrap_err();
        assert!(err.to_string().contains("\"a\" appears twice"), "{err}");
        assert!(matches!(
            s.begin_run(new_run(&["a", ""])),
            Err(StateError::InvalidInput(_))
        ));
        assert!(s.latest_run().unwrap().is_none());
    });
}

#[test]
fn step_transitions_count_attempts_and_journal() {
    both(|s| {
        let run = s.begin_run(new_run(&["install/cluster1"])).unwrap().id;
        let step = "install/cluster1";
        let st = s
            .set_step_status(run, step, StepStatus::Running, None)
            .unwrap();
        assert_eq!((st.status, st.attempts), (StepStatus::Running, 1));
        assert!(st.started.is_some() && st.finished.is_none());
        let st = s
            .set_step_status(run, step, StepStatus::Failed, Some("422 Unprocessable"))
            .unwrap();
        assert_eq!(st.last_error.as_deref(), Some("422 Unprocessable"));
        assert!(st.finished.is_some());
        let st = s
            .set_step_status(run, step, StepStatus::Running, None)
            .unwrap();
        assert_eq!(st.attempts, 2);
        assert!(st.finished.is_none());
        assert_eq!(
            st.last_error.as_deref(),
            Some("422 Unprocessable"),
            "kept while retrying"
        );
        let st = s
            .set_step_status(run, step, StepStatus::Done, None)
            .unwrap();
        assert_eq!(st.last_error, None);
        assert_eq!(s.step_state(run, step).unwrap(), st);

        let statuses: Vec<(String, Value)> = s
            .events(run, 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::StepStatus)
            .map(|e| (e.message, e.details.unwrap()["to"].clone()))
            .collect();
        let tos: Vec<&str> = statuses
            .iter()
            .map(|(_, to)| to.as_str().unwrap())
            .collect();
        assert_eq!(tos, ["running", "failed", "running", "done"]);
        assert_eq!(
            statuses[1].0,
            "install/cluster1: running -> failed: 422 Unprocessable"
        );

        let err = s
            .set_step_status(run, step, StepStatus::Failed, None)
            .unwrap_err();
        assert!(matches!(
            err,
            StateError::InvalidTransition {
                from: StepStatus::Done,
                to: StepStatus::Failed,
                ..
            }
        ));
        assert!(err.to_string().contains("install/cluster1"), "{err}");
        let err = s
            .set_step_status(run, "install/cluster9", StepStatus::Running, None)
            .unwrap_err();
        assert!(matches!(err, StateError::UnknownStep { .. }), "{err}");
        assert!(err.to_string().contains("install/cluster9"), "{err}");
        // Rolling back counts as an attempt too.
        let st = s
            .set_step_status(run, step, StepStatus::RollingBack, None)
            .unwrap();
        assert_eq!(st.attempts, 3);
        let st = s
            .set_step_status(run, step, StepStatus::RolledBack, None)
            .unwrap();
        assert_eq!(st.status, StepStatus::RolledBack);
    });
}

#[test]
fn failed_without_message_still_has_an_error() {
    both(|s| {
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        let st = s
            .set_step_status(run, "a", StepStatus::Failed, None)
            .unwrap();
        assert!(st.last_error.is_some());
    });
}

#[test]
fn runs_finish_resume_and_keep_history() {
    both(|s| {
        let r1 = s.begin_run(new_run(&["a"])).unwrap().id;
        let err = s.begin_run(new_run(&["a"])).unwrap_err();
        assert!(
            matches!(err, StateError::RunInProgress { run } if run == r1),
            "{err}"
        );
        assert!(matches!(
            s.finish_run(r1, Outcome::Running),
            Err(StateError::InvalidInput(_))
        ));

        let done = s.finish_run(r1, Outcome::Interrupted).unwrap();
        assert_eq!(done.outcome, Outcome::Interrupted);
        assert!(done.finished.is_some());
        assert_eq!(
            s.current_run().unwrap().map(|r| r.id),
            Some(r1),
            "interrupted runs are resumable"
        );
        let err = s
            .set_step_status(r1, "a", StepStatus::Running, None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                StateError::RunNotRunning {
                    outcome: Outcome::Interrupted,
                    ..
                }
            ),
            "{err}"
        );
        let err = s
            .put_snapshot_if_absent(r1, "a", &key("c1", "x"), None)
            .unwrap_err();
        assert!(matches!(err, StateError::RunNotRunning { .. }), "{err}");

        let resumed = s.resume_run(r1).unwrap();
        assert_eq!(
            (resumed.outcome, resumed.resumed, resumed.finished),
            (Outcome::Running, 1, None)
        );
        s.set_step_status(r1, "a", StepStatus::Running, None)
            .unwrap();
        s.set_step_status(r1, "a", StepStatus::Done, None).unwrap();
        s.finish_run(r1, Outcome::Succeeded).unwrap();
        assert!(s.current_run().unwrap().is_none());
        // Only a rollback reopens a run that succeeded; `current_run` never offers it to resume.
        assert_eq!(s.resume_run(r1).unwrap().outcome, Outcome::Running);
        s.finish_run(r1, Outcome::Succeeded).unwrap();
        assert!(matches!(
            s.finish_run(r1, Outcome::Failed),
            Err(StateError::RunNotRunning { .. })
        ));

        let mut rb = new_run(&["a"]);
        rb.kind = RunKind::Rollback {
            to_phase: "phase3".into(),
        };
        let r2 = s.begin_run(rb).unwrap();
        assert_eq!(r2.id, RunId(2));
        assert_eq!(
            r2.kind,
            RunKind::Rollback {
                to_phase: "phase3".into()
            }
        );
        s.finish_run(r2.id, Outcome::Failed).unwrap();
        assert_eq!(s.current_run().unwrap().map(|r| r.id), Some(r2.id));
        let err = s.resume_run(r1).unwrap_err();
        assert!(err.to_string().contains("run #2 started after it"), "{err}");
        let runs = s.runs().unwrap();
        assert_eq!(runs.iter().map(|r| r.id.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(runs[0].outcome, Outcome::Succeeded);
        // Each run has its own step states.
        assert_eq!(
            s.step_state(r2.id, "a").unwrap().status,
            StepStatus::Pending
        );
        let kinds: Vec<EventKind> = s.events(r1, 0).unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::RunStarted,
                EventKind::RunFinished,
                EventKind::RunResumed,
                EventKind::StepStatus,
                EventKind::StepStatus,
                EventKind::RunFinished,
                EventKind::RunResumed,
                EventKind::RunFinished
            ]
        );
    });
}

#[test]
fn first_snapshot_wins_and_absence_is_recorded() {
    both(|s| {
        let run = s
            .begin_run(new_run(&["trust/cluster1", "trust/cluster2"]))
            .unwrap()
            .id;
        let k1 = key("cluster1", "cacerts");
        assert!(
            s.put_snapshot_if_absent(run, "trust/cluster1", &k1, Some(secret("first")))
                .unwrap()
        );
        assert!(
            !s.put_snapshot_if_absent(run, "trust/cluster1", &k1, Some(secret("second")))
                .unwrap()
        );
        assert!(
            !s.put_snapshot_if_absent(run, "trust/cluster1", &k1, None)
                .unwrap()
        );
        let snap = s.snapshot(run, "trust/cluster1", &k1).unwrap().unwrap();
        assert_eq!(
            snap.object,
            Some(secret("first")),
            "kept byte for byte, secret data included"
        );
        assert_eq!(snap.step, "trust/cluster1");

        let k2 = key("cluster2", "cacerts");
        assert!(
            s.put_snapshot_if_absent(run, "trust/cluster2", &k2, None)
                .unwrap()
        );
        assert_eq!(
            s.snapshot(run, "trust/cluster2", &k2)
                .unwrap()
                .unwrap()
                .object,
            None
        );
        // Another step keeps its own snapshot of the same object.
        assert!(
            s.put_snapshot_if_absent(run, "trust/cluster2", &k1, Some(secret("later")))
                .unwrap()
        );
        assert_eq!(
            s.snapshot(run, "trust/cluster2", &k1)
                .unwrap()
                .unwrap()
                .object,
            Some(secret("later"))
        );
        assert_eq!(
            s.snapshot(run, "trust/cluster1", &k1)
                .unwrap()
                .unwrap()
                .object,
            Some(secret("first"))
        );
        let ns = SnapshotKey::new("cluster1", "v1", "Namespace", None, "istio-system");
        assert!(
            s.put_snapshot_if_absent(
                run,
                "trust/cluster1",
                &ns,
                Some(json!({"kind": "Namespace"}))
            )
            .unwrap()
        );
        assert!(
            s.snapshot(run, "trust/cluster1", &key("cluster3", "cacerts"))
                .unwrap()
                .is_none()
        );

        let all = s.snapshots(run, &SnapshotFilter::default()).unwrap();
        let mut sorted: Vec<SnapshotKey> = all.iter().map(|s| s.key.clone()).collect();
        sorted.sort();
        assert_eq!(
            all.iter().map(|s| s.key.clone()).collect::<Vec<_>>(),
            sorted
        );
        assert_eq!(all.len(), 4);
        let c1 = s
            .snapshots(
                run,
                &SnapshotFilter {
                    cluster: Some("cluster1".into()),
                    step: None,
                },
            )
            .unwrap();
        assert_eq!(c1.len(), 3);
        assert!(c1.iter().all(|s| s.key.cluster == "cluster1"));
        let by_step = s
            .snapshots(
                run,
                &SnapshotFilter {
                    cluster: None,
                    step: Some("trust/cluster2".into()),
                },
            )
            .unwrap();
        assert_eq!(
            by_step.iter().map(|s| &s.key).collect::<Vec<_>>(),
            [&k1, &k2]
        );
        // A cluster name that is a prefix of another must not match it.
        let c = s
            .snapshots(
                run,
                &SnapshotFilter {
                    cluster: Some("cluster".into()),
                    step: None,
                },
            )
            .unwrap();
        assert!(c.is_empty());

        let snaps: Vec<Event> = s
            .events(run, 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::Snapshot)
            .collect();
        assert_eq!(
            snaps.len(),
            4,
            "one event per recorded snapshot, none for refused ones"
        );

        let err = s
            .put_snapshot_if_absent(run, "nope", &k1, None)
            .unwrap_err();
        assert!(matches!(err, StateError::UnknownStep { .. }), "{err}");
        let mut empty_ns = key("c1", "x");
        empty_ns.object.namespace = Some(String::new());
        let err = s
            .put_snapshot_if_absent(run, "trust/cluster1", &empty_ns, None)
            .unwrap_err();
        assert!(err.to_string().contains("namespace is empty"), "{err}");
        let bad = SnapshotKey::new("", "v1", "Secret", None, "x");
        assert!(matches!(
            s.put_snapshot_if_absent(run, "trust/cluster1", &bad, None),
            Err(StateError::InvalidInput(_))
        ));
    });
}

#[test]
fn events_since_and_redaction_at_record_time() {
    both(|s| {
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        let seq = s
            .record_event(
                run,
                NewEvent::new(
                    EventKind::Action,
                    Some("a"),
                    "applied Secret; token Bearer s3cr3t-token",
                )
                .with_details(json!({"object": secret("topsecret")})),
            )
            .unwrap();
        assert_eq!(seq, 2);
        let seq3 = s
            .record_event(run, NewEvent::new(EventKind::Note, None, "three"))
            .unwrap();
        assert_eq!(seq3, 3);
        let since = s.events(run, 1).unwrap();
        assert_eq!(since.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(s.events(run, 3).unwrap().is_empty());
        let exported = serde_json::to_string(&since).unwrap();
        assert!(!exported.contains("s3cr3t-token"), "{exported}");
        assert!(
            !exported.contains(
                &secret("topsecret")["data"]["ca-key.pem"]
                    .as_str()
                    .unwrap()
                    .to_string()
            )
        );
        assert!(exported.contains("<redacted 9 bytes>"), "{exported}");
        assert_eq!(since[0].step.as_deref(), Some("a"));
        // Events may still be journalled after the run finished (audit notes).
        s.finish_run(run, Outcome::Failed).unwrap();
        assert_eq!(
            s.record_event(run, NewEvent::new(EventKind::Note, None, "late"))
                .unwrap(),
            5
        );
        assert_eq!(s.run(run).unwrap().last_event_seq, 5);
        assert!(matches!(
            s.events(RunId(7), 0),
            Err(StateError::UnknownRun { .. })
        ));
    });
}

#[test]
fn snapshot_debug_and_export_never_show_secret_bytes() {
    both(|s| {
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        let mut obj = secret("PRIVATE-KEY-MATERIAL");
        obj["stringData"] = json!({"password": "hunter2-hunter2"});
        s.put_snapshot_if_absent(run, "a", &key("c1", "cacerts"), Some(obj.clone()))
            .unwrap();
        let snap = s
            .snapshot(run, "a", &key("c1", "cacerts"))
            .unwrap()
            .unwrap();
        let encoded = obj["data"]["ca-key.pem"].as_str().unwrap().to_string();
        for text in [
            format!("{snap:?}"),
            format!(
                "{:?}",
                s.snapshots(run, &SnapshotFilter::default()).unwrap()
            ),
            snap.to_redacted_json().to_string(),
            format!("{:?}", s.events(run, 0).unwrap()),
            serde_json::to_string(&s.events(run, 0).unwrap()).unwrap(),
        ] {
            assert!(!text.contains(&encoded), "{text}");
            assert!(!text.contains("PRIVATE-KEY-MATERIAL"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(format!("{snap:?}").contains("<redacted 20 bytes>"));
        assert_eq!(
            snap.object.unwrap()["stringData"]["password"],
            "hunter2-hunter2",
            "stored verbatim"
        );
    });
}

#[test]
fn step_errors_are_scrubbed_of_private_keys() {
    both(|s| {
        let run = s.begin_run(new_run(&["a"])).unwrap().id;
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        let err =
            "bad cert: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let st = s
            .set_step_status(run, "a", StepStatus::Failed, Some(err))
            .unwrap();
        assert_eq!(
            st.last_error.as_deref(),
            Some("bad cert: <redacted private key>")
        );
        let text = format!("{:?}", s.events(run, 0).unwrap());
        assert!(!text.contains("MIIEow"), "{text}");
    });
}

#[test]
fn concurrent_writers_keep_the_journal_contiguous() {
    fn check(s: Arc<dyn Store>) {
        let steps: Vec<String> = (0..8).map(|i| format!("step/{i}")).collect();
        let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
        let run = s.begin_run(new_run(&refs)).unwrap().id;
        let handles: Vec<_> = steps
            .iter()
            .cloned()
            .map(|step| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        s.set_step_status(run, &step, StepStatus::Running, None)
                            .unwrap();
                        s.record_event(run, NewEvent::new(EventKind::Action, Some(&step), "act"))
                            .unwrap();
                        s.set_step_status(run, &step, StepStatus::Failed, Some("transient"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let events = s.events(run, 0).unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=1 + 8 * 9).collect::<Vec<u64>>());
        assert_eq!(s.run(run).unwrap().last_event_seq, 73);
        for st in s.step_states(run).unwrap().values() {
            assert_eq!((st.status, st.attempts), (StepStatus::Failed, 3));
        }
    }
    check(Arc::new(MemoryStore::new()));
    let (location, kube_store) = super::on_kubernetes::fresh_store();
    check(Arc::new(kube_store));
    let reopened = super::on_kubernetes::reopen(&location);
    let run = reopened.latest_run().unwrap().unwrap().id;
    assert_eq!(reopened.events(run, 0).unwrap().len(), 73);
    drop(reopened);
    let tmp = tempfile::tempdir().unwrap();
    check(Arc::new(open(&state_dir(&tmp))));
    // The status copy, refreshed by every writer, ends with the last state.
    let (_, copy) = super::mirror::read(&state_dir(&tmp)).unwrap();
    assert_eq!(copy.states.len(), 8);
    for st in copy.states.values() {
        assert_eq!((st.status, st.attempts), (StepStatus::Failed, 3));
    }
    // Flushes shared among concurrent writers (group commit) lose nothing.
    let reopened = open(&state_dir(&tmp));
    let run = reopened.latest_run().unwrap().unwrap().id;
    assert_eq!(reopened.events(run, 0).unwrap().len(), 73);
}

#[test]
fn the_transition_table() {
    use StepStatus::*;
    let all = [Pending, Running, Done, Failed, RollingBack, RolledBack];
    let allowed: Vec<(StepStatus, StepStatus)> = all
        .iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .filter(|&(a, b)| transition_allowed(a, b))
        .collect();
    // Never straight to an end state without running; never back out of done except by rolling back.
    for (from, to) in [
        (Pending, Done),
        (Pending, Failed),
        (Pending, RolledBack),
        (Done, Running),
        (Done, Failed),
    ] {
        assert!(!allowed.contains(&(from, to)), "{from} -> {to}");
    }
    for (from, to) in [
        (Running, Running),
        (Failed, Running),
        (Done, RollingBack),
        (RollingBack, RollingBack),
    ] {
        assert!(allowed.contains(&(from, to)), "{from} -> {to}");
    }
}

#[test]
fn rolled_back_steps_forget_their_snapshots_and_plans_can_be_replaced() {
    both(|s| {
        let run = s.begin_run(new_run(&["a", "b"])).unwrap().id;
        let k = key("c1", "istio");
        s.put_snapshot_if_absent(run, "a", &k, Some(secret("v1")))
            .unwrap();
        s.put_snapshot_if_absent(run, "b", &k, Some(secret("v2")))
            .unwrap();
        assert_eq!(s.drop_snapshots(run, "b").unwrap(), 1);
        assert!(s.snapshot(run, "b", &k).unwrap().is_none());
        assert_eq!(
            s.snapshot(run, "a", &k).unwrap().unwrap().object,
            Some(secret("v1"))
        );
        // A later attempt takes a fresh one.
        assert!(
            s.put_snapshot_if_absent(run, "b", &k, Some(secret("v3")))
                .unwrap()
        );
        assert_eq!(s.drop_snapshots(run, "nothing-here").unwrap(), 0);

        s.finish_run(run, Outcome::Failed).unwrap();
        let info = s
            .replace_plan(
                run,
                "sha256:new",
                json!({"v": 2}),
                &["a".into(), "b".into(), "c".into()],
            )
            .unwrap();
        assert_eq!(info.fingerprint, "sha256:new");
        assert_eq!(s.plan(run).unwrap(), json!({"v": 2}));
        assert_eq!(s.step_state(run, "c").unwrap().status, StepStatus::Pending);
    });
}
