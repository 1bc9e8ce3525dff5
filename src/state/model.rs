//! The records the store keeps: runs, step states, snapshots, journal events.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::redact::redact_object;
use crate::object::ObjectRef;

/// A run's number: 1 for the first run in a state directory, then counting up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A UTC instant, stored and exported as RFC 3339.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}", self.0.unix_timestamp()),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Parses the text where it lies (no copy: a resume reads thousands).
        struct Rfc3339Text;
        impl serde::de::Visitor<'_> for Rfc3339Text {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map(Timestamp)
                    .map_err(|e| E::custom(format!("bad timestamp {s:?}: {e}")))
            }
        }
        d.deserialize_str(Rfc3339Text)
    }
}

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RunKind {
    Apply,
    /// Undo phases after `to_phase`, newest first.
    Rollback {
        to_phase: String,
    },
}

/// How a run ended, or `Running` while it has not (also after a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Running,
    Succeeded,
    Failed,
    Interrupted,
    /// Undone down to a phase by `rollback --to`; `apply --resume` redoes it.
    RolledBack,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::RolledBack => "rolled back",
        })
    }
}

/// What `begin_run` needs.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Hash of the spec the plan was made from (`--resume` compares it).
    pub fingerprint: String,
    pub spec_name: String,
    pub kind: RunKind,
    /// The plan, opaque to the store; returned as given by `Store::plan`.
    pub plan: Value,
    /// Every step id of the plan; each starts `Pending`.
    pub steps: Vec<String>,
}

/// A run as recorded (the plan is fetched separately with `Store::plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: RunId,
    pub fingerprint: String,
    pub spec_name: String,
    pub kind: RunKind,
    pub started: Timestamp,
    /// Set by `finish_run`, cleared by `resume_run`.
    pub finished: Option<Timestamp>,
    pub outcome: Outcome,
    /// How many times `resume_run` continued this run.
    pub resumed: u32,
    /// Sequence number of the run's newest journal event (events count from 1).
    pub last_event_seq: u64,
    /// The phase an `apply --until` stopped after, by name (`trust`): set with outcome `Interrupted` by
    /// `pause_run`, cleared when the run goes on. Absent in records of older builds (never paused), and
    /// skipped when unset, so those builds read a paused run as interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_after: Option<String>,
}

impl RunInfo {
    /// How the run stands in a few words: its outcome, or `paused after trust`.
    pub fn standing(&self) -> String {
        match (&self.paused_after, self.outcome) {
            (Some(phase), Outcome::Interrupted) => format!("paused after {phase}"),
            _ => self.outcome.to_string(),
        }
    }
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Failed,
    RollingBack,
    RolledBack,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::RollingBack => "rolling-back",
            StepStatus::RolledBack => "rolled-back",
        })
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    pub status: StepStatus,
    /// Times the step entered `Running` or `RollingBack` in this run.
    pub attempts: u32,
    /// Start of the latest attempt.
    pub started: Option<Timestamp>,
    /// End of the latest attempt (`Done`, `Failed` or `RolledBack`); cleared when a new attempt starts.
    pub finished: Option<Timestamp>,
    /// Error of the latest failed attempt (private keys and bearer tokens scrubbed); cleared on success.
    pub last_error: Option<String>,
}

impl StepState {
    /// A step not started.
    pub fn pending() -> Self {
        StepState {
            status: StepStatus::Pending,
            attempts: 0,
            started: None,
            finished: None,
            last_error: None,
        }
    }
}

/// Which live object a snapshot is of: the object's address in a cluster.
///
/// Ordered by cluster, then object. Stored flat, as
/// `{ "cluster", "apiVersion", "kind", "namespace": null|ns, "name" }`
/// (see `StoredKey`): state directories hold that shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "StoredKey", into = "StoredKey")]
pub struct SnapshotKey {
    /// The cluster's name in the plan.
    pub cluster: String,
    /// The object in that cluster.
    pub object: ObjectRef,
}

impl SnapshotKey {
    /// The key of `object` in `cluster`. An empty namespace is no namespace.
    pub fn of(cluster: &str, object: &ObjectRef) -> Self {
        let mut object = object.clone();
        object.namespace = object.namespace.filter(|n| !n.is_empty());
        SnapshotKey {
            cluster: cluster.to_string(),
            object,
        }
    }

    /// The key from its parts. An empty namespace is no namespace.
    pub fn new(
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Self {
        Self::of(cluster, &ObjectRef::new(api_version, kind, namespace, name))
    }
}

impl fmt::Display for SnapshotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.object;
        match &o.namespace {
            Some(ns) => write!(
                f,
                "{}: {} {} {}/{}",
                self.cluster, o.api_version, o.kind, ns, o.name
            ),
            None => write!(
                f,
                "{}: {} {} {}",
                self.cluster, o.api_version, o.kind, o.name
            ),
        }
    }
}

