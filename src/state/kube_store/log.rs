//! The log: the store's transactions as Secrets, each created once and never updated.
//!
//! Entry `seq` is the Secret `migrate-state-<seq, 12 digits>` (the head), and when its payload is larger than
//! `CHUNK` its first part: the rest are Secrets `migrate-state-<seq>-<nonce>-<i>`, created before the head, which
//! names their nonce and count and the SHA-256 of the whole payload. An entry exists once its head does. Creating
//! a head is the optimistic concurrency: the API server refuses a second object of that name (409), so two
//! writers can never both write entry N, and a writer that lost its Lease finds its next name taken by the new
//! holder's first entry (its fence). Parts of a head never created (a writer killed, or refused) are garbage;
//! the holder removes them after its fence.
//!
//! A checkpoint entry holds every record (`MemoryStore::image`); opening replays the newest checkpoint and what
//! follows it, which must be contiguous. Entries before the newest checkpoint are deleted once it is written.
//! That frees their names: a write of a stale holder already on the wire may still land there, below the
//! checkpoint, where nothing is ever read (and the next holder's clean-up deletes it). Names at or above the
//! newest checkpoint are never freed, nor is the current holder's own fence (the name an earlier holder writes
//! next), so the fence holds where it matters.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::delta::RunDelta;
use super::super::error::StateError;
use super::retry::retrying;

/// The Secret type of every object of the log.
pub const SECRET_TYPE: &str = "migrate.meshops.dev/state";
/// Payload bytes per Secret: 512 KiB, base64 about 700 KiB, well under the API server's request limit.
pub const CHUNK: usize = 512 * 1024;
/// The name every store's objects start with; one store per namespace.
pub const STORE_NAME: &str = "state";
/// The format tag of an entry's payload.
const FORMAT: &str = "migrate.meshops.dev/state-log";

const LABEL_MANAGED: &str = "app.kubernetes.io/managed-by";
const LABEL_STORE: &str = "migrate.meshops.dev/store";
const LABEL_ROLE: &str = "migrate.meshops.dev/role";
const LABEL_SEQ: &str = "migrate.meshops.dev/seq";
const LABEL_RUN: &str = "migrate.meshops.dev/run";
const ANNOTATION_SHA: &str = "migrate.meshops.dev/sha256";
const ANNOTATION_PARTS: &str = "migrate.meshops.dev/parts";
const DATA_KEY: &str = "entry";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// Every record of the store (the first entry is an empty one).
    Checkpoint,
    /// One transaction's records.
    Changes,
    /// Written by a new holder when it opens: takes the next name from any earlier holder still writing.
    Fence,
}

/// One entry's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub format: String,
    /// The state schema (`SCHEMA_VERSION`) of the records.
    pub schema: u32,
    /// The store's id, set by its first entry: entries of another store are refused.
    pub store: String,
    pub seq: u64,
    /// The holder id of the writer.
    pub holder: String,
    pub written_by: String,
    pub kind: EntryKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunDelta>,
}

impl Entry {
    /// An entry of this build.
    pub fn new(store: &str, seq: u64, holder: &str, kind: EntryKind, runs: Vec<RunDelta>) -> Self {
        Entry {
            format: FORMAT.into(),
            schema: super::super::SCHEMA_VERSION,
            store: store.into(),
            seq,
            holder: holder.into(),
            written_by: env!("CARGO_PKG_VERSION").into(),
            kind,
            runs,
        }
    }
}

/// The log as listed: the entries to replay, and what is left to clean up.
#[derive(Debug, Default)]
pub struct Listed {
    /// The newest checkpoint and every entry after it, in order.
    pub entries: Vec<Entry>,
    /// The total payload size of the entries after the checkpoint, and of the checkpoint.
    pub bytes_since_checkpoint: usize,
    pub checkpoint_bytes: usize,
    /// Heads before the checkpoint and parts no head names: safe to delete once this holder has fenced.
    pub garbage: Vec<String>,
}

impl Listed {
    /// The sequence number the next entry takes.
    pub fn next_seq(&self) -> u64 {
        self.entries.last().map_or(1, |e| e.seq + 1)
    }
}

/// Why an entry was not written.
#[derive(Debug)]
pub enum AppendError {
    /// Another writer has that sequence number.
    Taken,
    Failed(StateError),
}

/// The log in one namespace.
#[derive(Clone)]
pub struct Log {
    api: Api<Secret>,
    location: String,
}

pub(super) fn head_name(seq: u64) -> String {
    format!("migrate-{STORE_NAME}-{seq:012}")
}

