//! File modes of a state directory: the directory and every directory in it 0700, every file 0600.
//!
//! sled 0.34 creates its files (`db/db`, `db/conf`, `db/snap.*`, `db/blobs/*`, the last at run time whenever a
//! value is large) with `0666 & !umask` and offers no hook to choose. So while a store is open the process umask
//! is 0077 (`UmaskGuard`), and every open and close walks the directory and tightens whatever is looser (a
//! directory written by an older migrate, or a file created while the umask was not ours).
//!
//! The umask is process-wide: files other threads create while a store is open get no group or world bits
//! either. Nothing migrate writes is meant for other users (CA keys in certDir are 0600 anyway), and child
//! processes (istioctl) inherit it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Mode of every directory in a state directory, itself included.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in a state directory.
pub const FILE_MODE: u32 = 0o600;

/// How many guards are alive, and the umask to put back when the last goes.
static UMASK: Mutex<(usize, libc::mode_t)> = Mutex::new((0, 0));

/// Keeps the process umask at 0077 while alive; the last guard dropped restores the umask found by the first.
#[derive(Debug)]
pub struct UmaskGuard(());

impl UmaskGuard {
    /// Restricts the umask (nested guards share one restriction).
    pub fn restrict() -> UmaskGuard {
        let mut state = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == 0 {
            // SAFETY: umask has no preconditions and cannot fail; it only swaps the process's mask.
            state.1 = unsafe { libc::umask(0o077) };
        }
        state.0 += 1;
        UmaskGuard(())
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        let mut state = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(1);
        if state.0 == 0 {
            // SAFETY: as above.
            unsafe { libc::umask(state.1) };
        }
    }
}

/// Sets every directory under `dir` (and `dir`) to 0700 and every file to 0600 where looser; returns the paths
/// it changed. Symbolic links are neither followed nor changed (sled makes none).
pub fn tighten(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    tighten_into(dir, true, &mut changed)?;
    Ok(changed)
}

fn tighten_into(path: &Path, is_dir: bool, changed: &mut Vec<PathBuf>) -> io::Result<()> {
    let want = if is_dir { DIR_MODE } else { FILE_MODE };
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & !want != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(mode & want))?;
                changed.push(path.to_path_buf());
            }
        }
        // Removed meanwhile (a temporary file renamed away): nothing to tighten.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if !is_dir {
        return Ok(());
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            continue;
        }
        tighten_into(&entry.path(), kind.is_dir(), changed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn tighten_removes_group_and_world_bits_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        fs::create_dir_all(root.join("db/blobs")).unwrap();
        fs::write(root.join("db/db"), b"x").unwrap();
        fs::write(root.join("db/blobs/7"), b"x").unwrap();
        fs::write(root.join("lock"), b"").unwrap();
        for (p, m) in [
            ("", 0o755),
            ("db", 0o755),
            ("db/blobs", 0o775),
            ("db/db", 0o644),
            ("db/blobs/7", 0o666),
            ("lock", 0o400),
        ] {
            fs::set_permissions(root.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        let changed = tighten(&root).unwrap();
        assert_eq!(changed.len(), 5, "{changed:?}");
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("db/blobs")), 0o700);
        assert_eq!(mode(&root.join("db/db")), 0o600);
        assert_eq!(mode(&root.join("db/blobs/7")), 0o600);
        // Never looser than it was.
        assert_eq!(mode(&root.join("lock")), 0o400);
        assert!(tighten(&root).unwrap().is_empty());
    }

    #[test]
    fn files_created_under_the_guard_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let guard = UmaskGuard::restrict();
        let nested = UmaskGuard::restrict();
        drop(nested);
        fs::write(dir.path().join("f"), b"x").unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        drop(guard);
        assert_eq!(mode(&dir.path().join("f")) & 0o077, 0);
        assert_eq!(mode(&dir.path().join("d")) & 0o077, 0);
    }
}
