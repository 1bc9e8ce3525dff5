//! What can go wrong talking to a cluster, and whether a retry can help.

use std::path::PathBuf;
use std::time::Duration;

/// A failed cluster operation: every variant names the cluster (and the object, when there is one).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {cluster}: cannot load context {context:?}{}: {message}", path.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default())]
    Kubeconfig {
        cluster: String,
        context: String,
        path: Option<PathBuf>,
        message: String,
    },
    /// The API server answered with a metav1.Status error.
    #[error("cluster {cluster}: {object}: {reason} ({code}): {message}")]
    Api {
        cluster: String,
        object: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer: connection refused, reset, timed out, or TLS failed.
    #[error("cluster {cluster}: {object}: {}{message}", if *tls { "TLS verification failed: " } else { "cannot reach the API server: " })]
    Transport {
        cluster: String,
        object: String,
        message: String,
        tls: bool,
    },
    #[error(
        "cluster {cluster}: the server does not serve {kind} in {api_version} (is its CRD installed?)"
    )]
    UnknownKind {
        cluster: String,
        api_version: String,
        kind: String,
    },
    #[error("cluster {cluster}: {object}: gave up after {}s waiting for {condition}; last seen: {last_seen}", waited.as_secs())]
    Timeout {
        cluster: String,
        object: String,
        condition: String,
        waited: Duration,
        last_seen: String,
    },
    /// An object that cannot be sent (no kind, no name) or a reply that cannot be read.
    #[error("cluster {cluster}: {object}: {message}")]
    Invalid {
        cluster: String,
        object: String,
        message: String,
    },
    /// istiod's debug endpoint could not be read through a port-forward to
    /// one of its pods: no pod ready, the forward refused, or istiod's answer.
    #[error("cluster {cluster}: {target}: {message}")]
    IstiodDebug {
        cluster: String,
        /// The pod (or, before one is chosen, the Deployment) asked.
        target: String,
        message: String,
        /// A pod starting or restarting, a dropped connection: worth asking again.
        transient: bool,
    },
    #[error("{program} {}: {message}", if let Some(code) = status { format!("exited with {code}") } else { "failed".to_string() })]
    Exec {
        program: String,
        status: Option<i32>,
        message: String,
    },
}

impl ClusterError {
    /// 429, 5xx, conflicts on update, and connection problems other than TLS
    /// may go away by themselves; everything else needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Api { code, reason, .. } => {
                matches!(code, 429 | 500 | 502 | 503 | 504)
                    || (*code == 409 && reason == "Conflict")
            }
            ClusterError::Transport { tls, .. } => !tls,
            ClusterError::IstiodDebug { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server answered 404.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// Converts a kube error about `object` in `cluster`.
    pub(crate) fn from_kube(cluster: &str, object: &str, err: kube::Error) -> Self {
        let cluster = cluster.to_string();
        let object = object.to_string();
        match err {
            kube::Error::Api(status) => ClusterError::Api {
                cluster,
                object,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::SerdeError(e) => ClusterError::Invalid {
                cluster,
                object,
                message: format!("unreadable reply: {e}"),
            },
            kube::Error::BuildRequest(e) => ClusterError::Invalid {
                cluster,
                object,
                message: format!("cannot build request: {e}"),
            },
            other => {
                // A token refresh runs the exec plugin again: never its output.
                let message = match &other {
                    kube::Error::Auth(auth) => describe_auth(auth),
                    _ => error_chain(&other),
                };
                let tls = is_tls_failure(&message);
                ClusterError::Transport {
                    cluster,
                    object,
                    message,
                    tls,
                }
            }
        }
    }
}

/// An authentication error; exec plugin failures keep only their status.
pub(crate) fn describe_auth(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError;
    const HIDDEN: &str = "its command line and output are not shown: they may hold credentials";
    match e {
        AuthError::AuthExecRun { out, .. } => {
            format!(
                "the exec credential plugin failed ({}); {HIDDEN}",
                out.status
            )
        }
        AuthError::AuthExecParse(_) => {
            format!("the exec credential plugin's output is not an ExecCredential; {HIDDEN}")
        }
        AuthError::AuthExec(_) => format!("the exec credential plugin failed; {HIDDEN}"),
        AuthError::ExecPluginFailed => {
            format!("the exec credential plugin's answer has no status; {HIDDEN}")
        }
        // The others name a file, a header's validity or a missing setting.
        other => other.to_string(),
    }
}

/// The error and its sources on one line: hyper's outer message alone
/// ("client error (Connect)") hides the cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn is_tls_failure(message: &str) -> bool {
    [
        "InvalidCertificate",
        "UnknownIssuer",
        "certificate",
        "NotValidForName",
        "BadSignature",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> ClusterError {
        ClusterError::Api {
            cluster: "c1".into(),
            object: "Secret istio-system/cacerts".into(),
            code,
            reason: reason.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn transient_and_permanent_api_errors() {
        for code in [429, 500, 502, 503, 504] {
            assert!(api(code, "X").is_transient(), "{code}");
        }
        assert!(api(409, "Conflict").is_transient());
        for (code, reason) in [
            (400, "BadRequest"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (409, "AlreadyExists"),
            (422, "Invalid"),
        ] {
            assert!(!api(code, reason).is_transient(), "{code}");
        }
    }

    #[test]
    fn tls_failures_are_permanent_other_transport_errors_are_not() {
        let t = |message: &str| ClusterError::Transport {
            cluster: "c".into(),
            object: "o".into(),
            message: message.into(),
            tls: is_tls_failure(message),
        };
        assert!(t("tcp connect error: Connection refused (os error 111)").is_transient());
        assert!(!t("invalid peer certificate: UnknownIssuer").is_transient());
        assert!(
            t("invalid peer certificate: UnknownIssuer")
                .to_string()
                .contains("TLS verification failed")
        );
    }

    #[test]
    fn messages_name_cluster_and_object() {
        let text = api(422, "Invalid").to_string();
        assert!(
            text.contains("cluster c1")
                && text.contains("Secret istio-system/cacerts")
                && text.contains("422")
        );
    }
}
