//! The `Store` operations: runs, step states, the journal and snapshots,
//! each change one transaction, flushed before it returns.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use sled::transaction::ConflictableTransactionError;
use sled::{Transactional, Tree};

use super::digest::Digest;
use super::encoding::{
    SnapshotRecord, abort, decode, decode_plan, decode_snapshot, encode, encode_plan, event_key,
    plan_text, snapshot_key, snapshot_prefix, step_key, tx_decode, tx_encode, tx_run,
};
use super::journal::{TxJournal, tx_journal, tx_journal_with};
use super::{META_NEXT_RUN, SledStore};
use crate::state::error::StateError;
use crate::state::model::{
    Event, Left, LeftObject, NewEvent, NewRun, Outcome, RunId, RunInfo, Snapshot, SnapshotFilter,
    SnapshotKey, StepState, StepStatus, Timestamp,
};
use crate::state::{Store, rules};

impl Store for SledStore {
    fn store_id(&self) -> Result<Option<String>, StateError> {
        self.meta_value(super::META_STORE_ID)
    }

    fn holder_id(&self) -> Option<String> {
        Some(self.holder().id.clone())
    }

    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError> {
        rules::validate_new_run(&new)?;
        let plan = encode_plan(&new.plan)?;
        let dir = self.dir.as_path();
        let info = (
            &self.meta,
            &self.runs,
            &self.plans,
            &self.steps,
            &self.events,
            &self.index,
        )
            .transaction(|(meta, runs, plans, steps, events, index)| {
                let next: u64 = match meta.get(META_NEXT_RUN)? {
                    Some(v) => tx_decode(dir, &v, "the run counter")?,
                    None => {
                        return abort(StateError::Damaged {
                            dir: dir.to_path_buf(),
                            detail: "the run counter is missing".into(),
                        });
                    }
                };
                let latest = match next.checked_sub(1).filter(|&n| n > 0) {
                    Some(n) => Some(tx_run(dir, runs, RunId(n))?),
                    None => None,
                };
                rules::check_can_begin(latest.as_ref())
                    .map_err(ConflictableTransactionError::Abort)?;
                let id = RunId(next);
                let now = Timestamp::now();
                let mut info = rules::new_run_info(id, &new, now);
                meta.insert(META_NEXT_RUN, tx_encode(&(next + 1))?)?;
                plans.insert(&id.0.to_be_bytes(), plan.clone())?;
                let pending = tx_encode(&StepState::pending())?;
                let mut moved = Digest::default();
                for step in &new.steps {
                    let key = step_key(id, step);
                    moved = moved.add(Digest::of(&key, &pending));
                    if let Some(replaced) = steps.insert(key.as_slice(), pending.clone())? {
                        moved = moved.sub(Digest::of(&key, &replaced));
                    }
                }
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                let started = rules::run_started_event(&new);
                tx_journal_with(dir, &j, &mut info, started, now, moved)?;
                Ok(info)
            })
            .map_err(self.tx_err("start a run"))?;
        self.flush()?;
        self.save_high_water()?;
        self.status.reload(info.id, true);
        Ok(info)
    }

    fn current_run(&self) -> Result<Option<RunInfo>, StateError> {
        Ok(rules::current(self.latest_run()?))
    }

    fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        match self.runs.last().map_err(self.db_err("read runs"))? {
            None => Ok(None),
            Some((_, v)) => decode(&self.dir, &v, "a run record").map(Some),
        }
    }

    fn run(&self, run: RunId) -> Result<RunInfo, StateError> {
        self.read_run(run)
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        self.runs
            .iter()
            .values()
            .map(|v| {
                decode(
                    &self.dir,
                    &v.map_err(self.db_err("read runs"))?,
                    "a run record",
                )
            })
            .collect()
    }

    fn plan(&self, run: RunId) -> Result<Value, StateError> {
        let v = self
            .plans
            .get(run.0.to_be_bytes())
            .map_err(self.db_err("read a plan"))?
            .ok_or(StateError::UnknownRun { run })?;
        decode_plan(&self.dir, &v)
    }

    fn plan_json(&self, run: RunId) -> Result<String, StateError> {
        read_plan_text(&self.dir, &self.plans, run)
    }

    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        let dir = self.dir.as_path();
        let latest = RunId(self.next_run_id()?.saturating_sub(1));
        let info = (&self.runs, &self.events, &self.index)
            .transaction(|(runs, events, index)| {
                let old = tx_run(dir, runs, run)?;
                let (mut info, event) =
                    rules::resume(&old, latest).map_err(ConflictableTransactionError::Abort)?;
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                tx_journal(dir, &j, &mut info, event, Timestamp::now())?;
                Ok(info)
            })
            .map_err(self.tx_err("resume a run"))?;
        self.flush()?;
        self.save_high_water()?;
        // Its first action need not wait for the copy to be rewritten (`status_copy`).
        self.status.reload_later(run, true);
        Ok(info)
    }

    fn reopen_for_rollback(&self, run: RunId) -> Result<RunInfo, StateError> {
        let dir = self.dir.as_path();
        let later_running = self
            .runs()?
            .into_iter()
            .find(|r| r.id > run && r.outcome == Outcome::Running)
            .map(|r| r.id);
        let info = (&self.runs, &self.events, &self.index)
            .transaction(|(runs, events, index)| {
                let old = tx_run(dir, runs, run)?;
                let (mut info, event) = rules::reopen_for_rollback(&old, later_running)
                    .map_err(ConflictableTransactionError::Abort)?;
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                tx_journal(dir, &j, &mut info, event, Timestamp::now())?;
                Ok(info)
            })
            .map_err(self.tx_err("reopen a run"))?;
        self.flush()?;
        self.save_high_water()?;
        self.status.reload(run, true);
        Ok(info)
    }

    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError> {
        self.end_run(run, "finish a run", |old, now| {
            rules::finish(old, outcome, now)
        })
    }

    fn pause_run(&self, run: RunId, after: &str) -> Result<RunInfo, StateError> {
        self.end_run(run, "pause a run", |old, now| rules::pause(old, after, now))
    }

    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError> {
        self.read_run(run)?;
        read_steps(&self.dir, &self.steps, run)
    }

    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError> {
        self.read_run(run)?;
        let v = self
            .steps
            .get(step_key(run, step))
            .map_err(self.db_err("read a step"))?
            .ok_or_else(|| StateError::UnknownStep {
                run,
                step: step.to_string(),
            })?;
        decode(&self.dir, &v, &format!("the record of step {step}"))
    }

    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        let state = self.transition(run, step, status, error)?;
        // Every transition is durable before it is acknowledged, completion
        // marks too: a Done lost to a crash would make `--resume` repeat the
        // step's effects. Group commit lets parallel steps share the fsync.
        self.flush()?;
        self.status.step(run, step, &state);
        Ok(state)
    }

    fn begin_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        snapshots: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<StepState, StateError> {
        let state = self.transition(run, step, status, None)?;
        // Recording a snapshot flushes, which covers the transition committed
        // just before; with nothing recorded, flush here.
        let stored = if snapshots.is_empty() {
            0
        } else {
            self.put_snapshots_if_absent(run, step, snapshots)?
        };
        if stored == 0 {
            self.flush()?;
        }
        self.status.step(run, step, &state);
        Ok(state)
    }

    fn finish_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        left: Vec<(SnapshotKey, Left)>,
    ) -> Result<StepState, StateError> {
        let now = Timestamp::now();
        let mut records = Vec::with_capacity(left.len());
        for (key, left) in left {
            rules::validate_key(&key)?;
            let record = encode(&LeftObject {
                key: key.clone(),
                step: step.to_string(),
                recorded: now,
                left,
            })?;
            records.push((snapshot_key(run, step, &key), record));
        }
        // Only this step's own task writes its records, so the keys read here are all there are.
        let stale: Vec<sled::IVec> = self
            .left
            .scan_prefix(snapshot_prefix(run, step))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(self.db_err("read what a step left"))?;
        let dir = self.dir.as_path();
        (&self.runs, &self.steps, &self.left)
            .transaction(|(runs, steps, left)| {
                rules::require_running(&tx_run(dir, runs, run)?)
                    .map_err(ConflictableTransactionError::Abort)?;
                if steps.get(step_key(run, step))?.is_none() {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                }
                for k in &stale {
                    left.remove(k)?;
                }
                for (k, record) in &records {
                    left.insert(k.as_slice(), record.clone())?;
                }
                Ok(())
            })
            .map_err(self.tx_err("record what a step left"))?;
        // One flush covers both commits: the step's mark costs no fsync more than before.
        let state = self.transition(run, step, status, None)?;
        self.flush()?;
        self.status.step(run, step, &state);
        Ok(state)
    }

    fn left_objects(&self, run: RunId, step: &str) -> Result<Vec<LeftObject>, StateError> {
        self.read_run(run)?;
        let mut out = Vec::new();
        for item in self.left.scan_prefix(snapshot_prefix(run, step)) {
            let (_, v) = item.map_err(self.db_err("read what a step left"))?;
            out.push(decode::<LeftObject>(
                &self.dir,
                &v,
                "a record of what a step left",
            )?);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let seq = self.journal(run, event)?;
        self.flush()?;
        Ok(seq)
    }

    fn record_progress(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        // Announces nothing: sled keeps it in memory until the next flush
        // (the next durable write), so a crash may lose the newest ones.
        self.journal(run, event)
    }

    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError> {
        self.read_run(run)?;
        let start = event_key(run, since.saturating_add(1));
        let end = event_key(RunId(run.0.saturating_add(1)), 0);
        let mut out = Vec::new();
        for item in self.events.range(start..end) {
            let (_, v) = item.map_err(self.db_err("read events"))?;
            out.push(decode(&self.dir, &v, "an event")?);
        }
        Ok(out)
    }

    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError> {
        rules::validate_key(key)?;
        let dir = self.dir.as_path();
        let skey = snapshot_key(run, step, key);
        let now = Timestamp::now();
        let present = object.as_ref().is_some_and(|v| !v.is_null());
        let record = encode(&SnapshotRecord {
            key: key.clone(),
            step: step.to_string(),
            taken: now,
            object,
            forgotten: None,
        })?;
        let stored = (
            &self.runs,
            &self.steps,
            &self.snapshots,
            &self.events,
            &self.index,
        )
            .transaction(|(runs, steps, snapshots, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                rules::require_running(&info).map_err(ConflictableTransactionError::Abort)?;
                if steps.get(step_key(run, step))?.is_none() {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                }
                if snapshots.get(skey.as_slice())?.is_some() {
                    return Ok(false);
                }
                snapshots.insert(skey.as_slice(), record.clone())?;
                tx_journal(
                    dir,
                    &TxJournal {
                        runs,
                        events,
                        index,
                    },
                    &mut info,
                    rules::snapshot_event(step, key, present),
                    now,
                )?;
                Ok(true)
            })
            .map_err(self.tx_err("record a snapshot"))?;
        if stored {
            self.flush()?;
        }
        Ok(stored)
    }

    fn put_snapshots_if_absent(
        &self,
        run: RunId,
        step: &str,
        objects: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<usize, StateError> {
        let dir = self.dir.as_path();
        let now = Timestamp::now();
        let mut records = Vec::with_capacity(objects.len());
        for (key, object) in objects {
            rules::validate_key(&key)?;
            let present = object.as_ref().is_some_and(|v| !v.is_null());
            let record = encode(&SnapshotRecord {
                key: key.clone(),
                step: step.to_string(),
                taken: now,
                object,
                forgotten: None,
            })?;
            records.push((snapshot_key(run, step, &key), key, present, record));
        }
        let stored = (
            &self.runs,
            &self.steps,
            &self.snapshots,
            &self.events,
            &self.index,
        )
            .transaction(|(runs, steps, snapshots, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                rules::require_running(&info).map_err(ConflictableTransactionError::Abort)?;
                if steps.get(step_key(run, step))?.is_none() {
                    return abort(StateError::UnknownStep {
                        run,
                        step: step.to_string(),
                    });
                }
                let mut stored = 0;
                for (skey, key, present, record) in &records {
                    if snapshots.get(skey.as_slice())?.is_some() {
                        continue;
                    }
                    snapshots.insert(skey.as_slice(), record.clone())?;
                    tx_journal(
                        dir,
                        &TxJournal {
                            runs,
                            events,
                            index,
                        },
                        &mut info,
                        rules::snapshot_event(step, key, *present),
                        now,
                    )?;
                    stored += 1;
                }
                Ok(stored)
            })
            .map_err(self.tx_err("record snapshots"))?;
        if stored > 0 {
            self.flush()?;
        }
        Ok(stored)
    }

    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError> {
        self.read_run(run)?;
        match self
            .snapshots
            .get(snapshot_key(run, step, key))
            .map_err(self.db_err("read a snapshot"))?
        {
            None => Ok(None),
            Some(v) => decode_snapshot(&self.dir, &v, &format!("the snapshot of {key}"))?
                .into_snapshot(run)
                .map(Some),
        }
    }

    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError> {
        self.read_run(run)?;
        let prefix = match &filter.step {
            Some(step) => snapshot_prefix(run, step),
            None => run.0.to_be_bytes().to_vec(),
        };
        let mut out = Vec::new();
        for item in self.snapshots.scan_prefix(prefix) {
            let (_, v) = item.map_err(self.db_err("read snapshots"))?;
            let r = decode_snapshot(&self.dir, &v, "a snapshot")?;
            if filter.cluster.as_ref().is_none_or(|c| *c == r.key.cluster) {
                out.push(r.into_snapshot(run)?);
            }
        }
        // Keys are stored length-prefixed; return them in the same order as the memory store.
        out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.step.cmp(&b.step)));
        Ok(out)
    }

    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError> {
        rules::require_running(&self.read_run(run)?)?;
        // Only this step's own task writes its snapshots, so the keys read here are all there are.
        let keys: Vec<sled::IVec> = self
            .snapshots
            .scan_prefix(snapshot_prefix(run, step))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(self.db_err("read snapshots"))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let dir = self.dir.as_path();
        let dropped = keys.len();
        (&self.runs, &self.snapshots, &self.events, &self.index)
            .transaction(|(runs, snapshots, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                for k in &keys {
                    snapshots.remove(k)?;
                }
                tx_journal(
                    dir,
                    &TxJournal {
                        runs,
                        events,
                        index,
                    },
                    &mut info,
                    rules::snapshots_dropped_event(step, dropped),
                    Timestamp::now(),
                )?;
                Ok(())
            })
            .map_err(self.tx_err("forget a step's snapshots"))?;
        self.flush()?;
        Ok(dropped)
    }

    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError> {
        rules::check_can_replace_plan(self.latest_run()?.map(|r| r.id), run)?;
        let dir = self.dir.as_path();
        let plan = encode_plan(&plan)?;
        let pending = encode(&StepState::pending())?;
        let info = (
            &self.runs,
            &self.plans,
            &self.steps,
            &self.events,
            &self.index,
        )
            .transaction(|(runs, plans, step_tree, events, index)| {
                let mut info = tx_run(dir, runs, run)?;
                let mut added = 0;
                let mut moved = Digest::default();
                for s in steps {
                    let key = step_key(run, s);
                    if step_tree.get(&key)?.is_none() {
                        step_tree.insert(key.as_slice(), pending.clone())?;
                        moved = moved.add(Digest::of(&key, &pending));
                        added += 1;
                    }
                }
                plans.insert(&run.0.to_be_bytes(), plan.clone())?;
                info.fingerprint = fingerprint.to_string();
                tx_journal_with(
                    dir,
                    &TxJournal {
                        runs,
                        events,
                        index,
                    },
                    &mut info,
                    rules::plan_replaced_event(fingerprint, added),
                    Timestamp::now(),
                    moved,
                )?;
                Ok(info)
            })
            .map_err(self.tx_err("replace the plan"))?;
        self.flush()?;
        self.save_high_water()?;
        self.status.reload(run, true);
        Ok(info)
    }
}

