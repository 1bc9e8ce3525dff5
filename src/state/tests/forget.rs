//! `forget-snapshots`: payloads gone from every file, tombstones that make a rollback fail clearly, private
//! modes, and a rewrite that survives a kill at each point.

use super::*;
use std::os::unix::fs::MetadataExt;

const KEY: &str = "-----BEGIN EC PRIVATE KEY-----forget-me-0123456789";
const CHILD_DIR: &str = "MIGRATE_TEST_FORGET_DIR";

/// A directory with one done step holding a Secret's snapshot (and an absence), and the payload's bytes as stored.
fn seeded(dir: &Path) -> Vec<u8> {
    let store = open(dir);
    let run = store.begin_run(new_run(&["trust/c1"])).unwrap().id;
    store
        .begin_step(
            run,
            "trust/c1",
            StepStatus::Running,
            vec![
                (key("c1", "cacerts"), Some(secret(KEY))),
                (key("c1", "absent"), None),
            ],
        )
        .unwrap();
    store
        .set_step_status(run, "trust/c1", StepStatus::Done, None)
        .unwrap();
    store.finish_run(run, Outcome::Succeeded).unwrap();
    let data = secret(KEY)["data"]["ca-key.pem"]
        .as_str()
        .unwrap()
        .to_string();
    data.into_bytes()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found.push(path);
            }
        }
    }
    found
}

fn assert_private(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        assert_eq!(
            fs::metadata(&d).unwrap().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = fs::metadata(&path).unwrap().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            }
        }
    }
}

#[test]
fn forgetting_leaves_no_payload_on_disk_and_rollback_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    let payload = seeded(&dir);
    assert!(
        !files_containing(&dir, &payload).is_empty(),
        "the test would prove nothing"
    );
    assert_private(&dir);

    let store = open(&dir);
    let held = store.held_snapshots().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].key, key("c1", "cacerts"));
    assert!(held[0].rollback_may_need());
    let done = store.forget_snapshots().unwrap();
    assert_eq!(done.forgotten.len(), 1);
    let store = done.store;
    let run = RunId(1);
    match store.snapshot(run, "trust/c1", &key("c1", "cacerts")) {
        Err(e @ StateError::SnapshotForgotten { .. }) => {
            let text = e.to_string();
            assert!(text.contains("snapshot forgotten on"), "{text}");
            assert!(text.contains("forget-snapshots"), "{text}");
        }
        other => panic!("expected SnapshotForgotten, got {other:?}"),
    }
    // An absence holds nothing secret and still reads back: rollback can still delete what the step created.
    let absent = store
        .snapshot(run, "trust/c1", &key("c1", "absent"))
        .unwrap()
        .unwrap();
    assert_eq!(absent.object, None);
    assert!(store.snapshots(run, &SnapshotFilter::default()).is_err());
    assert!(store.held_snapshots().unwrap().is_empty());
    let notes = store.events(run, 0).unwrap();
    assert!(
        notes
            .last()
            .unwrap()
            .message
            .contains("forgotten by forget-snapshots"),
        "{notes:?}"
    );
    drop(store);
    // Whole, private, and without a byte of the key.
    let store = open(&dir);
    store.verify().unwrap();
    drop(store);
    assert_eq!(files_containing(&dir, &payload), Vec::<PathBuf>::new());
    assert_eq!(
        files_containing(&dir, KEY.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert_private(&dir);
}

#[test]
fn files_an_older_migrate_left_readable_are_made_private_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_dir(&tmp);
    seeded(&dir);
    fs::set_permissions(dir.join("db/db"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(dir.join("db"), fs::Permissions::from_mode(0o755)).unwrap();
    drop(open(&dir));
    assert_private(&dir);
}

/// Child of `a_kill_at_any_point_of_the_rewrite_leaves_a_readable_store`: forgets, and dies at the failpoint.
#[test]
fn forget_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let _ = open(Path::new(&dir)).forget_snapshots();
}

#[test]
fn a_kill_at_any_point_of_the_rewrite_leaves_a_readable_store() {
    for point in ["copied", "committed", "renamed"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let payload = seeded(&dir);
        let mut child = spawn_child(
            "state::tests::forget::forget_child",
            &[
                (CHILD_DIR, dir.display().to_string()),
                (FORGET_FAILPOINT_ENV, point.to_string()),
            ],
        );
        let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(60));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {status:?}");
        // The old database (nothing forgotten) before the intent, the new one from it on.
        let store = open(&dir);
        store.verify().unwrap();
        let read = store.snapshot(RunId(1), "trust/c1", &key("c1", "cacerts"));
        match point {
            "copied" => assert!(read.unwrap().is_some(), "{point}"),
            _ => assert!(
                matches!(read, Err(StateError::SnapshotForgotten { .. })),
                "{point}: {read:?}"
            ),
        }
        // Forgetting again finishes the job whatever the kill left.
        drop(store.forget_snapshots().unwrap());
        assert_eq!(
            files_containing(&dir, &payload),
            Vec::<PathBuf>::new(),
            "{point}"
        );
        assert_private(&dir);
    }
}
