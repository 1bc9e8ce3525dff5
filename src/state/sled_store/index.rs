//! The journal's index (tree `index`): what opening a state directory needs from a run's journal, so that
//! opening reads one small record per step instead of every event.
//!
//! Per run, how far the index covers the journal and how many snapshots the journal accounts for; per step, its
//! latest journalled status, the event that set it, and how many times it was done or rolled back. `tx_journal`
//! updates it in the same transaction as every event it covers: after a crash at any point (the transaction is
//! all or nothing) it says what the journal says. It is a fold of the journal, never a second truth: a run
//! without it (a directory of an older migrate, a run copied in) or behind its journal (an older migrate wrote
//! to the directory since) is indexed from the journal when the directory is opened, checking the journal as it
//! reads it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::TransactionalTree;

use super::encoding::{decode, encode, event_key, seq_of, tx_decode, tx_encode};
use super::{SledStore, TxResult};
use crate::state::error::StateError;
use crate::state::model::{Event, EventKind, RunId, RunInfo, StepStatus};

/// One run's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RunIndex {
    /// The journal's events `1..=covered` are folded in.
    pub(super) covered: u64,
    /// Snapshots recorded less those dropped, as journalled.
    pub(super) snapshots: u64,
}

/// One step, as its journal has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StepIndex {
    /// The status its latest status event moved it to.
    pub(super) status: StepStatus,
    /// That event.
    pub(super) seq: u64,
    /// How many of its status events moved it to `Done` or `RolledBack`.
    pub(super) finished: u32,
}

/// What one event changes in the index.
pub(super) enum Effect<'a> {
    None,
    Status { step: &'a str, to: StepStatus },
    Snapshots { dropped: Option<u64> },
}

/// Why an event cannot be folded: a status event without its status.
pub(super) struct Unreadable;

/// The effect of `e` on its run's index.
pub(super) fn effect(e: &Event) -> Result<Effect<'_>, Unreadable> {
    match (e.kind, e.step.as_deref()) {
        (EventKind::StepStatus, Some(step)) => e
            .details
            .as_ref()
            .and_then(|d| d.get("to"))
            .and_then(|to| StepStatus::deserialize(to).ok())
            .map(|to| Effect::Status { step, to })
            .ok_or(Unreadable),
        (EventKind::Snapshot, _) => Ok(Effect::Snapshots {
            dropped: e
                .details
                .as_ref()
                .and_then(|d| d.get("dropped"))
                .and_then(Value::as_u64),
        }),
        _ => Ok(Effect::None),
    }
}

impl RunIndex {
    /// Folds in an event's effect on the summary (the caller checked the sequence).
    pub(super) fn apply(&mut self, seq: u64, effect: &Effect<'_>) {
        self.covered = seq;
        if let Effect::Snapshots { dropped } = effect {
            self.snapshots = match dropped {
                Some(n) => self.snapshots.saturating_sub(*n),
                None => self.snapshots + 1,
            };
        }
    }
}

impl StepIndex {
    /// The step after status event `seq` moved it to `to`, from what it was (`None`: no status event yet).
    pub(super) fn next(old: Option<&StepIndex>, seq: u64, to: StepStatus) -> StepIndex {
        let finished = old.map_or(0, |o| o.finished);
        let done = matches!(to, StepStatus::Done | StepStatus::RolledBack);
        StepIndex {
            status: to,
            seq,
            finished: finished + u32::from(done),
        }
    }
}

/// The key of a run's summary.
pub(super) fn run_key(run: RunId) -> Vec<u8> {
    let mut k = b"r".to_vec();
    k.extend_from_slice(&run.0.to_be_bytes());
    k
}

/// What every step key of a run starts with.
pub(super) fn steps_prefix(run: RunId) -> Vec<u8> {
    let mut k = b"s".to_vec();
    k.extend_from_slice(&run.0.to_be_bytes());
    k
}

/// The key of a step's record: `steps_prefix`, then the step id (ordered as the steps tree orders steps).
pub(super) fn step_key(run: RunId, step: &str) -> Vec<u8> {
    let mut k = steps_prefix(run);
    k.extend_from_slice(step.as_bytes());
    k
}

