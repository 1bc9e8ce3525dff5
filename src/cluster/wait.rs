//! Waiting for an object to reach a condition: a watch (list + watch, as
//! kube's `await_condition` does) bounded by a timeout, with conditions that
//! check `observedGeneration` so stale status never counts.

use super::{Cluster, ClusterError};
use crate::object::ObjectRef;
use kube::api::DynamicObject;
use serde_json::Value;
use std::time::Duration;

/// A predicate on the object (None: it does not exist); the wait ends when
/// it holds.
pub type Predicate = Box<dyn Fn(Option<&Value>) -> bool + Send + Sync>;

impl Cluster {
    /// Waits until `condition` holds for the object, at most `timeout`.
    /// `what` describes the condition in errors ("deployment available").
    pub async fn wait_for(
        &self,
        key: &ObjectRef,
        what: &str,
        timeout: Duration,
        condition: Predicate,
    ) -> Result<Option<Value>, ClusterError> {
        let api = self.api_for(key).await?;
        let condition = std::sync::Arc::new(condition);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_error = None;
        let mut quick_failures = 0u32;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            // Each watch ends before the client's read timeout would cut an idle stream; a new one re-lists.
            let slice = (deadline - now).min(WATCH_SLICE);
            let cond = {
                let condition = condition.clone();
                move |obj: Option<&DynamicObject>| {
                    let value = obj.and_then(|o| serde_json::to_value(o).ok());
                    condition(value.as_ref())
                }
            };
            let waiting = kube::runtime::wait::await_condition(api.clone(), &key.name, cond);
            match tokio::time::timeout(slice, waiting).await {
                Ok(Ok(obj)) => return Ok(obj.and_then(|o| serde_json::to_value(o).ok())),
                Ok(Err(e)) if now.elapsed() < Duration::from_secs(2) => {
                    // It could not even start: a 5xx or 429 on its list is tried again; a
                    // cluster that keeps refusing is the caller's retry policy's to judge.
                    quick_failures += 1;
                    if quick_failures >= WATCH_START_ATTEMPTS {
                        return Err(ClusterError::Transport {
                            cluster: self.name.clone(),
                            object: key.to_string(),
                            message: format!("watch failed {quick_failures} times in a row: {e}"),
                            tls: false,
                        });
                    }
                    last_error = Some(e.to_string());
                    let pause = Duration::from_millis(50 << quick_failures.min(5));
                    tokio::time::sleep(
                        pause.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                    )
                    .await;
                }
                Ok(Err(e)) => {
                    // A stream that ran for a while and dropped: watch again until the deadline.
                    quick_failures = 0;
                    last_error = Some(e.to_string());
                }
                Err(_) => {}
            }
        }
        let last_seen = match self.get(key).await {
            Ok(obj) => summary(obj.as_ref()),
            Err(e) => match last_error {
                Some(watch) => format!("unknown ({e}; the watch failed: {watch})"),
                None => format!("unknown ({e})"),
            },
        };
        Err(ClusterError::Timeout {
            cluster: self.name.clone(),
            object: key.to_string(),
            condition: what.to_string(),
            waited: timeout,
            last_seen,
        })
    }
}

/// Watches in a row that fail to start before the wait gives up early.
const WATCH_START_ATTEMPTS: u32 = 6;

/// How long one watch may stay open: under the client's 60 s read timeout.
const WATCH_SLICE: Duration = Duration::from_secs(45);

/// A short description of an object's state for errors: never its data
/// (a Secret's values must not reach a message).
pub fn summary(obj: Option<&Value>) -> String {
    let Some(obj) = obj else {
        return "absent".into();
    };
    match obj.get("status") {
        Some(status) if !status.is_null() => {
            let mut text = status.to_string();
            if text.len() > 300 {
                let mut cut = 300;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            format!("status {text}")
        }
        _ => {
            let keys: Vec<&str> = obj
                .get("data")
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                "present".into()
            } else {
                format!("present with keys {}", keys.join(", "))
            }
        }
    }
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64()
}

