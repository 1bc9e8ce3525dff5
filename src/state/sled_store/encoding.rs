//! How records and keys are laid out in sled's trees. State directories
//! written by earlier builds hold this layout: it changes only with the schema
//! (`SCHEMA_VERSION`), and records say which schema wrote them.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::TxResult;
use crate::state::SCHEMA_VERSION;
use crate::state::error::StateError;
use crate::state::layout;
use crate::state::model::{RunId, RunInfo, Snapshot, SnapshotKey, Timestamp};

/// How a snapshot is stored; `Snapshot` itself is deliberately not `Serialize`.
#[derive(Serialize, serde::Deserialize)]
pub(super) struct SnapshotRecord {
    pub(super) key: SnapshotKey,
    pub(super) step: String,
    pub(super) taken: Timestamp,
    pub(super) object: Option<Value>,
    /// Set when `forget-snapshots` removed the payload: `object` is then gone, not absent (see `FORGOTTEN_VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) forgotten: Option<Timestamp>,
}

/// The version a snapshot record whose payload was forgotten carries. Above `SCHEMA_VERSION` on purpose: a
/// migrate from before `forget-snapshots` refuses the record (`NewerRecord`) instead of reading its missing
/// `object` as "the object did not exist" and deleting the live one on rollback. Only `decode_snapshot` reads it.
pub(super) const FORGOTTEN_VERSION: u32 = 3;

/// The key under which a record carries the schema that wrote it (absent: schema 1).
const VERSION_KEY: &str = "_v";
/// A plan's key inside its versioned wrapper (the plan is opaque, maybe not an object).
const PLAN_KEY: &str = "plan";

/// A record read back: versioned (or from schema 1, unversioned); an unreadable one means the directory is
/// damaged, one from a newer schema is refused.
///
/// Parsed straight into `T` (no intermediate `Value`: resume reads thousands of records); the version is read by
/// a second pass that skips everything else. `T` must ignore unknown fields (`_v` among them), as every record
/// type does.
pub(super) fn decode<T: DeserializeOwned>(
    dir: &Path,
    bytes: &[u8],
    what: &str,
) -> Result<T, StateError> {
    check_version(dir, bytes, what)?;
    serde_json::from_slice(bytes).map_err(|e| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is unreadable: {e}"),
    })
}

/// A record's `_v` alone; everything else is skipped unread.
#[derive(serde::Deserialize)]
struct VersionOnly {
    #[serde(rename = "_v", default)]
    v: Option<Value>,
}

/// Refuses a record of a newer schema (or with a version that is not a number); a record that is not an
/// object (a metadata counter) carries none.
fn check_version(dir: &Path, bytes: &[u8], what: &str) -> Result<(), StateError> {
    if trailing_version(bytes).is_some_and(|v| v <= u64::from(SCHEMA_VERSION)) {
        return Ok(());
    }
    let Ok(VersionOnly { v: Some(v) }) = serde_json::from_slice::<VersionOnly>(bytes) else {
        return Ok(());
    };
    let mut o = serde_json::Map::new();
    o.insert(VERSION_KEY.to_string(), v);
    unversioned(dir, Value::Object(o), what).map(|_| ())
}

/// The version at the end of a record as `encode` writes it (`_v` is inserted last and the map keeps its order),
/// read without parsing the record: resume reads thousands. `"_v":N}` that ends the bytes, after `{` or `,`, can
/// only be the last member of the outermost object (within a string the closing quote would follow, within a
/// nested object another brace). `None` when the record does not end so: then it is parsed.
fn trailing_version(bytes: &[u8]) -> Option<u64> {
    let body = bytes.strip_suffix(b"}")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (head, number) = body.split_at(body.len() - digits);
    if number.is_empty() || number.len() > 9 {
        return None;
    }
    let head = head.strip_suffix(b"\"_v\":")?;
    if !(head.ends_with(b",") || head.ends_with(b"{")) {
        return None;
    }
    std::str::from_utf8(number).ok()?.parse().ok()
}

/// A snapshot record read back; also reads the tombstones `forget-snapshots` leaves (`FORGOTTEN_VERSION`).
pub(super) fn decode_snapshot(
    dir: &Path,
    bytes: &[u8],
    what: &str,
) -> Result<SnapshotRecord, StateError> {
    let mut value = parse(dir, bytes, what)?;
    if let Some(o) = value.as_object_mut()
        && o.get(VERSION_KEY).and_then(Value::as_u64) == Some(u64::from(FORGOTTEN_VERSION))
        && o.contains_key("forgotten")
    {
        o.remove(VERSION_KEY);
        return from_value(dir, value, what);
    }
    from_value(dir, unversioned(dir, value, what)?, what)
}

