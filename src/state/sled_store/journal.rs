//! Appending to a run's journal: the event, the run record whose counter it advances and the journal's index
//! (`index`), written in one transaction, so none of them is ever ahead of the others.

use std::path::Path;

use sled::transaction::TransactionalTree;

use super::TxResult;
use super::digest::Digest;
use super::encoding::{event_key, tx_encode};
use crate::state::model::{NewEvent, RunInfo, Timestamp};
use crate::state::rules;

/// The trees every journal entry is written to, inside one transaction.
pub(super) struct TxJournal<'a> {
    pub(super) runs: &'a TransactionalTree,
    pub(super) events: &'a TransactionalTree,
    /// The journal's index (`index`), kept in the same transaction as the events it covers.
    pub(super) index: &'a TransactionalTree,
}

/// Appends `event` to the journal, saves the run whose counter it advanced and folds the event into the index.
/// For a transaction that writes no step record (see `tx_journal_with`).
pub(super) fn tx_journal(
    dir: &Path,
    j: &TxJournal<'_>,
    info: &mut RunInfo,
    event: NewEvent,
    now: Timestamp,
) -> TxResult<u64> {
    tx_journal_with(dir, j, info, event, now, Digest::default())
}

/// `tx_journal` for a transaction that also changed step records of the run: `steps` is how it moved their digest
/// (`Digest::of` each record written, less that of each record it replaced), folded into the index with the event.
pub(super) fn tx_journal_with(
    dir: &Path,
    j: &TxJournal<'_>,
    info: &mut RunInfo,
    event: NewEvent,
    now: Timestamp,
    steps: Digest,
) -> TxResult<u64> {
    let e = rules::next_event(info, event, now);
    j.events
        .insert(&event_key(info.id, e.seq), tx_encode(&e)?)?;
    j.runs.insert(&info.id.0.to_be_bytes(), tx_encode(info)?)?;
    super::index::tx_fold(dir, j.index, info.id, &e, steps)?;
    Ok(e.seq)
}