fn condition_true(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The object exists.
pub fn exists() -> Predicate {
    Box::new(|obj| obj.is_some())
}

/// The object does not exist.
pub fn absent() -> Predicate {
    Box::new(|obj| obj.is_none())
}

/// The Deployment's current generation is rolled out: every replica updated
/// and available (0 replicas counts as rolled out once observed).
pub fn deployment_rolled_out() -> Predicate {
    Box::new(|obj| {
        let Some(d) = obj else { return false };
        let want = int(d, &["spec", "replicas"]).unwrap_or(1);
        let generation = int(d, &["metadata", "generation"]).unwrap_or(0);
        let observed = int(d, &["status", "observedGeneration"]).unwrap_or(0);
        let status = |f: &str| int(d, &["status", f]).unwrap_or(0);
        observed >= generation
            && status("updatedReplicas") == want
            && status("availableReplicas") == want
            && status("replicas") == want
    })
}

/// A LoadBalancer Service has an address.
pub fn load_balancer_ready() -> Predicate {
    Box::new(|obj| {
        obj.and_then(|s| s.pointer("/status/loadBalancer/ingress/0"))
            .is_some_and(|i| {
                ["ip", "hostname"].iter().any(|k| {
                    i.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            })
    })
}

/// A Secret has every key, non-empty.
pub fn secret_has_keys(keys: Vec<String>) -> Predicate {
    Box::new(move |obj| {
        let Some(data) = obj.and_then(|s| s.get("data")) else {
            return false;
        };
        keys.iter().all(|k| {
            data.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        })
    })
}

/// A ConfigMap's key contains `needle` (the expected root certificate, say).
pub fn configmap_contains(key: String, needle: String) -> Predicate {
    Box::new(move |obj| {
        obj.and_then(|c| {
            c.pointer(&format!(
                "/data/{}",
                key.replace('~', "~0").replace('/', "~1")
            ))
        })
        .and_then(Value::as_str)
        .is_some_and(|v| v.contains(needle.as_str()))
    })
}

/// A Job completed or failed (the caller tells which from the object).
pub fn job_finished() -> Predicate {
    Box::new(|obj| {
        obj.is_some_and(|j| condition_true(j, "Complete") || condition_true(j, "Failed"))
    })
}

/// The object has `label=value`.
pub fn has_label(label: String, value: String) -> Predicate {
    Box::new(move |obj| {
        obj.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(|l| l.get(&label))
            .and_then(Value::as_str)
            == Some(value.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_needs_observed_generation() {
        let cond = deployment_rolled_out();
        let mut d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(!cond(Some(&d)), "stale status must not count");
        d["status"]["observedGeneration"] = json!(2);
        assert!(cond(Some(&d)));
        d["status"]["availableReplicas"] = json!(1);
        assert!(!cond(Some(&d)));
        assert!(!cond(None));
    }

    #[test]
    fn conditions_on_services_secrets_configmaps_jobs() {
        assert!(load_balancer_ready()(Some(
            &json!({"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.1"}]}}})
        )));
        assert!(!load_balancer_ready()(Some(
            &json!({"status": {"loadBalancer": {}}})
        )));
        let s = json!({"data": {"token": "dA==", "ca.crt": ""}});
        assert!(secret_has_keys(vec!["token".into()])(Some(&s)));
        assert!(!secret_has_keys(vec!["token".into(), "ca.crt".into()])(
            Some(&s)
        ));
        let cm = json!({"data": {"root-cert.pem": "-----BEGIN CERTIFICATE-----\nABC"}});
        assert!(configmap_contains("root-cert.pem".into(), "ABC".into())(
            Some(&cm)
        ));
        assert!(!configmap_contains("root-cert.pem".into(), "XYZ".into())(
            Some(&cm)
        ));
        let job = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert!(job_finished()(Some(&job)));
        assert!(!job_finished()(Some(&json!({"status": {}}))));
    }

    #[test]
    fn summaries_never_show_secret_values() {
        let s = json!({"kind": "Secret", "data": {"ca-key.pem": "c2VjcmV0"}});
        let text = summary(Some(&s));
        assert!(
            text.contains("ca-key.pem") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        assert_eq!(summary(None), "absent");
    }
}
