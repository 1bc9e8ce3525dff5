//! The one-writer lock: holders, takeover, force unlock, another process.

use super::*;

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
    let mut child = spawn_child("state::tests::locking::lock_child", &env);
    assert!(wait_with_deadline(&mut child, std::time::Duration::from_secs(60)).success());
    let text = fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&format!("in use by pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains(&store.holder().id), "{text}");
    drop(store);
    let mut child = spawn_child("state::tests::locking::lock_child", &env);
    assert!(wait_with_deadline(&mut child, std::time::Duration::from_secs(60)).success());
    assert_eq!(fs::read_to_string(&out).unwrap(), "opened");
}
