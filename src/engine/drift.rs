//! Drift: what changed in an object since `migrate` left it.
//!
//! When a step is done the engine records, per object it applied, patched,
//! edited or deleted and per object its rollback restores from a snapshot
//! (what an installer changes), a hash of the content a user may change
//! (and, except for Secrets, that content). Before a rollback changes anything, each
//! recorded object is compared with the live one and classified: restore,
//! delete, unchanged, or DRIFTED (changed by someone else since). Rollback
//! refuses drift unless forced; `rollback --dry-run` and `plan` report it.
//!
//! What an installer (istioctl) changes beyond those snapshotted objects is
//! not recorded: its steps are flagged instead. What controllers write
//! (`owned_content`) does not count. A step whose records could not be read
//! is done all the same, flagged not recorded.

use super::context::{ActionError, Environment, StepCtx};
use super::restart_stamp::RESTART_ANNOTATION;
use crate::cluster::{Backoff, retry};
use crate::object::ObjectRef;
use crate::plan::{Action, Phase, Step};
use crate::state::{Left, LeftObject, RunId, SnapshotFilter, SnapshotKey, StateError, StepStatus};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Label and annotation keys (exact, or prefixes) that do not count as
/// content: written by the API server or a controller as the object is used
/// (a legacy token's last use, a Deployment's revision, leader election,
/// endpoint bookkeeping), or stamped by `migrate` itself where rollback would
/// not put them back (the restart stamp).
const CONTROLLER_KEYS: [&str; 5] = [
    "kubernetes.io/legacy-token-",
    "deployment.kubernetes.io/",
    "kubectl.kubernetes.io/restartedAt",
    "endpoints.kubernetes.io/",
    "control-plane.alpha.kubernetes.io/leader",
];

/// The Secret type whose `data` the token controller fills.
const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

/// The `data` keys the token controller writes into a token Secret: it
/// rewrites `ca.crt` and `namespace` whatever they hold and fills `token`
/// when empty. `migrate` creates its token Secret without them, so they are
/// the controller's, not content.
const TOKEN_CONTROLLER_DATA: [&str; 3] = ["token", "ca.crt", "namespace"];

/// Top-level fields that are the server's, not the user's.
const IGNORED_TOP_LEVEL: [&str; 3] = ["status", "apiVersion", "kind"];

/// Kinds whose `spec.replicas` an autoscaler owns (istiod's HPA): a rollback
/// restores it from the snapshot, and `migrate`'s own scaling has restore
/// records of its own (`engine::restores`).
const SCALED_KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

/// Whether a label or annotation key is written by a controller (see
/// [`CONTROLLER_KEYS`]) or is `migrate`'s own restart stamp
/// ([`RESTART_ANNOTATION`]: a `Restart` of a later step, which no rollback
/// takes back).
pub fn controller_written(key: &str) -> bool {
    key == RESTART_ANNOTATION || CONTROLLER_KEYS.iter().any(|k| key.starts_with(k))
}

