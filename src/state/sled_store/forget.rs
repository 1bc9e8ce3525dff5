//! `forget-snapshots`: removing the snapshot payloads (Secrets with CA keys among them) once a migration is
//! signed off, so that no key bytes remain anywhere under the state directory.
//!
//! A payload is replaced by a tombstone (`encoding::forget_payload`) that keeps the snapshot's key, step and
//! date: a rollback that would need it fails with `SnapshotForgotten` instead of reading "the object did not
//! exist". Because sled keeps removed values in old log segments, the database is not edited in place but
//! rewritten into a fresh one and swapped in (`compaction`), crash-safe at every point.

use std::collections::BTreeMap;

use serde_json::json;
use sled::Transactional;

use super::encoding::{decode_snapshot, forget_payload, tx_run};
use super::journal::{TxJournal, tx_journal};
use super::open::open_sled;
use super::{SledStore, TxResult};
use crate::state::Store;
use crate::state::compaction::{self, NEW_DB};
use crate::state::error::StateError;
use crate::state::model::{
    EventKind, NewEvent, RunId, SnapshotKey, StepState, StepStatus, Timestamp,
};

/// A snapshot payload the store still holds: what a rollback of its step would put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSnapshot {
    /// The run that took it.
    pub run: RunId,
    /// The step that took it.
    pub step: String,
    /// Where that step stands now.
    pub status: StepStatus,
    /// The object, by cluster, kind, namespace and name (never its content).
    pub key: SnapshotKey,
    /// When it was taken.
    pub taken: Timestamp,
}

impl HeldSnapshot {
    /// Whether a rollback could still need it: its step changed something and was not rolled back.
    pub fn rollback_may_need(&self) -> bool {
        !matches!(self.status, StepStatus::Pending | StepStatus::RolledBack)
    }
}

/// What `forget_snapshots` did, with the store reopened on the rewritten database.
#[derive(Debug)]
pub struct Forgotten {
    /// The store, open on the rewritten database.
    pub store: SledStore,
    /// The payloads removed.
    pub forgotten: Vec<HeldSnapshot>,
    /// The date the tombstones carry.
    pub on: Timestamp,
}

/// A snapshot key's run: its first eight bytes (`encoding::snapshot_key`).
fn run_of(key: &[u8]) -> RunId {
    RunId(
        key.get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes),
    )
}

impl SledStore {
    /// Every snapshot payload still held (objects that existed; absences hold nothing), ordered by run and key.
    pub fn held_snapshots(&self) -> Result<Vec<HeldSnapshot>, StateError> {
        let mut states: BTreeMap<RunId, BTreeMap<String, StepState>> = BTreeMap::new();
        let mut held = Vec::new();
        for item in self.snapshots.iter() {
            let (k, v) = item.map_err(self.db_err("read snapshots"))?;
            let record = decode_snapshot(&self.dir, &v, "a snapshot")?;
            if record.forgotten.is_some() || record.object.as_ref().is_none_or(|o| o.is_null()) {
                continue;
            }
            let run = run_of(&k);
            let steps = match states.entry(run) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(self.step_states(run)?),
            };
            let status = steps
                .get(&record.step)
                .map_or(StepStatus::Pending, |s| s.status);
            held.push(HeldSnapshot {
                run,
                step: record.step,
                status,
                key: record.key,
                taken: record.taken,
            });
        }
        held.sort_by(|a, b| (a.run, &a.key, &a.step).cmp(&(b.run, &b.key, &b.step)));
        Ok(held)
    }

    /// Removes every snapshot payload of every run: the database is rewritten without them into `db.new`, made
    /// durable, and swapped in by reopening the directory (see `compaction`). The lock is let go for the
    /// reopen; whoever opens next finishes the swap, so nothing can see the old database again.
    pub fn forget_snapshots(self) -> Result<Forgotten, StateError> {
        let forgotten = self.held_snapshots()?;
        let on = Timestamp::now();
        compaction::discard_copy(&self.dir)?;
        self.write_copy(on)?;
        compaction::commit(&self.dir, "forget-snapshots")?;
        let dir = self.dir.clone();
        drop(self);
        let opened = SledStore::open(&dir)?;
        Ok(Forgotten {
            store: opened.store,
            forgotten,
            on,
        })
    }

    /// Copies every tree into a fresh database in `db.new`, payloads replaced by tombstones, and journals in
    /// each run how many of its payloads were forgotten.
    fn write_copy(&self, on: Timestamp) -> Result<(), StateError> {
        let dir = self.dir.as_path();
        let copy_err = |op| {
            let dir = dir.to_path_buf();
            move |source| StateError::Db { dir, op, source }
        };
        let copy =
            open_sled(&dir.join(NEW_DB)).map_err(copy_err("create the rewritten database"))?;
        let mut per_run: BTreeMap<RunId, usize> = BTreeMap::new();
        for name in self.db.tree_names() {
            let from = self
                .db
                .open_tree(&name)
                .map_err(self.db_err("open a tree"))?;
            let to = copy
                .open_tree(&name)
                .map_err(copy_err("write the rewritten database"))?;
            let is_snapshots = name.as_ref() == b"snapshots";
            for item in from.iter() {
                let (k, v) = item.map_err(self.db_err("read the database"))?;
                let value = match is_snapshots {
                    true => match forget_payload(dir, &v, on)? {
                        Some((_, tombstone)) => {
                            *per_run.entry(run_of(&k)).or_default() += 1;
                            sled::IVec::from(tombstone)
                        }
                        None => v,
                    },
                    false => v,
                };
                to.insert(k, value)
                    .map_err(copy_err("write the rewritten database"))?;
            }
        }
        let runs = copy.open_tree("runs").map_err(copy_err("open a tree"))?;
        let events = copy.open_tree("events").map_err(copy_err("open a tree"))?;
        let index = copy.open_tree("index").map_err(copy_err("open a tree"))?;
        for (run, n) in per_run {
            let note = NewEvent::new(
                EventKind::Note,
                None,
                format!(
                    "{n} snapshot payload(s) forgotten by forget-snapshots: rollback of their steps cannot restore them"
                ),
            )
            .with_details(json!({ "forgotten": n, "on": on }));
            (&runs, &events, &index)
                .transaction(|(runs, events, index)| -> TxResult<u64> {
                    let mut info = tx_run(dir, runs, run)?;
                    let j = TxJournal {
                        runs,
                        events,
                        index,
                    };
                    tx_journal(dir, &j, &mut info, note.clone(), on)
                })
                .map_err(self.tx_err("journal the forgotten snapshots"))?;
        }
        copy.flush()
            .map_err(copy_err("flush the rewritten database"))?;
        Ok(())
    }
}