/// The serialised shape of a [`SnapshotKey`], kept as state directories
/// store it (the namespace written as `null` when absent, unlike the plan's
/// `Object`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKey {
    cluster: String,
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl From<StoredKey> for SnapshotKey {
    fn from(k: StoredKey) -> Self {
        // Not through `of`: a stored key reads back exactly as written.
        SnapshotKey {
            cluster: k.cluster,
            object: ObjectRef {
                api_version: k.api_version,
                kind: k.kind,
                namespace: k.namespace,
                name: k.name,
            },
        }
    }
}

impl From<SnapshotKey> for StoredKey {
    fn from(k: SnapshotKey) -> Self {
        StoredKey {
            cluster: k.cluster,
            api_version: k.object.api_version,
            kind: k.object.kind,
            namespace: k.object.namespace,
            name: k.object.name,
        }
    }
}

/// The live object before `migrate` first touched it in a run, or `None` if it did not exist.
///
/// Holds Secret data verbatim (rollback restores it exactly), so it is not `Serialize`: export it with
/// `to_redacted_json`; its `Debug` redacts too.
#[derive(Clone, PartialEq)]
pub struct Snapshot {
    pub key: SnapshotKey,
    /// The step that took it.
    pub step: String,
    pub taken: Timestamp,
    pub object: Option<Value>,
}

impl Snapshot {
    /// The snapshot as JSON with Secret values replaced, for `status -o json` and the like.
    pub fn to_redacted_json(&self) -> Value {
        serde_json::json!({
            "key": self.key,
            "step": self.step,
            "taken": self.taken,
            "object": self.object.as_ref().map(redact_object),
        })
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("key", &self.key)
            .field("step", &self.step)
            .field("taken", &self.taken)
            .field("object", &self.object.as_ref().map(redact_object))
            .finish()
    }
}

/// What `migrate` left of one object when a step was done: the yardstick for drift at rollback.
///
/// Recorded for every object a step applied, patched, edited or deleted, in the same durable write as the
/// step's `Done`. Holds no Secret value: for a Secret only the hash of its content and its key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftObject {
    /// The object.
    pub key: SnapshotKey,
    /// The step that left it so.
    pub step: String,
    /// When the step was done.
    pub recorded: Timestamp,
    /// What it was left as.
    pub left: Left,
}

/// The state an object was left in (see [`LeftObject`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Left {
    /// The step deleted it.
    Absent,
    /// The step left it present.
    #[serde(rename_all = "camelCase")]
    Present {
        /// SHA-256 (hex) of the content a user may change: labels, annotations, spec, data and the other
        /// top-level fields; not status or the server's bookkeeping (`engine::drift` says exactly what).
        hash: String,
        /// That content, for a report of what changed; `None` for a Secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Value>,
        /// A Secret's key names (never values); empty for other kinds.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        secret_keys: Vec<String>,
    },
}

/// Which snapshots `Store::snapshots` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub cluster: Option<String>,
    pub step: Option<String>,
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Journalled by the store.
    RunStarted,
    RunResumed,
    RunFinished,
    StepStatus,
    Snapshot,
    /// Journalled by the engine.
    Action,
    Retry,
    Note,
    Warning,
}

/// What `record_event` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub step: Option<String>,
    pub kind: EventKind,
    pub message: String,
    pub details: Option<Value>,
}

impl NewEvent {
    /// An event of `kind`, about `step` when it is about one.
    pub fn new(kind: EventKind, step: Option<&str>, message: impl Into<String>) -> Self {
        NewEvent {
            step: step.map(str::to_string),
            kind,
            message: message.into(),
            details: None,
        }
    }

    /// The event with structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// One journal entry. Secret values in `details` are redacted when recorded, so it is safe to export as is.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub kind: EventKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("seq", &self.seq)
            .field("at", &self.at)
            .field("step", &self.step)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("details", &self.details.as_ref().map(redact_object))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_key_keeps_its_stored_shape() {
        let cluster_scoped = SnapshotKey::new("c1", "v1", "Namespace", Some(""), "istio-system");
        let text = serde_json::to_string(&cluster_scoped).unwrap();
        assert_eq!(
            text,
            r#"{"cluster":"c1","apiVersion":"v1","kind":"Namespace","namespace":null,"name":"istio-system"}"#
        );
        assert_eq!(
            serde_json::from_str::<SnapshotKey>(&text).unwrap(),
            cluster_scoped
        );
        let secret = SnapshotKey::of("c1", &ObjectRef::secret("istio-system", "cacerts"));
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            r#"{"cluster":"c1","apiVersion":"v1","kind":"Secret","namespace":"istio-system","name":"cacerts"}"#
        );
        assert_eq!(secret.to_string(), "c1: v1 Secret istio-system/cacerts");
    }

    #[test]
    fn snapshot_keys_order_by_cluster_then_object() {
        let a = SnapshotKey::new("a", "v1", "Secret", Some("z"), "z");
        let b = SnapshotKey::new("b", "apps/v1", "Deployment", Some("a"), "a");
        assert!(a < b);
    }
}
