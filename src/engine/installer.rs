//! `exec` actions: running the installer (istioctl) against one cluster,
//! with its input file generated from the plan (substitutions filled in, or
//! an IstioOperator rebuilt from a snapshot), retrying a failed run a few times.

use super::context::{ActionError, StepCtx};
use super::secrets;
use crate::cluster::{InputFile, run_command};
use crate::plan::{FileContent, GeneratedFile, ObjectRef};
use crate::state::SnapshotKey;
use serde_json::Value;

/// Runs of an installer command before its failure fails the step.
const EXEC_ATTEMPTS: u32 = 4;

/// Runs `program args...` with `KUBECONFIG` pointing at the cluster's
/// kubeconfig; nothing to do when the file is to be rebuilt from a snapshot
/// of something that did not exist.
pub(crate) async fn run(
    ctx: &StepCtx,
    cluster: &str,
    program: &str,
    args: &[String],
    file: Option<&GeneratedFile>,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    let generated = match file {
        None => None,
        Some(f) => match &f.content {
            FileContent::Inline {
                text,
                substitutions,
            } => Some(InputFile {
                name: f.name.clone(),
                content: secrets::substitute(ctx, text, substitutions).await?,
            }),
            FileContent::IstioOperatorFromSnapshot { object, key } => {
                match iop_from_snapshot(ctx, cluster, object, key)? {
                    Some(text) => Some(InputFile {
                        name: f.name.clone(),
                        content: text,
                    }),
                    // The configuration did not exist before: nothing to re-install.
                    None => {
                        ctx.env.observer.warning(
                            &ctx.step,
                            &format!("{object} did not exist before the migration in {cluster}: nothing to re-install"),
                        );
                        return Ok(());
                    }
                }
            }
        },
    };
    let mut env = Vec::new();
    if let Some(path) = ctx.env.kubeconfigs.get(cluster) {
        env.push((
            "KUBECONFIG".to_string(),
            path.to_string_lossy().into_owned(),
        ));
    }
    // Installers are idempotent (istioctl install/uninstall converge) and,
    // like any API client, fail on a transient 5xx or 429: a non-zero exit
    // is retried a few times; not starting at all, or a timeout, is not.
    let attempts = ctx.opts.backoff.max_attempts.clamp(1, EXEC_ATTEMPTS);
    let mut attempt = 1;
    let out = loop {
        match run_command(
            program,
            args,
            generated.as_ref(),
            &env,
            ctx.timeout(timeout_seconds),
        )
        .await
        {
            Ok(out) => break out,
            Err(
                e @ crate::cluster::ClusterError::Exec {
                    status: Some(_), ..
                },
            ) if attempt < attempts => {
                ctx.env.observer.retrying(
                    &ctx.step,
                    attempt,
                    &crate::state::redact_text(&e.to_string()),
                );
                tokio::time::sleep(ctx.opts.backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(step = %ctx.step, "{program} {}: {}", args.join(" "), out.stdout.lines().last().unwrap_or_default());
    Ok(())
}

/// The IstioOperator that re-installs what a snapshotted `values` ConfigMap
/// recorded; None when the snapshot says there was no installation.
fn iop_from_snapshot(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    key: &str,
) -> Result<Option<String>, ActionError> {
    let snap_key = SnapshotKey::of(cluster, object);
    let Some(snapshot) = ctx.env.store.snapshot(ctx.run, &ctx.step, &snap_key)? else {
        return Ok(None);
    };
    let Some(before) = snapshot.object else {
        return Ok(None);
    };
    let text = before
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "the snapshot of {object} in {cluster} has no {key}"
            ))
        })?;
    let values: Value = serde_json::from_str(text).map_err(|e| {
        ActionError::Failed(format!(
            "the snapshot of {object} in {cluster}: {key} is not JSON: {e}"
        ))
    })?;
    // istioctl records the operator spec; a Helm install records bare values.
    let spec = match values.get("spec") {
        Some(spec) => spec.clone(),
        None => serde_json::json!({"values": values}),
    };
    let iop = serde_json::json!({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": spec});
    serde_yaml::to_string(&iop)
        .map(Some)
        .map_err(|e| ActionError::Failed(e.to_string()))
}
