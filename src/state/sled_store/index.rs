//! The journal's index (tree `index`): what opening a state directory needs to check a run without reading its
//! journal. One summary per run: how far it covers the journal, how many snapshots the journal accounts for, and
//! the digest (`digest`) of the run's step records. Every write of a step record journals in the same
//! transaction (`tx_journal_with`), which moves the summary on by the event and the digest by the record's
//! change: after a crash at any point (a transaction is all or nothing) the summary says what the journal and the
//! records say.
//!
//! Why opening may trust it (the check of equal strength to reading the whole journal): sled may recover a damaged
//! file to a mixture of old and new pages without error. The run record, the summary and the journal's last event
//! are checked against each other (a few reads), then every step record is read once and hashed: a record older
//! or newer than the last one written, missing or extra, changes the digest. That catches every record whose
//! status disagrees with the journal, as comparing them with the journal did, and also a stale record whose
//! status happens to agree (an older attempt count or error); the index holds nothing per step that could itself
//! be stale. Resume reads these records next anyway, and finds their pages in sled's cache.
//!
//! It is a fold of the journal and the records, never a second truth: a run without a summary (a directory of an
//! older migrate, a run copied in) or behind its journal (an older migrate wrote since) is indexed again, the
//! whole journal folded and every step record's status checked against it before their digest is taken.
//! A disagreement found by the digest is looked into the same way, to say which record is wrong.
//!
//! Before the digest, the index held a summary and an entry per step under other keys (`r`, `s`); indexing a run
//! removes them, so an older build of migrate that reads them finds none and indexes the run its own way.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::TransactionalTree;

use super::digest::Digest;
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
    /// The digest of the run's step records (key and bytes), as the transactions that wrote them left them.
    pub(super) steps: Digest,
}

/// What one event changes in the summary (the status events are checked for their status: a fold without it
/// could not say what the step records must hold).
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

/// The key of a run's summary.
pub(super) fn run_key(run: RunId) -> Vec<u8> {
    let mut k = b"d".to_vec();
    k.extend_from_slice(&run.0.to_be_bytes());
    k
}

/// The keys of a run's rows of the index's earlier layout: its summary, and what every step key starts with.
fn legacy_keys(run: RunId) -> (Vec<u8>, Vec<u8>) {
    let tagged = |tag: u8| {
        let mut k = vec![tag];
        k.extend_from_slice(&run.0.to_be_bytes());
        k
    };
    (tagged(b'r'), tagged(b's'))
}

/// Folds event `e` of `run`, journalled in the same transaction, into the index; `steps`: how the transaction
/// changed the digest of the run's step records. A run the index does not cover up to the event before (not
/// indexed yet) is left alone: opening indexes it from the journal.
pub(super) fn tx_fold(
    dir: &Path,
    index: &TransactionalTree,
    run: RunId,
    e: &Event,
    steps: Digest,
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
    summary.apply(e.seq, &effect);
    summary.steps = summary.steps.add(steps);
    index.insert(rkey, tx_encode(&summary)?)?;
    Ok(())
}

/// A run's journal folded: the summary (its digest not taken) and each step's latest journalled status.
#[derive(Debug, Default)]
struct Folded {
    summary: RunIndex,
    statuses: BTreeMap<Vec<u8>, StepStatus>,
}

