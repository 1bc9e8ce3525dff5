//! Building one client per kubeconfig context.

use super::{Cluster, ClusterError};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which context of which kubeconfig reaches a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    /// The Istio cluster name from the spec.
    pub name: String,
    pub context: String,
    /// The spec's per-cluster kubeconfig, if any.
    pub kubeconfig: Option<PathBuf>,
}

/// Connects to one cluster. The kubeconfig is the cluster's own, else
/// `default_kubeconfig` (`--kubeconfig` / `$KUBECONFIG`, which may list
/// several files separated by `:`), else `~/.kube/config`. Nothing is sent
/// yet: the first request tells whether the cluster is reachable.
pub async fn connect(
    target: &ClusterTarget,
    default_kubeconfig: Option<&Path>,
) -> Result<Cluster, ClusterError> {
    let path = target.kubeconfig.as_deref().or(default_kubeconfig);
    let fail = |message: String| ClusterError::Kubeconfig {
        cluster: target.name.clone(),
        context: target.context.clone(),
        path: path.map(Path::to_path_buf),
        message,
    };
    let kubeconfig = match path {
        Some(path) => read_merged(path).map_err(&fail)?,
        None => Kubeconfig::read().map_err(|e| fail(describe(None, &e)))?,
    };
    if !kubeconfig.contexts.iter().any(|c| c.name == target.context) {
        let known: Vec<_> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(fail(format!(
            "no such context (known: {})",
            known.join(", ")
        )));
    }
    let options = KubeConfigOptions {
        context: Some(target.context.clone()),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| fail(describe(path.and_then(Path::to_str), &e)))?;
    // The engine retries with its own policy and counts attempts; kube's
    // built-in retry layer would hide 429s and 503s from it.
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(60));
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    // The CA the kubeconfig trusts, part of the cluster's identity; none
    // when it trusts any certificate.
    let ca = if config.accept_invalid_certs {
        None
    } else {
        config.root_cert.as_deref().and_then(super::ca_fingerprint)
    };
    // Building the client runs an exec credential plugin, if any.
    let client = Client::try_from(config).map_err(|e| fail(describe_client(&e)))?;
    Ok(Cluster::new(&target.name, &target.context, server, client).with_ca_fingerprint(ca))
}

fn read_merged(paths: &Path) -> Result<Kubeconfig, String> {
    let text = paths.to_string_lossy();
    let mut merged: Option<Kubeconfig> = None;
    for part in text.split(':').filter(|p| !p.is_empty()) {
        let next = Kubeconfig::read_from(part).map_err(|e| describe(Some(part), &e))?;
        merged = Some(match merged {
            None => next,
            Some(m) => m.merge(next).map_err(|e| describe(Some(part), &e))?,
        });
    }
    merged.ok_or_else(|| "empty kubeconfig path".to_string())
}

/// A kubeconfig error, worded without the file's text: the YAML parser's
/// message quotes the lines around the error, and those hold tokens and keys.
/// A parse error names the file, line and column only.
fn describe(path: Option<&str>, e: &KubeconfigError) -> String {
    let file = path.unwrap_or("the kubeconfig");
    match e {
        KubeconfigError::Parse(parse) => match parse.location() {
            Some(at) => format!(
                "{file}:{}:{}: not valid kubeconfig YAML (its text is not shown: it may hold credentials)",
                at.line(),
                at.column()
            ),
            None => format!(
                "{file}: not valid kubeconfig YAML (its text is not shown: it may hold credentials)"
            ),
        },
        // These name a path, a URL or a missing field; none quotes the file.
        other => match path {
            Some(p) => format!("{p}: {other}"),
            None => other.to_string(),
        },
    }
}

/// A client that could not be built, worded without what may carry
/// credentials: an exec plugin's command line (its `env` values among it)
/// and its output.
fn describe_client(e: &kube::Error) -> String {
    match e {
        kube::Error::Auth(auth) => super::error::describe_auth(auth),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_names_file_line_and_column_but_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let token = "sha256~admin-token-do-not-print";
        let text = format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: {token}\n    oops: : :\n- name: other\n  user:\n    token: {token}2\n"
        );
        std::fs::write(&path, text).unwrap();
        let shown = read_merged(&path).unwrap_err();
        let at = format!("{}:7:", path.display());
        assert!(shown.starts_with(&at), "{shown}");
        assert!(!shown.contains("admin-token"), "{shown}");
        assert!(!shown.contains("oops"), "{shown}");
    }

    #[tokio::test]
    async fn a_failing_exec_plugin_shows_neither_its_env_nor_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"echo token: out-tok-77; echo err-tok-88 >&2; exit 3\"]\n      interactiveMode: Never\n      env:\n      - name: AWS_SECRET_ACCESS_KEY\n        value: env-secret-99\n";
        std::fs::write(&path, text).unwrap();
        let target = ClusterTarget {
            name: "c1".into(),
            context: "c".into(),
            kubeconfig: Some(path.clone()),
        };
        let Err(err) = connect(&target, None).await else {
            panic!("a failing exec plugin must fail the connection");
        };
        let shown = err.to_string();
        for secret in ["out-tok-77", "err-tok-88", "env-secret-99", "AWS_SECRET"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("exec credential plugin failed"), "{shown}");
    }
}
