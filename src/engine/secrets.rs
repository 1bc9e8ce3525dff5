//! Resolving what the plan only references: secret values (files under
//! certDir, remote kubeconfigs built from a token Secret) and run-time
//! values (a LoadBalancer address). Values are never logged.

use super::context::{ActionError, StepCtx};
use crate::plan::{RemoteKubeconfig, RuntimeValue, SecretSource, Substitution};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a dry run sends for a value an earlier, skipped step would make.
const DRY_RUN_PLACEHOLDER: &[u8] = b"dry run: made by an earlier step";

/// Writes every referenced value into `manifest.data.<key>` (base64).
pub(crate) async fn fill(
    ctx: &StepCtx,
    manifest: &mut Value,
    data: &BTreeMap<String, SecretSource>,
) -> Result<(), ActionError> {
    let mut encoded = serde_json::Map::new();
    for (key, source) in data {
        let bytes = match source {
            SecretSource::File(path) => std::fs::read(path).map_err(|e| {
                ActionError::Failed(format!(
                    "cannot read {} for data key {key}: {e}",
                    path.display()
                ))
            }),
            SecretSource::RemoteKubeconfig(remote) => {
                remote_kubeconfig(ctx, remote).await.map(String::into_bytes)
            }
        };
        let bytes = match bytes {
            Ok(b) => b,
            // A dry run skipped the step that makes the value (a key file,
            // a token): the server-side dry run only checks the object's shape.
            Err(_) if ctx.opts.dry_run => DRY_RUN_PLACEHOLDER.to_vec(),
            Err(e) => return Err(e),
        };
        encoded.insert(key.clone(), json!(B64.encode(bytes)));
    }
    match manifest.get_mut("data").and_then(Value::as_object_mut) {
        Some(existing) => existing.extend(encoded),
        None => {
            if let Some(map) = manifest.as_object_mut() {
                map.insert("data".into(), Value::Object(encoded));
            }
        }
    }
    Ok(())
}

/// The kubeconfig `istioctl create-remote-secret` embeds (FACTS.md 1.2):
/// cluster, context and user all named for the cluster to be read, its API
/// server, the token Secret's `ca.crt` and `token`.
async fn remote_kubeconfig(
    ctx: &StepCtx,
    remote: &RemoteKubeconfig,
) -> Result<String, ActionError> {
    let c = ctx.cluster(&remote.cluster)?;
    let secret = ctx
        .retry(|| c.get(&remote.token_secret))
        .await?
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "{} not found in {}",
                remote.token_secret, remote.cluster
            ))
        })?;
    let field = |k: &str| -> Result<String, ActionError> {
        secret
            .get("data")
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                ActionError::Failed(format!(
                    "{} in {} has no {k} yet",
                    remote.token_secret, remote.cluster
                ))
            })
    };
    let ca = field("ca.crt")?;
    let token = B64
        .decode(field("token")?)
        .ok()
        .and_then(|t| String::from_utf8(t).ok())
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "{} in {}: token is not base64 text",
                remote.token_secret, remote.cluster
            ))
        })?;
    let name = &remote.cluster;
    let server = remote
        .server
        .clone()
        .unwrap_or_else(|| c.server().to_string());
    let mut cluster = json!({"certificate-authority-data": ca, "server": server});
    if let Some(tls) = &remote.tls_server_name {
        cluster["tls-server-name"] = json!(tls);
    }
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
        "users": [{"name": name, "user": {"token": token}}],
    });
    serde_yaml::to_string(&kubeconfig)
        .map_err(|e| ActionError::Failed(format!("cannot write kubeconfig: {e}")))
}

/// Replaces each placeholder in `text` by its run-time value.
pub(crate) async fn substitute(
    ctx: &StepCtx,
    text: &str,
    substitutions: &[Substitution],
) -> Result<String, ActionError> {
    let mut out = text.to_string();
    for s in substitutions {
        let value = match &s.value {
            RuntimeValue::LoadBalancerAddress { cluster, service } => {
                let c = ctx.cluster(cluster)?;
                let svc = ctx.retry(|| c.get(service)).await?.ok_or_else(|| {
                    ActionError::Failed(format!("{service} not found in {cluster}"))
                })?;
                let ingress = svc.pointer("/status/loadBalancer/ingress/0");
                ingress
                    .and_then(|i| i.get("ip").or_else(|| i.get("hostname")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ActionError::Failed(format!(
                            "{service} in {cluster} has no LoadBalancer address yet"
                        ))
                    })?
            }
        };
        out = out.replace(&s.placeholder, &value);
    }
    Ok(out)
}
