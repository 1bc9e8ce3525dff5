//! The sled store on disk: persistence, the directory's permissions, marker and schema, and damage.

use super::*;

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
                found,
                supported: SCHEMA_VERSION,
                ..
            } if found == SCHEMA_VERSION + 1
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("written by a newer migrate")
            && err.to_string().contains("nothing was changed"),
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
        let db = crate::state::sled_store::open_sled(&dir.join("db")).unwrap();
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
pub(super) fn populated(tmp: &tempfile::TempDir) -> PathBuf {
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
pub(super) fn assert_clean_failure(dir: &Path, what: &str, must_fail: bool) {
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
pub(super) fn assert_consistent(s: &dyn Store) {
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
