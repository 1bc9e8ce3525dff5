//! What the istiod stand-in does differently per Istio release (issue 13's table): the
//! release a pod runs is its `discovery` image's tag.

use serde_json::Value;

/// The Istio release an istiod pod runs: its `discovery` image's tag (`pilot:1.26.4`), else
/// the release the stand-in plays.
pub fn pod_version(pod: &Value) -> (u32, u32, u32) {
    let parse = |v: &str| -> Option<(u32, u32, u32)> {
        let core = v.split_once('-').map_or(v, |(c, _)| c);
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        match (parts.next()?, parts.next()?, parts.next()?, parts.next()) {
            (Some(a), Some(b), Some(c), None) => Some((a, b, c)),
            _ => None,
        }
    };
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
        })
        .and_then(|c| c.get("image").and_then(Value::as_str))
        .and_then(|image| image.rsplit_once(':'))
        .and_then(|(_, tag)| parse(tag))
        .or_else(|| parse(super::install::VERSION))
        .unwrap_or((1, 30, 3))
}

/// Istio before 1.31 keeps a stale view of a remote secret that changed until it restarts.
pub fn keeps_stale_remote_secrets(pod: &Value) -> bool {
    pod_version(pod) < (1, 31, 0)
}
