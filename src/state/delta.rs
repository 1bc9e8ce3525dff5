//! A run's records as one value, whole or in part: what a store that keeps a log of transactions (the Kubernetes
//! backend) writes per transaction and replays into a `MemoryStore` when it opens.
//!
//! Holds snapshots verbatim, Secret data included: serialise it only into storage that is itself secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Event, LeftObject, RunInfo, SnapshotKey, StepState, Timestamp};

/// Part or all of one run's records. Applying it replaces what it names and leaves the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDelta {
    /// The run (its newest `last_event_seq` included).
    pub info: RunInfo,
    /// The plan, when it was set or replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// Step states set, by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, StepState>,
    /// Steps whose snapshots are replaced by these (an empty list forgets them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshots: BTreeMap<String, Vec<SnapshotRecord>>,
    /// Steps whose records of what they left are replaced by these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left: BTreeMap<String, Vec<LeftObject>>,
    /// Journal entries appended, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// A snapshot as stored: the object verbatim (see the module docs).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub key: SnapshotKey,
    pub taken: Timestamp,
    pub object: Option<Value>,
}

impl std::fmt::Debug for SnapshotRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotRecord")
            .field("key", &self.key)
            .field("taken", &self.taken)
            .field("present", &self.object.is_some())
            .finish()
    }
}

/// Which of a run's records a delta carries besides the run itself.
#[derive(Debug, Clone, Default)]
pub struct DeltaScope {
    /// The plan and every step (a new run, a replaced plan).
    pub whole_plan: bool,
    /// This step's state.
    pub step: Option<String>,
    /// This step's snapshots, all of them.
    pub snapshots_of: Option<String>,
    /// What this step left, all of it.
    pub left_of: Option<String>,
    /// Journal entries after this sequence number.
    pub events_after: u64,
}
