//! One writer per state directory: an OS lock (flock on `lock`, released by the kernel when the holder dies)
//! plus a `lock.json` holder record that lets a second opener name the holder.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fs2::FileExt;

use sha2::{Digest, Sha256};

use super::error::StateError;
use super::holder::{Holder, LockNotice};
use super::model::Timestamp;
use super::modes::{self, UmaskGuard};

const LOCK_FILE: &str = "lock";
const HOLDER_FILE: &str = "lock.json";
const HOLDER_TMP: &str = "lock.json.tmp";

/// Held while a store is open. Dropping it removes the holder record, then releases the OS lock.
pub struct DirLock {
    dir: PathBuf,
    file: File,
    holder: Holder,
    /// sled creates its files with the process umask: kept at 0077 while the directory is ours (`modes`).
    _umask: UmaskGuard,
}

impl DirLock {
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Only remove the record if it is still ours (force_unlock may have replaced it by then).
        let path = self.dir.join(HOLDER_FILE);
        if let Ok(Some(h)) = read_record(&self.dir)
            && h.id == self.holder.id
            && let Err(e) = fs::remove_file(&path)
        {
            tracing::warn!("could not remove {}: {e}", path.display());
        }
        // The database is closed by now: whatever it created last gets its mode before the lock is let go.
        if let Err(e) = modes::tighten(&self.dir) {
            tracing::warn!(
                "could not restrict the modes in {}: {e}",
                self.dir.display()
            );
        }
        let _ = FileExt::unlock(&self.file);
    }
}

fn io_err(dir: &Path, op: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> StateError {
    let dir = dir.to_path_buf();
    move |source| StateError::Io {
        dir,
        op,
        path,
        source,
    }
}

fn open_lock_file(dir: &Path) -> Result<File, StateError> {
    let path = dir.join(LOCK_FILE);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(dir, "open the lock file", path))
}

/// Tries the OS lock: `Ok(None)` if another process holds it.
fn try_os_lock(dir: &Path) -> Result<Option<File>, StateError> {
    let file = open_lock_file(dir)?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(Some(file)),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error() =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err(dir, "lock", dir.join(LOCK_FILE))(e)),
    }
}

/// The holder record, if any. `Err(reason)` inside when it exists but cannot be read as one.
fn read_record(dir: &Path) -> Result<Option<Holder>, String> {
    let path = dir.join(HOLDER_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Who holds `dir` now, from its holder record (no lock taken): for `migrate status` while a run is going.
pub fn read_holder(dir: &Path) -> Result<Option<Holder>, StateError> {
    read_record(dir).map_err(|detail| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{HOLDER_FILE} is unreadable: {detail}"),
    })
}

fn write_record(dir: &Path, holder: &Holder) -> Result<(), StateError> {
    let tmp = dir.join(HOLDER_TMP);
    let path = dir.join(HOLDER_FILE);
    let bytes =
        serde_json::to_vec_pretty(holder).map_err(|e| StateError::InvalidInput(e.to_string()))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(dir, "write", tmp.clone()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(dir, "write", tmp.clone()))?;
    fs::rename(&tmp, &path).map_err(io_err(dir, "rename into place", path))?;
    sync_dir(dir)
}

/// fsyncs the directory itself, so a rename into it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "sync", dir.to_path_buf()))
}

/// Takes `dir` for this process. Fails with `Locked` (holder named) if another process holds it, or `StaleLock`
/// if a holder record remains whose process this host cannot prove gone.
pub fn acquire(dir: &Path) -> Result<(DirLock, Option<LockNotice>), StateError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(StateError::Locked {
            dir: dir.to_path_buf(),
            holder: read_record(dir).ok().flatten().map(Box::new),
        });
    };
    let me = Holder {
        id: String::new(),
        pid: std::process::id(),
        host: hostname(),
        command: command_line(),
        since: Timestamp::now(),
    };
    let notice = match read_record(dir) {
        Ok(None) => None,
        Err(why) => Some(LockNotice::UnreadableHolderRecord(why)),
        Ok(Some(prev)) => {
            if prev.host != me.host {
                return Err(StateError::StaleLock {
                    dir: dir.to_path_buf(),
                    holder: Box::new(prev),
                    reason: format!(
                        "that is another host (this is {}), where this process cannot check whether it is alive",
                        me.host
                    ),
                });
            }
            // Our own pid cannot be the holder (we did not hold the OS lock): a restarted container reuses pids.
            if prev.pid != me.pid && pid_alive(prev.pid) {
                return Err(StateError::StaleLock {
                    dir: dir.to_path_buf(),
                    reason: format!(
                        "pid {} is alive but does not hold the lock (perhaps the pid was reused)",
                        prev.pid
                    ),
                    holder: Box::new(prev),
                });
            }
            Some(LockNotice::PreviousHolderGone(prev))
        }
    };
    let holder = Holder {
        id: holder_id(&me),
        ..me
    };
    let umask = UmaskGuard::restrict();
    write_record(dir, &holder)?;
    Ok((
        DirLock {
            dir: dir.to_path_buf(),
            file,
            holder,
            _umask: umask,
        },
        notice,
    ))
}