/// `map` less the keys controllers write.
fn without_controller_keys(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !controller_written(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The content of `object` that a user may change and rollback puts back:
/// `metadata.labels` and `metadata.annotations` (less what controllers
/// write, [`CONTROLLER_KEYS`]), and every top-level field but `metadata`,
/// `status`, `apiVersion` and `kind` (so `spec`, `data`, `stringData`,
/// `type`, ...), less a token Secret's controller-filled `data` keys and a
/// Deployment's or StatefulSet's `spec.replicas`. Empty label, annotation
/// or `data` maps count as absent.
pub fn owned_content(object: &Value) -> Value {
    let mut out = Map::new();
    let Some(fields) = object.as_object() else {
        return Value::Object(out);
    };
    let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
    let token_secret =
        kind == "Secret" && fields.get("type").and_then(Value::as_str) == Some(TOKEN_SECRET_TYPE);
    for (name, value) in fields {
        if name == "metadata" {
            let mut meta = Map::new();
            for part in ["labels", "annotations"] {
                if let Some(Value::Object(map)) = value.get(part) {
                    let kept = without_controller_keys(map);
                    if !kept.is_empty() {
                        meta.insert(part.to_string(), Value::Object(kept));
                    }
                }
            }
            if !meta.is_empty() {
                out.insert("metadata".into(), Value::Object(meta));
            }
        } else if token_secret && name == "data" {
            if let Value::Object(data) = value {
                let kept: Map<String, Value> = data
                    .iter()
                    .filter(|(k, _)| !TOKEN_CONTROLLER_DATA.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !kept.is_empty() {
                    out.insert(name.clone(), Value::Object(kept));
                }
            }
        } else if name == "spec" {
            let mut spec = strip_pod_template_stamps(value.clone());
            if SCALED_KINDS.contains(&kind)
                && let Value::Object(spec) = &mut spec
            {
                spec.remove("replicas");
            }
            out.insert(name.clone(), spec);
        } else if !IGNORED_TOP_LEVEL.contains(&name.as_str()) {
            out.insert(name.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// `spec.template.metadata.annotations` less what controllers and
/// `migrate`'s restart stamp write there.
fn strip_pod_template_stamps(mut spec: Value) -> Value {
    if let Some(Value::Object(annotations)) = spec.pointer_mut("/template/metadata/annotations") {
        annotations.retain(|k, _| !controller_written(k));
    }
    spec
}

/// SHA-256 (hex) of `content` in a canonical form (object keys sorted), so
/// the same content always hashes the same whatever order a server sends.
pub fn hash(content: &Value) -> String {
    let mut text = String::new();
    canonical(content, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn is_secret(key: &SnapshotKey) -> bool {
    key.object.kind == "Secret" && key.object.api_version == "v1"
}

/// The key names of a Secret's `data` and `stringData` (never values).
fn secret_keys(object: &Value) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for part in ["data", "stringData"] {
        if let Some(Value::Object(map)) = object.get(part) {
            keys.extend(map.keys().cloned());
        }
    }
    keys.into_iter().collect()
}

/// An object being deleted counts as gone: it is on its way out.
fn present(live: Option<&Value>) -> Option<&Value> {
    live.filter(|o| o.pointer("/metadata/deletionTimestamp").is_none())
}

/// What to record of `key` found as `live` (`None`: absent).
pub fn left_of(key: &SnapshotKey, live: Option<&Value>) -> Left {
    let Some(object) = present(live) else {
        return Left::Absent;
    };
    let content = owned_content(object);
    let hash = hash(&content);
    if is_secret(key) {
        Left::Present {
            hash,
            content: None,
            secret_keys: secret_keys(&content),
        }
    } else {
        Left::Present {
            hash,
            content: Some(content),
            secret_keys: Vec::new(),
        }
    }
}

/// The objects `actions` leave changed, and whether each is left present
/// (`true`) or deleted: the last action on an object decides. A probe's Job
/// is the probe's own business, not tracked.
pub fn changed_by(actions: &[Action]) -> Vec<((String, ObjectRef), bool)> {
    let mut out: Vec<((String, ObjectRef), bool)> = Vec::new();
    let mut set = |target: (String, ObjectRef), state: Option<bool>| {
        out.retain(|(t, _)| *t != target);
        if let Some(s) = state {
            out.push((target, s));
        }
    };
    for action in actions {
        match action {
            Action::Apply {
                cluster, object, ..
            }
            | Action::Patch {
                cluster, object, ..
            }
            | Action::EditConfig {
                cluster, object, ..
            } => set((cluster.clone(), object.clone()), Some(true)),
            Action::Delete { cluster, object } => {
                set((cluster.clone(), object.clone()), Some(false))
            }
            Action::Probe { cluster, job, .. } => set((cluster.clone(), job.clone()), None),
            _ => {}
        }
    }
    out
}

/// Whether the actions run an installer.
pub fn runs_installer(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Exec { .. }))
}

/// The objects whose state after `step` is recorded, and whether each must
/// be read (`false`: the step deleted it, recorded absent without a read):
/// what its forward actions change ([`changed_by`]) and what its rollback
/// restores from snapshots (`Restore`), which covers what an installer
/// changes behind the engine's back.
pub fn recorded_objects(step: &Step) -> Vec<((String, ObjectRef), bool)> {
    let mut out = changed_by(&step.forward);
    for action in &step.rollback {
        if let Action::Restore { cluster, object } = action {
            let target = (cluster.clone(), object.clone());
            if !out.iter().any(|(t, _)| *t == target) {
                out.push((target, true));
            }
        }
    }
    out
}

/// What a done step left of each object it changed or its rollback
/// restores, read live (with the engine's retry) and in parallel; deleted
/// ones are recorded absent without a read.
pub(crate) async fn record(
    ctx: &StepCtx,
    step: &Step,
) -> Result<Vec<(SnapshotKey, Left)>, ActionError> {
    let mut out = Vec::new();
    let mut reads = tokio::task::JoinSet::new();
    for ((cluster, object), read) in recorded_objects(step) {
        let key = SnapshotKey::of(&cluster, &object);
        if !read {
            out.push((key, Left::Absent));
            continue;
        }
        let c = ctx.cluster(&cluster)?.clone();
        let ctx = ctx.clone();
        reads.spawn(async move {
            let live = ctx.retry(|| c.get(&object)).await?;
            let left = left_of(&key, live.as_ref());
            Ok::<_, ActionError>((key, left))
        });
    }
    while let Some(joined) = reads.join_next().await {
        let read = joined.map_err(|e| ActionError::Failed(format!("reading an object: {e}")))?;
        out.push(read?);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One field that differs between what `migrate` left and the live object.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field, dotted (`spec.trafficPolicy.connectionPool`,
    /// `metadata.labels.team`; inside a YAML document kept in a string,
    /// `data.mesh.accessLogFile`).
    pub path: String,
    /// The value `migrate` left (`None`: absent).
    pub left: Option<Value>,
    /// The value now (`None`: absent).
    pub now: Option<Value>,
}

/// The fields that differ between `left` and `now` (both owned content):
/// objects are compared key by key; strings that both hold a YAML mapping
/// (a ConfigMap's `mesh`) are compared inside; anything else as a whole.
pub fn changed_fields(left: &Value, now: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into("", Some(left), Some(now), &mut out);
    out
}

fn diff_into(path: &str, left: Option<&Value>, now: Option<&Value>, out: &mut Vec<FieldChange>) {
    if left == now {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    // An absent map is compared as an empty one: a new label is named by its own path.
    let empty = Map::new();
    if let (Some(a), Some(b)) = (as_map(left, &empty), as_map(now, &empty)) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            diff_into(&join(k), a.get(k), b.get(k), out);
        }
        return;
    }
    match (left, now) {
        (Some(Value::String(a)), Some(Value::String(b))) => match (yaml_map(a), yaml_map(b)) {
            (Some(a), Some(b)) => diff_into(path, Some(&a), Some(&b), out),
            _ => out.push(FieldChange {
                path: path.to_string(),
                left: left.cloned(),
                now: now.cloned(),
            }),
        },
        _ => out.push(FieldChange {
            path: path.to_string(),
            left: left.cloned(),
            now: now.cloned(),
        }),
    }
}

/// A map, or `empty` for an absent value; `None` for anything else.
fn as_map<'a>(
    value: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match value {
        None => Some(empty),
        Some(Value::Object(m)) => Some(m),
        Some(_) => None,
    }
}

/// A string holding a YAML mapping, as JSON.
fn yaml_map(text: &str) -> Option<Value> {
    let value: Value = serde_yaml::from_str(text).ok()?;
    value.is_object().then_some(value)
}

/// What a rollback does to an object when nothing drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Put back the snapshot taken before the step.
    Restore,
    /// Delete it: the step created it.
    Delete,
}

/// How an object changed since `migrate` left it.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftChange {
    /// These fields differ.
    Fields(Vec<FieldChange>),
    /// A Secret's content differs (values are never shown); its key names then and now.
    SecretContent {
        /// The key names `migrate` left.
        left: Vec<String>,
        /// The key names now.
        now: Vec<String>,
    },
    /// `migrate` deleted it; it exists again.
    Recreated,
    /// `migrate` left it; it is gone.
    Deleted,
}

/// What a rollback would do with one recorded object.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// Put back the snapshot.
    Restore,
    /// Delete it (the step created it).
    Delete,
    /// Live already equals the snapshot: nothing to do.
    Unchanged,
    /// Someone changed it since `migrate` left it; rollback would overwrite that with `undo`.
    Drifted {
        /// What the rollback would do.
        undo: Undo,
        /// What changed.
        change: DriftChange,
    },
    /// A newer step of the rollback undoes it first; checked there.
    AfterNewer(Undo),
}

/// Classifies one object: `left` is what the step left, `before` the
/// snapshot taken before the step (`None`: it did not exist), `live` the
/// object now (`None`: absent).
pub fn classify(left: &Left, before: Option<&Value>, live: Option<&Value>) -> Class {
    let live = present(live);
    let before = present(before);
    let undo = if before.is_some() {
        Undo::Restore
    } else {
        Undo::Delete
    };
    let live_hash = live.map(|o| hash(&owned_content(o)));
    let before_hash = before.map(|o| hash(&owned_content(o)));
    let planned = || {
        if live_hash == before_hash {
            Class::Unchanged
        } else {
            match undo {
                Undo::Restore => Class::Restore,
                Undo::Delete => Class::Delete,
            }
        }
    };
    let change = match (left, live) {
        (Left::Absent, None) => return planned(),
        (Left::Absent, Some(_)) => DriftChange::Recreated,
        (Left::Present { .. }, None) => DriftChange::Deleted,
        (
            Left::Present {
                hash,
                content,
                secret_keys: keys,
            },
            Some(now),
        ) => {
            if live_hash.as_deref() == Some(hash.as_str()) {
                return planned();
            }
            match content {
                Some(content) => DriftChange::Fields(changed_fields(content, &owned_content(now))),
                None => DriftChange::SecretContent {
                    left: keys.clone(),
                    now: secret_keys(&owned_content(now)),
                },
            }
        }
    };
    // Put back by hand already: the rollback has nothing to overwrite.
    if live_hash == before_hash {
        return Class::Unchanged;
    }
    Class::Drifted { undo, change }
}

/// One recorded object and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDrift {
    /// The object.
    pub key: SnapshotKey,
    /// What the rollback would do with it.
    pub class: Class,
}

/// Whether a step's objects could be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Every object it changed was compared with what it left.
    Yes,
    /// The step did not finish: nothing was recorded, its snapshots are put back as they are.
    NotFinished,
    /// Done, but what it left was not recorded (its reads failed, or an
    /// older `migrate` recorded nothing).
    NotRecorded,
}

/// The objects of one step a rollback would undo.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDrift {
    /// The run the step belongs to.
    pub run: RunId,
    /// The step.
    pub step: String,
    /// Whether its objects were compared.
    pub checked: Checked,
    /// It runs an installer: what that changes is checked only where the
    /// step's rollback restores it.
    pub installer: bool,
    /// Its recorded objects, by key.
    pub objects: Vec<ObjectDrift>,
}

