//! A read-only copy of where the latest run stands, for `migrate status`
//! while another process holds the store: sled admits one opener at a time.
//!
//! The writer keeps it current after every step transition; it is advisory
//! (the store stays the truth) and holds nothing secret: the plan is the
//! secret-free plan document, step errors are already redacted.
//!
//! Three files: the plan (`status-plan.json`), a base (`status.json`: the run
//! and every step's state) and a changes file the base names, to which each
//! change appends one line (the run, and the steps that changed). So a change
//! costs what it changed, not a rewrite of every step: the base is rewritten
//! only when a run is (re)started or its changes outgrow it, which keeps the
//! writing linear over a run. A rewrite creates the next changes file, renames
//! the new base over the old one, then deletes the old changes file: a reader
//! finds either the old pair or the new one, and one whose changes file went
//! away meanwhile reads the new base.

use super::{RunInfo, StateError, StepState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const PLAN_FILE: &str = "status-plan.json";
const STATE_FILE: &str = "status.json";
/// Changes files are named `status-changes.<pid>.<n>.jsonl`.
const CHANGES_PREFIX: &str = "status-changes.";
const CHANGES_SUFFIX: &str = ".jsonl";
/// The fewest changes a base takes before it is rewritten (a small run's changes cost little to read).
const MIN_CHANGES: usize = 256;
/// How many times a reader reads again when the writer replaced the copy under it.
const READ_ATTEMPTS: usize = 5;

/// The copy as `migrate status` shows it: the run and its steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mirror {
    pub run: RunInfo,
    pub states: BTreeMap<String, StepState>,
}

/// `status.json` as written.
#[derive(Serialize)]
struct BaseRef<'a> {
    run: &'a RunInfo,
    states: &'a BTreeMap<String, StepState>,
    /// The changes file that continues it.
    changes: &'a str,
}

/// `status.json` as read (a copy written by an earlier migrate names no changes file).
#[derive(Deserialize)]
struct Base {
    run: RunInfo,
    states: BTreeMap<String, StepState>,
    #[serde(default)]
    changes: Option<String>,
}

/// One line of a changes file: the run, and the steps that changed.
#[derive(Serialize)]
struct ChangeRef<'a> {
    run: &'a RunInfo,
    states: &'a BTreeMap<String, StepState>,
}

#[derive(Deserialize)]
struct Change {
    run: RunInfo,
    states: BTreeMap<String, StepState>,
}

/// The writer's side: what the files say, kept in memory so a change is only appended.
pub struct Copy {
    dir: PathBuf,
    current: Option<Mirror>,
    changes: Option<(String, File)>,
    /// Steps changed since the base was written.
    appended: usize,
}