impl SledStore {
    /// Checks `run` against its summary at open, reading one record per step and no event: the summary covers
    /// the whole journal, the journal ends where the run says, the step records are those last written (their
    /// digest) and the snapshots as many as journalled. A run the index does not cover is indexed from its
    /// journal first (see the module docs).
    pub(super) fn check_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let summary = match self.run_index(run.id)? {
            Some(s) if s.covered == run.last_event_seq => s,
            Some(s) if s.covered > run.last_event_seq => {
                return Err(self.damaged(format!(
                    "run {} records {} events but its journal's index covers {}",
                    run.id, run.last_event_seq, s.covered
                )));
            }
            _ => return self.index_run(run),
        };
        self.check_journal_end(run)?;
        if self.steps_digest(run.id)? != summary.steps {
            return Err(self.disagreement(run));
        }
        self.check_snapshots(run, summary.snapshots)
    }

    /// Checks, reading every event, that the journal is whole and agrees with the step and snapshot records
    /// and with the index.
    pub(super) fn verify_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let folded = self.fold_journal(run)?;
        let digest = self.check_steps(run, folded.statuses, folded.summary.snapshots)?;
        if let Some(summary) = self.run_index(run.id)?
            && summary.covered == run.last_event_seq
            && (summary.snapshots != folded.summary.snapshots || summary.steps != digest)
        {
            return Err(self.damaged(format!(
                "run {}: the journal's index disagrees with the journal and the step records",
                run.id
            )));
        }
        Ok(())
    }

    /// Indexes `run` from its whole journal, checking the journal and the records as `verify_run` does.
    fn index_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let mut folded = self.fold_journal(run)?;
        folded.summary.steps = self.check_steps(run, folded.statuses, folded.summary.snapshots)?;
        self.save_index(run.id, &folded.summary)
    }

    /// The step records disagree with their digest: says which one disagrees with the journal when one does.
    fn disagreement(&self, run: &RunInfo) -> StateError {
        let found = self
            .fold_journal(run)
            .and_then(|f| self.check_steps(run, f.statuses, f.summary.snapshots));
        match found {
            Err(e) => e,
            Ok(_) => self.damaged(format!(
                "run {}: its step records are not the ones last written (their digest differs from the journal's \
                 index): some are older or newer than the rest",
                run.id
            )),
        }
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

    /// The digest of `run`'s step records as stored, read without decoding them.
    fn steps_digest(&self, run: RunId) -> Result<Digest, StateError> {
        let mut digest = Digest::default();
        for item in self.steps.scan_prefix(run.0.to_be_bytes()) {
            let (k, v) = item.map_err(self.db_err("read steps"))?;
            digest = digest.add(Digest::of(&k, &v));
        }
        Ok(digest)
    }

    /// Folds the whole journal of `run`, checking that its events follow on and that it ends where the run says.
    fn fold_journal(&self, run: &RunInfo) -> Result<Folded, StateError> {
        let mut folded = Folded::default();
        let mut seq = 0;
        let from = event_key(run.id, 1);
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
                folded.statuses.insert(step.as_bytes().to_vec(), *to);
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

    /// Writes `run`'s summary, in one transaction with the removal of its rows of the earlier layout.
    fn save_index(&self, run: RunId, summary: &RunIndex) -> Result<(), StateError> {
        let (old_summary, old_steps) = legacy_keys(run);
        let mut stale: Vec<sled::IVec> = self
            .index
            .scan_prefix(old_steps)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(self.db_err("read the journal's index"))?;
        stale.push(old_summary.into());
        let row = encode(summary)?;
        self.index
            .transaction(|t| {
                for k in &stale {
                    t.remove(k)?;
                }
                t.insert(run_key(run), row.as_slice())?;
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
    /// names has a record, and the snapshots number `snapshots`. Returns the records' digest.
    fn check_steps(
        &self,
        run: &RunInfo,
        mut expected: BTreeMap<Vec<u8>, StepStatus>,
        snapshots: u64,
    ) -> Result<Digest, StateError> {
        /// A step record's status, the rest unread.
        #[derive(Deserialize)]
        struct StatusOnly {
            status: StepStatus,
        }
        let mut digest = Digest::default();
        for item in self.steps.scan_prefix(run.id.0.to_be_bytes()) {
            let (k, v) = item.map_err(self.db_err("read steps"))?;
            digest = digest.add(Digest::of(&k, &v));
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
        self.check_snapshots(run, snapshots)?;
        Ok(digest)
    }

    /// The run holds `snapshots` snapshot records.
    fn check_snapshots(&self, run: &RunInfo, snapshots: u64) -> Result<(), StateError> {
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
