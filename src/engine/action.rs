//! Executing one action of a step, forward or rollback.

use super::backends::scale_targets;
use super::context::{ActionError, StepCtx};
use super::{checks, conditions, edit, local, probe, secrets};
use crate::cluster::{GeneratedFile as RunFile, run_command};
use crate::plan::{Action, FileContent, GeneratedFile, ObjectRef, ScaleTarget};
use crate::state::SnapshotKey;
use serde_json::Value;

/// Runs `action`. In a dry run only applies (as server-side dry runs) and
/// read-only checks reach the clusters.
pub(crate) async fn execute(ctx: &StepCtx, action: &Action) -> Result<(), ActionError> {
    let dry = ctx.opts.dry_run;
    match action {
        Action::Apply {
            cluster,
            object,
            manifest,
            secret_data,
        } => {
            ctx.ensure_snapshot(cluster, object).await?;
            let mut manifest = manifest.clone();
            if !secret_data.is_empty() {
                secrets::fill(ctx, &mut manifest, secret_data).await?;
            }
            let c = ctx.cluster(cluster)?;
            ctx.retry(|| c.apply(&manifest, dry)).await?;
        }
        Action::Delete { cluster, object } => {
            ctx.ensure_snapshot(cluster, object).await?;
            if !dry {
                let c = ctx.cluster(cluster)?;
                ctx.retry(|| c.delete(object)).await?;
            }
        }
        Action::DeleteEverywhere {
            cluster,
            api_version,
            kind,
            name,
        } => {
            if !dry {
                let c = ctx.cluster(cluster)?;
                let found = ctx.retry(|| c.list(api_version, kind, None, None)).await?;
                for object in found {
                    if object.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
                        continue;
                    }
                    let namespace = object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str);
                    let key = ObjectRef::new(api_version, kind, namespace, name);
                    ctx.retry(|| c.delete(&key)).await?;
                }
            }
        }
        Action::Patch {
            cluster,
            object,
            patch,
        } => {
            ctx.ensure_snapshot(cluster, object).await?;
            if !dry {
                let c = ctx.cluster(cluster)?;
                ctx.retry(|| c.merge_patch(object, patch)).await?;
            }
        }
        Action::Scale {
            cluster,
            target,
            replicas,
        } => {
            let targets = scale_targets(ctx, cluster, target).await?;
            for t in &targets {
                ctx.ensure_snapshot(cluster, t).await?;
            }
            if !dry {
                let c = ctx.cluster(cluster)?;
                let replicas = i32::try_from(*replicas).unwrap_or(i32::MAX);
                for t in &targets {
                    ctx.retry(|| c.scale(t, replicas)).await?;
                }
            }
        }
        Action::Restart { cluster, object } => {
            if !dry {
                let c = ctx.cluster(cluster)?;
                let at = now();
                ctx.retry(|| c.restart(object, &at)).await?;
            }
        }
        Action::RestartWorkloads {
            cluster,
            namespace,
            timeout_seconds,
        } => {
            if !dry {
                restart_workloads(ctx, cluster, namespace, *timeout_seconds).await?;
            }
        }
        Action::Wait {
            cluster,
            object,
            condition,
            timeout_seconds,
        } => {
            if !dry {
                conditions::wait(
                    ctx,
                    cluster,
                    object,
                    condition,
                    ctx.timeout(*timeout_seconds),
                )
                .await?;
            }
        }
        Action::Exec {
            cluster,
            program,
            args,
            file,
            timeout_seconds,
        } => {
            if !dry {
                exec(ctx, cluster, program, args, file.as_ref(), *timeout_seconds).await?;
            }
        }
        Action::EditConfig {
            cluster,
            object,
            key,
            edits,
            substitutions,
        } => {
            ctx.ensure_snapshot(cluster, object).await?;
            if !dry {
                edit::run(ctx, cluster, object, key, edits, substitutions).await?;
            }
        }
        Action::Local { op } => {
            if !dry {
                local::run(ctx, op).await?;
            }
        }
        Action::Probe {
            cluster,
            job,
            manifest,
            requests,
            expect,
            timeout_seconds,
        } => {
            ctx.ensure_snapshot(cluster, job).await?;
            if !dry {
                probe::run(
                    ctx,
                    cluster,
                    job,
                    manifest,
                    *requests,
                    expect,
                    ctx.timeout(*timeout_seconds),
                )
                .await?;
            }
        }
        Action::Check { cluster, check } => checks::run(ctx, cluster.as_deref(), check).await?,
        Action::Snapshot { cluster, object } => ctx.ensure_snapshot(cluster, object).await?,
        Action::Restore { cluster, object } => {
            if !dry {
                restore(ctx, cluster, object).await?;
            }
        }
        Action::RestoreScale { cluster, target } => {
            if !dry {
                restore_scale(ctx, cluster, target).await?;
            }
        }
    }
    Ok(())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn restart_workloads(
    ctx: &StepCtx,
    cluster: &str,
    namespace: &str,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let deployments = ctx
        .retry(|| c.list("apps/v1", "Deployment", Some(namespace), None))
        .await?;
    let names: Vec<String> = deployments
        .iter()
        .filter_map(|d| {
            d.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let at = now();
    for name in &names {
        ctx.env.observer.action_started(
            &ctx.step,
            &format!("restart Deployment {namespace}/{name} @{cluster}"),
        );
        let key = ObjectRef::new("apps/v1", "Deployment", Some(namespace), name);
        ctx.retry(|| c.restart(&key, &at)).await?;
    }
    // Rolled out one by one: all were restarted together, so the total wait
    // is the slowest rollout.
    for name in &names {
        let object = ObjectRef::namespaced("apps/v1", "Deployment", namespace, name);
        conditions::wait(
            ctx,
            cluster,
            &object,
            &crate::plan::Condition::DeploymentAvailable,
            ctx.timeout(timeout_seconds),
        )
        .await?;
    }
    Ok(())
}

/// Runs of an installer command before its failure fails the step.
const EXEC_ATTEMPTS: u32 = 4;

async fn exec(
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
            } => Some(RunFile {
                name: f.name.clone(),
                content: secrets::substitute(ctx, text, substitutions).await?,
            }),
            FileContent::IstioOperatorFromSnapshot { object, key } => {
                match local::iop_from_snapshot(ctx, cluster, object, key)? {
                    Some(text) => Some(RunFile {
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

async fn restore(ctx: &StepCtx, cluster: &str, object: &ObjectRef) -> Result<(), ActionError> {
    let key = SnapshotKey::of(cluster, object);
    let Some(snapshot) = ctx.env.store.snapshot(ctx.run, &ctx.step, &key)? else {
        // The step never changed it: nothing to put back.
        return Ok(());
    };
    let c = ctx.cluster(cluster)?;
    let before = snapshot.object.clone();
    ctx.retry(|| c.restore(object, before.as_ref())).await?;
    Ok(())
}

async fn restore_scale(
    ctx: &StepCtx,
    cluster: &str,
    target: &ScaleTarget,
) -> Result<(), ActionError> {
    let namespace = match target {
        ScaleTarget::Object(o) | ScaleTarget::ServiceBackends(o) => o.namespace.clone(),
    };
    let filter = crate::state::SnapshotFilter {
        cluster: Some(cluster.to_string()),
        step: Some(ctx.step.clone()),
    };
    let c = ctx.cluster(cluster)?;
    for snap in ctx.env.store.snapshots(ctx.run, &filter)? {
        let k = &snap.key.object;
        if k.kind != "Deployment" || k.namespace != namespace {
            continue;
        }
        if let ScaleTarget::Object(o) = target
            && o.name != k.name
        {
            continue;
        }
        let Some(before) = &snap.object else { continue };
        let replicas = before
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let replicas = i32::try_from(replicas).unwrap_or(1);
        ctx.retry(|| c.scale(k, replicas)).await?;
    }
    Ok(())
}