fn labels(role: &str, seq: u64, run: Option<u64>) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = [
        (LABEL_MANAGED, "migrate".to_string()),
        (LABEL_STORE, STORE_NAME.to_string()),
        (LABEL_ROLE, role.to_string()),
        (LABEL_SEQ, seq.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(run) = run {
        l.insert(LABEL_RUN.into(), run.to_string());
    }
    l
}

fn secret(
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    bytes: &[u8],
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some([(DATA_KEY.to_string(), ByteString(bytes.to_vec()))].into()),
        ..Default::default()
    }
}

fn data_of(s: &Secret) -> Option<&[u8]> {
    s.data.as_ref()?.get(DATA_KEY).map(|b| b.0.as_slice())
}

fn label<'a>(s: &'a Secret, key: &str) -> Option<&'a str> {
    s.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(s: &'a Secret, key: &str) -> Option<&'a str> {
    s.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

impl Log {
    /// The log in `api`'s namespace; `location` names it in errors.
    pub fn new(api: Api<Secret>, location: &str) -> Self {
        Log {
            api,
            location: location.into(),
        }
    }

    fn damaged(&self, detail: impl Into<String>) -> StateError {
        StateError::LogDamaged {
            location: self.location.clone(),
            detail: detail.into(),
        }
    }

    fn kube(&self, op: &'static str) -> impl FnOnce(kube::Error) -> StateError + '_ {
        move |e| StateError::Kube {
            location: self.location.clone(),
            op,
            source: Box::new(e),
        }
    }

    /// Lists and verifies the log (checksums, format, schema, store id, contiguity after the checkpoint).
    pub async fn list(&self) -> Result<Listed, StateError> {
        let params = ListParams::default().labels(&format!("{LABEL_STORE}={STORE_NAME}"));
        let all = retrying("list the log", || self.api.list(&params))
            .await
            .map_err(self.kube("list the state's log"))?;
        let mut heads: BTreeMap<u64, Secret> = BTreeMap::new();
        let mut parts: BTreeMap<String, Secret> = BTreeMap::new();
        for s in all.items {
            let Some(name) = s.metadata.name.clone() else {
                continue;
            };
            if s.type_.as_deref() != Some(SECRET_TYPE) {
                continue;
            }
            match label(&s, LABEL_ROLE) {
                Some("entry") => {
                    let seq = label(&s, LABEL_SEQ)
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|seq| head_name(*seq) == name)
                        .ok_or_else(|| {
                            self.damaged(format!("Secret {name} has no valid sequence label"))
                        })?;
                    heads.insert(seq, s);
                }
                Some("part") => {
                    parts.insert(name, s);
                }
                _ => {}
            }
        }
        let mut listed = Listed::default();
        if heads.is_empty() {
            listed.garbage = parts.into_keys().collect();
            return Ok(listed);
        }
        // Decode from the newest down to the newest checkpoint; everything older is garbage.
        let mut used_parts: BTreeSet<String> = BTreeSet::new();
        let mut decoded: Vec<(Entry, usize)> = Vec::new();
        let mut checkpoint_seq = None;
        for (seq, head) in heads.iter().rev() {
            if checkpoint_seq.is_some() {
                listed.garbage.push(head_name(*seq));
                continue;
            }
            let (entry, size, used) = self.decode(*seq, head, &parts)?;
            used_parts.extend(used);
            if entry.kind == EntryKind::Checkpoint {
                checkpoint_seq = Some(*seq);
            }
            decoded.push((entry, size));
        }
        let Some(first) = checkpoint_seq else {
            return Err(self.damaged(format!(
                "no checkpoint entry at or before entry {} (the first entries are missing)",
                heads.keys().next().copied().unwrap_or(0)
            )));
        };
        decoded.reverse();
        let store = decoded[0].0.store.clone();
        for (i, (entry, size)) in decoded.iter().enumerate() {
            let expected = first + i as u64;
            if entry.seq != expected {
                return Err(self.damaged(format!(
                    "entry {expected} is missing (the next one is {})",
                    entry.seq
                )));
            }
            if entry.store != store {
                return Err(self.damaged(format!(
                    "entry {} belongs to store {}, not {store}",
                    entry.seq, entry.store
                )));
            }
            if i == 0 {
                listed.checkpoint_bytes = *size;
            } else {
                listed.bytes_since_checkpoint += size;
            }
        }
        listed.entries = decoded.into_iter().map(|(e, _)| e).collect();
        listed
            .garbage
            .extend(parts.into_keys().filter(|p| !used_parts.contains(p)));
        Ok(listed)
    }

    /// One entry's payload, checked; with its size and the parts it used.
    fn decode(
        &self,
        seq: u64,
        head: &Secret,
        parts: &BTreeMap<String, Secret>,
    ) -> Result<(Entry, usize, Vec<String>), StateError> {
        let name = head_name(seq);
        let mut payload = data_of(head)
            .ok_or_else(|| self.damaged(format!("{name} holds no entry")))?
            .to_vec();
        let mut used = Vec::new();
        if let Some(spec) = annotation(head, ANNOTATION_PARTS) {
            let (nonce, count) = spec
                .split_once(':')
                .and_then(|(n, c)| Some((n, c.parse::<usize>().ok()?)))
                .ok_or_else(|| {
                    self.damaged(format!("{name}: unreadable parts annotation {spec:?}"))
                })?;
            for i in 1..count {
                let part = format!("{name}-{nonce}-{i}");
                let bytes = parts
                    .get(&part)
                    .and_then(data_of)
                    .ok_or_else(|| self.damaged(format!("{name}: part {part} is missing")))?;
                payload.extend_from_slice(bytes);
                used.push(part);
            }
        }
        let want = annotation(head, ANNOTATION_SHA).unwrap_or_default();
        if hex::encode(Sha256::digest(&payload)) != want {
            return Err(self.damaged(format!("{name}: checksum mismatch")));
        }
        let entry: Entry = serde_json::from_slice(&payload)
            .map_err(|e| self.damaged(format!("{name} is unreadable: {e}")))?;
        if entry.format != FORMAT || entry.seq != seq {
            return Err(self.damaged(format!("{name} is not entry {seq} of a state log")));
        }
        if entry.schema > super::super::SCHEMA_VERSION {
            return Err(self.damaged(format!(
                "{name} was written in state schema {} by migrate {}; this migrate ({}) reads up to {}",
                entry.schema,
                entry.written_by,
                env!("CARGO_PKG_VERSION"),
                super::super::SCHEMA_VERSION
            )));
        }
        Ok((entry, payload.len(), used))
    }

    /// Writes `entry` (parts first, then its head); returns its payload size. `Taken` when its sequence number
    /// is another writer's.
    pub async fn append(&self, entry: &Entry, run: Option<u64>) -> Result<usize, AppendError> {
        let payload = serde_json::to_vec(entry).map_err(|e| {
            AppendError::Failed(StateError::InvalidInput(format!(
                "cannot encode an entry: {e}"
            )))
        })?;
        let seq = entry.seq;
        let name = head_name(seq);
        let sha = hex::encode(Sha256::digest(&payload));
        let chunks: Vec<&[u8]> = payload.chunks(CHUNK).collect();
        let mut annotations = BTreeMap::from([(ANNOTATION_SHA.to_string(), sha.clone())]);
        let pp = PostParams::default();
        if chunks.len() > 1 {
            let nonce = &sha[..10];
            annotations.insert(ANNOTATION_PARTS.into(), format!("{nonce}:{}", chunks.len()));
            for (i, chunk) in chunks.iter().enumerate().skip(1) {
                let part = secret(
                    format!("{name}-{nonce}-{i}"),
                    labels("part", seq, run),
                    BTreeMap::new(),
                    chunk,
                );
                match retrying("write a part", || self.api.create(&pp, &part)).await {
                    Ok(_) => {}
                    // The same part from an attempt whose answer was lost: same nonce, same bytes.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => {
                        return Err(AppendError::Failed(
                            self.kube("write a state entry's part")(e),
                        ));
                    }
                }
            }
        }
        let head = secret(
            name.clone(),
            labels("entry", seq, run),
            annotations,
            chunks.first().copied().unwrap_or_default(),
        );
        match retrying("write an entry", || self.api.create(&pp, &head)).await {
            Ok(_) => Ok(payload.len()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours after all when an earlier attempt landed and its answer was lost (a retried request).
                match retrying("read an entry back", || self.api.get_opt(&name)).await {
                    Ok(Some(found)) if annotation(&found, ANNOTATION_SHA) == Some(sha.as_str()) => {
                        Ok(payload.len())
                    }
                    _ => Err(AppendError::Taken),
                }
            }
            Err(e) => Err(AppendError::Failed(self.kube("write a state entry")(e))),
        }
    }

    /// Deletes `names` (garbage, entries older than a checkpoint); those already gone are fine.
    pub async fn delete(&self, names: Vec<String>) {
        for name in names {
            let dp = DeleteParams::default();
            match retrying("delete garbage", || self.api.delete(&name, &dp)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::warn!("{}: could not delete {name}: {e}", self.location),
            }
        }
    }

    /// The names of the heads before `seq` (what a checkpoint at `seq` makes garbage), from `first`.
    pub fn heads_between(first: u64, seq: u64) -> Vec<String> {
        (first..seq).map(head_name).collect()
    }
}
