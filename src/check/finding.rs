//! What the checker reports: one [`Finding`] per mistake, with a stable code,
//! and the table of every code ([`CODES`]), so a code in a ticket or a CI log
//! means the same thing in every release.

use super::Group;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is: errors break cross-cluster traffic or discovery
/// (the command exits 1); warnings are likely mistakes; info says what was
/// not checked, or what is worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Traffic or discovery across clusters is broken.
    Error,
    /// Likely a mistake; the mesh may still work.
    Warning,
    /// Worth knowing, or a check that could not run and why.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        })
    }
}

/// One mistake found in one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, `MC101` (see [`CODES`]).
    pub code: String,
    /// How bad it is.
    pub severity: Severity,
    /// The group of checks that found it.
    pub group: Group,
    /// The cluster (as the spec or `--context` names it) the object lives in.
    pub cluster: String,
    /// The object: `Kind namespace/name`, `Kind name`, or `-` for the cluster as a whole.
    pub object: String,
    /// What is wrong, with the values seen and expected.
    pub message: String,
    /// What to do: the command or field that fixes it.
    pub fix: String,
}

impl Finding {
    /// A finding of `code`, its severity and group taken from [`CODES`].
    ///
    /// # Panics
    /// When `code` is not in [`CODES`]: a programming error the unit tests catch.
    pub fn new(
        code: &str,
        cluster: impl Into<String>,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        let entry = code_entry(code).unwrap_or_else(|| panic!("check code {code} is not in CODES"));
        Finding {
            code: code.to_string(),
            severity: entry.severity,
            group: entry.group,
            cluster: cluster.into(),
            object: object.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The same finding with another severity (a rule that knows more, say).
    pub fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}

/// One row of the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeEntry {
    /// `MC101`.
    pub code: &'static str,
    /// Its usual severity.
    pub severity: Severity,
    /// The group of checks it belongs to.
    pub group: Group,
    /// One line: what it means.
    pub summary: &'static str,
}

const fn entry(
    code: &'static str,
    severity: Severity,
    group: Group,
    summary: &'static str,
) -> CodeEntry {
    CodeEntry {
        code,
        severity,
        group,
        summary,
    }
}

use Group as G;
use Severity::{Error as E, Info as I, Warning as W};

/// Every code the checker reports. Codes are never reused for another meaning.
pub const CODES: &[CodeEntry] = &[
    entry(
        "MC001",
        E,
        G::Read,
        "the cluster could not be read (unreachable, credentials refused)",
    ),
    entry(
        "MC002",
        I,
        G::Read,
        "a check was skipped: it needs a value nobody gave (spec) and the clusters do not show",
    ),
    entry(
        "MC003",
        W,
        G::Read,
        "some objects could not be read (forbidden): checks that need them may miss mistakes",
    ),
    entry(
        "MC101",
        E,
        G::Roots,
        "the clusters' served roots (istio-ca-root-cert) share no certificate: mTLS across them fails",
    ),
    entry(
        "MC102",
        E,
        G::Roots,
        "cacerts' root-cert.pem is not among the roots istiod serves: istiod was not restarted after cacerts changed",
    ),
    entry(
        "MC103",
        E,
        G::Roots,
        "cacerts lacks one of ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem",
    ),
    entry(
        "MC104",
        W,
        G::Roots,
        "cacerts' cert-chain.pem does not end in its root-cert.pem",
    ),
    entry(
        "MC105",
        W,
        G::Roots,
        "no cacerts on a multi-cluster mesh: each istiod signs with its own self-signed root",
    ),
    entry(
        "MC201",
        E,
        G::Names,
        "istiod's clusterName (CLUSTER_ID) is not the one expected",
    ),
    entry("MC202", E, G::Names, "two clusters share one clusterName"),
    entry(
        "MC203",
        E,
        G::Names,
        "a remote secret's data key and its networking.istio.io/cluster annotation differ",
    ),
    entry(
        "MC204",
        E,
        G::Names,
        "a remote secret names the cluster it reads differently from that cluster's clusterName",
    ),
    entry("MC205", E, G::Names, "the clusters do not share one meshID"),
    entry(
        "MC301",
        E,
        G::Networks,
        "the istio-system network label is missing or not the cluster's network",
    ),
    entry(
        "MC302",
        W,
        G::Networks,
        "the install's global.network differs from the istio-system network label",
    ),
    entry(
        "MC303",
        E,
        G::Networks,
        "the east-west gateway Service's network label differs from its cluster's network",
    ),
    entry(
        "MC401",
        E,
        G::Gateway,
        "no east-west gateway Service on a multi-network mesh",
    ),
    entry(
        "MC402",
        E,
        G::Gateway,
        "the east-west gateway has no external address",
    ),
    entry(
        "MC403",
        E,
        G::Gateway,
        "the east-west gateway lacks a port it needs (15443; 15012 and 15017 for primary-remote)",
    ),
    entry(
        "MC404",
        E,
        G::Gateway,
        "no AUTO_PASSTHROUGH Gateway on port 15443 selects the east-west gateway",
    ),
    entry(
        "MC405",
        E,
        G::Gateway,
        "two AUTO_PASSTHROUGH Gateways on port 15443 select the same gateway",
    ),
    entry(
        "MC501",
        E,
        G::RemoteSecrets,
        "a cluster's istiod has no remote secret for a cluster it must read",
    ),
    entry(
        "MC502",
        E,
        G::RemoteSecrets,
        "a remote secret's kubeconfig cannot be read or names no server",
    ),
    entry(
        "MC503",
        E,
        G::RemoteSecrets,
        "a remote secret's kubeconfig has no CA for an https server (istiod's TLS check fails)",
    ),
    entry(
        "MC504",
        E,
        G::RemoteSecrets,
        "a remote secret's kubeconfig has no credentials",
    ),
    entry(
        "MC505",
        W,
        G::RemoteSecrets,
        "a remote secret's server is not the address expected for that cluster",
    ),
    entry(
        "MC506",
        W,
        G::RemoteSecrets,
        "a remote secret's CA is not the CA that cluster's API server presents",
    ),
    entry(
        "MC507",
        E,
        G::RemoteSecrets,
        "an istiod replica does not report a peer cluster as synced",
    ),
    entry(
        "MC508",
        W,
        G::RemoteSecrets,
        "a remote secret reads a cluster that is not part of this mesh, or the cluster itself",
    ),
    entry(
        "MC601",
        E,
        G::DestinationRules,
        "locality failover without outlierDetection: failover never happens",
    ),
    entry(
        "MC602",
        W,
        G::DestinationRules,
        "outlierDetection.consecutiveErrors is obsolete and ignored",
    ),
    entry(
        "MC651",
        I,
        G::Services,
        "a Service exists in some clusters only: callers elsewhere cannot resolve its name",
    ),
    entry(
        "MC652",
        E,
        G::Services,
        "a Service differs across clusters in ports, type or headlessness",
    ),
    entry(
        "MC701",
        E,
        G::Webhook,
        "a remote's injection webhook has no caBundle",
    ),
    entry(
        "MC702",
        W,
        G::Webhook,
        "a remote's injection webhook does not point at its primary",
    ),
    entry(
        "MC703",
        E,
        G::Webhook,
        "namespaces ask for injection but no injection webhook exists",
    ),
    entry(
        "MC751",
        E,
        G::ReaderRbac,
        "the reader ServiceAccount that remote secrets use is missing",
    ),
    entry(
        "MC752",
        E,
        G::ReaderRbac,
        "the reader ClusterRole is missing",
    ),
    entry(
        "MC753",
        E,
        G::ReaderRbac,
        "no ClusterRoleBinding gives the reader ServiceAccount the reader ClusterRole",
    ),
    entry(
        "MC801",
        E,
        G::Skew,
        "Istio minor versions differ by more than one across clusters",
    ),
    entry(
        "MC802",
        I,
        G::Skew,
        "Istio minor versions differ by one across clusters (supported during an upgrade)",
    ),
    entry(
        "MC803",
        W,
        G::Skew,
        "a cluster runs another Istio version than the one expected",
    ),
    entry(
        "MC901",
        E,
        G::StalePods,
        "injected pods carry a stale clusterName: restart them",
    ),
    entry(
        "MC902",
        E,
        G::StalePods,
        "injected pods carry a stale network: restart them",
    ),
    entry(
        "MC903",
        W,
        G::StalePods,
        "injected pods carry a stale meshID: restart them",
    ),
];

/// The row of `code`, if it exists.
pub fn code_entry(code: &str) -> Option<&'static CodeEntry> {
    CODES.iter().find(|e| e.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed_by_group() {
        let mut seen = std::collections::BTreeSet::new();
        for e in CODES {
            assert!(seen.insert(e.code), "{} twice", e.code);
            assert_eq!(
                &e.code[..3],
                e.group.code_prefix(),
                "{} in {:?}",
                e.code,
                e.group
            );
        }
    }

    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../../README.md");
        for e in CODES {
            assert!(
                readme.contains(&format!("| {} | ", e.code)),
                "README.md's code table lacks {}",
                e.code
            );
        }
    }

    #[test]
    fn a_finding_takes_its_severity_and_group_from_the_table() {
        let f = Finding::new("MC101", "c1", "-", "m", "f");
        assert_eq!((f.severity, f.group), (Severity::Error, Group::Roots));
    }
}
