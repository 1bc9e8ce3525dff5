//! Opening a state directory: its lock, its database, and the checks that
//! the database is the one the marker names, whole, and not behind the
//! high-water mark. sled reads a damaged log as an earlier, self-consistent
//! state without complaint; these checks keep that from passing for a fresh
//! start.

use std::cell::{Cell, RefCell};
use std::hash::{BuildHasher, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use serde_json::Value;

use super::encoding::decode;
use super::status_copy::StatusCopy;
use super::{GroupCommit, META_NEXT_RUN, META_SCHEMA, META_STORE_ID, Opened, SledStore};
use crate::state::compaction;
use crate::state::error::StateError;
use crate::state::layout::{self, DB_DIR};
use crate::state::lock::{self, DirLock};
use crate::state::model::{RunId, RunInfo};
use crate::state::modes;
use crate::state::{SCHEMA_VERSION, Store};

impl SledStore {
    /// Opens (creating if needed) the state directory `dir` and takes its lock.
    pub fn open(dir: &Path) -> Result<Opened, StateError> {
        layout::prepare_dir(dir)?;
        layout::read_marker(dir)?;
        let (lock, notice) = lock::acquire(dir)?;
        tighten_modes(dir)?;
        // A database rewrite (`forget-snapshots`) cut short is finished or undone before sled opens anything.
        if compaction::recover(dir)? {
            tracing::info!(
                "state directory {}: finished replacing its database by the rewritten copy",
                dir.display()
            );
        }
        // Re-read under the lock: the marker may have been written by the previous holder meanwhile.
        let marker = layout::read_marker(dir)?;
        let store = catch_panics(dir, || Self::open_db(dir, marker.as_ref(), lock))?;
        Ok(Opened { store, notice })
    }

    fn open_db(
        dir: &Path,
        marker: Option<&layout::Marker>,
        lock: DirLock,
    ) -> Result<SledStore, StateError> {
        let db_err = |op| {
            let dir = dir.to_path_buf();
            move |source| StateError::Db { dir, op, source }
        };
        let db = open_sled(&dir.join(DB_DIR)).map_err(|e| match e {
            sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                StateError::Locked {
                    dir: dir.to_path_buf(),
                    holder: None,
                }
            }
            sled::Error::Corruption { .. } => StateError::Damaged {
                dir: dir.to_path_buf(),
                detail: format!("sled finds its files corrupt ({e})"),
            },
            other => db_err("open the database")(other),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err("open a tree"));
        let (runs, plans, steps) = (tree("runs")?, tree("plans")?, tree("steps")?);
        let status = StatusCopy::new(
            dir.to_path_buf(),
            runs.clone(),
            steps.clone(),
            plans.clone(),
        );
        let mut store = SledStore {
            dir: dir.to_path_buf(),
            meta: tree("meta")?,
            runs,
            plans,
            steps,
            status,
            events: tree("events")?,
            snapshots: tree("snapshots")?,
            left: tree("left")?,
            index: tree("index")?,
            db,
            checked: false,
            commits: GroupCommit::default(),
            lock,
        };
        match marker {
            Some(m) => {
                store.check_existing(m)?;
                store.upgrade(m)?;
            }
            None => store.initialise()?,
        }
        store.checked = true;
        Ok(store)
    }

    /// First open, or one whose initialisation was cut short before the marker was written.
    fn initialise(&self) -> Result<(), StateError> {
        if !self.runs.is_empty() {
            return Err(self.damaged(format!(
                "the database holds runs but {} is missing",
                layout::MARKER
            )));
        }
        let store_id = match self.meta_value::<String>(META_STORE_ID)? {
            Some(id) => id,
            None => {
                let salt = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                format!("{:016x}{:08x}", salt, std::process::id())
            }
        };
        let put = |k: &[u8], v: Value| {
            self.meta
                .insert(k, v.to_string().into_bytes())
                .map_err(self.db_err("write metadata"))
        };
        put(META_SCHEMA, Value::from(SCHEMA_VERSION))?;
        put(META_STORE_ID, Value::from(store_id.clone()))?;
        put(META_NEXT_RUN, Value::from(1u64))?;
        self.flush()?;
        self.save_high_water()?;
        layout::write_marker(&self.dir, &layout::new_marker(store_id))
    }

    /// Brings a directory of an older schema (checked readable) to this build's: the schema record, then the
    /// marker. Both writes are idempotent, and a crash between them leaves a directory this build still opens
    /// and finishes upgrading. Records are not rewritten: unversioned ones read as schema 1.
    fn upgrade(&self, marker: &layout::Marker) -> Result<(), StateError> {
        let schema: u32 = self.meta_value(META_SCHEMA)?.unwrap_or(SCHEMA_VERSION);
        if schema < SCHEMA_VERSION {
            self.meta
                .insert(
                    META_SCHEMA,
                    Value::from(SCHEMA_VERSION).to_string().into_bytes(),
                )
                .map_err(self.db_err("write metadata"))?;
            self.flush()?;
        }
        if marker.schema < SCHEMA_VERSION {
            let mut upgraded = layout::new_marker(marker.store_id.clone());
            upgraded.created = marker.created;
            layout::write_marker(&self.dir, &upgraded)?;
            tracing::info!(
                "state directory {}: upgraded from schema {} to {SCHEMA_VERSION}",
                self.dir.display(),
                marker.schema
            );
        }
        Ok(())
    }

    /// The database must be the one the marker describes, and its runs readable and whole.
    fn check_existing(&self, marker: &layout::Marker) -> Result<(), StateError> {
        let schema: u32 = self.meta_value(META_SCHEMA)?.ok_or_else(|| {
            self.damaged(format!(
                "the database has no schema record although {} exists (was the db directory replaced or truncated?)",
                layout::MARKER
            ))
        })?;
        layout::check_schema(&self.dir, schema, marker.written_by.clone())?;
        let id: Option<String> = self.meta_value(META_STORE_ID)?;
        if id.as_deref() != Some(marker.store_id.as_str()) {
            return Err(self.damaged(format!(
                "the database does not belong to this directory's {} (store id {:?}, expected {:?})",
                layout::MARKER,
                id,
                marker.store_id
            )));
        }
        let next: u64 = self
            .meta_value(META_NEXT_RUN)?
            .ok_or_else(|| self.damaged("the run counter is missing"))?;
        let mark = layout::read_high_water(&self.dir)?.unwrap_or_default();
        let now = self.high_water()?;
        if now.next_run < mark.next_run
            || (now.next_run == mark.next_run && now.events < mark.events)
        {
            return Err(self.damaged(format!(
                "the database ends at run #{} event {} but had reached run #{} event {} (data was lost)",
                now.next_run.saturating_sub(1),
                now.events,
                mark.next_run.saturating_sub(1),
                mark.events
            )));
        }
        for item in self.runs.iter() {
            let (k, v) = item.map_err(self.db_err("read runs"))?;
            let run: RunInfo = decode(&self.dir, &v, "a run record")?;
            if k.as_ref() != run.id.0.to_be_bytes() || run.id.0 >= next {
                return Err(self.damaged(format!("run record {} is out of place", run.id)));
            }
            self.check_run(&run)?;
        }
        Ok(())
    }

    /// Checks that every store holds, reading every event: run, steps, snapshots, journal and its index agree.
    /// Opening checks the same against the index (`check_run`), which every journal write keeps in its own
    /// transaction, so it need not read the journal: sled may recover a damaged file to a mixture of old and
    /// new pages without error, and a mixture shows as step records whose digest is not the index's, or a
    /// journal that does not end where its run and the index say (see `index`).
    pub fn verify(&self) -> Result<(), StateError> {
        for run in self.runs()? {
            self.verify_run(&run)?;
        }
        Ok(())
    }

    fn high_water(&self) -> Result<layout::HighWater, StateError> {
        let next_run = self.next_run_id()?;
        let events = match next_run.checked_sub(1).filter(|&n| n > 0) {
            Some(n) => self.read_run(RunId(n))?.last_event_seq,
            None => 0,
        };
        Ok(layout::HighWater { next_run, events })
    }

    /// The mark must never run ahead of what is on disk: read it, then flush (which covers everything read,
    /// including another thread's commit not yet flushed), then write it.
    pub(super) fn save_high_water(&self) -> Result<(), StateError> {
        let mark = self.high_water()?;
        self.flush()?;
        layout::write_high_water(&self.dir, mark)
    }
}

/// Files of an older migrate (sled created them 0644) or created while the umask was not ours: made private,
/// said once (the next open finds nothing to change).
fn tighten_modes(dir: &Path) -> Result<(), StateError> {
    let changed = modes::tighten(dir).map_err(|source| StateError::Io {
        dir: dir.to_path_buf(),
        op: "restrict the modes of",
        path: dir.to_path_buf(),
        source,
    })?;
    if !changed.is_empty() {
        tracing::warn!(
            "state directory {}: {} file(s) or directories in it could be read by others (e.g. {}); made private \
             (files 0600, directories 0700)",
            dir.display(),
            changed.len(),
            changed[0].display()
        );
    }
    Ok(())
}

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic (sled panics on some corrupt files) into `Damaged`. The panic message is kept
/// for the error instead of being printed by the default hook.
pub(in crate::state) fn catch_panics<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, StateError>,
) -> Result<T, StateError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                CAUGHT.with(|c| *c.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.unwrap_or_else(|payload| {
        let message = CAUGHT
            .with(|c| c.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("the database could not be read ({message})"),
        })
    })
}

/// How long a reopen waits for sled's own file lock to be let go.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens sled's database. We hold the directory's lock, so no other process
/// can hold sled's: a busy sled lock is this process's previous handle, whose
/// background work still holds it for a moment after its drop (a reopen in one
/// process: `demo`, tests). Wait for it to go, up to `SLED_LOCK_WAIT`.
pub(crate) fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(64 << 20)
            // Every durable write flushes itself (see `Store`); sled's timer would only add fsyncs, uncounted.
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(ref io))
                if io.to_string().contains("could not acquire lock")
                    && started.elapsed() < SLED_LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