/// Numbers this process's changes files (a store reopened in the same process must not reuse a name a reader
/// may still be reading).
static CHANGES_FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Copy {
    /// Nothing written yet in `dir`.
    pub fn new(dir: &Path) -> Copy {
        Copy {
            dir: dir.to_path_buf(),
            current: None,
            changes: None,
            appended: 0,
        }
    }

    /// The run the copy shows, once written.
    pub fn run(&self) -> Option<super::RunId> {
        self.current.as_ref().map(|m| m.run.id)
    }

    /// Writes the plan of the run, as JSON text (at its start, when it is resumed and when it is replanned).
    pub fn write_plan(&self, plan: &str) -> std::io::Result<()> {
        write_atomically(&self.dir.join(PLAN_FILE), plan.as_bytes())
    }

    /// Writes the whole copy: `states` (every step) as the new base, continued by a new empty changes file.
    pub fn reset(
        &mut self,
        run: RunInfo,
        states: BTreeMap<String, StepState>,
    ) -> std::io::Result<()> {
        let first = self.changes.is_none();
        let n = CHANGES_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let name = format!("{CHANGES_PREFIX}{}.{n}{CHANGES_SUFFIX}", std::process::id());
        let path = self.dir.join(&name);
        // A file of that name is a dead writer's (same pid): its lines must not continue this base.
        remove_if_present(&path)?;
        let file = private_file(&path, false)?;
        let base = serde_json::to_vec(&BaseRef {
            run: &run,
            states: &states,
            changes: &name,
        })?;
        write_atomically(&self.dir.join(STATE_FILE), &base)?;
        let old = self.changes.replace((name.clone(), file));
        if let Some((old, _)) = old {
            remove_if_present(&self.dir.join(old))?;
        }
        if first {
            // Left by a writer that died: nothing reads them once the base names another.
            for entry in std::fs::read_dir(&self.dir)? {
                let found = entry?.file_name().to_string_lossy().into_owned();
                if found.starts_with(CHANGES_PREFIX) && found != name {
                    remove_if_present(&self.dir.join(found))?;
                }
            }
        }
        self.current = Some(Mirror { run, states });
        self.appended = 0;
        Ok(())
    }

    /// Records a change of the run the copy shows: its record, and the steps in `changed`. Appended as one
    /// line, unless the changes since the base outnumber its steps: then the base is rewritten.
    pub fn change(
        &mut self,
        run: RunInfo,
        changed: BTreeMap<String, StepState>,
    ) -> std::io::Result<()> {
        let Some(steps) = self.current.as_ref().map(|c| c.states.len()) else {
            return Err(std::io::Error::other("the status copy has no base yet"));
        };
        self.appended += changed.len();
        if self.appended > steps.max(MIN_CHANGES) {
            let mut states = self.current.take().map(|c| c.states).unwrap_or_default();
            states.extend(changed);
            return self.reset(run, states);
        }
        let (Some(current), Some((_, file))) = (self.current.as_mut(), self.changes.as_mut())
        else {
            return Err(std::io::Error::other("the status copy has no base yet"));
        };
        let mut line = serde_json::to_vec(&ChangeRef {
            run: &run,
            states: &changed,
        })?;
        line.push(b'\n');
        // One write on a file opened for appending: a reader sees whole lines, or a last one cut short.
        file.write_all(&line)?;
        current.run = run;
        current.states.extend(changed);
        Ok(())
    }
}

/// The last copy the holder wrote: its plan document and its state.
pub fn read(dir: &Path) -> Result<(Value, Mirror), StateError> {
    let damaged = |what: &str, e: &dyn std::fmt::Display| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is not readable: {e}"),
    };
    let load = |name: &str| -> Result<Vec<u8>, StateError> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("cannot read {}: {e}", path.display()),
        })
    };
    let plan = serde_json::from_slice(&load(PLAN_FILE)?).map_err(|e| damaged(PLAN_FILE, &e))?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let base: Base =
            serde_json::from_slice(&load(STATE_FILE)?).map_err(|e| damaged(STATE_FILE, &e))?;
        let mut copy = Mirror {
            run: base.run,
            states: base.states,
        };
        let Some(name) = base.changes else {
            return Ok((plan, copy));
        };
        let bytes = match std::fs::read(dir.join(&name)) {
            Ok(bytes) => bytes,
            // Replaced by a newer base since this one was read: read that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < READ_ATTEMPTS => {
                continue;
            }
            Err(e) => return Err(damaged(&name, &e)),
        };
        // Whole lines only: the last may be being written.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for (n, line) in bytes[..whole].split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let change: Change = serde_json::from_slice(line)
                .map_err(|e| damaged(&format!("{name} line {}", n + 1), &e))?;
            copy.run = change.run;
            copy.states.extend(change.states);
        }
        return Ok((plan, copy));
    }
}

/// Readers never see half a file: write beside it, then rename over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("json.tmp");
    private_file(&tmp, true)?.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