/// Every step a rollback to a phase would undo, newest first, with its objects classified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriftReport {
    /// The phase the rollback returns to.
    pub to: Option<Phase>,
    /// The steps, in the order the rollback undoes them.
    pub steps: Vec<StepDrift>,
}

impl DriftReport {
    /// Every drifted object, with its step.
    pub fn drifted(&self) -> impl Iterator<Item = (&StepDrift, &ObjectDrift)> {
        self.steps.iter().flat_map(|s| {
            s.objects
                .iter()
                .filter(|o| matches!(o.class, Class::Drifted { .. }))
                .map(move |o| (s, o))
        })
    }

    /// Whether any object drifted.
    pub fn has_drift(&self) -> bool {
        self.drifted().next().is_some()
    }

    /// Whether a step of the report runs an installer (checked only where its rollback restores).
    pub fn installer_managed(&self) -> bool {
        self.steps.iter().any(|s| s.installer)
    }
}

/// Why drift could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// A recorded object could not be read.
    #[error("cannot compare {object} with what migrate left: {error}")]
    Unreadable {
        /// The object.
        object: String,
        /// Why (redacted).
        error: String,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A step a rollback would undo, in the order it would.
pub struct UndoStep<'a> {
    /// The run it belongs to.
    pub run: RunId,
    /// The step.
    pub step: &'a Step,
    /// Where it stands.
    pub status: Option<StepStatus>,
}