/// Folds event `e` of `run`, journalled in the same transaction, into the index. A run the index does not
/// cover up to the event before (not indexed yet) is left alone: opening indexes it from the journal.
pub(super) fn tx_fold(
    dir: &Path,
    index: &TransactionalTree,
    run: RunId,
    e: &Event,
) -> TxResult<()> {
    let rkey = run_key(run);
    let mut summary: RunIndex = match index.get(&rkey)? {
        Some(v) => tx_decode(dir, &v, "the journal's index")?,
        // A run's first event: its index starts here.
        None if e.seq == 1 => RunIndex::default(),
        None => return Ok(()),
    };
    if summary.covered + 1 != e.seq {
        return Ok(());
    }
    let Ok(effect) = effect(e) else {
        // Left behind: opening finds the journal ahead and reports the event.
        return Ok(());
    };
    if let Effect::Status { step, to } = &effect {
        let skey = step_key(run, step);
        let old: Option<StepIndex> = match index.get(&skey)? {
            Some(v) => Some(tx_decode(dir, &v, "the journal's index")?),
            None => None,
        };
        let new = StepIndex::next(old.as_ref(), e.seq, *to);
        index.insert(skey, tx_encode(&new)?)?;
    }
    summary.apply(e.seq, &effect);
    index.insert(rkey, tx_encode(&summary)?)?;
    Ok(())
}

/// A run's index as folded from (part of) its journal: the summary and the steps whose entry changed.
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub(super) summary: RunIndex,
    pub(super) steps: BTreeMap<String, StepIndex>,
}

