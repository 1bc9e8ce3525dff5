//! Executing one action of a step, forward or rollback.

use super::backends::scale_targets;
use super::context::{ActionError, StepCtx};
use super::restart_stamp::{restart_value, stamp_restart};
use super::restores::{self, PendingRestore};
use super::{
    ca_files, checks, conditions, config_edit, installer, probe, restart_condition, secrets,
};

use crate::plan::{
    Action, Condition, ConfigEdit, GeneratedFile, LocalOp, ObjectRef, ProbeExpect, ScaleTarget,
    SecretSource, Substitution,
};
use crate::state::{EventKind, NewEvent, SnapshotKey};
use serde_json::Value;
use std::collections::BTreeMap;

/// Runs `action`. In a dry run only applies (as server-side dry runs) and
/// read-only checks reach the clusters.
///
/// One function per kind of action, below in this order; each snapshots the
/// objects it changes first (the snapshot is what rollback restores).
/// `slot` names the action within its step (`forward.0`, `finally.1`, ...):
/// a restart derives its value from it.
pub(crate) async fn execute(ctx: &StepCtx, action: &Action, slot: &str) -> Result<(), ActionError> {
    match action {
        Action::Apply {
            cluster,
            object,
            manifest,
            secret_data,
        } => apply(ctx, cluster, object, manifest, secret_data).await,
        Action::Delete { cluster, object } => delete(ctx, cluster, object).await,
        Action::DeleteEverywhere {
            cluster,
            api_version,
            kind,
            name,
        } => delete_everywhere(ctx, cluster, api_version, kind, name).await,
        Action::Patch {
            cluster,
            object,
            patch,
        } => merge_patch(ctx, cluster, object, patch).await,
        Action::Scale {
            cluster,
            target,
            replicas,
        } => scale(ctx, cluster, target, *replicas).await,
        Action::Restart {
            cluster,
            object,
            only_if_changed,
        } => restart(ctx, cluster, object, only_if_changed.as_ref(), slot).await,
        Action::RestartWorkloads {
            cluster,
            namespace,
            timeout_seconds,
        } => restart_workloads(ctx, cluster, namespace, *timeout_seconds, slot).await,
        Action::Wait {
            cluster,
            object,
            condition,
            timeout_seconds,
        } => wait(ctx, cluster, object, condition, *timeout_seconds).await,
        Action::Exec {
            cluster,
            program,
            args,
            file,
            timeout_seconds,
        } => exec(ctx, cluster, program, args, file.as_ref(), *timeout_seconds).await,
        Action::HelmUpgrade {
            cluster,
            program,
            context,
            namespace,
            release,
            chart,
            repo,
            version,
            values,
            substitutions,
            timeout_seconds,
        } => {
            let r = installer::helm::Release {
                cluster,
                program,
                context,
                namespace,
                name: release,
            };
            let chart = installer::helm::Chart {
                chart,
                repo: repo.as_deref(),
                version,
                values,
                substitutions,
            };
            installer::helm::upgrade(ctx, &r, &chart, *timeout_seconds).await
        }
        Action::HelmRollback {
            cluster,
            program,
            context,
            namespace,
            release,
            timeout_seconds,
        } => {
            let r = installer::helm::Release {
                cluster,
                program,
                context,
                namespace,
                name: release,
            };
            installer::helm::rollback(ctx, &r, *timeout_seconds).await
        }
        Action::EditConfig {
            cluster,
            object,
            key,
            edits,
            substitutions,
        } => edit_config(ctx, cluster, object, key, edits, substitutions).await,
        Action::Local { op } => local(ctx, op).await,
        Action::Probe {
            cluster,
            job,
            manifest,
            requests,
            expect,
            timeout_seconds,
        } => {
            probe(
                ctx,
                cluster,
                job,
                manifest,
                *requests,
                expect,
                *timeout_seconds,
            )
            .await
        }
        Action::Check { cluster, check } => checks::run(ctx, cluster.as_deref(), check).await,
        Action::Snapshot { cluster, object } => ctx.ensure_snapshot(cluster, object).await,
        Action::Restore { cluster, object } => restore(ctx, cluster, object).await,
        Action::RestoreScale { cluster, target } => restore_scale(ctx, cluster, target).await,
    }
}

/// Server-side apply (a server-side dry run in a dry run), with Secret data
/// read from its sources first.
async fn apply(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    manifest: &Value,
    secret_data: &BTreeMap<String, SecretSource>,
) -> Result<(), ActionError> {
    ctx.ensure_snapshot(cluster, object).await?;
    let mut manifest = manifest.clone();
    if !secret_data.is_empty() {
        secrets::fill(ctx, &mut manifest, secret_data).await?;
    }
    let c = ctx.cluster(cluster)?;
    ctx.retry(|| c.apply(&manifest, ctx.opts.dry_run)).await?;
    Ok(())
}

async fn delete(ctx: &StepCtx, cluster: &str, object: &ObjectRef) -> Result<(), ActionError> {
    ctx.ensure_snapshot(cluster, object).await?;
    if ctx.opts.dry_run {
        return Ok(());
    }
    let c = ctx.cluster(cluster)?;
    ctx.retry(|| c.delete(object)).await?;
    Ok(())
}

/// Deletes the object of that name in every namespace (no snapshot: a
/// rollback uses it on what a controller wrote after the migration began).
async fn delete_everywhere(
    ctx: &StepCtx,
    cluster: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
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
    Ok(())
}

