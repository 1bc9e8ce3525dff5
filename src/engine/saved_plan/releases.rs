//! The Helm releases a saved plan upgrades or rolls back, as they were:
//! `helm upgrade` merges the plan's values over the release's values of
//! record, so a release upgraded by hand since the plan was saved changes
//! what the plan does.
//!
//! Read from Helm's own records (the Secrets `sh.helm.release.v1.<release>.v<N>`,
//! labels `owner=helm`, `name`, `status`, `version`): the latest revision and
//! its status, and the values of record of the deployed one (its payload:
//! base64 of gzipped JSON, whose `config` is what `helm get values` prints).
//! Only hashes of the values are kept, one per top-level key and one of the
//! whole, so the refusal can name the keys that changed; never a value.

use super::SavedPlanError;
use crate::cluster::Cluster;
use crate::plan::{Action, Plan};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// A release: where and which.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseKey {
    /// The cluster's name in the plan.
    pub cluster: String,
    /// The release's namespace.
    pub namespace: String,
    /// The release's name.
    pub release: String,
}

impl std::fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Helm release {}/{} in {}",
            self.namespace, self.release, self.cluster
        )
    }
}

/// A release as the plan found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseFingerprint {
    /// The release.
    pub key: ReleaseKey,
    /// Its latest revision (absent: not installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// That revision's status (`deployed`, `pending-upgrade`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// SHA-256 of the deployed revision's values of record (absent: none deployed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_hash: Option<String>,
    /// SHA-256 of each top-level key of those values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// Every release `plan` upgrades or rolls back, sorted.
