//! Durability: a child writes and is aborted at a random moment; byte flips; panics while opening.

use super::directory::{assert_clean_failure, assert_consistent, populated};
use super::*;

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
        let mut child = spawn_child("state::tests::durability::crash_child", &env);
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

// ---- durable acknowledgements: abort right after a completion mark returns ----

const ACK_DIR: &str = "MIGRATE_STATE_TEST_ACK_DIR";
const ACK_LAST: &str = "MIGRATE_STATE_TEST_ACK_LAST";

/// Child half of `a_completion_mark_survives_an_abort_right_after_it_returns`: walks step `a` to done and step
/// `b` through a rollback, stopping with `abort` (no destructor, no flush) right after the `ACK_LAST`-th
/// transition returned.
#[test]
fn ack_child() {
    let (Ok(dir), Ok(last)) = (std::env::var(ACK_DIR), std::env::var(ACK_LAST)) else {
        return;
    };
    let last: usize = last.parse().unwrap();
    let s = open(Path::new(&dir));
    let run = s.begin_run(new_run(&["a", "b"])).unwrap().id;
    for (i, (step, status)) in ACK_WALK.iter().enumerate() {
        s.set_step_status(run, step, *status, None).unwrap();
        if i + 1 == last {
            std::process::abort();
        }
    }
}

const ACK_WALK: [(&str, StepStatus); 6] = [
    ("a", StepStatus::Running),
    ("a", StepStatus::Done),
    ("b", StepStatus::Running),
    ("b", StepStatus::Done),
    ("b", StepStatus::RollingBack),
    ("b", StepStatus::RolledBack),
];

#[test]
fn a_completion_mark_survives_an_abort_right_after_it_returns() {
    use std::os::unix::process::ExitStatusExt;
    // Abort after a's Done, after b's Done and after b's RolledBack: each is the last write before the crash, so
    // only a flush inside `set_step_status` can have put it on disk.
    for last in [2, 4, 6] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let mut child = spawn_child(
            "state::tests::durability::ack_child",
            &[
                (ACK_DIR, dir.display().to_string()),
                (ACK_LAST, last.to_string()),
            ],
        );
        let status = wait_with_deadline(&mut child, std::time::Duration::from_secs(60));
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "child ended with {status}"
        );
        let s = open(&dir);
        let run = s.latest_run().unwrap().unwrap().id;
        let (step, expected) = ACK_WALK[last - 1];
        assert_eq!(
            s.step_state(run, step).unwrap().status,
            expected,
            "step {step} after an abort right after its {expected} mark returned"
        );
        s.verify().unwrap();
    }
}

#[test]
fn each_transition_costs_one_counted_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(&state_dir(&tmp));
    let run = s.begin_run(new_run(&["a"])).unwrap().id;
    let before = s.fsyncs();
    s.begin_step(
        run,
        "a",
        StepStatus::Running,
        vec![(key("c1", "x"), Some(secret("x")))],
    )
    .unwrap();
    assert_eq!(s.fsyncs(), before + 1, "start and snapshot share one fsync");
    s.set_step_status(run, "a", StepStatus::Done, None).unwrap();
    assert_eq!(s.fsyncs(), before + 2, "the done mark is flushed");
    s.record_progress(run, NewEvent::new(EventKind::Note, Some("a"), "n"))
        .unwrap();
    assert_eq!(s.fsyncs(), before + 2, "progress notes are not flushed");
}
