//! Store semantics (run against both stores), durability across a crash, corruption, locking and redaction.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

fn new_run(steps: &[&str]) -> NewRun {
    NewRun {
        fingerprint: "sha256:abc".into(),
        spec_name: "demo".into(),
        kind: RunKind::Apply,
        plan: json!({"zeta": 1, "alpha": [1, 2, {"b": true, "a": null}], "steps": steps}),
        steps: steps.iter().map(|s| s.to_string()).collect(),
    }
}

fn secret(value: &str) -> Value {
    use base64::Engine as _;
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {"ca-key.pem": base64::engine::general_purpose::STANDARD.encode(value)},
    })
}

fn key(cluster: &str, name: &str) -> SnapshotKey {
    SnapshotKey::new(cluster, "v1", "Secret", Some("istio-system"), name)
}

fn state_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("state")
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir).unwrap().store
}

/// Runs `check` against a fresh memory store and a fresh sled store.
fn both(check: impl Fn(&dyn Store)) {
    check(&MemoryStore::new());
    let tmp = tempfile::tempdir().unwrap();
    check(&open(&state_dir(&tmp)));
}

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

// ---- sled: persistence and the directory ----

#[test]
fn everything_survives_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let (run, events, steps, snaps) = {
        let s = open(&dir);
        let run = s.begin_run(new_run(&["a", "b"])).unwrap().id;
        s.set_step_status(run, "a", StepStatus::Running, None)
            .unwrap();
        s.put_snapshot_if_absent(run, "a", &key("c1", "cacerts"), Some(secret("k")))
            .unwrap();
        s.set_step_status(run, "a", StepStatus::Done, None).unwrap();
        s.finish_run(run, Outcome::Interrupted).unwrap();
        (
            run,
            s.events(run, 0).unwrap(),
            s.step_states(run).unwrap(),
            s.snapshots(run, &SnapshotFilter::default()).unwrap(),
        )
    };
    let opened = SledStore::open(&dir).unwrap();
    assert!(
        opened.notice.is_none(),
        "a clean close leaves no stale holder"
    );
    let s = opened.store;
    assert_eq!(s.events(run, 0).unwrap(), events);
    assert_eq!(s.step_states(run).unwrap(), steps);
    assert_eq!(s.snapshots(run, &SnapshotFilter::default()).unwrap(), snaps);
    assert_eq!(
        s.current_run().unwrap().unwrap().outcome,
        Outcome::Interrupted
    );
    assert_eq!(s.plan(run).unwrap(), new_run(&["a", "b"]).plan);
}

#[test]
fn new_directory_is_private_and_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/deeper/.migrate");
    let s = open(&dir);
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let marker: Value =
        serde_json::from_slice(&fs::read(dir.join("migrate-state.json")).unwrap()).unwrap();
    assert_eq!(marker["schema"], SCHEMA_VERSION);
    let holder: Holder = serde_json::from_slice(&fs::read(dir.join("lock.json")).unwrap()).unwrap();
    assert_eq!(&holder, s.holder());
    assert_eq!(holder.pid, std::process::id());
    drop(s);
    assert!(
        !dir.join("lock.json").exists(),
        "the holder record goes with the holder"
    );
}

#[test]
fn group_or_world_access_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
    let err = SledStore::open(&dir).err().unwrap();
    assert!(
        matches!(err, StateError::InsecurePermissions { mode: 0o750, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&dir.display().to_string()) && text.contains("chmod 700"),
        "{text}"
    );
}

