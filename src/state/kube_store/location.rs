//! `kubernetes://CONTEXT/NAMESPACE`: where a shared state store lives.

use std::fmt;

use super::super::error::StateError;

/// The URL scheme of the Kubernetes backend.
pub const SCHEME: &str = "kubernetes://";

/// A namespace of a cluster, reached by a kubeconfig context, that holds a state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeLocation {
    /// The kubeconfig context; `None` (`kubernetes:///NAMESPACE`) for the kubeconfig's current one.
    pub context: Option<String>,
    /// The namespace holding the store's Secrets and its Lease.
    pub namespace: String,
}

impl KubeLocation {
    /// Parses `kubernetes://CONTEXT/NAMESPACE`. The namespace is what follows the last `/`, so a context may
    /// contain slashes (as EKS's ARNs do).
    pub fn parse(text: &str) -> Result<KubeLocation, StateError> {
        let bad = |why: &str| StateError::KubeConfig {
            location: text.to_string(),
            detail: format!("{why}; expected kubernetes://CONTEXT/NAMESPACE"),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("not a kubernetes:// location"))?;
        let (context, namespace) = rest.rsplit_once('/').ok_or_else(|| bad("no namespace"))?;
        if !is_dns_label(namespace) {
            return Err(bad(&format!("{namespace:?} is not a namespace name")));
        }
        Ok(KubeLocation {
            context: (!context.is_empty()).then(|| context.to_string()),
            namespace: namespace.to_string(),
        })
    }
}

impl fmt::Display for KubeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/{}",
            self.context.as_deref().unwrap_or(""),
            self.namespace
        )
    }
}

/// An RFC 1123 label, as namespace names are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_context_and_namespace() {
        let l = KubeLocation::parse("kubernetes://arn:aws:eks:eu:1:cluster/mgmt/migrate-state")
            .unwrap();
        assert_eq!(l.context.as_deref(), Some("arn:aws:eks:eu:1:cluster/mgmt"));
        assert_eq!(l.namespace, "migrate-state");
        assert_eq!(
            l.to_string(),
            "kubernetes://arn:aws:eks:eu:1:cluster/mgmt/migrate-state"
        );
        let current = KubeLocation::parse("kubernetes:///ops").unwrap();
        assert_eq!(current.context, None);
        for bad in [
            "kubernetes://ctx",
            "kubernetes://ctx/Bad_NS",
            "file:///x",
            "kubernetes://ctx/",
        ] {
            assert!(KubeLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
