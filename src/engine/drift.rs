//! Drift: what changed in an object since `migrate` left it.
//!
//! When a step is done the engine records, per object it applied, patched,
//! edited or deleted, a hash of the content a user may change (and, except
//! for Secrets, that content). Before a rollback changes anything, each
//! recorded object is compared with the live one and classified: restore,
//! delete, unchanged, or DRIFTED (changed by someone else since). Rollback
//! refuses drift unless forced; `rollback --dry-run` and `plan` report it.
//!
//! Objects an installer (istioctl) changes are not recorded one by one: its
//! steps are flagged instead.

use super::context::{ActionError, Environment, StepCtx};
use crate::cluster::{Backoff, retry};
use crate::object::ObjectRef;
use crate::plan::{Action, Phase, Step};
use crate::state::{Left, LeftObject, RunId, SnapshotFilter, SnapshotKey, StateError, StepStatus};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Annotations that do not count as content: written by controllers, or
/// stamped by `migrate` itself where rollback would not put them back.
const IGNORED_ANNOTATIONS: [&str; 2] = [
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/restartedAt",
];

/// Top-level fields that are the server's, not the user's.
const IGNORED_TOP_LEVEL: [&str; 3] = ["status", "apiVersion", "kind"];

/// The content of `object` that a user may change and rollback puts back:
/// `metadata.labels` and `metadata.annotations` (less
/// [`IGNORED_ANNOTATIONS`]), and every top-level field but `metadata`,
/// `status`, `apiVersion` and `kind` (so `spec`, `data`, `stringData`,
/// `type`, ...). Empty label or annotation maps count as absent.
pub fn owned_content(object: &Value) -> Value {
    let mut out = Map::new();
    let Some(fields) = object.as_object() else {
        return Value::Object(out);
    };
    for (name, value) in fields {
        if name == "metadata" {
            let mut meta = Map::new();
            for part in ["labels", "annotations"] {
                if let Some(Value::Object(map)) = value.get(part) {
                    let kept: Map<String, Value> = map
                        .iter()
                        .filter(|(k, _)| !IGNORED_ANNOTATIONS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !kept.is_empty() {
                        meta.insert(part.to_string(), Value::Object(kept));
                    }
                }
            }
            if !meta.is_empty() {
                out.insert("metadata".into(), Value::Object(meta));
            }
        } else if !IGNORED_TOP_LEVEL.contains(&name.as_str()) {
            out.insert(name.clone(), strip_pod_template_stamps(value.clone()));
        }
    }
    Value::Object(out)
}

/// `spec.template.metadata.annotations` less the restart stamp, which
/// `migrate` writes and a rollback does not take back.
fn strip_pod_template_stamps(mut spec: Value) -> Value {
    if let Some(Value::Object(annotations)) = spec.pointer_mut("/template/metadata/annotations") {
        for key in IGNORED_ANNOTATIONS {
            annotations.remove(key);
        }
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
            secret_keys: secret_keys(object),
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

/// Whether the actions run an installer, whose changes are not tracked per object.
pub fn runs_installer(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Exec { .. }))
}

/// What a done step left of each object it changed, read live and in
/// parallel (deleted ones are recorded absent without a read).
pub(crate) async fn record(
    ctx: &StepCtx,
    actions: &[Action],
) -> Result<Vec<(SnapshotKey, Left)>, ActionError> {
    let mut out = Vec::new();
    let mut reads = tokio::task::JoinSet::new();
    for ((cluster, object), kept) in changed_by(actions) {
        let key = SnapshotKey::of(&cluster, &object);
        if !kept {
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
                    now: secret_keys(now),
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
    /// Done by a migrate that recorded nothing.
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
    /// It runs an installer, whose objects are not checked one by one.
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

    /// Whether a step of the report runs an installer (its objects are not checked).
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

/// Classifies every object of `steps` (a rollback to `to`, newest first),
/// comparing what each done step left with the live objects. Changes nothing.
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
    // An object undone by a newer step is compared there only.
    let mut seen: BTreeSet<SnapshotKey> = BTreeSet::new();
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
        let tracked = !changed_by(&step.forward).is_empty();
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
            let class = if seen.contains(&record.key) {
                Class::AfterNewer(if before.is_some() {
                    Undo::Restore
                } else {
                    Undo::Delete
                })
            } else {
                let live = read_live(env, &record.key).await?;
                classify(&record.left, before.as_ref(), live.as_ref())
            };
            objects.push(ObjectDrift {
                key: record.key,
                class,
            });
        }
        seen.extend(objects.iter().map(|o| o.key.clone()));
        seen.extend(snapshots.into_keys());
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
}