#[test]
fn a_directory_that_is_not_ours_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    let err = SledStore::open(&dir).err().unwrap();
    assert!(matches!(err, StateError::NotAStateDir { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing was written into it");

    let file = tmp.path().join("afile");
    fs::write(&file, "x").unwrap();
    let err = SledStore::open(&file).err().unwrap();
    assert!(matches!(err, StateError::NotADirectory { .. }), "{err}");
}

#[test]
fn an_interrupted_initialisation_is_completed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    // As if the process died after creating the database but before writing the marker.
    fs::remove_file(dir.join("migrate-state.json")).unwrap();
    let s = open(&dir);
    assert!(s.begin_run(new_run(&["a"])).is_ok());
}

fn write_marker_schema(dir: &Path, schema: Value) {
    let path = dir.join("migrate-state.json");
    let mut marker: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    marker["schema"] = schema;
    fs::write(&path, marker.to_string()).unwrap();
}

#[test]
fn schema_versions_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    write_marker_schema(&dir, json!(SCHEMA_VERSION + 1));
    let err = SledStore::open(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            StateError::NewerSchema {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("written by a newer migrate"),
        "{err}"
    );
    write_marker_schema(&dir, json!(0));
    let err = SledStore::open(&dir).err().unwrap();
    assert!(
        matches!(err, StateError::UnknownSchema { found: 0, .. }),
        "{err}"
    );
    write_marker_schema(&dir, json!(SCHEMA_VERSION));

    // The database's own record is checked too.
    {
        let db = sled::open(dir.join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", b"7")
            .unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(&dir).err().unwrap();
    assert!(
        matches!(err, StateError::NewerSchema { found: 7, .. }),
        "{err}"
    );
}

#[test]
fn a_damaged_marker_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    fs::write(dir.join("migrate-state.json"), b"{\"format\": \"migr").unwrap();
    let err = SledStore::open(&dir).err().unwrap();
    assert!(matches!(err, StateError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("migrate-state.json"), "{err}");
}

/// A store with some history, closed; returns its directory.
fn populated(tmp: &tempfile::TempDir) -> PathBuf {
    let dir = state_dir(tmp);
    let s = open(&dir);
    let steps: Vec<String> = (0..20).map(|i| format!("step/{i}")).collect();
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let run = s.begin_run(new_run(&refs)).unwrap().id;
    for (i, step) in steps.iter().enumerate() {
        s.set_step_status(run, step, StepStatus::Running, None)
            .unwrap();
        s.put_snapshot_if_absent(
            run,
            step,
            &key("c1", &format!("obj{i}")),
            Some(secret(&"x".repeat(2000))),
        )
        .unwrap();
    }
    dir
}

/// Opening a damaged store must give an error naming the directory, or (if sled recovers a consistent prefix)
/// a store whose data passes the journal check; never a panic.
fn assert_clean_failure(dir: &Path, what: &str, must_fail: bool) {
    let result = std::panic::catch_unwind(|| SledStore::open(dir).map(|o| o.store));
    let result = result.unwrap_or_else(|_| panic!("{what}: open panicked"));
    match result {
        Err(e) => {
            assert!(
                matches!(e, StateError::Damaged { .. } | StateError::Db { .. }),
                "{what}: unexpected error kind: {e}"
            );
            assert!(
                e.to_string().contains(&dir.display().to_string()),
                "{what}: {e}"
            );
            eprintln!("{what}: {e}");
        }
        // sled read it as some consistent state (a cut log reads as an earlier state): it must be consistent.
        Ok(s) => {
            assert!(!must_fail, "{what}: opened");
            assert_consistent(&s);
            let runs = s.runs().unwrap();
            assert_eq!(runs.len(), 1, "{what}: runs lost");
            assert_eq!(runs[0].last_event_seq, 41, "{what}: events lost");
            let runs = s.runs().unwrap();
            eprintln!(
                "{what}: opened with {} runs, {} events",
                runs.len(),
                runs.first().map_or(0, |r| r.last_event_seq)
            );
        }
    }
}

/// Checks, through the public API only, that runs, steps, snapshots and the journal agree.
fn assert_consistent(s: &dyn Store) {
    for run in s.runs().unwrap() {
        let events = s.events(run.id, 0).unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=run.last_event_seq).collect::<Vec<_>>(),
            "run {} journal",
            run.id
        );
        let mut replayed: std::collections::BTreeMap<String, StepStatus> = s
            .step_states(run.id)
            .unwrap()
            .keys()
            .map(|k| (k.clone(), StepStatus::Pending))
            .collect();
        let mut snapshot_events = 0;
        for e in &events {
            match e.kind {
                EventKind::StepStatus => {
                    let to =
                        serde_json::from_value(e.details.as_ref().unwrap()["to"].clone()).unwrap();
                    let step = e.step.clone().unwrap();
                    assert!(
                        replayed.contains_key(&step),
                        "event for unknown step {step}"
                    );
                    replayed.insert(step, to);
                }
                EventKind::Snapshot => snapshot_events += 1,
                _ => {}
            }
        }
        let stored: std::collections::BTreeMap<String, StepStatus> = s
            .step_states(run.id)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.status))
            .collect();
        assert_eq!(
            stored, replayed,
            "run {}: step records disagree with the journal",
            run.id
        );
        let snaps = s.snapshots(run.id, &SnapshotFilter::default()).unwrap();
        assert_eq!(
            snaps.len(),
            snapshot_events,
            "run {}: snapshots vs journal",
            run.id
        );
    }
}

