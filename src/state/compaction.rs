//! Replacing a state directory's database by a rewritten copy, safe against a crash at any moment.
//!
//! sled is log-structured: a value overwritten or removed stays in old segments of its file until sled reuses
//! them, so `forget-snapshots` cannot remove key bytes in place. It writes a fresh database beside the old one
//! (`db.new`), makes it durable, then records the intent (`compaction.json`); from that moment the copy is the
//! truth and whoever opens the directory next (under its lock, before sled opens) finishes the swap:
//!
//! 1. no intent: a copy may be half written; `db.new` and any `db.old` are removed, `db` is untouched;
//! 2. intent and `db.new`: `db` (if still there) becomes `db.old`, then `db.new` becomes `db`;
//! 3. intent and no `db.new`: the swap is done; `db.old` is removed, then the intent.
//!
//! Each rename is followed by an fsync of the directory, so a kill or power loss at any point leaves one of
//! these states, and the next open reaches 3 from it: the old database or the new one is always readable.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::layout::{self, DB_DIR};
use super::lock::sync_dir;
use super::model::Timestamp;

/// The rewritten database while it is written, and until it is swapped in.
pub(crate) const NEW_DB: &str = "db.new";
/// The replaced database, until it is removed.
pub(crate) const OLD_DB: &str = "db.old";
const INTENT: &str = "compaction.json";
const INTENT_TMP: &str = "compaction.json.tmp";

/// Test hook: `MIGRATE_FORGET_FAILPOINT=copied|committed|renamed` kills the process (SIGKILL) after the copy is
/// written, after the intent is durable, or between the two renames of the swap.
pub const FAILPOINT_ENV: &str = "MIGRATE_FORGET_FAILPOINT";

/// What the intent file records.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    /// Why the database is being replaced.
    reason: String,
    since: Timestamp,
}

fn io_err(dir: &Path, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
    move |source| StateError::Io {
        dir,
        op,
        path,
        source,
    }
}

fn remove_tree(dir: &Path, name: &str) -> Result<(), StateError> {
    let path = dir.join(name);
    match fs::remove_dir_all(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir, "remove", &path)(e)),
    }
}

/// Kills the process here when the test hook names `point`.
pub(crate) fn failpoint(point: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == point) {
        // SAFETY: sends SIGKILL to this process; nothing after it runs.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Clears what an earlier copy left before a new one is written (the caller holds the lock).
pub(crate) fn discard_copy(dir: &Path) -> Result<(), StateError> {
    recover(dir)?;
    remove_tree(dir, NEW_DB)
}

/// Declares the copy in `db.new` complete: fsyncs every file and directory in it, then writes the intent.
/// From here on the copy replaces `db` at the next open, whatever happens.
pub(crate) fn commit(dir: &Path, reason: &str) -> Result<(), StateError> {
    let copy = dir.join(NEW_DB);
    sync_tree(&copy).map_err(io_err(dir, "sync", &copy))?;
    sync_dir(dir)?;
    failpoint("copied");
    layout::write_atomically(
        dir,
        INTENT,
        INTENT_TMP,
        &Intent {
            reason: reason.to_string(),
            since: Timestamp::now(),
        },
    )?;
    failpoint("committed");
    Ok(())
}

/// sled fsyncs its data file on flush but not its `conf` or new directory entries.
fn sync_tree(path: &Path) -> io::Result<()> {
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(path)?.sync_all()
}

/// Brings the directory to a state with one database, `db` (see the module's steps). Called under the lock
/// before sled opens `db`; returns whether a swap was finished here.
pub(crate) fn recover(dir: &Path) -> Result<bool, StateError> {
    let intent = dir.join(INTENT);
    let exists = |name: &str| dir.join(name).symlink_metadata().is_ok();
    if !intent.exists() {
        remove_tree(dir, NEW_DB)?;
        remove_tree(dir, OLD_DB)?;
        return Ok(false);
    }
    if exists(NEW_DB) {
        if exists(DB_DIR) {
            // A db.old here belongs to no swap in progress (the intent is removed only after it): clear it.
            remove_tree(dir, OLD_DB)?;
            let (from, to) = (dir.join(DB_DIR), dir.join(OLD_DB));
            fs::rename(&from, &to).map_err(io_err(dir, "rename", &from))?;
            sync_dir(dir)?;
            failpoint("renamed");
        }
        let (from, to) = (dir.join(NEW_DB), dir.join(DB_DIR));
        fs::rename(&from, &to).map_err(io_err(dir, "rename", &from))?;
        sync_dir(dir)?;
    }
    remove_tree(dir, OLD_DB)?;
    fs::remove_file(&intent).map_err(io_err(dir, "remove", &intent))?;
    sync_dir(dir)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(entries: &[&str], intent: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in entries {
            fs::create_dir(dir.path().join(name)).unwrap();
            fs::write(dir.path().join(name).join("which"), name).unwrap();
        }
        if intent {
            fs::write(dir.path().join(INTENT), b"{}").unwrap();
        }
        dir
    }

    fn db_is(dir: &Path) -> String {
        fs::read_to_string(dir.join(DB_DIR).join("which")).unwrap()
    }

    fn only_db(dir: &Path) {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [DB_DIR]);
    }

    #[test]
    fn every_crash_point_recovers_to_one_database() {
        // No intent: the copy may be partial, the old database stays.
        let d = setup(&[DB_DIR, NEW_DB, OLD_DB], false);
        assert!(!recover(d.path()).unwrap());
        assert_eq!(db_is(d.path()), DB_DIR);
        only_db(d.path());
        // Intent written, nothing renamed yet.
        let d = setup(&[DB_DIR, NEW_DB], true);
        assert!(recover(d.path()).unwrap());
        assert_eq!(db_is(d.path()), NEW_DB);
        only_db(d.path());
        // Killed between the two renames: no db at all.
        let d = setup(&[OLD_DB, NEW_DB], true);
        assert!(recover(d.path()).unwrap());
        assert_eq!(db_is(d.path()), NEW_DB);
        only_db(d.path());
        // Swapped, the old one not yet (or partly) removed.
        let d = setup(&[DB_DIR, OLD_DB], true);
        assert!(recover(d.path()).unwrap());
        assert_eq!(db_is(d.path()), DB_DIR);
        only_db(d.path());
        // A second recovery changes nothing.
        assert!(!recover(d.path()).unwrap());
        only_db(d.path());
    }
}