pub fn watched(plan: &Plan) -> Vec<ReleaseKey> {
    let mut out = BTreeSet::new();
    for step in &plan.steps {
        for action in step
            .forward
            .iter()
            .chain(&step.finally)
            .chain(&step.rollback)
        {
            if let Action::HelmUpgrade {
                cluster,
                namespace,
                release,
                ..
            }
            | Action::HelmRollback {
                cluster,
                namespace,
                release,
                ..
            } = action
            {
                out.insert(ReleaseKey {
                    cluster: cluster.clone(),
                    namespace: namespace.clone(),
                    release: release.clone(),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Reads `key`'s records in `cluster` now.
pub async fn read(
    cluster: &Cluster,
    key: &ReleaseKey,
) -> Result<ReleaseFingerprint, SavedPlanError> {
    let selector = format!("owner=helm,name={}", key.release);
    let listed = crate::cluster::retry(
        crate::cluster::Backoff::default(),
        || cluster.list("v1", "Secret", Some(&key.namespace), Some(&selector)),
        |_, _| {},
    )
    .await
    .map_err(|e| SavedPlanError::Unreadable {
        object: key.to_string(),
        error: crate::state::redact_text(&e.to_string()),
    })?
    .0;
    fingerprint_of(key, &listed).map_err(|reason| SavedPlanError::Unreadable {
        object: key.to_string(),
        error: reason,
    })
}

/// The fingerprint of `key` from its record Secrets.
pub fn fingerprint_of(key: &ReleaseKey, records: &[Value]) -> Result<ReleaseFingerprint, String> {
    let label = |s: &Value, k: &str| {
        s.pointer(&format!("/metadata/labels/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut revisions: Vec<(u32, String, &Value)> = records
        .iter()
        .filter_map(|s| {
            let version = label(s, "version")?.parse().ok()?;
            Some((version, label(s, "status")?, s))
        })
        .collect();
    revisions.sort_by_key(|(v, _, _)| *v);
    let latest = revisions.last();
    let deployed = revisions.iter().rev().find(|(_, st, _)| st == "deployed");
    let (values_hash, values) = match deployed {
        None => (None, BTreeMap::new()),
        Some((version, _, secret)) => {
            let config = values_of_record(secret)
                .map_err(|why| format!("revision {version}'s record: {why}"))?;
            let per_key = match &config {
                Value::Object(m) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), super::drift::hash(v)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            (Some(super::drift::hash(&config)), per_key)
        }
    };
    Ok(ReleaseFingerprint {
        key: key.clone(),
        revision: latest.map(|(v, _, _)| *v),
        status: latest.map(|(_, st, _)| st.clone()),
        values_hash,
        values,
    })
}

/// The `config` of a release record Secret (as the API returns it: the
/// record's own base64, encoded again), `{}` when it has none.
fn values_of_record(secret: &Value) -> Result<Value, String> {
    let wire = secret
        .pointer("/data/release")
        .and_then(Value::as_str)
        .ok_or("no data.release")?;
    let record = B64.decode(wire).map_err(|e| format!("not base64: {e}"))?;
    let bytes = B64
        .decode(String::from_utf8_lossy(&record).trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("does not decompress: {e}"))?;
        out
    } else {
        bytes
    };
    let release: Value =
        serde_json::from_slice(&json).map_err(|e| format!("not a release: {e}"))?;
    Ok(match release.get("config") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(config) => config.clone(),
    })
}

/// What changed between `then` and `now`, if anything: the revision and
/// the top-level values keys whose content changed.
pub fn compare(then: &ReleaseFingerprint, now: &ReleaseFingerprint) -> Option<String> {
    let revision = |f: &ReleaseFingerprint| match (&f.revision, &f.status) {
        (Some(v), Some(st)) => format!("revision {v} ({st})"),
        _ => "not installed".to_string(),
    };
    let mut what = Vec::new();
    if then.values_hash != now.values_hash {
        let keys: BTreeSet<&String> = then.values.keys().chain(now.values.keys()).collect();
        let changed: Vec<&str> = keys
            .into_iter()
            .filter(|k| then.values.get(*k) != now.values.get(*k))
            .map(String::as_str)
            .collect();
        what.push(match changed.is_empty() {
            true => "its values of record changed".to_string(),
            false => format!("its values of record changed ({})", changed.join(", ")),
        });
    }
    if (then.revision, &then.status) != (now.revision, &now.status) {
        what.push(format!("{} -> {}", revision(then), revision(now)));
    }
    (!what.is_empty()).then(|| what.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    /// A record Secret as Helm writes it and the API returns it.
    pub(crate) fn record(version: u32, status: &str, config: Value) -> Value {
        let release = json!({"name": "istiod", "version": version, "config": config});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(release.to_string().as_bytes()).unwrap();
        let helm = B64.encode(gz.finish().unwrap());
        json!({
            "metadata": {"name": format!("sh.helm.release.v1.istiod.v{version}"),
                "labels": {"owner": "helm", "name": "istiod", "status": status, "version": version.to_string()}},
            "data": {"release": B64.encode(helm)},
        })
    }

    fn key() -> ReleaseKey {
        ReleaseKey {
            cluster: "cluster1".into(),
            namespace: "istio-system".into(),
            release: "istiod".into(),
        }
    }

    #[test]
    fn a_hand_upgrade_names_the_values_keys_it_changed_and_keeps_no_value() {
        let values =
            json!({"global": {"meshID": "mesh1"}, "pilot": {"env": {"TOKEN": "s3cr3t-value"}}});
        let then = fingerprint_of(&key(), &[record(1, "deployed", values.clone())]).unwrap();
        assert_eq!(then.revision, Some(1));
        let text = serde_json::to_string(&then).unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("mesh1"),
            "{text}"
        );
        assert_eq!(then.values.keys().collect::<Vec<_>>(), ["global", "pilot"]);
        let same = fingerprint_of(&key(), &[record(1, "deployed", values.clone())]).unwrap();
        assert_eq!(compare(&then, &same), None);

        let mut edited = values.clone();
        edited["pilot"]["env"]["TOKEN"] = json!("other");
        let now = fingerprint_of(
            &key(),
            &[
                record(1, "superseded", values),
                record(2, "deployed", edited),
            ],
        )
        .unwrap();
        assert_eq!(
            compare(&then, &now).as_deref(),
            Some(
                "its values of record changed (pilot); revision 1 (deployed) -> revision 2 (deployed)"
            )
        );
        let gone = fingerprint_of(&key(), &[]).unwrap();
        assert_eq!(
            compare(&then, &gone).as_deref(),
            Some(
                "its values of record changed (global, pilot); revision 1 (deployed) -> not installed"
            )
        );
    }
}