fn corrupt(what: &str, must_fail: bool, damage: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    damage(&dir.join("db"));
    assert_clean_failure(&dir, what, must_fail);
}

#[test]
fn damaged_databases_give_clear_errors() {
    corrupt("db file emptied", true, |db| {
        fs::write(db.join("db"), b"").unwrap()
    });
    corrupt("db file garbage", true, |db| {
        let len = fs::metadata(db.join("db")).unwrap().len() as usize;
        fs::write(db.join("db"), vec![0xA5; len]).unwrap()
    });
    corrupt("conf garbage", true, |db| {
        fs::write(db.join("conf"), b"not a sled config at all\n").unwrap()
    });
    corrupt("conf emptied", false, |db| {
        fs::write(db.join("conf"), b"").unwrap()
    });
    corrupt("db file truncated to half", true, |db| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(db.join("db"))
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len / 2).unwrap();
    });
    corrupt("db file truncated to 100 bytes", true, |db| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(db.join("db"))
            .unwrap();
        f.set_len(100).unwrap();
    });
    corrupt("garbage in the middle of the db file", true, |db| {
        let mut bytes = fs::read(db.join("db")).unwrap();
        let mid = bytes.len() / 2;
        let end = (mid + 4096).min(bytes.len());
        bytes[mid..end].fill(0x5A);
        fs::write(db.join("db"), bytes).unwrap();
    });
    corrupt("snapshot files garbage", false, |db| {
        for entry in fs::read_dir(db).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
            {
                fs::write(&path, vec![0x17; 300]).unwrap();
            }
        }
    });
    corrupt("database directory removed", true, |db| {
        fs::remove_dir_all(db).unwrap()
    });
}

// ---- the one-writer lock ----

#[test]
fn a_second_opener_is_told_who_holds_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let first = open(&dir);
    let err = SledStore::open(&dir).err().unwrap();
    let StateError::Locked {
        holder: Some(h), ..
    } = &err
    else {
        panic!("expected Locked with a holder, got {err}");
    };
    assert_eq!(**h, *first.holder());
    let text = err.to_string();
    for part in [
        format!("pid {}", std::process::id()),
        format!("host {}", lock::hostname()),
        format!("since {}", first.holder().since),
        format!("holder id {}", first.holder().id),
        dir.display().to_string(),
    ] {
        assert!(text.contains(&part), "{part:?} missing from: {text}");
    }
    assert_eq!(read_holder(&dir).unwrap().as_ref(), Some(first.holder()));
    // A live holder cannot be unlocked by force.
    assert!(matches!(
        force_unlock(&dir, &first.holder().id),
        Err(StateError::Locked { .. })
    ));
    drop(first);
    assert_eq!(read_holder(&dir).unwrap(), None);
    let again = SledStore::open(&dir).unwrap();
    assert!(again.notice.is_none());
}

