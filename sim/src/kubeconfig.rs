//! The kubeconfig meshsim writes: one cluster, user and context per
//! simulated cluster (`sim-cluster1` -> `cluster1`), CA inline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// What the kubeconfig needs to know about one cluster.
pub struct Entry<'a> {
    pub name: &'a str,
    pub server: String,
    pub ca_pem: &'a str,
    pub token: &'a str,
}

/// Context name for a cluster name.
pub fn context_name(cluster: &str) -> String {
    format!("sim-{cluster}")
}

/// The kubeconfig YAML text (contains tokens: write it 0600).
pub fn render(entries: &[Entry<'_>]) -> String {
    let clusters: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({"name": e.name, "cluster": {
                "server": e.server,
                "certificate-authority-data": STANDARD.encode(e.ca_pem),
            }})
        })
        .collect();
    let users: Vec<_> = entries
        .iter()
        .map(|e| json!({"name": format!("{}-admin", e.name), "user": {"token": e.token}}))
        .collect();
    let contexts: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({"name": context_name(e.name), "context": {
                "cluster": e.name, "user": format!("{}-admin", e.name), "namespace": "default",
            }})
        })
        .collect();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": entries.first().map(|e| context_name(e.name)).unwrap_or_default(),
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
    });
    // Serialising a JSON value to YAML cannot fail.
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Writes the file with owner-only permissions.
pub fn write(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
