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
        assert!(matches!(
            s.resume_run(r1),
            Err(StateError::CannotResume { .. })
        ));
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
        let snap = s.snapshot(run, &k1).unwrap().unwrap();
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
        assert_eq!(s.snapshot(run, &k2).unwrap().unwrap().object, None);
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
            s.snapshot(run, &key("cluster3", "cacerts"))
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
        assert_eq!(all.len(), 3);
        let c1 = s
            .snapshots(
                run,
                &SnapshotFilter {
                    cluster: Some("cluster1".into()),
                    step: None,
                },
            )
            .unwrap();
        assert_eq!(c1.len(), 2);
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
        assert_eq!(by_step.iter().map(|s| &s.key).collect::<Vec<_>>(), [&k2]);
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
            3,
            "one event per recorded snapshot, none for refused ones"
        );

        let err = s
            .put_snapshot_if_absent(run, "nope", &k1, None)
            .unwrap_err();
        assert!(matches!(err, StateError::UnknownStep { .. }), "{err}");
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
        let snap = s.snapshot(run, &key("c1", "cacerts")).unwrap().unwrap();
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
    assert!(err.to_string().contains("upgrade migrate"), "{err}");
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
    corrupt("db file truncated to half", false, |db| {
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
    corrupt("garbage in the middle of the db file", false, |db| {
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