fn fake_holder(dir: &Path, pid: u32, host: &str) -> Holder {
    let h = Holder {
        id: "0123456789ab".into(),
        pid,
        host: host.into(),
        command: "migrate apply -f mesh.yaml".into(),
        since: Timestamp::now(),
    };
    fs::write(dir.join("lock.json"), serde_json::to_vec(&h).unwrap()).unwrap();
    h
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_dead_holder_on_this_host_is_taken_over_with_a_notice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    let pid = dead_pid();
    let gone = fake_holder(&dir, pid, &lock::hostname());
    let opened = SledStore::open(&dir).unwrap();
    assert_eq!(
        opened.notice,
        Some(LockNotice::PreviousHolderGone(gone.clone()))
    );
    let text = opened.notice.unwrap().to_string();
    assert!(
        text.starts_with(&format!(
            "previous holder pid {pid} on host {}",
            lock::hostname()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("since {}", gone.since)) && text.ends_with("is gone; taking over"),
        "{text}"
    );
    assert_ne!(opened.store.holder().id, gone.id);

    // A garbled record with the OS lock free is taken over too.
    drop(opened.store);
    fs::write(dir.join("lock.json"), b"{\"id\": ").unwrap();
    let opened = SledStore::open(&dir).unwrap();
    assert!(matches!(
        opened.notice,
        Some(LockNotice::UnreadableHolderRecord(_))
    ));
}

#[test]
fn a_holder_that_cannot_be_proved_gone_needs_force_unlock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    drop(open(&dir));
    let other = fake_holder(&dir, 4242, "some-other-host");
    let err = SledStore::open(&dir).err().unwrap();
    assert!(matches!(err, StateError::StaleLock { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("pid 4242 on host some-other-host"), "{text}");
    assert!(text.contains("holder id 0123456789ab"), "{text}");

    let err = force_unlock(&dir, "ffffffffffff").unwrap_err();
    assert!(matches!(err, StateError::HolderMismatch { .. }), "{err}");
    assert!(dir.join("lock.json").exists(), "a wrong id changes nothing");
    assert_eq!(force_unlock(&dir, &other.id).unwrap(), other);
    assert!(matches!(
        force_unlock(&dir, &other.id),
        Err(StateError::NotLocked { .. })
    ));
    let opened = SledStore::open(&dir).unwrap();
    assert!(opened.notice.is_none());
    drop(opened);

    // On this host, a live pid that does not hold the OS lock (a reused pid) is not trusted either way.
    let parent = std::os::unix::process::parent_id();
    fake_holder(&dir, parent, &lock::hostname());
    let err = SledStore::open(&dir).err().unwrap();
    assert!(
        err.to_string().contains(&format!("pid {parent} is alive")),
        "{err}"
    );
    // But our own pid can only be a previous incarnation (a restarted container).
    fake_holder(&dir, std::process::id(), &lock::hostname());
    assert!(SledStore::open(&dir).unwrap().notice.is_some());
}

/// Re-runs this test binary to execute one child test with the given environment.
fn spawn_child(test: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--test-threads", "1", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for a child with a deadline, so a hung child fails the test instead of hanging it.
fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

const LOCK_CHILD_DIR: &str = "MIGRATE_STATE_TEST_LOCK_DIR";
const LOCK_CHILD_OUT: &str = "MIGRATE_STATE_TEST_LOCK_OUT";

/// Child half of `another_process_is_refused_with_the_holder_named`; does nothing when run normally.
#[test]
fn lock_child() {
    let (Ok(dir), Ok(out)) = (std::env::var(LOCK_CHILD_DIR), std::env::var(LOCK_CHILD_OUT)) else {
        return;
    };
    let text = match SledStore::open(Path::new(&dir)) {
        Ok(_) => "opened".to_string(),
        Err(e) => e.to_string(),
    };
    fs::write(out, text).unwrap();
}

#[test]
fn another_process_is_refused_with_the_holder_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let out = tmp.path().join("child.txt");
    let store = open(&dir);
    let env = [
        (LOCK_CHILD_DIR, dir.display().to_string()),
        (LOCK_CHILD_OUT, out.display().to_string()),
    ];
    let mut child = spawn_child("state::tests::lock_child", &env);
    assert!(wait_with_deadline(&mut child, std::time::Duration::from_secs(60)).success());
    let text = fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&format!("in use by pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains(&store.holder().id), "{text}");
    drop(store);
    let mut child = spawn_child("state::tests::lock_child", &env);
    assert!(wait_with_deadline(&mut child, std::time::Duration::from_secs(60)).success());
    assert_eq!(fs::read_to_string(&out).unwrap(), "opened");
}

// ---- durability: a child writes and is aborted at a random moment ----

const CRASH_DIR: &str = "MIGRATE_STATE_TEST_CRASH_DIR";
const CRASH_ACKS: &str = "MIGRATE_STATE_TEST_CRASH_ACKS";
const CRASH_DELAY_MS: &str = "MIGRATE_STATE_TEST_CRASH_DELAY_MS";
const CRASH_EARLY: &str = "MIGRATE_STATE_TEST_CRASH_EARLY";
const CRASH_STEPS: usize = 10;
/// A multiple of `CRASH_STEPS`, so each key is always snapshotted by the same step (snapshots are per step).
const CRASH_KEYS: u64 = 30;

fn crash_run() -> NewRun {
    let steps: Vec<String> = (0..CRASH_STEPS).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    new_run(&refs)
}

/// Status op `k` of the workload: which step, and to what.
fn crash_op(k: u64) -> (String, StepStatus) {
    let step = format!("s{}", k % CRASH_STEPS as u64);
    let status = if (k / CRASH_STEPS as u64).is_multiple_of(2) {
        StepStatus::Running
    } else {
        StepStatus::Failed
    };
    (step, status)
}

fn crash_key(k: u64) -> SnapshotKey {
    key("cluster1", &format!("obj-{}", k % CRASH_KEYS))
}

/// Child half of `every_acknowledged_transition_survives_an_abort`: appends a line to the ack file after each
/// call returns (an unbuffered write, which survives the abort), and is aborted by a timer thread.
#[test]
fn crash_child() {
    use std::io::Write;
    let (Ok(dir), Ok(acks), Ok(delay)) = (
        std::env::var(CRASH_DIR),
        std::env::var(CRASH_ACKS),
        std::env::var(CRASH_DELAY_MS),
    ) else {
        return;
    };
    let mut acks = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(acks)
        .unwrap();
    let mut ack = |line: String| acks.write_all(format!("{line}\n").as_bytes()).unwrap();
    let delay: u64 = delay.parse().unwrap();
    // Early: the abort may land inside open (initialisation, lock takeover, the checks) too.
    let early = std::env::var(CRASH_EARLY).is_ok();
    let start_timer = move || {
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(delay));
            std::process::abort();
        })
    };
    if early {
        start_timer();
    }
    let s = match SledStore::open(Path::new(&dir)) {
        Ok(o) => o.store,
        Err(e) => return ack(format!("error {e}")),
    };
    if !early {
        start_timer();
    }
    let result = (|| -> Result<(), StateError> {
        if let Some(cur) = s.current_run()?
            && cur.outcome == Outcome::Running
        {
            s.finish_run(cur.id, Outcome::Interrupted)?;
            ack(format!("finish {}", cur.id.0));
        }
        let run = s.begin_run(crash_run())?.id;
        ack(format!("begin {}", run.0));
        for k in 0.. {
            let (step, status) = crash_op(k);
            let error = (status == StepStatus::Failed).then(|| format!("attempt {k} failed"));
            s.set_step_status(run, &step, status, error.as_deref())?;
            ack(format!("status {k}"));
            let put = s.put_snapshot_if_absent(
                run,
                &step,
                &crash_key(k),
                Some(secret(&format!("v{k}"))),
            )?;
            ack(format!("snap {k} {put}"));
            let seq = s.record_event(
                run,
                NewEvent::new(EventKind::Note, Some(&step), format!("note {k}"))
                    .with_details(json!({"k": k})),
            )?;
            ack(format!("note {k} {seq}"));
        }
        Ok(())
    })();
    if let Err(e) = result {
        ack(format!("error {e}"));
    }
}

