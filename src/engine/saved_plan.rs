//! Saved plans: `migrate plan --out FILE` keeps the plan with a fingerprint
//! of every live object it reads or will change; `migrate apply --plan FILE`
//! applies exactly that plan, and only while those objects are as they were.
//!
//! A fingerprint is the object's `resourceVersion` and what `drift` records
//! of an object ([`drift::left_of`]): the hash of the content a user may
//! change (labels, annotations, spec, data; not status, not what
//! controllers write), the content itself to name the fields that changed,
//! and for a Secret only the hash and its key names, never a value. The
//! content decides: a resourceVersion bumped by a status update alone is
//! no change. A kind the cluster does not serve yet (Istio's, before
//! Istio) counts as absent.
//!
//! Beside the objects, the Helm releases the plan upgrades (their values
//! of record, which `helm upgrade` keeps: [`releases`]) and the files on
//! this machine its CA work reads ([`local_files`]), by hash only.
//!
//! The check is made just before the run starts: a change after it is the
//! run's to meet, as for any plan.

pub mod local_files;
pub mod releases;

use super::drift::{self, FieldChange};
use crate::cluster::{Cluster, ClusterError, ClusterTarget};
use crate::object::ObjectRef;
use crate::plan::{Action, Check, FileContent, LocalOp, Plan, ScaleTarget, SecretSource};
use crate::state::{Left, SnapshotKey, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `kind` of a saved plan file.
pub const KIND: &str = "MigrationSavedPlan";

/// The format this build writes and reads (2: Helm releases and local files).
pub const FORMAT: u32 = 2;

/// How many objects are read at once per check.
const READS_AT_ONCE: usize = 16;

/// A saved plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    /// [`KIND`].
    pub kind: String,
    /// [`FORMAT`].
    pub format: u32,
    /// The migrate version that saved it.
    pub written_by: String,
    /// When it was saved.
    pub saved: Timestamp,
    /// The spec it was planned from (absolute).
    pub spec_file: PathBuf,
    /// How each cluster was reached: the run reaches them the same way.
    pub targets: Vec<SavedTarget>,
    /// The plan, as `migrate plan -o json` has it (its fingerprint verified on load).
    pub plan: Plan,
    /// Every live object the plan reads or changes, as it was.
    pub objects: Vec<Fingerprint>,
    /// Every Helm release the plan upgrades or rolls back, as it was.
    #[serde(default)]
    pub releases: Vec<releases::ReleaseFingerprint>,
    /// Every file on this machine the plan's CA work reads, as it was.
    #[serde(default)]
    pub files: Vec<local_files::FileFingerprint>,
}

/// Which context of which kubeconfig reached a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedTarget {
    /// The cluster's name in the plan.
    pub name: String,
    /// The context.
    pub context: String,
    /// The spec's kubeconfig for it, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
}

impl From<&ClusterTarget> for SavedTarget {
    fn from(t: &ClusterTarget) -> Self {
        SavedTarget {
            name: t.name.clone(),
            context: t.context.clone(),
            kubeconfig: t.kubeconfig.clone(),
        }
    }
}

impl From<&SavedTarget> for ClusterTarget {
    fn from(t: &SavedTarget) -> Self {
        ClusterTarget {
            name: t.name.clone(),
            context: t.context.clone(),
            kubeconfig: t.kubeconfig.clone(),
        }
    }
}

/// One object as the plan found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// The object.
    pub key: SnapshotKey,
    /// Its `resourceVersion` (absent: the object was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Its content's hash (and content, but for Secrets), or its absence.
    pub found: Left,
}

/// How one object moved since the plan was saved.
#[derive(Debug, Clone, PartialEq)]
pub enum Moved {
    /// It was absent and is there now.
    Created,
    /// It was there and is gone.
    Deleted,
    /// These fields changed (dotted paths).
    Fields(Vec<String>),
    /// A Secret's content changed: its key names added and removed (values
    /// are never compared apart from the hash).
    Secret {
        /// Keys it has now that it had not.
        added: Vec<String>,
        /// Keys it had that it has no more.
        removed: Vec<String>,
    },
}

/// One object that moved, for the refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct MovedObject {
    /// The object.
    pub key: SnapshotKey,
    /// How.
    pub moved: Moved,
}

