//! The state directory on disk: creation with mode 0700, the checks that it is private and ours, and the
//! `migrate-state.json` marker that says a directory is a migrate state directory and which schema it holds.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::lock::sync_dir;
use super::model::Timestamp;
use super::{OLDEST_SCHEMA, SCHEMA_VERSION};

/// The file that makes a directory a state directory: format, schema, store id.
pub const MARKER: &str = "migrate-state.json";
const MARKER_TMP: &str = "migrate-state.json.tmp";
const FORMAT: &str = "migrate-state";
/// sled's database directory.
pub const DB_DIR: &str = "db";

/// Entries a directory may hold before its marker is written (an initialisation that was cut short).
const INIT_ENTRIES: [&str; 7] = [
    "lock",
    "lock.json",
    "lock.json.tmp",
    DB_DIR,
    MARKER_TMP,
    HIGH_WATER,
    HIGH_WATER_TMP,
];
const HIGH_WATER: &str = "high-water.json";
const HIGH_WATER_TMP: &str = "high-water.json.tmp";

/// The contents of the marker file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Always `migrate-state`.
    pub format: String,
    /// The schema of the directory (`SCHEMA_VERSION` of the build that wrote it).
    pub schema: u32,
    /// Also stored in the database: a database swapped or emptied under the marker is detected.
    pub store_id: String,
    pub created: Timestamp,
    /// The migrate version that created the directory or last upgraded its schema (absent in schema 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
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

/// Creates `dir` (mode 0700) if missing; otherwise checks it is a directory, owned by us and private.
pub fn prepare_dir(dir: &Path) -> Result<(), StateError> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(io_err(dir, "create the parent of", dir))?;
            }
            DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir, "create", dir))?;
            // The umask may have removed bits we asked for, never added any; set it exactly anyway.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err(dir, "chmod", dir))
        }
        Err(e) => Err(io_err(dir, "inspect", dir)(e)),
        Ok(meta) if !meta.is_dir() => Err(StateError::NotADirectory {
            dir: dir.to_path_buf(),
        }),
        Ok(meta) => {
            let mode = meta.mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(StateError::InsecurePermissions {
                    dir: dir.to_path_buf(),
                    mode,
                });
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            if meta.uid() != uid {
                return Err(StateError::NotOwner {
                    dir: dir.to_path_buf(),
                    owner: meta.uid(),
                    uid,
                });
            }
            Ok(())
        }
    }
}

/// The marker, validated; `None` for a new (or half-initialised) directory. A directory with other content and
/// no marker is not ours, and we write nothing into it.
pub fn read_marker(dir: &Path) -> Result<Option<Marker>, StateError> {
    let path = dir.join(MARKER);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut foreign = Vec::new();
            for entry in fs::read_dir(dir).map_err(io_err(dir, "list", dir))? {
                let entry = entry.map_err(io_err(dir, "list", dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !INIT_ENTRIES.contains(&name.as_str()) {
                    foreign.push(name);
                }
            }
            if foreign.is_empty() {
                return Ok(None);
            }
            foreign.sort();
            let more = foreign.len().saturating_sub(3);
            foreign.truncate(3);
            let mut found = foreign.join(", ");
            if more > 0 {
                found.push_str(&format!(" and {more} more"));
            }
            return Err(StateError::NotAStateDir {
                dir: dir.to_path_buf(),
                found,
            });
        }
        Err(e) => return Err(io_err(dir, "read", &path)(e)),
    };
    let damaged = |detail: String| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail,
    };
    // Read the version first, so a newer layout is reported as newer even if the rest changed shape.
    let raw: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| damaged(format!("{MARKER} is not valid JSON: {e}")))?;
    if raw.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(damaged(format!("{MARKER} does not say format {FORMAT:?}")));
    }
    let schema = raw
        .get("schema")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| damaged(format!("{MARKER} has no schema number")))?;
    let schema = u32::try_from(schema).unwrap_or(u32::MAX);
    let written_by = raw
        .get("written_by")
        .and_then(|w| w.as_str())
        .map(str::to_string);
    check_schema(dir, schema, written_by)?;
    let marker: Marker =
        serde_json::from_value(raw).map_err(|e| damaged(format!("{MARKER} is incomplete: {e}")))?;
    Ok(Some(marker))
}

/// Refuses a schema this build does not read; `written_by` is the version the marker names.
pub fn check_schema(dir: &Path, found: u32, written_by: Option<String>) -> Result<(), StateError> {
    if found > SCHEMA_VERSION {
        Err(StateError::NewerSchema {
            dir: dir.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
            written_by,
        })
    } else if found < OLDEST_SCHEMA {
        Err(StateError::UnknownSchema {
            dir: dir.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        })
    } else {
        Ok(())
    }
}

/// The marker of a new state directory whose database has this store id.
pub fn new_marker(store_id: String) -> Marker {
    Marker {
        format: FORMAT.to_string(),
        schema: SCHEMA_VERSION,
        store_id,
        created: Timestamp::now(),
        written_by: Some(env!("CARGO_PKG_VERSION").to_string()),
    }
}

/// The migrate version the marker of `dir` names, if it can be read; for error messages.
pub fn written_by(dir: &Path) -> Option<String> {
    let bytes = fs::read(dir.join(MARKER)).ok()?;
    let raw: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    raw.get("written_by")?.as_str().map(str::to_string)
}

/// Written last when a directory is initialised.
pub fn write_marker(dir: &Path, marker: &Marker) -> Result<(), StateError> {
    write_atomically(dir, MARKER, MARKER_TMP, marker)
}

/// How far the database had got at the last run boundary or clean close. Kept outside the database because a
/// damaged sled log can reopen as an earlier, self-consistent state (whole runs gone) without any error; that
/// must not look like a fresh directory, where a new run would snapshot already-migrated objects as originals.
/// Written only at run boundaries and on close, so each transition still costs one fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HighWater {
    /// The database's run counter.
    pub next_run: u64,
    /// Events of run `next_run - 1` (0 if none).
    pub events: u64,
}

/// The high-water mark; `None` before the first one is written.
pub fn read_high_water(dir: &Path) -> Result<Option<HighWater>, StateError> {
    let path = dir.join(HIGH_WATER);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Damaged {
                dir: dir.to_path_buf(),
                detail: format!("{HIGH_WATER} is unreadable: {e}"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(dir, "read", &path)(e)),
    }
}

/// Only ever called after the database state it describes was flushed, so it never runs ahead of the database.
pub fn write_high_water(dir: &Path, mark: HighWater) -> Result<(), StateError> {
    write_atomically(dir, HIGH_WATER, HIGH_WATER_TMP, &mark)
}

/// Temp file, fsync, rename, fsync the directory.
pub(super) fn write_atomically<T: Serialize>(
    dir: &Path,
    name: &str,
    tmp_name: &str,
    value: &T,
) -> Result<(), StateError> {
    let tmp = dir.join(tmp_name);
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| StateError::InvalidInput(e.to_string()))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(dir, "write", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(dir, "write", &tmp))?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(io_err(dir, "rename into place", &path))?;
    sync_dir(dir)
}
