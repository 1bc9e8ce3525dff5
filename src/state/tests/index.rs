//! The journal's index (sled): kept with every journal write, built from the journal when a directory has none
//! or an older migrate wrote past it, and a disagreement with the records (their digest) is damage.

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

/// Rewrites the record of `step` of run 1 in the (closed) state directory `dir` with `edit`, as a page of
/// another time would hold it.
fn edit_step_record(dir: &Path, step: &str, edit: impl Fn(&mut Value)) {
    let db = open_sled(&dir.join("db")).unwrap();
    let tree = db.open_tree("steps").unwrap();
    let mut k = 1u64.to_be_bytes().to_vec();
    k.extend_from_slice(step.as_bytes());
    let mut record: Value = serde_json::from_slice(&tree.get(&k).unwrap().unwrap()).unwrap();
    edit(&mut record);
    tree.insert(k, serde_json::to_vec(&record).unwrap())
        .unwrap();
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
    let rows = index_rows(&dir);
    assert_eq!(rows.len(), 1, "one summary per run: {rows:?}");
    // Reopening checks the summary, the journal's end and the records' digest.
    open(&dir).verify().unwrap();
}

#[test]
fn an_index_of_the_earlier_layout_is_replaced_when_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let run = busy(&dir);
    let built = index_rows(&dir);
    // A summary (`r`) and per-step entries (`s`) of the layout before the digest, possibly stale: an older
    // migrate's, which this build neither reads nor keeps.
    let mut legacy = built.clone();
    let mut r = b"r".to_vec();
    r.extend_from_slice(&run.0.to_be_bytes());
    legacy.push((r, br#"{"covered":1,"snapshots":0,"_v":2}"#.to_vec()));
    let mut s = b"s".to_vec();
    s.extend_from_slice(&run.0.to_be_bytes());
    s.extend_from_slice(b"b");
    legacy.push((
        s,
        br#"{"status":"done","seq":1,"finished":1,"_v":2}"#.to_vec(),
    ));
    // Without a summary of this build's: indexed afresh, and the earlier rows removed.
    legacy.retain(|(k, _)| k.first() != Some(&b'd'));
    set_index(&dir, &legacy);
    let s = open(&dir);
    s.verify().unwrap();
    drop(s);
    assert_eq!(index_rows(&dir), built);
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
fn step_records_that_disagree_with_the_index_are_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    busy(&dir);
    let rows = index_rows(&dir);
    // Step b's record says done (the journal and the index say failed): a mixture of old and new pages. The
    // records' digest shows it, and the journal says which record is wrong.
    edit_step_record(&dir, "b", |r| r["status"] = json!("done"));
    let err = SledStore::open(&dir).unwrap_err();
    assert!(
        matches!(err, StateError::Damaged { .. }) && err.to_string().contains("step b"),
        "{err}"
    );
    // Put back, it opens.
    edit_step_record(&dir, "b", |r| r["status"] = json!("failed"));
    drop(open(&dir));
    // A record older than the last one written whose status agrees with the journal (an attempt fewer): comparing
    // statuses would not see it, the digest does.
    edit_step_record(&dir, "b", |r| r["attempts"] = json!(0));
    let err = SledStore::open(&dir).unwrap_err();
    assert!(
        matches!(err, StateError::Damaged { .. })
            && err.to_string().contains("not the ones last written"),
        "{err}"
    );
    edit_step_record(&dir, "b", |r| r["attempts"] = json!(1));
    drop(open(&dir));
    assert_eq!(index_rows(&dir), rows, "the index was not rewritten");
    // A summary whose digest is not the records' (the index page of another time) is damage too.
    let stale: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(k, v)| {
            let mut summary: Value = serde_json::from_slice(v).unwrap();
            summary["steps"] = json!("0123456789abcdef");
            (k.clone(), summary.to_string().into_bytes())
        })
        .collect();
    set_index(&dir, &stale);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StateError::Damaged { .. }), "{err}");
    // An index ahead of the journal (the journal lost its tail) is damage too, not a fresh index.
    let ahead: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(k, v)| {
            let mut summary: Value = serde_json::from_slice(v).unwrap();
            let covered = summary["covered"].as_u64().unwrap();
            summary["covered"] = json!(covered + 1);
            (k.clone(), summary.to_string().into_bytes())
        })
        .collect();
    set_index(&dir, &ahead);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StateError::Damaged { .. }), "{err}");
    // Put back, it opens and its whole journal agrees.
    set_index(&dir, &rows);
    open(&dir).verify().unwrap();
}