impl SledStore {
    /// Ends `run` as `end` says (finished or paused), journalled in the same
    /// transaction, flushed before it returns.
    fn end_run(
        &self,
        run: RunId,
        doing: &'static str,
        end: impl Fn(&RunInfo, Timestamp) -> Result<(RunInfo, NewEvent), StateError>,
    ) -> Result<RunInfo, StateError> {
        let dir = self.dir.as_path();
        let info = (&self.runs, &self.events, &self.index)
            .transaction(|(runs, events, index)| {
                let old = tx_run(dir, runs, run)?;
                let now = Timestamp::now();
                let (mut info, event) =
                    end(&old, now).map_err(ConflictableTransactionError::Abort)?;
                let j = TxJournal {
                    runs,
                    events,
                    index,
                };
                tx_journal(dir, &j, &mut info, event, now)?;
                Ok(info)
            })
            .map_err(self.tx_err(doing))?;
        self.flush()?;
        self.save_high_water()?;
        self.status.run(run);
        Ok(info)
    }
}

/// Every step record of `run` in `steps`, by id (shared with the status copy's writer, which reads the trees
/// on its own thread).
pub(super) fn read_steps(
    dir: &Path,
    steps: &Tree,
    run: RunId,
) -> Result<BTreeMap<String, StepState>, StateError> {
    let mut out = BTreeMap::new();
    for item in steps.scan_prefix(run.0.to_be_bytes()) {
        let (k, v) = item.map_err(|source| StateError::Db {
            dir: dir.to_path_buf(),
            op: "read steps",
            source,
        })?;
        let id = String::from_utf8_lossy(&k[8..]).into_owned();
        let state = decode(dir, &v, &format!("the record of step {id}"))?;
        out.insert(id, state);
    }
    Ok(out)
}

/// The JSON text of `run`'s plan in `plans` (see `read_steps`).
pub(super) fn read_plan_text(dir: &Path, plans: &Tree, run: RunId) -> Result<String, StateError> {
    let v = plans
        .get(run.0.to_be_bytes())
        .map_err(|source| StateError::Db {
            dir: dir.to_path_buf(),
            op: "read a plan",
            source,
        })?
        .ok_or(StateError::UnknownRun { run })?;
    plan_text(dir, &v)
}
