//! The journal's index (sled): kept with every journal write, built from the journal when a directory has none
//! or an older migrate wrote past it, and a disagreement with the records is damage.

use super::*;
use crate::state::sled_store::open_sled;

/// Every row of the `index` tree of the (closed) state directory `dir`.
fn index_rows(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = open_sled(&dir.join("db")).unwrap();
    let tree = db.open_tree("index").unwrap();
    tree.iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

/// Replaces the `index` tree of the (closed) state directory `dir` by `rows`.
fn set_index(dir: &Path, rows: &[(Vec<u8>, Vec<u8>)]) {
    let db = open_sled(&dir.join("db")).unwrap();
    let tree = db.open_tree("index").unwrap();
    tree.clear().unwrap();
    for (k, v) in rows {
        tree.insert(k.as_slice(), v.as_slice()).unwrap();
    }
    db.flush().unwrap();
}

/// A run with steps in every state the journal can put them in, and snapshots taken and dropped.
fn busy(dir: &Path) -> RunId {
    let s = open(dir);
    let run = s.begin_run(new_run(&["a", "b", "c"])).unwrap().id;
    s.begin_step(
        run,
        "a",
        StepStatus::Running,
        vec![(key("c1", "x"), Some(secret("k")))],
    )
    .unwrap();
    s.finish_step(run, "a", StepStatus::Done, Vec::new())
        .unwrap();
    s.set_step_status(run, "b", StepStatus::Running, None)
        .unwrap();
    s.record_progress(run, NewEvent::new(EventKind::Note, Some("b"), "a note"))
        .unwrap();
    s.set_step_status(run, "b", StepStatus::Failed, Some("boom"))
        .unwrap();
    s.finish_run(run, Outcome::Failed).unwrap();
    run
}

#[test]
fn every_journal_write_keeps_the_index_equal_to_the_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let run = busy(&dir);
    let s = open(&dir);
    // `verify` folds the whole journal and compares it with the index.
    s.verify().unwrap();
    s.reopen_for_rollback(run).unwrap();
    s.set_step_status(run, "a", StepStatus::RollingBack, None)
        .unwrap();
    s.set_step_status(run, "a", StepStatus::RolledBack, None)
        .unwrap();
    assert_eq!(s.drop_snapshots(run, "a").unwrap(), 1);
    s.verify().unwrap();
    drop(s);
    assert!(
        index_rows(&dir).len() >= 3,
        "a summary and the two steps that moved"
    );
}

#[test]
fn a_directory_without_an_index_is_indexed_when_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let run = busy(&dir);
    let built = index_rows(&dir);
    // As a directory of a migrate from before the index.
    set_index(&dir, &[]);
    let s = open(&dir);
    s.verify().unwrap();
    assert_eq!(s.step_state(run, "b").unwrap().status, StepStatus::Failed);
    drop(s);
    assert_eq!(index_rows(&dir), built, "rebuilt as it was kept");
}

#[test]
fn an_index_an_older_migrate_left_behind_catches_up_when_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let run = busy(&dir);
    let before = index_rows(&dir);
    {
        // More transitions, then the index put back as it was: what an older migrate (which writes the journal
        // but not the index) leaves behind.
        let s = open(&dir);
        s.resume_run(run).unwrap();
        s.set_step_status(run, "b", StepStatus::Running, None)
            .unwrap();
        s.set_step_status(run, "b", StepStatus::Done, None).unwrap();
        s.set_step_status(run, "c", StepStatus::Running, None)
            .unwrap();
    }
    let kept = index_rows(&dir);
    set_index(&dir, &before);
    let s = open(&dir);
    s.verify().unwrap();
    assert_eq!(s.step_state(run, "c").unwrap().status, StepStatus::Running);
    drop(s);
    assert_eq!(
        index_rows(&dir),
        kept,
        "caught up to what it would have been"
    );
}

#[test]
fn an_index_that_disagrees_with_the_records_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    busy(&dir);
    let rows = index_rows(&dir);
    // Step b's entry says done (the journal and its record say failed): a mixture of old and new pages.
    let tampered: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(k, v)| {
            let text = String::from_utf8(v.clone()).unwrap();
            let v = match k.ends_with(b"b") {
                true => text.replace("\"failed\"", "\"done\"").into_bytes(),
                false => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    assert_ne!(tampered, rows);
    set_index(&dir, &tampered);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(
        matches!(err, StateError::Damaged { .. }) && err.to_string().contains("step b"),
        "{err}"
    );
    // An index ahead of the journal (the journal lost its tail) is damage too, not a fresh index.
    let ahead: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(k, v)| {
            let text = String::from_utf8(v.clone()).unwrap();
            let v = match k.first() == Some(&b'r') {
                true => {
                    let mut summary: Value = serde_json::from_str(&text).unwrap();
                    let covered = summary["covered"].as_u64().unwrap();
                    summary["covered"] = json!(covered + 1);
                    summary.to_string().into_bytes()
                }
                false => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    set_index(&dir, &ahead);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StateError::Damaged { .. }), "{err}");
}