/// What the nearest newer step of a rollback knows of an object an older
/// step left.
#[derive(Debug, Clone, PartialEq)]
pub enum Newer {
    /// It compared the object with what it left itself: checked there.
    Compared,
    /// It recorded nothing of the object (it did not finish, or an older
    /// `migrate` did it) but holds its snapshot: the object when that step
    /// began (`None`: absent).
    Snapshot(Option<Value>),
}

fn undo_of(before: Option<&Value>) -> Undo {
    if present(before).is_some() {
        Undo::Restore
    } else {
        Undo::Delete
    }
}

/// Classifies an object an older done step left (`left`, `before` as in
/// [`classify`]) that a newer step of the rollback touches too (`newer`).
/// Compared there: undone after it. Snapshotted there only: what changed
/// between this step and the newer one's start is someone else's (drift);
/// what came after cannot be told from that step's own changes, and it puts
/// its snapshot back before this step is undone.
pub fn classify_behind(left: &Left, before: Option<&Value>, newer: &Newer) -> Class {
    match newer {
        Newer::Compared => Class::AfterNewer(undo_of(before)),
        Newer::Snapshot(then) => match classify(left, before, then.as_ref()) {
            drifted @ Class::Drifted { .. } => drifted,
            _ => Class::AfterNewer(undo_of(before)),
        },
    }
}