/// The tombstone of a snapshot record: the same record without its payload, versioned `FORGOTTEN_VERSION`.
/// `None` when there is nothing to forget (the object was absent, or it is forgotten already).
pub(super) fn forget_payload(
    dir: &Path,
    bytes: &[u8],
    on: Timestamp,
) -> Result<Option<(SnapshotRecord, Vec<u8>)>, StateError> {
    let mut record = decode_snapshot(dir, bytes, "a snapshot")?;
    if record.forgotten.is_some() || record.object.as_ref().is_none_or(Value::is_null) {
        return Ok(None);
    }
    record.object = None;
    record.forgotten = Some(on);
    let mut value = serde_json::to_value(&record)
        .map_err(|e| StateError::InvalidInput(format!("cannot encode a record: {e}")))?;
    if let Some(o) = value.as_object_mut() {
        o.insert(VERSION_KEY.to_string(), Value::from(FORGOTTEN_VERSION));
    }
    Ok(Some((record, to_bytes(&value)?)))
}

/// A plan read back: `{"_v": N, "plan": ...}`, or in schema 1 the plan itself.
pub(super) fn decode_plan(dir: &Path, bytes: &[u8]) -> Result<Value, StateError> {
    let what = "a plan";
    let mut value = parse(dir, bytes, what)?;
    let wrapped = value.get(VERSION_KEY).is_some();
    value = unversioned(dir, value, what)?;
    if !wrapped {
        return Ok(value);
    }
    match value {
        Value::Object(mut o) => o.remove(PLAN_KEY).ok_or_else(|| StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("{what} lacks its {PLAN_KEY:?}"),
        }),
        _ => unreachable!("only an object has a version key"),
    }
}

/// A plan's JSON text as stored (see `decode_plan`), its wrapper removed; the plan itself is not parsed.
pub(super) fn plan_text(dir: &Path, bytes: &[u8]) -> Result<String, StateError> {
    /// The wrapper's fields; anything else (a schema 1 plan's own fields) is skipped.
    #[derive(serde::Deserialize)]
    struct Wrapper<'a> {
        #[serde(rename = "_v", default)]
        v: Option<Value>,
        #[serde(borrow, default)]
        plan: Option<&'a serde_json::value::RawValue>,
    }
    let what = "a plan";
    let damaged = |detail: String| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|e| damaged(format!("{what} is unreadable: {e}")))?;
    let wrapper: Option<Wrapper<'_>> = match text.trim_start().starts_with('{') {
        true => Some(
            serde_json::from_str(text)
                .map_err(|e| damaged(format!("{what} is unreadable: {e}")))?,
        ),
        false => None,
    };
    match wrapper {
        Some(Wrapper { v: Some(v), plan }) => {
            let mut o = serde_json::Map::new();
            o.insert(VERSION_KEY.to_string(), v);
            unversioned(dir, Value::Object(o), what)?;
            let plan = plan.ok_or_else(|| damaged(format!("{what} lacks its {PLAN_KEY:?}")))?;
            Ok(plan.get().to_string())
        }
        // Schema 1: the plan itself.
        _ => {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| damaged(format!("{what} is unreadable: {e}")))?;
            Ok(text.to_string())
        }
    }
}

fn parse(dir: &Path, bytes: &[u8], what: &str) -> Result<Value, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is unreadable: {e}"),
    })
}

fn from_value<T: DeserializeOwned>(dir: &Path, value: Value, what: &str) -> Result<T, StateError> {
    serde_json::from_value(value).map_err(|e| StateError::Damaged {
        dir: dir.to_path_buf(),
        detail: format!("{what} is unreadable: {e}"),
    })
}

/// Checks and removes the record's version. Scalars (the metadata counters) carry none.
fn unversioned(dir: &Path, mut value: Value, what: &str) -> Result<Value, StateError> {
    let Some(o) = value.as_object_mut() else {
        return Ok(value);
    };
    let Some(v) = o.remove(VERSION_KEY) else {
        return Ok(value);
    };
    let found = v
        .as_u64()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .ok_or_else(|| StateError::Damaged {
            dir: dir.to_path_buf(),
            detail: format!("{what} has a version that is not a number: {v}"),
        })?;
    if found > SCHEMA_VERSION {
        return Err(StateError::NewerRecord {
            dir: dir.to_path_buf(),
            what: what.to_string(),
            found,
            supported: SCHEMA_VERSION,
            written_by: layout::written_by(dir),
        });
    }
    Ok(value)
}

/// A record as stored: JSON, an object with its schema under `_v`. Values that are not objects are stored as
/// they are (only the metadata counters).
pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    let mut value = serde_json::to_value(value)
        .map_err(|e| StateError::InvalidInput(format!("cannot encode a record: {e}")))?;
    if let Some(o) = value.as_object_mut() {
        o.insert(VERSION_KEY.to_string(), Value::from(SCHEMA_VERSION));
    }
    to_bytes(&value)
}