#[derive(Default)]
struct RoundAcks {
    run: Option<u64>,
    statuses: u64,
    snaps: Vec<(u64, bool)>,
    notes: Vec<(u64, u64)>,
}

fn parse_acks(text: &str) -> RoundAcks {
    let mut r = RoundAcks::default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["finish", _] => {}
            ["begin", id] => r.run = Some(id.parse().unwrap()),
            ["status", k] => {
                assert_eq!(k.parse::<u64>().unwrap(), r.statuses, "acks in order");
                r.statuses += 1;
            }
            ["snap", k, put] => r.snaps.push((k.parse().unwrap(), put.parse().unwrap())),
            ["note", k, seq] => r.notes.push((k.parse().unwrap(), seq.parse().unwrap())),
            _ => panic!("child reported: {line}"),
        }
    }
    r
}

/// Every acknowledged call of the round is in the store; at most the one call in flight went further.
fn check_round(s: &SledStore, acks: &RoundAcks) {
    let Some(run) = acks.run.map(RunId) else {
        return;
    };
    let events = s.events(run, 0).unwrap();
    let applied = events
        .iter()
        .filter(|e| e.kind == EventKind::StepStatus)
        .count() as u64;
    assert!(
        applied == acks.statuses || applied == acks.statuses + 1,
        "run {run}: {applied} status changes stored, {} acknowledged",
        acks.statuses
    );
    let mut expected: std::collections::BTreeMap<String, (StepStatus, u32)> = (0..CRASH_STEPS)
        .map(|i| (format!("s{i}"), (StepStatus::Pending, 0)))
        .collect();
    for k in 0..applied {
        let (step, status) = crash_op(k);
        let e = expected.get_mut(&step).unwrap();
        e.0 = status;
        e.1 += u32::from(status == StepStatus::Running);
    }
    let stored: std::collections::BTreeMap<String, (StepStatus, u32)> = s
        .step_states(run)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, (v.status, v.attempts)))
        .collect();
    assert_eq!(stored, expected, "run {run}");

    for &(k, put) in &acks.snaps {
        assert_eq!(
            put,
            k < CRASH_KEYS,
            "snapshot {k}: only the first per key is recorded"
        );
        let snap = s
            .snapshot(run, &crash_op(k).0, &crash_key(k))
            .unwrap()
            .unwrap_or_else(|| panic!("snapshot {k} lost"));
        assert_eq!(
            snap.object,
            Some(secret(&format!("v{}", k % CRASH_KEYS))),
            "the first snapshot is kept"
        );
    }
    let firsts = acks.snaps.iter().filter(|(_, put)| *put).count();
    let stored = s.snapshots(run, &SnapshotFilter::default()).unwrap().len();
    assert!(
        stored == firsts || stored == firsts + 1,
        "{stored} snapshots stored, {firsts} acknowledged"
    );

    for &(k, seq) in &acks.notes {
        let e = events
            .iter()
            .find(|e| e.seq == seq)
            .unwrap_or_else(|| panic!("note {k} (event {seq}) lost"));
        assert_eq!(
            (e.kind, e.details.clone()),
            (EventKind::Note, Some(json!({"k": k})))
        );
    }
    let notes = events.iter().filter(|e| e.kind == EventKind::Note).count();
    assert!(notes == acks.notes.len() || notes == acks.notes.len() + 1);
}

