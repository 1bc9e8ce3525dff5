//! Which cluster a context reaches: the `kube-system` Namespace's uid (made
//! once per cluster, never reused) and the fingerprint of the API server CA
//! the kubeconfig trusts. A context re-pointed at another cluster changes
//! the first; a server re-issued under another CA (or a man in the middle)
//! the second.

use super::{Cluster, ClusterError};
use crate::object::ObjectRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A cluster's identity, as recorded at apply and read again later. Either
/// part may be unknown: a kubeconfig that trusts no CA (insecure), a
/// credential that may not read `kube-system`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentity {
    /// `metadata.uid` of the `kube-system` Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_uid: Option<String>,
    /// `sha256:<hex>` of the CA certificate(s) the kubeconfig trusts for the
    /// API server (DER), none when it trusts none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
}

impl ClusterIdentity {
    /// Whether `live` is provably another cluster: a part known on both sides
    /// differs. Unknown parts prove nothing either way.
    pub fn differs_from(&self, live: &ClusterIdentity) -> bool {
        let differs =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        differs(&self.namespace_uid, &live.namespace_uid)
            || differs(&self.ca_fingerprint, &live.ca_fingerprint)
    }

    /// Whether nothing is known (a run recorded before identities were).
    pub fn is_unknown(&self) -> bool {
        self.namespace_uid.is_none() && self.ca_fingerprint.is_none()
    }

    /// Fills the parts `self` lacks from `other`.
    pub fn or(self, other: &ClusterIdentity) -> ClusterIdentity {
        ClusterIdentity {
            namespace_uid: self.namespace_uid.or_else(|| other.namespace_uid.clone()),
            ca_fingerprint: self.ca_fingerprint.or_else(|| other.ca_fingerprint.clone()),
        }
    }

    /// The short form for messages: `kube-system uid 1b2c3d4e…, CA sha256:9f8e7d6c…`.
    pub fn short(&self) -> String {
        let uid = self
            .namespace_uid
            .as_deref()
            .map_or_else(|| "unknown".to_string(), |u| abbreviate(u, 8));
        let ca = self.ca_fingerprint.as_deref().map_or_else(
            || "none".to_string(),
            |f| match f.strip_prefix("sha256:") {
                Some(hex) => format!("sha256:{}", abbreviate(hex, 12)),
                None => abbreviate(f, 12),
            },
        );
        format!("kube-system uid {uid}, CA {ca}")
    }
}

impl std::fmt::Display for ClusterIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short())
    }
}

fn abbreviate(text: &str, n: usize) -> String {
    if text.chars().count() > n {
        format!("{}…", text.chars().take(n).collect::<String>())
    } else {
        text.to_string()
    }
}

/// `sha256:<hex>` over the DER of `certs` in order (one certificate: its
/// usual SHA-256 fingerprint); none for an empty bundle.
pub fn ca_fingerprint(certs: &[Vec<u8>]) -> Option<String> {
    if certs.is_empty() {
        return None;
    }
    let mut hash = Sha256::new();
    for der in certs {
        hash.update(der);
    }
    Some(format!("sha256:{}", hex::encode(hash.finalize())))
}

impl Cluster {
    /// The fingerprint of the CA the kubeconfig trusts for this cluster's
    /// API server (`connect` sets it), none when it trusts none.
    pub fn ca_fingerprint(&self) -> Option<&str> {
        self.ca_fingerprint.as_deref()
    }

    /// This cluster's identity, read now: the CA part from the kubeconfig,
    /// the uid from the API server (one GET of Namespace `kube-system`).
    pub async fn identity(&self) -> Result<ClusterIdentity, ClusterError> {
        let namespace = self.get(&ObjectRef::namespace("kube-system")).await?;
        Ok(ClusterIdentity {
            namespace_uid: namespace
                .as_ref()
                .and_then(|n| n.pointer("/metadata/uid"))
                .and_then(|u| u.as_str())
                .map(str::to_string),
            ca_fingerprint: self.ca_fingerprint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: Option<&str>, ca: Option<&str>) -> ClusterIdentity {
        ClusterIdentity {
            namespace_uid: uid.map(Into::into),
            ca_fingerprint: ca.map(Into::into),
        }
    }

    #[test]
    fn a_known_part_that_differs_is_another_cluster() {
        let recorded = id(Some("uid-1"), Some("sha256:aa"));
        assert!(!recorded.differs_from(&recorded.clone()));
        assert!(recorded.differs_from(&id(Some("uid-2"), Some("sha256:aa"))));
        assert!(recorded.differs_from(&id(Some("uid-1"), Some("sha256:bb"))));
        // Unknown on either side proves nothing.
        assert!(!recorded.differs_from(&id(None, Some("sha256:aa"))));
        assert!(!recorded.differs_from(&id(Some("uid-1"), None)));
        assert!(!id(None, None).differs_from(&id(Some("x"), Some("y"))));
        assert!(id(None, None).is_unknown());
    }

    #[test]
    fn the_short_form_names_both_parts() {
        let long = id(
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            Some("sha256:00112233445566778899aabbccddeeff"),
        );
        assert_eq!(
            long.short(),
            "kube-system uid 0f1e2d3c…, CA sha256:001122334455…"
        );
        assert_eq!(id(None, None).short(), "kube-system uid unknown, CA none");
    }

    #[test]
    fn the_fingerprint_of_one_certificate_is_its_sha256() {
        let der = b"not really DER".to_vec();
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(&der)));
        assert_eq!(ca_fingerprint(std::slice::from_ref(&der)), Some(expected));
        assert_eq!(ca_fingerprint(&[]), None);
        assert_ne!(
            ca_fingerprint(&[der.clone(), b"x".to_vec()]),
            ca_fingerprint(&[der])
        );
    }

    #[test]
    fn missing_parts_are_filled_from_another() {
        let filled = id(None, Some("sha256:aa")).or(&id(Some("u"), Some("sha256:bb")));
        assert_eq!(filled, id(Some("u"), Some("sha256:aa")));
    }

    #[test]
    fn an_older_record_without_parts_reads_as_unknown() {
        let read: ClusterIdentity = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(read.is_unknown());
    }
}
