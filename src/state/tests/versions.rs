//! The state format's version: schema 1 directories (records without a version) are read and upgraded; a newer
//! directory or record is refused, naming who wrote it, with nothing changed.

use super::directory::populated;
use super::*;

/// Every file of the directory with its bytes: "nothing was changed" is checked byte for byte.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn marker(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("migrate-state.json")).unwrap()).unwrap()
}

/// Rewrites a closed store as the first release wrote it: records without `_v`, plans unwrapped, schema 1.
fn downgrade_to_schema_1(dir: &Path) {
    {
        let db = crate::state::sled_store::open_sled(&dir.join("db")).unwrap();
        for name in ["runs", "plans", "steps", "events", "snapshots"] {
            let tree = db.open_tree(name).unwrap();
            for item in tree.iter() {
                let (k, v) = item.unwrap();
                let mut value: Value = serde_json::from_slice(&v).unwrap();
                let o = value.as_object_mut().unwrap();
                assert_eq!(o.remove("_v"), Some(json!(SCHEMA_VERSION)), "{name}");
                if name == "plans" {
                    value = o.remove("plan").unwrap();
                }
                tree.insert(k, serde_json::to_vec(&value).unwrap()).unwrap();
            }
        }
        db.open_tree("meta")
            .unwrap()
            .insert("schema", b"1")
            .unwrap();
        // Nor did it keep the journal's index (its summaries hold the digest of the records as written).
        db.open_tree("index").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let mut m = marker(dir);
    m["schema"] = json!(1);
    m.as_object_mut().unwrap().remove("written_by");
    fs::write(dir.join("migrate-state.json"), m.to_string()).unwrap();
}

#[test]
fn records_carry_the_schema_that_wrote_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    let db = crate::state::sled_store::open_sled(&dir.join("db")).unwrap();
    let step = db.open_tree("steps").unwrap().first().unwrap().unwrap().1;
    let step: Value = serde_json::from_slice(&step).unwrap();
    assert_eq!(step["_v"], json!(SCHEMA_VERSION));
    let plan = db.open_tree("plans").unwrap().first().unwrap().unwrap().1;
    let plan: Value = serde_json::from_slice(&plan).unwrap();
    assert_eq!(plan["_v"], json!(SCHEMA_VERSION));
    assert_eq!(plan["plan"]["zeta"], json!(1));
    drop(db);
    let m = marker(&dir);
    assert_eq!(m["schema"], json!(SCHEMA_VERSION));
    assert_eq!(m["written_by"], json!(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_schema_1_directory_is_read_and_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    let (runs, plan, steps, events, snaps) = {
        let s = open(&dir);
        let run = s.latest_run().unwrap().unwrap().id;
        (
            s.runs().unwrap(),
            s.plan(run).unwrap(),
            s.step_states(run).unwrap(),
            s.events(run, 0).unwrap(),
            s.snapshots(run, &SnapshotFilter::default()).unwrap(),
        )
    };
    downgrade_to_schema_1(&dir);
    assert_eq!(marker(&dir)["schema"], json!(1));

    let s = open(&dir);
    let run = runs[0].id;
    assert_eq!(s.runs().unwrap(), runs);
    assert_eq!(s.plan(run).unwrap(), plan);
    assert_eq!(
        s.plan_json(run).unwrap(),
        plan.to_string(),
        "a schema 1 plan as text"
    );
    assert_eq!(s.step_states(run).unwrap(), steps);
    assert_eq!(s.events(run, 0).unwrap(), events);
    assert_eq!(s.snapshots(run, &SnapshotFilter::default()).unwrap(), snaps);
    let m = marker(&dir);
    assert_eq!(m["schema"], json!(SCHEMA_VERSION), "upgraded on open");
    assert_eq!(m["written_by"], json!(env!("CARGO_PKG_VERSION")));
    // Old and new records side by side, and the run goes on.
    s.set_step_status(run, "step/0", StepStatus::Done, None)
        .unwrap();
    drop(s);
    let s = open(&dir);
    s.verify().unwrap();
    assert_eq!(
        s.step_state(run, "step/0").unwrap().status,
        StepStatus::Done
    );
}

#[test]
fn a_newer_directory_is_refused_and_left_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    let mut m = marker(&dir);
    m["schema"] = json!(SCHEMA_VERSION + 1);
    m["written_by"] = json!("9.9.9");
    fs::write(dir.join("migrate-state.json"), m.to_string()).unwrap();
    let before = contents(&dir);
    let err = SledStore::open(&dir).err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, StateError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{text}"
    );
    for part in [
        "9.9.9",
        &format!("schema {}", SCHEMA_VERSION + 1),
        "nothing was changed",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert_eq!(contents(&dir), before, "the directory was changed");
}

#[test]
fn a_newer_record_is_refused_naming_its_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = populated(&tmp);
    {
        let db = crate::state::sled_store::open_sled(&dir.join("db")).unwrap();
        let steps = db.open_tree("steps").unwrap();
        let (k, v) = steps.first().unwrap().unwrap();
        let mut value: Value = serde_json::from_slice(&v).unwrap();
        value["_v"] = json!(SCHEMA_VERSION + 1);
        value["something"] = json!("new");
        steps
            .insert(k, serde_json::to_vec(&value).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(&dir).err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, StateError::NewerRecord { found, .. } if found == SCHEMA_VERSION + 1),
        "{text}"
    );
    for part in [
        &format!("format {}", SCHEMA_VERSION + 1),
        env!("CARGO_PKG_VERSION"),
        "nothing was changed",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}
