//! A read-only copy of where the latest run stands, for `migrate status`
//! while another process holds the store: sled admits one opener at a time.
//!
//! The writer refreshes it after every step transition; it is advisory
//! (the store stays the truth) and holds nothing secret: the plan is the
//! secret-free plan document, step errors are already redacted.

use super::{RunInfo, StateError, StepState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const PLAN_FILE: &str = "status-plan.json";
const STATE_FILE: &str = "status.json";

/// The mutable half: the run and its steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mirror {
    pub run: RunInfo,
    pub states: BTreeMap<String, StepState>,
}

/// Writes the plan of the run, as JSON text (at its start, when it is resumed and when it is replanned).
pub fn write_plan(dir: &Path, plan: &str) -> std::io::Result<()> {
    write_atomically(&dir.join(PLAN_FILE), plan.as_bytes())
}

/// Writes the run and its step states (after each transition).
pub fn write_state(
    dir: &Path,
    run: &RunInfo,
    states: &BTreeMap<String, StepState>,
) -> std::io::Result<()> {
    let doc = serde_json::to_vec(&MirrorRef { run, states })?;
    write_atomically(&dir.join(STATE_FILE), &doc)
}

#[derive(Serialize)]
struct MirrorRef<'a> {
    run: &'a RunInfo,
    states: &'a BTreeMap<String, StepState>,
}

/// The last copy the holder wrote: its plan document and its state.
pub fn read(dir: &Path) -> Result<(Value, Mirror), StateError> {
    let load = |name: &str| -> Result<Vec<u8>, StateError> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("cannot read {}: {e}", path.display()),
        })
    };
    let damaged = |what: &str, e: serde_json::Error| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is not readable: {e}"),
    };
    let plan = serde_json::from_slice(&load(PLAN_FILE)?).map_err(|e| damaged(PLAN_FILE, e))?;
    let state = serde_json::from_slice(&load(STATE_FILE)?).map_err(|e| damaged(STATE_FILE, e))?;
    Ok((plan, state))
}

/// Readers never see half a file: write beside it, then rename over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Outcome, RunId, RunKind, StepStatus, Timestamp};

    #[test]
    fn a_written_mirror_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(StateError::Damaged { .. })));
        let run = RunInfo {
            id: RunId(3),
            fingerprint: "sha256:x".into(),
            spec_name: "t".into(),
            kind: RunKind::Apply,
            started: Timestamp::now(),
            finished: None,
            outcome: Outcome::Running,
            resumed: 0,
            last_event_seq: 1,
            paused_after: None,
        };
        let mut states = BTreeMap::new();
        let mut st = StepState::pending();
        st.status = StepStatus::Running;
        states.insert("install/c1".to_string(), st);
        write_plan(dir.path(), &serde_json::json!({ "steps": [] }).to_string()).unwrap();
        write_state(dir.path(), &run, &states).unwrap();
        let (plan, mirror) = read(dir.path()).unwrap();
        assert_eq!(plan["steps"], serde_json::json!([]));
        assert_eq!(mirror.run.id, RunId(3));
        assert_eq!(mirror.states["install/c1"].status, StepStatus::Running);
    }
}