/// Removes the holder record `holder_id` from `dir` (for `migrate unlock --force ID`), returning what it said.
/// Refused while a live process holds the OS lock, or when the record names another holder.
pub fn force_unlock(dir: &Path, holder_id: &str) -> Result<Holder, StateError> {
    if !dir.join(HOLDER_FILE).exists() && !dir.join(LOCK_FILE).exists() {
        return Err(StateError::NotLocked {
            dir: dir.to_path_buf(),
        });
    }
    let Some(_file) = try_os_lock(dir)? else {
        return Err(StateError::Locked {
            dir: dir.to_path_buf(),
            holder: read_record(dir).ok().flatten().map(Box::new),
        });
    };
    match read_holder(dir)? {
        None => Err(StateError::NotLocked {
            dir: dir.to_path_buf(),
        }),
        Some(h) if h.id != holder_id => Err(StateError::HolderMismatch {
            dir: dir.to_path_buf(),
            given: holder_id.to_string(),
            found: h.id,
        }),
        Some(h) => {
            let path = dir.join(HOLDER_FILE);
            fs::remove_file(&path).map_err(io_err(dir, "remove", path))?;
            sync_dir(dir)?;
            Ok(h)
        }
    }
}

fn holder_id(me: &Holder) -> String {
    let salt = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut h = Sha256::new();
    h.update(format!("{}|{}|{}|{salt}", me.host, me.pid, me.since).as_bytes());
    hex::encode(&h.finalize()[..6])
}

/// Whether a process with this pid exists on this host.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's host name, for the lock record.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// This process's command line for the holder record, with values of secret-looking options masked.
fn command_line() -> String {
    mask_command(std::env::args())
}

fn mask_command(args: impl IntoIterator<Item = String>) -> String {
    const SENSITIVE: [&str; 4] = ["token", "password", "secret", "key"];
    let sensitive = |flag: &str| {
        let f = flag.to_ascii_lowercase();
        f.starts_with('-') && SENSITIVE.iter().any(|s| f.contains(s))
    };
    let mut out: Vec<String> = Vec::new();
    let mut mask_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let shown = if mask_next {
            "***".to_string()
        } else if let Some((flag, _)) = arg.split_once('=').filter(|(f, _)| sensitive(f)) {
            format!("{flag}=***")
        } else if i == 0 {
            Path::new(&arg)
                .file_name()
                .map_or(arg.clone(), |n| n.to_string_lossy().into_owned())
        } else {
            arg.clone()
        };
        mask_next = !arg.contains('=') && sensitive(&arg);
        out.push(shown);
    }
    let mut s = out.join(" ");
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A holder record for this process, with a fresh id (for locks held elsewhere than a directory).
pub(crate) fn this_process() -> Holder {
    let me = Holder {
        id: String::new(),
        pid: std::process::id(),
        host: hostname(),
        command: command_line(),
        since: Timestamp::now(),
    };
    Holder {
        id: holder_id(&me),
        ..me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_masks_secret_options() {
        let args = [
            "/usr/bin/migrate",
            "apply",
            "--token",
            "abc",
            "--api-key=xyz",
            "-f",
            "spec.yaml",
        ];
        let s = mask_command(args.iter().map(|s| s.to_string()));
        assert_eq!(s, "migrate apply --token *** --api-key=*** -f spec.yaml");
    }

    #[test]
    fn pid_liveness() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
    }
}