#[test]
fn every_acknowledged_transition_survives_an_abort() {
    use std::hash::{BuildHasher, Hasher};
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    // Not created beforehand: the first child may be aborted while initialising it.
    let dir = state_dir(&tmp);
    let mut acknowledged = 0;
    // More rounds for a soak: MIGRATE_STATE_CRASH_ROUNDS=100 cargo test --lib state::tests::every
    let rounds: u32 = std::env::var("MIGRATE_STATE_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    for round in 0..rounds {
        let delay = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 250;
        let early = round % 3 == 0;
        let delay = if early { delay % 40 } else { delay };
        let acks_path = tmp.path().join(format!("acks-{round}.txt"));
        let mut env = vec![
            (CRASH_DIR, dir.display().to_string()),
            (CRASH_ACKS, acks_path.display().to_string()),
            (CRASH_DELAY_MS, delay.to_string()),
        ];
        if early {
            env.push((CRASH_EARLY, "1".to_string()));
        }
        let mut child = spawn_child("state::tests::crash_child", &env);
        let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(120));
        let acks = parse_acks(&fs::read_to_string(&acks_path).unwrap_or_default());
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "round {round}: child ended with {status}"
        );

        let opened = SledStore::open(&dir).unwrap();
        match &opened.notice {
            Some(LockNotice::PreviousHolderGone(h)) if !early => assert_eq!(h.pid, child.id()),
            // Aborted inside open: maybe before its lock record, so the notice (if any) may name an earlier child.
            Some(LockNotice::PreviousHolderGone(h)) => assert_ne!(h.pid, std::process::id()),
            None if early => {}
            other => panic!("round {round}: expected a takeover notice, got {other:?}"),
        }
        opened.store.verify().unwrap();
        assert_consistent(&opened.store);
        check_round(&opened.store, &acks);
        eprintln!(
            "round {round}: abort {delay} ms after {}, {} status changes acknowledged",
            if early { "starting" } else { "opening" },
            acks.statuses
        );
        acknowledged += acks.statuses;
    }
    assert!(
        acknowledged >= 10,
        "the children got too little done to prove anything ({acknowledged})"
    );
}

#[test]
fn byte_flips_anywhere_never_panic_or_lose_data_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    let db = dir.join("db").join("db");
    let orig = fs::read(&db).unwrap();
    let mut failures = 0;
    for off in (0..orig.len()).step_by(orig.len() / 24 + 1) {
        let mut bytes = orig.clone();
        for b in &mut bytes[off..(off + 64).min(orig.len())] {
            *b ^= 0xFF;
        }
        fs::write(&db, &bytes).unwrap();
        let what = format!("64 bytes flipped at {off}");
        if std::panic::catch_unwind(|| assert_clean_failure(&dir, &what, false)).is_err() {
            failures += 1;
        }
        // sled may rewrite a damaged log when it opens it: start each case from the original.
        fs::write(&db, &orig).unwrap();
    }
    assert_eq!(failures, 0);
}

#[test]
fn a_panic_while_opening_becomes_a_damaged_error() {
    let dir = Path::new("/somewhere/.migrate");
    let err =
        sled_store::catch_panics(dir, || -> Result<(), StateError> { panic!("sled says no") })
            .unwrap_err();
    assert!(matches!(err, StateError::Damaged { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("/somewhere/.migrate") && text.contains("sled says no"),
        "{text}"
    );
    // Panics elsewhere are not swallowed afterwards.
    assert!(std::panic::catch_unwind(|| panic!("ordinary")).is_err());
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