/// A plan as stored: `{"_v": N, "plan": <the plan>}`, whatever the plan's shape.
pub(super) fn encode_plan(plan: &Value) -> Result<Vec<u8>, StateError> {
    to_bytes(&serde_json::json!({ VERSION_KEY: SCHEMA_VERSION, PLAN_KEY: plan }))
}

fn to_bytes(value: &Value) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value)
        .map_err(|e| StateError::InvalidInput(format!("cannot encode a record: {e}")))
}

/// Aborts a transaction with `e`.
pub(super) fn abort<T>(e: StateError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// `decode` inside a transaction.
pub(super) fn tx_decode<T: DeserializeOwned>(dir: &Path, bytes: &[u8], what: &str) -> TxResult<T> {
    decode(dir, bytes, what).map_err(ConflictableTransactionError::Abort)
}

/// `encode` inside a transaction.
pub(super) fn tx_encode<T: Serialize>(value: &T) -> TxResult<Vec<u8>> {
    encode(value).map_err(ConflictableTransactionError::Abort)
}

/// A step's record: run (big-endian), then the step id.
pub(super) fn step_key(run: RunId, step: &str) -> Vec<u8> {
    let mut k = run.0.to_be_bytes().to_vec();
    k.extend_from_slice(step.as_bytes());
    k
}

/// An event: run, then sequence number, both big-endian, so a scan reads them in order.
pub(super) fn event_key(run: RunId, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&run.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number of an event's key.
pub(super) fn seq_of(key: &[u8]) -> u64 {
    key.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Length-prefixed parts, so no name can collide with another by containing a separator.
/// Run, then step, then the object: a step's snapshots share a prefix.
pub(super) fn snapshot_key(run: RunId, step: &str, key: &SnapshotKey) -> Vec<u8> {
    let mut k = snapshot_prefix(run, step);
    let mut part = |s: &str| {
        k.extend_from_slice(&(s.len() as u32).to_be_bytes());
        k.extend_from_slice(s.as_bytes());
    };
    part(&key.cluster);
    part(&key.object.api_version);
    part(&key.object.kind);
    part(key.object.namespace.as_deref().unwrap_or(""));
    part(&key.object.name);
    k
}

/// What every snapshot key of a step starts with.
pub(super) fn snapshot_prefix(run: RunId, step: &str) -> Vec<u8> {
    let mut k = run.0.to_be_bytes().to_vec();
    k.extend_from_slice(&(step.len() as u32).to_be_bytes());
    k.extend_from_slice(step.as_bytes());
    k
}

/// Reads a run inside a transaction.
pub(super) fn tx_run(dir: &Path, runs: &TransactionalTree, run: RunId) -> TxResult<RunInfo> {
    match runs.get(run.0.to_be_bytes())? {
        Some(v) => tx_decode(dir, &v, "a run record"),
        None => abort(StateError::UnknownRun { run }),
    }
}

impl SnapshotRecord {
    /// The snapshot, or `SnapshotForgotten` when `forget-snapshots` removed it: a rollback must fail, not
    /// read the missing payload as an object that did not exist.
    pub(super) fn into_snapshot(self, run: RunId) -> Result<Snapshot, StateError> {
        if let Some(on) = self.forgotten {
            return Err(StateError::SnapshotForgotten {
                run,
                step: self.step,
                key: Box::new(self.key),
                on,
            });
        }
        Ok(Snapshot {
            key: self.key,
            step: self.step,
            taken: self.taken,
            object: self.object,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trailing_version_is_read_only_where_it_is_the_records_own() {
        assert_eq!(trailing_version(br#"{"status":"done","_v":2}"#), Some(2));
        assert_eq!(trailing_version(br#"{"_v":12}"#), Some(12));
        // In a string, in a nested object, not last, or not a number: the record is parsed instead.
        assert_eq!(trailing_version(br#"{"a":"\"_v\":2}"}"#), None);
        assert_eq!(trailing_version(br#"{"a":{"_v":2}}"#), None);
        assert_eq!(trailing_version(br#"{"_v":2,"a":1}"#), None);
        assert_eq!(trailing_version(br#"{"_v":"2"}"#), None);
        assert_eq!(trailing_version(br#"{"x_v":2}"#), None);
        assert_eq!(trailing_version(b"7"), None);
        // Found or not, a newer record is refused and an unversioned one read.
        let dir = Path::new("/nonexistent");
        let newer = format!(r#"{{"status":"done","_v":{}}}"#, SCHEMA_VERSION + 1);
        assert!(matches!(
            check_version(dir, newer.as_bytes(), "a step record"),
            Err(StateError::NewerRecord { .. })
        ));
        let nested_newer = format!(r#"{{"_v":{},"a":{{"_v":1}}}}"#, SCHEMA_VERSION + 1);
        assert!(matches!(
            check_version(dir, nested_newer.as_bytes(), "a step record"),
            Err(StateError::NewerRecord { .. })
        ));
        assert!(check_version(dir, br#"{"status":"done"}"#, "a step record").is_ok());
    }
}
