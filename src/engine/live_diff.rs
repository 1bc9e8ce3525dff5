//! `migrate plan`'s live diff: for every object a step applies, what a
//! server-side dry-run apply says would happen to the cluster as it is now.
//! Nothing is written; secret values are never read into the result (only
//! field paths are reported).

use crate::cluster::{Cluster, ClusterError, clean_for_compare};
use crate::object::ObjectRef;
use crate::plan::{Action, Phase, Plan};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What applying one object would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "change")]
pub enum Change {
    /// The object does not exist yet.
    Create {
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// It exists and these fields (JSON paths) would change.
    Update {
        fields: Vec<String>,
    },
    Unchanged,
    /// The dry run could not tell (the cluster refused it).
    Unknown {
        reason: String,
    },
}

/// How one object a step would apply differs from the live one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDiff {
    pub step: String,
    pub cluster: String,
    pub object: String,
    #[serde(flatten)]
    pub change: Change,
}

/// The most field paths listed per object.
const MAX_FIELDS: usize = 12;

/// Dry-runs every apply of `plan` (of `phase` only, if given) against the
/// clusters in `clusters`; applies to other clusters are skipped. Each is
/// compared with the live object as it is now, not as earlier steps would
/// leave it.
pub async fn live_diff(
    plan: &Plan,
    phase: Option<Phase>,
    clusters: &BTreeMap<String, Arc<Cluster>>,
) -> Vec<ObjectDiff> {
    let mut out = Vec::new();
    for step in plan
        .steps
        .iter()
        .filter(|s| phase.is_none_or(|p| s.phase == p))
    {
        for action in &step.forward {
            let Action::Apply {
                cluster,
                object,
                manifest,
                secret_data,
            } = action
            else {
                continue;
            };
            let Some(c) = clusters.get(cluster) else {
                continue;
            };
            let change = object_change(c, manifest, !secret_data.is_empty()).await;
            out.push(ObjectDiff {
                step: step.id.clone(),
                cluster: cluster.clone(),
                object: object.to_string(),
                change,
            });
        }
    }
    out
}

async fn object_change(cluster: &Cluster, manifest: &Value, data_filled_later: bool) -> Change {
    let Some(key) = ObjectRef::of(manifest) else {
        return Change::Unknown {
            reason: "the manifest has no apiVersion, kind or name".into(),
        };
    };
    let live = match cluster.get(&key).await {
        Ok(Some(live)) => live,
        Ok(None) => return Change::Create { why: None },
        Err(ClusterError::UnknownKind { .. }) => {
            return Change::Create {
                why: Some("its kind is not served yet (an earlier step installs it)".into()),
            };
        }
        Err(e) => {
            return Change::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let dry = match cluster.apply(manifest, true).await {
        Ok(v) => v,
        Err(e) => {
            return Change::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let is_secret = key.kind == "Secret" && key.api_version == "v1";
    let mut fields = BTreeSet::new();
    changed_paths(
        "",
        &clean_for_compare(&live),
        &clean_for_compare(&dry),
        &mut fields,
    );
    // Secret data filled in at apply time is not in the manifest: do not report its absence.
    if is_secret && data_filled_later {
        fields.retain(|f| !f.starts_with("/data") && !f.starts_with("/stringData"));
    }
    if fields.is_empty() {
        Change::Unchanged
    } else {
        let mut fields: Vec<String> = fields.into_iter().collect();
        if fields.len() > MAX_FIELDS {
            let more = fields.len() - MAX_FIELDS;
            fields.truncate(MAX_FIELDS);
            fields.push(format!("... {more} more"));
        }
        Change::Update { fields }
    }
}

/// Paths (JSON pointer style) where `a` and `b` differ; arrays count as one field.
fn changed_paths(path: &str, a: &Value, b: &Value, out: &mut BTreeSet<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => changed_paths(&p, va, vb, out),
                    _ => {
                        out.insert(p);
                    }
                }
            }
        }
        _ if a != b => {
            out.insert(if path.is_empty() {
                "/".into()
            } else {
                path.into()
            });
        }
        _ => {}
    }
}

/// The diff as text, grouped by step.
pub fn render_text(diffs: &[ObjectDiff]) -> String {
    let mut out = String::new();
    let mut last_step = "";
    for d in diffs {
        if d.step != last_step {
            out.push_str(&format!("  {}\n", d.step));
            last_step = &d.step;
        }
        let what = match &d.change {
            Change::Create { why: None } => "create".to_string(),
            Change::Create { why: Some(w) } => format!("create ({w})"),
            Change::Update { fields } => format!("update {}", fields.join(", ")),
            Change::Unchanged => "unchanged".to_string(),
            Change::Unknown { reason } => format!("unknown: {reason}"),
        };
        out.push_str(&format!("    {} @{}: {what}\n", d.object, d.cluster));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_paths_name_leaves_and_whole_arrays() {
        let a = json!({"metadata": {"labels": {"a": "1", "x/y": "2"}}, "spec": {"ports": [1, 2], "same": true}});
        let b = json!({"metadata": {"labels": {"a": "2", "x/y": "2", "new": "n"}}, "spec": {"ports": [1], "same": true}});
        let mut out = BTreeSet::new();
        changed_paths("", &a, &b, &mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec!["/metadata/labels/a", "/metadata/labels/new", "/spec/ports"]
        );
    }

    #[test]
    fn text_groups_by_step() {
        let d = |step: &str, change| ObjectDiff {
            step: step.into(),
            cluster: "c1".into(),
            object: "ConfigMap ns/x".into(),
            change,
        };
        let text = render_text(&[
            d("a", Change::Create { why: None }),
            d("a", Change::Unchanged),
            d(
                "b",
                Change::Update {
                    fields: vec!["/data/k".into()],
                },
            ),
        ]);
        assert_eq!(
            text,
            "  a\n    ConfigMap ns/x @c1: create\n    ConfigMap ns/x @c1: unchanged\n  b\n    ConfigMap ns/x @c1: update /data/k\n"
        );
    }
}