impl SledStore {
    /// Checks `run` against its index at open, in O(steps): the index covers the whole journal, the journal
    /// ends where the run says, every step record agrees with its indexed status, the snapshots with their
    /// count. A run the index does not cover yet is indexed from its journal first (reading the events not
    /// covered, checked as `verify` checks them).
    pub(super) fn check_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let summary = match self.run_index(run.id)? {
            Some(s) if s.covered == run.last_event_seq => s,
            Some(s) if s.covered > run.last_event_seq => {
                return Err(self.damaged(format!(
                    "run {} records {} events but its journal's index covers {}",
                    run.id, run.last_event_seq, s.covered
                )));
            }
            start => {
                let from = start.as_ref().map_or(0, |s| s.covered);
                let folded = self.fold_journal(run, start.unwrap_or_default(), from > 0)?;
                self.save_index(run.id, &folded, from == 0)?;
                folded.summary
            }
        };
        self.check_journal_end(run)?;
        let mut indexed: BTreeMap<Vec<u8>, StepStatus> = BTreeMap::new();
        let prefix = steps_prefix(run.id);
        for item in self.index.scan_prefix(&prefix) {
            let (k, v) = item.map_err(self.db_err("read the journal's index"))?;
            let step: StepIndex = decode(&self.dir, &v, "the journal's index")?;
            indexed.insert(k[prefix.len()..].to_vec(), step.status);
        }
        self.check_steps(run, indexed, summary.snapshots)
    }

    /// Checks, reading every event, that the journal is whole and agrees with the step and snapshot records
    /// and with the index.
    pub(super) fn verify_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let folded = self.fold_journal(run, RunIndex::default(), false)?;
        if let Some(summary) = self.run_index(run.id)?
            && summary.covered == run.last_event_seq
        {
            let mut stored = BTreeMap::new();
            let prefix = steps_prefix(run.id);
            for item in self.index.scan_prefix(&prefix) {
                let (k, v) = item.map_err(self.db_err("read the journal's index"))?;
                let step: StepIndex = decode(&self.dir, &v, "the journal's index")?;
                stored.insert(
                    String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                    step,
                );
            }
            if summary != folded.summary || stored != folded.steps {
                return Err(self.damaged(format!(
                    "run {}: the journal's index disagrees with the journal",
                    run.id
                )));
            }
        }
        let expected = folded
            .steps
            .iter()
            .map(|(step, s)| (step.as_bytes().to_vec(), s.status))
            .collect();
        self.check_steps(run, expected, folded.summary.snapshots)
    }

    fn run_index(&self, run: RunId) -> Result<Option<RunIndex>, StateError> {
        match self
            .index
            .get(run_key(run))
            .map_err(self.db_err("read the journal's index"))?
        {
            Some(v) => decode(&self.dir, &v, "the journal's index").map(Some),
            None => Ok(None),
        }
    }

    fn step_index(&self, run: RunId, step: &str) -> Result<Option<StepIndex>, StateError> {
        match self
            .index
            .get(step_key(run, step))
            .map_err(self.db_err("read the journal's index"))?
        {
            Some(v) => decode(&self.dir, &v, "the journal's index").map(Some),
            None => Ok(None),
        }
    }

    /// Folds the events after `start.covered` into `start`, checking that they follow on and that the journal
    /// ends where the run says. `indexed`: steps not met yet start from their index entry (else from none).
    fn fold_journal(
        &self,
        run: &RunInfo,
        start: RunIndex,
        indexed: bool,
    ) -> Result<Folded, StateError> {
        let mut folded = Folded {
            summary: start,
            steps: BTreeMap::new(),
        };
        let mut seq = folded.summary.covered;
        let from = event_key(run.id, seq + 1);
        let end = event_key(RunId(run.id.0.saturating_add(1)), 0);
        for item in self.events.range(from..end) {
            let (k, v) = item.map_err(self.db_err("read events"))?;
            let e: Event = decode(&self.dir, &v, &format!("an event of run {}", run.id))?;
            seq += 1;
            if e.seq != seq || seq_of(&k) != seq {
                return Err(self.damaged(format!(
                    "run {} journal skips from event {} to {}",
                    run.id,
                    seq - 1,
                    e.seq
                )));
            }
            let effect = effect(&e).map_err(|Unreadable| {
                self.damaged(format!("run {} event {seq} lacks its status", run.id))
            })?;
            if let Effect::Status { step, to } = &effect {
                let old = match folded.steps.get(*step) {
                    Some(s) => Some(s.clone()),
                    None if indexed => self.step_index(run.id, step)?,
                    None => None,
                };
                folded
                    .steps
                    .insert(step.to_string(), StepIndex::next(old.as_ref(), seq, *to));
            }
            folded.summary.apply(seq, &effect);
        }
        if seq != run.last_event_seq {
            return Err(self.damaged(format!(
                "run {} records {} events but its journal ends at {seq}",
                run.id, run.last_event_seq
            )));
        }
        Ok(folded)
    }

    /// Writes a fold into the index, in one transaction; `whole`: it is the run's whole index (entries of
    /// steps it does not name are removed).
    fn save_index(&self, run: RunId, folded: &Folded, whole: bool) -> Result<(), StateError> {
        let stale: Vec<sled::IVec> = if whole {
            self.index
                .scan_prefix(steps_prefix(run))
                .keys()
                .collect::<Result<_, _>>()
                .map_err(self.db_err("read the journal's index"))?
        } else {
            Vec::new()
        };
        let mut rows = Vec::with_capacity(folded.steps.len() + 1);
        for (step, s) in &folded.steps {
            rows.push((step_key(run, step), encode(s)?));
        }
        rows.push((run_key(run), encode(&folded.summary)?));
        self.index
            .transaction(|t| {
                for k in &stale {
                    t.remove(k)?;
                }
                for (k, v) in &rows {
                    t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            })
            .map_err(self.tx_err("index the journal"))?;
        self.flush()
    }

    /// The journal holds event `last_event_seq` and nothing after it.
    fn check_journal_end(&self, run: &RunInfo) -> Result<(), StateError> {
        let last = run.last_event_seq;
        let end = event_key(RunId(run.id.0.saturating_add(1)), 0);
        let missing = last > 0
            && !self
                .events
                .contains_key(event_key(run.id, last))
                .map_err(self.db_err("read events"))?;
        let beyond = self
            .events
            .range(event_key(run.id, last + 1)..end)
            .next()
            .transpose()
            .map_err(self.db_err("read events"))?;
        if missing || beyond.is_some() {
            return Err(self.damaged(format!(
                "run {} records {last} events but its journal ends elsewhere",
                run.id
            )));
        }
        Ok(())
    }

    /// Every step record has the status `expected` gives it (`Pending` when absent), every step `expected`
    /// names has a record, and the snapshots number `snapshots`.
    fn check_steps(
        &self,
        run: &RunInfo,
        mut expected: BTreeMap<Vec<u8>, StepStatus>,
        snapshots: u64,
    ) -> Result<(), StateError> {
        /// A step record's status, the rest unread.
        #[derive(Deserialize)]
        struct StatusOnly {
            status: StepStatus,
        }
        for item in self.steps.scan_prefix(run.id.0.to_be_bytes()) {
            let (k, v) = item.map_err(self.db_err("read steps"))?;
            let step = &k[8..];
            let stored: StatusOnly = decode(&self.dir, &v, "a step record")?;
            let journalled = expected.remove(step).unwrap_or(StepStatus::Pending);
            if stored.status != journalled {
                return Err(self.damaged(format!(
                    "run {} step {} is {} but its journal says {journalled}",
                    run.id,
                    String::from_utf8_lossy(step),
                    stored.status
                )));
            }
        }
        if let Some(step) = expected.keys().next() {
            return Err(self.damaged(format!(
                "run {} journals step {}, which has no record",
                run.id,
                String::from_utf8_lossy(step)
            )));
        }
        let stored = self.snapshots.scan_prefix(run.id.0.to_be_bytes()).count() as u64;
        if stored != snapshots {
            return Err(self.damaged(format!(
                "run {} holds {stored} snapshots but journals {snapshots}",
                run.id
            )));
        }
        Ok(())
    }
}