/// What `step` tells older steps about the objects it holds: compared where
/// it recorded what it left, its snapshot elsewhere.
fn note_newer(
    newer: &mut BTreeMap<SnapshotKey, Newer>,
    recorded: &[SnapshotKey],
    snapshots: BTreeMap<SnapshotKey, Option<Value>>,
) {
    for (key, object) in snapshots {
        if !recorded.contains(&key) {
            newer.insert(key, Newer::Snapshot(object));
        }
    }
    for key in recorded {
        newer.insert(key.clone(), Newer::Compared);
    }
}

/// Classifies every object of `steps` (a rollback to `to`, newest first),
/// comparing what each done step left with the live objects, or with the
/// snapshot of a newer step that touches it too ([`classify_behind`]).
/// Changes nothing.
pub async fn report(
    env: &Environment,
    to: Phase,
    steps: &[UndoStep<'_>],
) -> Result<DriftReport, DriftError> {
    let store = env.store.as_ref();
    let mut out = DriftReport {
        to: Some(to),
        steps: Vec::new(),
    };
    // Per object, what the nearest newer step already undone knows of it.
    let mut newer: BTreeMap<SnapshotKey, Newer> = BTreeMap::new();
    for UndoStep { run, step, status } in steps {
        let (run, status) = (*run, *status);
        let filter = SnapshotFilter {
            cluster: None,
            step: Some(step.id.clone()),
        };
        let snapshots: BTreeMap<SnapshotKey, Option<Value>> = store
            .snapshots(run, &filter)?
            .into_iter()
            .map(|s| (s.key, s.object))
            .collect();
        let tracked = !recorded_objects(step).is_empty();
        let done = status == Some(StepStatus::Done);
        let left: Vec<LeftObject> = if done {
            store.left_objects(run, &step.id)?
        } else {
            Vec::new()
        };
        let checked = if !done {
            Checked::NotFinished
        } else if tracked && left.is_empty() {
            Checked::NotRecorded
        } else {
            Checked::Yes
        };
        let mut objects = Vec::new();
        for record in left {
            let before = snapshots.get(&record.key).cloned().flatten();
            let class = match newer.get(&record.key) {
                Some(n) => classify_behind(&record.left, before.as_ref(), n),
                None => {
                    let live = read_live(env, &record.key).await?;
                    classify(&record.left, before.as_ref(), live.as_ref())
                }
            };
            objects.push(ObjectDrift {
                key: record.key,
                class,
            });
        }
        let recorded: Vec<SnapshotKey> = objects.iter().map(|o| o.key.clone()).collect();
        note_newer(&mut newer, &recorded, snapshots);
        out.steps.push(StepDrift {
            run,
            step: step.id.clone(),
            checked,
            installer: runs_installer(&step.forward),
            objects,
        });
    }
    Ok(out)
}

async fn read_live(env: &Environment, key: &SnapshotKey) -> Result<Option<Value>, DriftError> {
    let cluster = env
        .clusters
        .get(&key.cluster)
        .ok_or_else(|| DriftError::Unreadable {
            object: key.to_string(),
            error: "its cluster is not connected".into(),
        })?;
    retry(Backoff::default(), || cluster.get(&key.object), |_, _| {})
        .await
        .map(|(live, _)| live)
        .map_err(|e| DriftError::Unreadable {
            object: key.to_string(),
            error: crate::state::redact_text(&e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn dr() -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {
                "name": "helloworld", "namespace": "sample",
                "resourceVersion": "12", "uid": "u-1", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "migrate"}],
                "labels": {"app": "helloworld"},
            },
            "spec": {"host": "helloworld.sample.svc.cluster.local"},
        })
    }

    fn key(kind: &str) -> SnapshotKey {
        SnapshotKey::new("cluster1", "v1", kind, Some("sample"), "x")
    }

    #[test]
    fn status_and_server_bookkeeping_are_not_drift() {
        let left = hash(&owned_content(&dr()));
        let mut now = dr();
        now["metadata"]["resourceVersion"] = json!("99");
        now["metadata"]["generation"] = json!(7);
        now["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        now["status"] = json!({"conditions": [{"type": "Ready"}]});
        now["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "3"});
        assert_eq!(hash(&owned_content(&now)), left);
    }

    #[test]
    fn a_label_or_a_spec_field_is_drift() {
        let left = hash(&owned_content(&dr()));
        let mut labelled = dr();
        labelled["metadata"]["labels"]["team"] = json!("payments");
        assert_ne!(hash(&owned_content(&labelled)), left);
        let mut pooled = dr();
        pooled["spec"]["trafficPolicy"] =
            json!({"connectionPool": {"tcp": {"maxConnections": 10}}});
        assert_ne!(hash(&owned_content(&pooled)), left);
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"spec":{"a":1,"b":2}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"spec":{"b":2,"a":1}}"#).unwrap();
        assert_eq!(hash(&a), hash(&b));
    }

    #[test]
    fn fields_inside_a_yaml_document_are_named() {
        let left = json!({"data": {"mesh": "defaultConfig:\n  tracing: {}\n"}});
        let now = json!({"data": {"mesh": "defaultConfig:\n  tracing: {}\naccessLogFile: /dev/stdout\n"}});
        let changes = changed_fields(&left, &now);
        assert_eq!(
            changes,
            [FieldChange {
                path: "data.mesh.accessLogFile".into(),
                left: None,
                now: Some(json!("/dev/stdout")),
            }]
        );
    }

    #[test]
    fn classification_of_each_case() {
        let k = key("DestinationRule");
        let left = left_of(&k, Some(&dr()));
        // Created by the step, untouched since: delete.
        assert_eq!(classify(&left, None, Some(&dr())), Class::Delete);
        // Changed by the step from an earlier version: restore.
        let mut before = dr();
        before["spec"]["host"] = json!("other");
        assert_eq!(classify(&left, Some(&before), Some(&dr())), Class::Restore);
        // Applied with no change at all: nothing to do.
        assert_eq!(classify(&left, Some(&dr()), Some(&dr())), Class::Unchanged);
        // A label added by hand: drifted, the label named with its values.
        let mut now = dr();
        now["metadata"]["labels"]["team"] = json!("payments");
        let Class::Drifted { undo, change } = classify(&left, None, Some(&now)) else {
            panic!("a hand-added label is drift");
        };
        assert_eq!(undo, Undo::Delete);
        assert_eq!(
            change,
            DriftChange::Fields(vec![FieldChange {
                path: "metadata.labels.team".into(),
                left: None,
                now: Some(json!("payments")),
            }])
        );
        // Deleted by hand after the step left it.
        assert!(matches!(
            classify(&left, Some(&before), None),
            Class::Drifted {
                change: DriftChange::Deleted,
                ..
            }
        ));
        // Deleted by the step, recreated by hand.
        assert!(matches!(
            classify(&Left::Absent, Some(&before), Some(&now)),
            Class::Drifted {
                change: DriftChange::Recreated,
                undo: Undo::Restore
            }
        ));
        // Put back by hand to the snapshot: nothing to overwrite.
        assert_eq!(
            classify(&left, Some(&before), Some(&before)),
            Class::Unchanged
        );
    }

    #[test]
    fn a_secret_is_recorded_and_reported_without_values() {
        let k = key("Secret");
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
            "type": "Opaque", "data": {"key.pem": "c2VjcmV0"}});
        let left = left_of(&k, Some(&secret));
        let text = serde_json::to_string(&left).unwrap();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(text.contains("key.pem"), "{text}");
        let mut now = secret.clone();
        now["data"]["key.pem"] = json!("b3RoZXI=");
        let class = classify(&left, None, Some(&now));
        assert_eq!(
            class,
            Class::Drifted {
                undo: Undo::Delete,
                change: DriftChange::SecretContent {
                    left: vec!["key.pem".into()],
                    now: vec!["key.pem".into()],
                },
            }
        );
        assert!(!format!("{class:?}").contains("b3RoZXI="));
    }

    #[test]
    fn the_last_action_on_an_object_decides_and_probe_jobs_are_not_tracked() {
        let job = ObjectRef::new("batch/v1", "Job", Some("sample"), "probe");
        let dr = ObjectRef::new(
            "networking.istio.io/v1",
            "DestinationRule",
            Some("sample"),
            "hw",
        );
        let actions = vec![
            Action::Delete {
                cluster: "c1".into(),
                object: dr.clone(),
            },
            Action::Apply {
                cluster: "c1".into(),
                object: dr.clone(),
                manifest: json!({}),
                secret_data: Default::default(),
            },
            Action::Delete {
                cluster: "c1".into(),
                object: job.clone(),
            },
        ];
        let changed = changed_by(&actions);
        assert_eq!(
            changed,
            [
                (("c1".to_string(), dr), true),
                (("c1".to_string(), job.clone()), false)
            ]
        );
        let mut with_probe = actions.clone();
        with_probe.push(Action::Probe {
            cluster: "c1".into(),
            job,
            manifest: json!({}),
            requests: 1,
            expect: crate::plan::ProbeExpect {
                all_answered: true,
                min_clusters: 1,
                not_from: Vec::new(),
            },
            timeout_seconds: 1,
        });
        assert_eq!(changed_by(&with_probe).len(), 1);
    }

    /// `object` with label or annotation `key` set, as a controller would.
    fn stamped(mut object: Value, part: &str, key: &str) -> Value {
        object["metadata"][part][key] = json!("2026-12-05");
        object
    }

    #[test]
    fn labels_and_annotations_controllers_write_are_not_drift() {
        let left = hash(&owned_content(&dr()));
        for (part, name) in [
            ("labels", "kubernetes.io/legacy-token-last-used"),
            ("labels", "kubernetes.io/legacy-token-invalid-since"),
            ("annotations", "deployment.kubernetes.io/revision"),
            ("annotations", "deployment.kubernetes.io/desired-replicas"),
            ("annotations", "kubectl.kubernetes.io/restartedAt"),
            (
                "annotations",
                "endpoints.kubernetes.io/last-change-trigger-time",
            ),
            ("annotations", "control-plane.alpha.kubernetes.io/leader"),
        ] {
            let now = stamped(dr(), part, name);
            assert_eq!(hash(&owned_content(&now)), left, "{part} {name}");
            assert_eq!(
                classify(
                    &left_of(&key("DestinationRule"), Some(&dr())),
                    None,
                    Some(&now)
                ),
                Class::Delete,
                "{name}"
            );
        }
        // A look-alike a user sets is content.
        let now = stamped(dr(), "labels", "kubernetes.io/team");
        assert_ne!(hash(&owned_content(&now)), left);
    }

    #[test]
    fn the_pod_templates_restart_stamp_and_an_autoscalers_replicas_are_not_drift() {
        let deployment = |replicas: u32, stamp: Option<&str>| {
            let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "istiod"},
                "spec": {"replicas": replicas, "template": {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}}}});
            if let Some(s) = stamp {
                let annotations = &mut d["spec"]["template"]["metadata"]["annotations"];
                annotations["kubectl.kubernetes.io/restartedAt"] = json!(s);
                annotations[RESTART_ANNOTATION] = json!(s);
            }
            d
        };
        let left = hash(&owned_content(&deployment(1, None)));
        assert_eq!(hash(&owned_content(&deployment(3, Some("now")))), left);
        let mut edited = deployment(1, None);
        edited["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] =
            json!("true");
        assert_ne!(
            hash(&owned_content(&edited)),
            left,
            "an installer's annotation changed by hand is drift"
        );
    }

    #[test]
    fn a_token_secrets_data_filled_by_the_token_controller_is_not_drift() {
        let k = key("Secret");
        let created = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-reader-service-account-istio-remote-secret-token",
                "annotations": {"kubernetes.io/service-account.name": "istio-reader-service-account"}},
            "type": "kubernetes.io/service-account-token"});
        let left = left_of(&k, Some(&created));
        let mut filled = created.clone();
        filled["data"] =
            json!({"token": "dG9r", "ca.crt": "Y2E=", "namespace": "aXN0aW8tc3lzdGVt"});
        let filled = stamped(filled, "labels", "kubernetes.io/legacy-token-last-used");
        assert_eq!(classify(&left, None, Some(&filled)), Class::Delete);
        // Recorded after the controller filled it: the same.
        assert_eq!(left_of(&k, Some(&filled)), left);
        // Another key, or the same keys on an Opaque Secret, are content.
        let mut extra = filled.clone();
        extra["data"]["extra"] = json!("eA==");
        assert!(matches!(
            classify(&left, None, Some(&extra)),
            Class::Drifted { .. }
        ));
        let mut opaque = created.clone();
        opaque["type"] = json!("Opaque");
        let opaque_left = left_of(&k, Some(&opaque));
        let mut opaque_filled = opaque.clone();
        opaque_filled["data"] = json!({"token": "dG9r"});
        assert!(matches!(
            classify(&opaque_left, None, Some(&opaque_filled)),
            Class::Drifted { .. }
        ));
    }

    #[test]
    fn what_a_steps_rollback_restores_is_recorded_too() {
        let istio = ObjectRef::config_map("istio-system", "istio");
        let ns = ObjectRef::new("v1", "Namespace", None, "istio-system");
        let mut step = Step::new(Phase::Install, "install/c1", "install");
        step.forward = vec![
            Action::Snapshot {
                cluster: "c1".into(),
                object: istio.clone(),
            },
            Action::Apply {
                cluster: "c1".into(),
                object: ns.clone(),
                manifest: json!({}),
                secret_data: Default::default(),
            },
            Action::Exec {
                cluster: "c1".into(),
                program: "istioctl".into(),
                args: Vec::new(),
                file: None,
                timeout_seconds: 1,
            },
        ];
        step.rollback = vec![
            Action::Restore {
                cluster: "c1".into(),
                object: istio.clone(),
            },
            Action::Restore {
                cluster: "c1".into(),
                object: ns.clone(),
            },
        ];
        assert_eq!(
            recorded_objects(&step),
            [
                (("c1".to_string(), ns), true),
                (("c1".to_string(), istio), true)
            ]
        );
    }

    /// A store holding run steps `older` (done, it left `left` of `object`,
    /// absent before) and `newer` (failed, its snapshot of `object` was `then`).
    fn older_done_newer_failed(
        object: &ObjectRef,
        left: &Value,
        then: &Value,
    ) -> (Arc<dyn crate::state::Store>, RunId) {
        use crate::state::{MemoryStore, NewRun, RunKind, Store};
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let run = store
            .begin_run(NewRun {
                fingerprint: "f".into(),
                spec_name: "s".into(),
                kind: RunKind::Apply,
                plan: json!({}),
                steps: vec!["older".into(), "newer".into()],
            })
            .unwrap()
            .id;
        let k = SnapshotKey::of("c1", object);
        store
            .begin_step(run, "older", StepStatus::Running, vec![(k.clone(), None)])
            .unwrap();
        store
            .finish_step(
                run,
                "older",
                StepStatus::Done,
                vec![(k.clone(), left_of(&k, Some(left)))],
            )
            .unwrap();
        store
            .begin_step(
                run,
                "newer",
                StepStatus::Running,
                vec![(k, Some(then.clone()))],
            )
            .unwrap();
        store
            .set_step_status(run, "newer", StepStatus::Failed, Some("boom"))
            .unwrap();
        (store, run)
    }

    fn report_of(
        store: Arc<dyn crate::state::Store>,
        run: RunId,
        object: &ObjectRef,
    ) -> DriftReport {
        let apply = Action::Apply {
            cluster: "c1".into(),
            object: object.clone(),
            manifest: json!({}),
            secret_data: Default::default(),
        };
        let mut older = Step::new(Phase::Routing, "older", "apply");
        older.forward = vec![apply];
        let mut newer = Step::new(Phase::Observability, "newer", "patch");
        newer.forward = vec![Action::Patch {
            cluster: "c1".into(),
            object: object.clone(),
            patch: json!({}),
        }];
        // No cluster is connected: a live read would fail the report.
        let env = Environment {
            clusters: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            store,
            observer: Arc::new(crate::engine::NullObserver),
        };
        let steps = [
            UndoStep {
                run,
                step: &newer,
                status: Some(StepStatus::Failed),
            },
            UndoStep {
                run,
                step: &older,
                status: Some(StepStatus::Done),
            },
        ];
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(report(&env, Phase::Install, &steps))
            .unwrap()
    }

    #[test]
    fn a_step_that_did_not_finish_hides_no_drift_of_older_done_steps() {
        let object = ObjectRef::new(
            "networking.istio.io/v1",
            "DestinationRule",
            Some("sample"),
            "helloworld",
        );
        // Edited by hand between the older step and the newer one's start.
        let mut edited = dr();
        edited["metadata"]["labels"]["team"] = json!("payments");
        let (store, run) = older_done_newer_failed(&object, &dr(), &edited);
        let drift = report_of(store, run, &object);
        assert_eq!(drift.steps[0].checked, Checked::NotFinished);
        assert_eq!(drift.steps[1].checked, Checked::Yes);
        let Class::Drifted { undo, change } = &drift.steps[1].objects[0].class else {
            panic!("the hand edit before the failed step is drift: {drift:?}");
        };
        assert_eq!(*undo, Undo::Delete);
        assert!(
            matches!(change, DriftChange::Fields(f) if f[0].path == "metadata.labels.team"),
            "{change:?}"
        );
        // Untouched until the failed step began: undone after it, as before.
        let (store, run) = older_done_newer_failed(&object, &dr(), &dr());
        let drift = report_of(store, run, &object);
        assert!(!drift.has_drift());
        assert_eq!(
            drift.steps[1].objects[0].class,
            Class::AfterNewer(Undo::Delete)
        );
    }
}