impl std::fmt::Display for MovedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.key.object;
        let name = match &o.namespace {
            Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
            None => format!("{} {}", o.kind, o.name),
        };
        let what = match &self.moved {
            Moved::Created => "created".to_string(),
            Moved::Deleted => "deleted".to_string(),
            Moved::Fields(paths) => format!("{} changed", paths.join(", ")),
            Moved::Secret { added, removed } => {
                let mut what = "content changed".to_string();
                if !added.is_empty() {
                    what.push_str(&format!(" (keys added: {})", added.join(", ")));
                }
                if !removed.is_empty() {
                    what.push_str(&format!(" (keys removed: {})", removed.join(", ")));
                }
                what
            }
        };
        write!(
            f,
            "{name} in {}: {what} since the plan was saved",
            self.key.cluster
        )
    }
}

/// Something the plan reads that moved since it was saved.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A live object.
    Object(MovedObject),
    /// A Helm release: what changed.
    Release(releases::ReleaseKey, String),
    /// A file on this machine: what happened to it.
    File(PathBuf, &'static str),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Object(o) => o.fmt(f),
            Change::Release(key, what) => {
                write!(f, "{key}: {what} since the plan was saved")
            }
            Change::File(path, what) => write!(
                f,
                "file {}: {what} since the plan was saved",
                path.display()
            ),
        }
    }
}

/// What went wrong with a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not a saved plan this build reads.
    #[error("{path}: not a saved plan this migrate reads: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An object could not be read.
    #[error("cannot read {object}: {error}")]
    Unreadable {
        /// The object.
        object: String,
        /// Why (scrubbed).
        error: String,
    },
    /// A cluster of the plan is not connected.
    #[error("cluster {0} is not connected")]
    NotConnected(String),
}

/// Every live object `plan` reads or changes, per cluster, sorted: what its
/// actions (forward, finally, rollback) name, what its checks and waits read,
/// the Secrets its CA work and remote secrets read. Probe Jobs (the probe's
/// own, made and deleted by it) and namespace-wide actions (restart every
/// workload, delete a name everywhere) are not objects it could fingerprint.
pub fn watched(plan: &Plan) -> Vec<SnapshotKey> {
    let mut out = BTreeSet::new();
    for step in &plan.steps {
        for action in step
            .forward
            .iter()
            .chain(&step.finally)
            .chain(&step.rollback)
        {
            objects_of(action, &mut |cluster, object| {
                out.insert(SnapshotKey::of(cluster, object));
            });
        }
    }
    out.into_iter().collect()
}

/// Calls `found` with every (cluster, object) `action` reads or changes.
fn objects_of(action: &Action, found: &mut dyn FnMut(&str, &ObjectRef)) {
    match action {
        Action::Apply {
            cluster,
            object,
            secret_data,
            ..
        } => {
            found(cluster, object);
            for source in secret_data.values() {
                if let SecretSource::RemoteKubeconfig(remote) = source {
                    found(&remote.cluster, &remote.token_secret);
                }
            }
        }
        Action::Delete { cluster, object }
        | Action::Patch {
            cluster, object, ..
        }
        | Action::Restart {
            cluster, object, ..
        }
        | Action::Wait {
            cluster, object, ..
        }
        | Action::Snapshot { cluster, object }
        | Action::Restore { cluster, object } => found(cluster, object),
        Action::EditConfig {
            cluster,
            object,
            substitutions,
            ..
        } => {
            found(cluster, object);
            for s in substitutions {
                let crate::plan::RuntimeValue::LoadBalancerAddress { cluster, service } = &s.value;
                found(cluster, service);
            }
        }
        Action::Scale {
            cluster, target, ..
        }
        | Action::RestoreScale { cluster, target } => match target {
            ScaleTarget::Object(o) | ScaleTarget::ServiceBackends(o) => found(cluster, o),
        },
        Action::Exec {
            cluster,
            file: Some(file),
            ..
        } => {
            if let FileContent::IstioOperatorFromSnapshot { object, .. } = &file.content {
                found(cluster, object);
            }
        }
        Action::Local {
            op:
                LocalOp::FetchLiveRoot {
                    cluster,
                    secret,
                    fallback,
                    ..
                },
        } => {
            found(cluster, secret);
            found(cluster, fallback);
        }
        Action::Check {
            cluster: Some(cluster),
            check,
        } => match check {
            Check::MeshPresent { istiod }
            | Check::IstioVersion { istiod, .. }
            | Check::ClusterName { istiod, .. }
            | Check::NoMesh { istiod } => found(cluster, istiod),
            Check::CaMode {
                ca_secret, cacerts, ..
            } => {
                found(cluster, ca_secret);
                found(cluster, cacerts);
            }
            Check::TrustDomain { config_map, .. } => found(cluster, config_map),
            _ => {}
        },
        _ => {}
    }
}