/// A file only the owner can read: `replace`: written from its start, else a new one to append to.
fn private_file(path: &Path, replace: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    match replace {
        true => options.write(true).truncate(true).create(true),
        false => options.append(true).create_new(true),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Outcome, RunId, RunKind, StepStatus, Timestamp};

    fn run_info(id: u64) -> RunInfo {
        RunInfo {
            id: RunId(id),
            fingerprint: "sha256:x".into(),
            spec_name: "t".into(),
            kind: RunKind::Apply,
            started: Timestamp::now(),
            finished: None,
            outcome: Outcome::Running,
            resumed: 0,
            last_event_seq: 1,
            paused_after: None,
        }
    }

    fn state(status: StepStatus, attempts: u32) -> StepState {
        let mut st = StepState::pending();
        st.status = status;
        st.attempts = attempts;
        st
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_written_copy_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(StateError::Damaged { .. })));
        let mut copy = Copy::new(dir.path());
        let mut states = BTreeMap::new();
        states.insert("install/c1".to_string(), state(StepStatus::Running, 1));
        copy.write_plan(&serde_json::json!({ "steps": [] }).to_string())
            .unwrap();
        copy.reset(run_info(3), states).unwrap();
        let (plan, mirror) = read(dir.path()).unwrap();
        assert_eq!(plan["steps"], serde_json::json!([]));
        assert_eq!(mirror.run.id, RunId(3));
        assert_eq!(mirror.states["install/c1"].status, StepStatus::Running);
    }

    #[test]
    fn a_change_is_appended_and_the_base_rewritten_only_once_changes_outgrow_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut copy = Copy::new(dir.path());
        copy.write_plan("{}").unwrap();
        let steps = MIN_CHANGES + 10;
        let states: BTreeMap<String, StepState> = (0..steps)
            .map(|i| (format!("s{i}"), StepState::pending()))
            .collect();
        copy.reset(run_info(1), states).unwrap();
        let base = std::fs::read(dir.path().join(STATE_FILE)).unwrap();
        // Each step once: as many changes as steps, appended to the base unchanged.
        for i in 0..steps {
            let mut info = run_info(1);
            info.last_event_seq = 2 + i as u64;
            let changed = BTreeMap::from([(format!("s{i}"), state(StepStatus::Done, 1))]);
            copy.change(info, changed).unwrap();
        }
        assert_eq!(std::fs::read(dir.path().join(STATE_FILE)).unwrap(), base);
        let (_, mirror) = read(dir.path()).unwrap();
        assert_eq!(mirror.run.last_event_seq, 1 + steps as u64);
        assert!(
            mirror
                .states
                .values()
                .all(|st| st.status == StepStatus::Done)
        );
        // One more: the base is rewritten with every change in it, after a new changes file.
        let changed = BTreeMap::from([("s0".to_string(), state(StepStatus::Running, 2))]);
        copy.change(run_info(1), changed).unwrap();
        assert_ne!(std::fs::read(dir.path().join(STATE_FILE)).unwrap(), base);
        let (_, mirror) = read(dir.path()).unwrap();
        assert_eq!(mirror.states["s0"].attempts, 2);
        assert_eq!(mirror.states["s1"].status, StepStatus::Done);
        let changes: Vec<String> = files(dir.path())
            .into_iter()
            .filter(|f| f.starts_with(CHANGES_PREFIX))
            .collect();
        assert_eq!(
            changes.len(),
            1,
            "the old changes file is gone: {changes:?}"
        );
    }

    #[test]
    fn a_reader_ignores_a_line_being_written_and_follows_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let mut copy = Copy::new(dir.path());
        copy.write_plan("{}").unwrap();
        let states = BTreeMap::from([("a".to_string(), StepState::pending())]);
        copy.reset(run_info(1), states.clone()).unwrap();
        copy.change(
            run_info(1),
            BTreeMap::from([("a".to_string(), state(StepStatus::Running, 1))]),
        )
        .unwrap();
        // A line cut short (the writer is appending it) is not read.
        let (name, _) = copy.changes.as_ref().unwrap();
        let path = dir.path().join(name);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"run":{"id":1"#).unwrap();
        let (_, mirror) = read(dir.path()).unwrap();
        assert_eq!(mirror.states["a"].status, StepStatus::Running);
        // A base whose changes file is gone (a rewrite's last step, after the reader read the base) when nothing
        // newer comes: an error, not a copy missing its changes.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(read(dir.path()), Err(StateError::Damaged { .. })));
        // Another writer (a later process) leaves no file of the first behind.
        let stale = dir
            .path()
            .join(format!("{CHANGES_PREFIX}1.1{CHANGES_SUFFIX}"));
        std::fs::write(&stale, b"").unwrap();
        let mut later = Copy::new(dir.path());
        later.reset(run_info(2), states).unwrap();
        assert!(!stale.exists());
        assert_eq!(read(dir.path()).unwrap().1.run.id, RunId(2));
    }
}