async fn merge_patch(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    patch: &Value,
) -> Result<(), ActionError> {
    ctx.ensure_snapshot(cluster, object).await?;
    if ctx.opts.dry_run {
        return Ok(());
    }
    let c = ctx.cluster(cluster)?;
    ctx.retry(|| c.merge_patch(object, patch)).await?;
    Ok(())
}

async fn scale(
    ctx: &StepCtx,
    cluster: &str,
    target: &ScaleTarget,
    replicas: u32,
) -> Result<(), ActionError> {
    let targets = scale_targets(ctx, cluster, target).await?;
    for t in &targets {
        ctx.ensure_snapshot(cluster, t).await?;
    }
    if ctx.opts.dry_run {
        return Ok(());
    }
    let replicas = i32::try_from(replicas).unwrap_or(i32::MAX);
    for t in &targets {
        if ctx.restores_scale {
            // Write-ahead: what to put back is durable before the scale, so
            // no crash leaves the workload scaled down unnoticed.
            let key = SnapshotKey::of(cluster, t);
            let before = ctx.env.store.snapshot(ctx.run, &ctx.step, &key)?;
            if let Some(before) = before.and_then(|s| s.object) {
                let restore = PendingRestore {
                    cluster: cluster.to_string(),
                    object: t.clone(),
                    scaled_to: replicas,
                    replicas: restores::replicas_of(&before),
                    step: ctx.step.clone(),
                };
                if restore.replicas != replicas {
                    restores::mark_pending(ctx.env.store.as_ref(), ctx.run, &restore)?;
                }
            }
        }
        restores::scale_to(ctx, cluster, t, replicas).await?;
    }
    Ok(())
}

/// A rollout restart, as `kubectl rollout restart` does it; with
/// `only_if_changed`, only when the step replaced that object with different
/// content (see [`restart_condition`]), the decision journalled either way.
async fn restart(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    only_if_changed: Option<&ObjectRef>,
    slot: &str,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    if let Some(changed) = only_if_changed {
        let side = restart_condition::Side::of_slot(slot);
        let decision = restart_condition::decide(ctx, cluster, changed, side).await?;
        let message = format!(
            "{object} @{cluster} {}: {changed} {}",
            if decision.restart {
                "restarted"
            } else {
                "not restarted"
            },
            decision.why
        );
        tracing::info!(step = %ctx.step, "{message}");
        ctx.env.store.record_progress(
            ctx.run,
            NewEvent::new(EventKind::Note, Some(&ctx.step), message)
                .with_details(serde_json::json!({ "restart": decision.restart })),
        )?;
        if !decision.restart {
            return Ok(());
        }
    }
    stamp_restart(ctx, cluster, object, &restart_value(ctx, slot)?).await
}

async fn wait(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    condition: &Condition,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    conditions::wait(
        ctx,
        cluster,
        object,
        condition,
        ctx.timeout(timeout_seconds),
    )
    .await
}

async fn edit_config(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    key: &str,
    edits: &[ConfigEdit],
    substitutions: &[Substitution],
) -> Result<(), ActionError> {
    ctx.ensure_snapshot(cluster, object).await?;
    if ctx.opts.dry_run {
        return Ok(());
    }
    config_edit::run(ctx, cluster, object, key, edits, substitutions).await
}

/// CA work on this machine, under certDir.
async fn local(ctx: &StepCtx, op: &LocalOp) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    ca_files::run(ctx, op).await
}

async fn probe(
    ctx: &StepCtx,
    cluster: &str,
    job: &ObjectRef,
    manifest: &Value,
    requests: u32,
    expect: &ProbeExpect,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    ctx.ensure_snapshot(cluster, job).await?;
    if ctx.opts.dry_run {
        return Ok(());
    }
    let timeout = ctx.timeout(timeout_seconds);
    probe::run(ctx, cluster, job, manifest, requests, expect, timeout).await
}

/// Runs the installer, with its input file generated first.
async fn exec(
    ctx: &StepCtx,
    cluster: &str,
    program: &str,
    args: &[String],
    file: Option<&GeneratedFile>,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    installer::run(ctx, cluster, program, args, file, timeout_seconds).await
}

async fn restart_workloads(
    ctx: &StepCtx,
    cluster: &str,
    namespace: &str,
    timeout_seconds: u64,
    slot: &str,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
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
    let value = restart_value(ctx, slot)?;
    for name in &names {
        ctx.env.observer.action_started(
            &ctx.step,
            &format!("restart Deployment {namespace}/{name} @{cluster}"),
        );
        let key = ObjectRef::new("apps/v1", "Deployment", Some(namespace), name);
        stamp_restart(ctx, cluster, &key, &value).await?;
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

async fn restore(ctx: &StepCtx, cluster: &str, object: &ObjectRef) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
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
    if ctx.opts.dry_run {
        return Ok(());
    }
    let namespace = match target {
        ScaleTarget::Object(o) | ScaleTarget::ServiceBackends(o) => o.namespace.clone(),
    };
    let filter = crate::state::SnapshotFilter {
        cluster: Some(cluster.to_string()),
        step: Some(ctx.step.clone()),
    };
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
        let replicas = restores::replicas_of(before);
        restores::scale_to(ctx, cluster, k, replicas).await?;
    }
    // Whatever this step still owed is now restored.
    for owed in restores::pending(ctx.env.store.as_ref(), ctx.run)? {
        if owed.cluster == cluster && owed.step == ctx.step && owed.object.namespace == namespace {
            restores::mark_done(ctx.env.store.as_ref(), ctx.run, &owed)?;
        }
    }
    Ok(())
}