/// The fingerprint of `key` found as `live`.
pub fn fingerprint_of(key: &SnapshotKey, live: Option<&Value>) -> Fingerprint {
    Fingerprint {
        key: key.clone(),
        resource_version: live
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string),
        found: drift::left_of(key, live),
    }
}

/// Reads every object of `keys`, [`READS_AT_ONCE`] at a time.
async fn read_all(
    clusters: &BTreeMap<String, Arc<Cluster>>,
    keys: Vec<SnapshotKey>,
) -> Result<Vec<Fingerprint>, SavedPlanError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE));
    let mut reads = tokio::task::JoinSet::new();
    for key in keys {
        let cluster = clusters
            .get(&key.cluster)
            .ok_or_else(|| SavedPlanError::NotConnected(key.cluster.clone()))?
            .clone();
        let permits = permits.clone();
        reads.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let live = read(&cluster, &key).await?;
            Ok::<_, SavedPlanError>(fingerprint_of(&key, live.as_ref()))
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = reads.join_next().await {
        let read = joined.map_err(|e| SavedPlanError::Unreadable {
            object: "an object".into(),
            error: e.to_string(),
        })?;
        out.push(read?);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// One object, with the engine's retry; a kind not served counts as absent.
async fn read(cluster: &Cluster, key: &SnapshotKey) -> Result<Option<Value>, SavedPlanError> {
    let got = crate::cluster::retry(
        crate::cluster::Backoff::default(),
        || cluster.get(&key.object),
        |_, _| {},
    )
    .await;
    match got {
        Ok((live, _)) => Ok(live),
        Err(ClusterError::UnknownKind { .. }) => Ok(None),
        Err(e) => Err(SavedPlanError::Unreadable {
            object: key.to_string(),
            error: crate::state::redact_text(&e.to_string()),
        }),
    }
}

/// The saved form of `plan`, planned from `spec_file` for `targets`, with
/// every object it reads or changes fingerprinted in `clusters` now.
pub async fn save(
    plan: &Plan,
    spec_file: &Path,
    targets: &[ClusterTarget],
    clusters: &BTreeMap<String, Arc<Cluster>>,
) -> Result<SavedPlan, SavedPlanError> {
    let objects = read_all(clusters, watched(plan)).await?;
    let releases = read_releases(clusters, releases::watched(plan)).await?;
    let files = read_files(local_files::watched(plan))?;
    Ok(SavedPlan {
        kind: KIND.to_string(),
        format: FORMAT,
        written_by: env!("CARGO_PKG_VERSION").to_string(),
        saved: Timestamp::now(),
        spec_file: spec_file.to_path_buf(),
        targets: targets.iter().map(SavedTarget::from).collect(),
        plan: plan.clone(),
        objects,
        releases,
        files,
    })
}

/// Reads each release of `keys` in its cluster.
async fn read_releases(
    clusters: &BTreeMap<String, Arc<Cluster>>,
    keys: Vec<releases::ReleaseKey>,
) -> Result<Vec<releases::ReleaseFingerprint>, SavedPlanError> {
    let mut out = Vec::new();
    for key in keys {
        let cluster = clusters
            .get(&key.cluster)
            .ok_or_else(|| SavedPlanError::NotConnected(key.cluster.clone()))?;
        out.push(releases::read(cluster, &key).await?);
    }
    Ok(out)
}

/// Reads each file of `paths`.
fn read_files(paths: Vec<PathBuf>) -> Result<Vec<local_files::FileFingerprint>, SavedPlanError> {
    paths
        .iter()
        .map(|p| {
            local_files::read(p).map_err(|error| SavedPlanError::Io {
                path: p.clone(),
                error,
            })
        })
        .collect()
}

/// Writes `saved` to `path` (mode 0600: it holds the content of the objects
/// it read, Secrets' hashes only), whole or not at all: into a temporary
/// file created new (never one planted there, nor a symlink followed) with
/// mode 0600 in the same directory, synced, then renamed over `path`.
pub fn write(saved: &SavedPlan, path: &Path) -> Result<(), SavedPlanError> {
    use std::io::Write;
    let io = |error| SavedPlanError::Io {
        path: path.to_path_buf(),
        error,
    };
    let text = serde_json::to_string_pretty(saved).map_err(|e| io(std::io::Error::other(e)))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // O_CREAT|O_EXCL with a random name, 0600 on Unix (tempfile's defaults).
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    // The rename itself reaches the disk with its directory.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a saved plan, refusing another kind or format and a plan whose
/// steps no longer match its fingerprint (edited by hand).
pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
    let invalid = |reason: String| SavedPlanError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|error| SavedPlanError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let kind = value.get("kind").and_then(Value::as_str);
    if kind != Some(KIND) {
        return Err(invalid(format!("its kind is {kind:?}, not {KIND}")));
    }
    let format = value.get("format").and_then(Value::as_u64);
    if format != Some(u64::from(FORMAT)) {
        return Err(invalid(format!(
            "format {format:?} (this migrate reads format {FORMAT}; it was written by {})",
            value
                .get("writtenBy")
                .and_then(Value::as_str)
                .unwrap_or("an unknown version")
        )));
    }
    let saved: SavedPlan = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    if !saved.plan.verify_fingerprint() {
        return Err(invalid(
            "its steps do not match its fingerprint: the plan was edited after it was saved".into(),
        ));
    }
    if let Some(reason) = objects_mismatch(&saved) {
        return Err(invalid(reason));
    }
    Ok(saved)
}

/// Why the fingerprinted objects of `saved` are not exactly what its plan
/// reads or changes ([`watched`]), if they are not: an object dropped from
/// the list would go unchecked, one added or listed twice was not put there
/// by `plan --out`.
fn objects_mismatch(saved: &SavedPlan) -> Option<String> {
    let mut parts = Vec::new();
    set_mismatch(
        watched(&saved.plan),
        saved.objects.iter().map(|f| f.key.clone()),
        |k| k.to_string(),
        &mut parts,
    );
    set_mismatch(
        releases::watched(&saved.plan),
        saved.releases.iter().map(|r| r.key.clone()),
        |k| k.to_string(),
        &mut parts,
    );
    set_mismatch(
        local_files::watched(&saved.plan),
        saved.files.iter().map(|f| f.path.clone()),
        |p| format!("file {}", p.display()),
        &mut parts,
    );
    (!parts.is_empty()).then(|| {
        format!(
            "its fingerprints are not what its plan reads (the file was edited after it was saved): {}",
            parts.join("; and ")
        )
    })
}

/// Adds to `parts` what of `want` is not in `have`, what of `have` is not
/// in `want`, and what `have` lists twice, each named by `name`.
fn set_mismatch<T: Ord + Clone>(
    want: Vec<T>,
    have: impl Iterator<Item = T>,
    name: impl Fn(&T) -> String,
    parts: &mut Vec<String>,
) {
    let want: BTreeSet<T> = want.into_iter().collect();
    let mut seen = BTreeSet::new();
    let mut twice = Vec::new();
    for k in have {
        if !seen.insert(k.clone()) {
            twice.push(name(&k));
        }
    }
    let names = |it: &mut dyn Iterator<Item = &T>| it.map(&name).collect::<Vec<_>>().join("; ");
    let missing = names(&mut want.difference(&seen));
    let extra = names(&mut seen.difference(&want));
    if !missing.is_empty() {
        parts.push(format!("not fingerprinted: {missing}"));
    }
    if !extra.is_empty() {
        parts.push(format!("not read by the plan: {extra}"));
    }
    if !twice.is_empty() {
        parts.push(format!("listed twice: {}", twice.join("; ")));
    }
}

/// Everything of `saved` that moved since (objects and releases read from
/// `clusters` now, local files from this machine).
pub async fn moved_since(
    saved: &SavedPlan,
    clusters: &BTreeMap<String, Arc<Cluster>>,
) -> Result<Vec<Change>, SavedPlanError> {
    let keys = saved.objects.iter().map(|f| f.key.clone()).collect();
    let now: BTreeMap<SnapshotKey, Left> = read_all(clusters, keys)
        .await?
        .into_iter()
        .map(|f| (f.key, f.found))
        .collect();
    let mut out: Vec<Change> = saved
        .objects
        .iter()
        .filter_map(|then| {
            let now = now.get(&then.key)?;
            compare(&then.found, now).map(|moved| {
                Change::Object(MovedObject {
                    key: then.key.clone(),
                    moved,
                })
            })
        })
        .collect();
    let keys = saved.releases.iter().map(|r| r.key.clone()).collect();
    for (then, now) in saved
        .releases
        .iter()
        .zip(read_releases(clusters, keys).await?)
    {
        if let Some(what) = releases::compare(then, &now) {
            out.push(Change::Release(then.key.clone(), what));
        }
    }
    let paths = saved.files.iter().map(|f| f.path.clone()).collect();
    for (then, now) in saved.files.iter().zip(read_files(paths)?) {
        if let Some(what) = local_files::compare(then, &now) {
            out.push(Change::File(then.path.clone(), what));
        }
    }
    Ok(out)
}

/// How `now` differs from `then`, if it does.
pub fn compare(then: &Left, now: &Left) -> Option<Moved> {
    match (then, now) {
        (Left::Absent, Left::Absent) => None,
        (Left::Absent, Left::Present { .. }) => Some(Moved::Created),
        (Left::Present { .. }, Left::Absent) => Some(Moved::Deleted),
        (
            Left::Present {
                hash: a,
                content: before,
                secret_keys: keys_before,
            },
            Left::Present {
                hash: b,
                content: after,
                secret_keys: keys_after,
            },
        ) => {
            if a == b {
                return None;
            }
            match (before, after) {
                (Some(before), Some(after)) => {
                    let mut paths: Vec<String> = drift::changed_fields(before, after)
                        .iter()
                        .map(|c| topmost(before, after, c))
                        .collect();
                    paths.dedup();
                    // Hashes differ but no field does (cannot happen with
                    // the same content rules): say so rather than nothing.
                    if paths.is_empty() {
                        paths.push("content".into());
                    }
                    Some(Moved::Fields(paths))
                }
                _ => Some(Moved::Secret {
                    added: keys_after
                        .iter()
                        .filter(|k| !keys_before.contains(k))
                        .cloned()
                        .collect(),
                    removed: keys_before
                        .iter()
                        .filter(|k| !keys_after.contains(k))
                        .cloned()
                        .collect(),
                }),
            }
        }
    }
}

/// The field to name for `change`: for a whole subtree added or removed
/// (`spec.trafficPolicy.connectionPool.tcp.maxConnections` where there was
/// no `connectionPool`), its top (`spec.trafficPolicy.connectionPool`).
fn topmost(before: &Value, after: &Value, change: &FieldChange) -> String {
    let side = match (&change.left, &change.now) {
        (None, Some(_)) => before,
        (Some(_), None) => after,
        _ => return change.path.clone(),
    };
    let parts: Vec<&str> = change.path.split('.').collect();
    let mut at = side;
    for (i, part) in parts.iter().enumerate() {
        match at.get(part) {
            Some(next) => at = next,
            None if at.is_object() => return parts[..=i].join("."),
            // Inside a YAML document held in a string: the leaf as found.
            None => return change.path.clone(),
        }
    }
    change.path.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Phase, PlanHeader, Step};
    use serde_json::json;

    fn dr(extra: Value) -> Value {
        let mut spec =
            json!({"host": "helloworld", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                spec.insert(k.clone(), v.clone());
            }
        }
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "helloworld", "namespace": "sample", "resourceVersion": "7"},
            "spec": spec, "status": {"observedGeneration": 1},
        })
    }

    fn key(kind: &str) -> SnapshotKey {
        SnapshotKey::new(
            "cluster1",
            "networking.istio.io/v1",
            kind,
            Some("sample"),
            "helloworld",
        )
    }

    #[test]
    fn a_new_subtree_is_named_by_its_top_and_status_is_no_change() {
        let k = key("DestinationRule");
        let then = fingerprint_of(&k, Some(&dr(json!({}))));
        assert_eq!(then.resource_version.as_deref(), Some("7"));
        let mut status_only = dr(json!({}));
        status_only["status"] = json!({"observedGeneration": 2});
        status_only["metadata"]["resourceVersion"] = json!("8");
        assert_eq!(
            compare(&then.found, &fingerprint_of(&k, Some(&status_only)).found),
            None
        );
        let mut edited = dr(json!({}));
        edited["spec"]["trafficPolicy"]["connectionPool"] = json!({"tcp": {"maxConnections": 7}});
        let moved = compare(&then.found, &fingerprint_of(&k, Some(&edited)).found).unwrap();
        assert_eq!(
            moved,
            Moved::Fields(vec!["spec.trafficPolicy.connectionPool".into()])
        );
        let text = MovedObject {
            key: k.clone(),
            moved,
        }
        .to_string();
        assert_eq!(
            text,
            "DestinationRule sample/helloworld in cluster1: spec.trafficPolicy.connectionPool \
             changed since the plan was saved"
        );
        assert_eq!(compare(&then.found, &Left::Absent), Some(Moved::Deleted));
        assert_eq!(compare(&Left::Absent, &then.found), Some(Moved::Created));
    }

    #[test]
    fn secrets_are_compared_by_hash_and_key_names_only() {
        let k = SnapshotKey::new("cluster1", "v1", "Secret", Some("istio-system"), "cacerts");
        let secret = |data: Value| {
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "cacerts", "namespace": "istio-system"}, "data": data})
        };
        let then = fingerprint_of(&k, Some(&secret(json!({"ca-key.pem": "c2VjcmV0"}))));
        let text = serde_json::to_string(&then).unwrap();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(text.contains("ca-key.pem"));
        let now = fingerprint_of(
            &k,
            Some(&secret(json!({"ca-key.pem": "b3RoZXI=", "x": "eQ=="}))),
        );
        assert_eq!(
            compare(&then.found, &now.found),
            Some(Moved::Secret {
                added: vec!["x".into()],
                removed: vec![]
            })
        );
    }

    #[test]
    fn writing_never_follows_a_symlink_planted_at_the_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let path = dir.path().join("plan.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, dir.path().join(".plan.json.tmp")).unwrap();
        let header = PlanHeader {
            name: "t".into(),
            topology: "multi-primary".into(),
            clusters: vec![],
        };
        let saved = SavedPlan {
            kind: KIND.into(),
            format: FORMAT,
            written_by: "test".into(),
            saved: Timestamp::now(),
            spec_file: "/spec.yaml".into(),
            targets: vec![],
            plan: Plan::new(header, vec![]).unwrap(),
            objects: vec![],
            releases: vec![],
            files: vec![],
        };
        write(&saved, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(
            load(&path).unwrap().plan.fingerprint,
            saved.plan.fingerprint
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".plan.json.tmp")
            .collect();
        assert!(left.is_empty(), "no temporary file left: {left:?}");
    }

    #[test]
    fn watched_objects_include_reads_and_skip_probe_jobs() {
        let mut s = Step::new(Phase::Trust, "trust/cluster1", "t");
        s.forward(Action::Local {
            op: LocalOp::FetchLiveRoot {
                cluster: "cluster1".into(),
                secret: ObjectRef::secret("istio-system", "cacerts"),
                fallback: ObjectRef::secret("istio-system", "istio-ca-secret"),
                dir: "/tmp".into(),
            },
        });
        s.forward(Action::Probe {
            cluster: "cluster1".into(),
            job: ObjectRef::new("batch/v1", "Job", Some("sample"), "probe"),
            manifest: json!({}),
            requests: 1,
            expect: crate::plan::ProbeExpect {
                all_answered: true,
                min_clusters: 1,
                not_from: vec![],
            },
            timeout_seconds: 1,
        });
        let header = PlanHeader {
            name: "t".into(),
            topology: "multi-primary".into(),
            clusters: vec![],
        };
        let plan = Plan::new(header, vec![s.finish()]).unwrap();
        let names: Vec<String> = watched(&plan)
            .iter()
            .map(|k| k.object.name.clone())
            .collect();
        assert_eq!(names, ["cacerts", "istio-ca-secret"]);
    }
}
