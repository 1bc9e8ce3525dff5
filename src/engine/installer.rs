//! `exec` actions: running the installer (istioctl) against one cluster,
//! with its input file generated from the plan (substitutions filled in, or
//! an IstioOperator rebuilt from a snapshot), retrying a failed run a few times.
//!
//! Never two installers at once: each installer's pid is journalled (durably)
//! before it is waited on, and its end after. Before a step runs its installer,
//! an installer of that step journalled as started but never as ended (a
//! `migrate` killed mid-install, in this run or an earlier one) that still runs
//! is waited for, up to the action's timeout; then the step fails naming its
//! pid. Children die with `migrate` (`cluster::exec`), so this guards against
//! installers started some other way (an older `migrate`, a survivor of a
//! failed parent-death signal).

pub(crate) mod helm;
pub(crate) mod remote_pilot;

use super::context::{ActionError, StepCtx};
use super::secrets;
use crate::cluster::{ClusterError, InputFile, ProcessIdentity, start_command};
use crate::plan::{FileContent, GeneratedFile, ObjectRef};
use crate::state::{EventKind, NewEvent, SnapshotKey};
use serde_json::{Value, json};
use std::time::Duration;

/// The key of an installer record in an `action` event's details.
const RECORD_KEY: &str = "installer";

/// Runs of an installer command before its failure fails the step.
const EXEC_ATTEMPTS: u32 = 4;

/// The installer commands whose runs are told apart in the journal.
const INSTALL: &str = "install";
const UNINSTALL: &str = "uninstall";
const PURGE: &str = "--purge";

/// The Istio CRDs a `starting` record found before the first install.
const CRDS_BEFORE: &str = "istioCrdsBefore";

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
    let mut args = args.to_vec();
    if let Some(path) = ctx.env.kubeconfigs.get(cluster) {
        env.push((
            "KUBECONFIG".to_string(),
            path.to_string_lossy().into_owned(),
        ));
        // Plans of an older migrate name the kubeconfig in the arguments:
        // the one this run reaches the cluster by wins.
        if let Some(i) = args.iter().position(|a| a == "--kubeconfig")
            && let Some(value) = args.get_mut(i + 1)
        {
            *value = path.to_string_lossy().into_owned();
        }
    }
    // Installers are idempotent (istioctl install/uninstall converge) and,
    // like any API client, fail on a transient 5xx or 429: a non-zero exit
    // is retried a few times; not starting at all, or a timeout, is not.
    let timeout = ctx.timeout(timeout_seconds);
    wait_for_earlier_installer(ctx, timeout).await?;
    match args.first().map(String::as_str) {
        Some(UNINSTALL) if !own_install_may_have_run(ctx, cluster)? => {
            return skip_uninstall(ctx, cluster);
        }
        Some(UNINSTALL) if args.iter().any(|a| a == PURGE) => {
            let before = crds_before_install(ctx, cluster)?;
            if before.as_ref().is_none_or(|b| !b.is_empty()) {
                // `--purge` deletes every labelled Istio CRD, and with it
                // every object of those kinds: not ours to delete.
                args.retain(|a| a != PURGE);
                keep_crds_note(ctx, cluster, before.as_deref())?;
            }
        }
        Some(INSTALL) => note_install_ahead(ctx, cluster).await?,
        _ => {}
    }
    let args = args.as_slice();
    let attempts = ctx.opts.backoff.max_attempts.clamp(1, EXEC_ATTEMPTS);
    let mut attempt = 1;
    let out = loop {
        match run_recorded(
            ctx,
            cluster,
            program,
            args,
            generated.as_ref(),
            &env,
            timeout,
        )
        .await
        {
            Ok(out) => break out,
            Err(ActionError::Cluster(
                e @ ClusterError::Exec {
                    status: Some(_), ..
                },
            )) if attempt < attempts => {
                ctx.env.observer.retrying(
                    &ctx.step,
                    attempt,
                    &crate::state::redact_text(&e.to_string()),
                );
                tokio::time::sleep(ctx.opts.backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(step = %ctx.step, "{program} {}: {}", args.join(" "), out.stdout.lines().last().unwrap_or_default());
    Ok(())
}

/// Starts the installer, journals its pid durably, waits for it, journals its end.
async fn run_recorded(
    ctx: &StepCtx,
    cluster: &str,
    program: &str,
    args: &[String],
    file: Option<&InputFile>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<crate::cluster::ExecOutput, ActionError> {
    let running = start_command(program, args, file, env).await?;
    let identity = running.identity();
    // Dropping `running` on an error here kills the installer: nothing
    // unrecorded keeps running.
    let command = args.first().map(String::as_str);
    record(ctx, &identity, cluster, command, "started", None)?;
    let result = running.finish(timeout).await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => crate::state::redact_text(&e.to_string()),
    };
    record(ctx, &identity, cluster, command, "ended", Some(&outcome))?;
    Ok(result?)
}

/// Journals an installer's start (`record_event`: durable before we wait on
/// it) or end (`record_progress`: durable with the next write). An end lost
/// in a crash costs nothing: the next attempt finds the recorded process
/// gone (pid, start time and program checked) and goes on; an fsync per
/// installer end would only add to the step's cost.
fn record(
    ctx: &StepCtx,
    identity: &ProcessIdentity,
    cluster: &str,
    command: Option<&str>,
    state: &str,
    outcome: Option<&str>,
) -> Result<(), ActionError> {
    let message = match outcome {
        None => format!(
            "{} (pid {}) started in {cluster}",
            identity.program, identity.pid
        ),
        Some(outcome) => format!(
            "{} (pid {}) ended in {cluster}: {outcome}",
            identity.program, identity.pid
        ),
    };
    let details = json!({ RECORD_KEY: {
        "state": state, "cluster": cluster, "process": identity, "command": command,
    } });
    let event = NewEvent::new(EventKind::Action, Some(&ctx.step), message).with_details(details);
    if outcome.is_none() {
        ctx.env.store.record_event(ctx.run, event)?;
    } else {
        ctx.env.store.record_progress(ctx.run, event)?;
    }
    Ok(())
}

/// Journals durably, once per execution of the step and before the
/// installer starts, that `install` may run on `cluster`: the rollback's
/// uninstall is run only where this (or an older record) says so, and a
/// crash between the installer's start and its pid's record must not hide it.
///
/// The record also names the Istio CRDs already there (a platform team's,
/// or an earlier Istio's): the rollback's `--purge` would delete them.
async fn note_install_ahead(ctx: &StepCtx, cluster: &str) -> Result<(), ActionError> {
    if own_install_may_have_run(ctx, cluster)? {
        return Ok(());
    }
    // Unknown (null) when they cannot be listed: the uninstall then keeps them.
    let istio_crds = match istio_crds(ctx, cluster).await {
        Ok(names) => json!(names),
        Err(e) => {
            ctx.env.observer.warning(
                &ctx.step,
                &format!(
                    "cannot list the CRDs of {cluster} ({e}): a rollback will keep Istio's CRDs"
                ),
            );
            Value::Null
        }
    };
    let details = json!({ RECORD_KEY: {
        "state": "starting", "cluster": cluster, "command": INSTALL, CRDS_BEFORE: istio_crds
    } });
    let event = NewEvent::new(
        EventKind::Action,
        Some(&ctx.step),
        format!("the installer's install starts in {cluster}"),
    )
    .with_details(details);
    ctx.env.store.record_event(ctx.run, event)?;
    Ok(())
}

/// Whether this step's current execution (since it was last rolled back)
/// may have run the installer's `install` on `cluster`. Records of an older
/// `migrate` name no command: they count.
fn own_install_may_have_run(ctx: &StepCtx, cluster: &str) -> Result<bool, ActionError> {
    Ok(records_since_rollback(ctx, RECORD_KEY)?
        .iter()
        .any(|record| {
            let on = record.get("cluster").and_then(Value::as_str) == Some(cluster);
            let command = record.get("command").and_then(Value::as_str);
            on && command.is_none_or(|c| c == INSTALL)
        }))
}

/// The records under `key` this step journalled in its current execution:
/// since its last `rolled-back`, oldest first.
pub(super) fn records_since_rollback(ctx: &StepCtx, key: &str) -> Result<Vec<Value>, ActionError> {
    let mut records = Vec::new();
    for e in ctx.env.store.events(ctx.run, 0)? {
        if e.step.as_deref() != Some(ctx.step.as_str()) {
            continue;
        }
        let Some(mut details) = e.details else {
            continue;
        };
        if e.kind == EventKind::StepStatus
            && details.get("to").and_then(Value::as_str) == Some("rolled-back")
        {
            records.clear();
        }
        if let Some(record) = details.get_mut(key) {
            records.push(record.take());
        }
    }
    Ok(records)
}

/// The names of the Istio CRDs (`*.istio.io`) on `cluster` now.
async fn istio_crds(ctx: &StepCtx, cluster: &str) -> Result<Vec<String>, ActionError> {
    let c = ctx.cluster(cluster)?;
    let crds = ctx
        .retry(|| {
            c.list(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                None,
            )
        })
        .await?;
    Ok(crds
        .iter()
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| n.ends_with(".istio.io"))
        .map(str::to_string)
        .collect())
}

/// The Istio CRDs on `cluster` before this step's current execution first
/// ran `install` there (its first `starting` record since it was last
/// rolled back): `None` when they could not be listed; none for records of
/// an older `migrate` (as before).
fn crds_before_install(ctx: &StepCtx, cluster: &str) -> Result<Option<Vec<String>>, ActionError> {
    let records = records_since_rollback(ctx, RECORD_KEY)?;
    let first = records.iter().find(|record| {
        record.get("cluster").and_then(Value::as_str) == Some(cluster)
            && record.get("state").and_then(Value::as_str) == Some("starting")
    });
    Ok(match first.map(|record| record.get(CRDS_BEFORE)) {
        None | Some(None) => Some(Vec::new()),
        Some(Some(Value::Array(names))) => Some(
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Some(Some(_)) => None,
    })
}

/// Says (journal and output) that the uninstall keeps Istio's CRDs.
fn keep_crds_note(
    ctx: &StepCtx,
    cluster: &str,
    before: Option<&[String]>,
) -> Result<(), ActionError> {
    let why = match before {
        Some(names) => {
            let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
            let more = names.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "Istio's CRDs were there before migrate installed ({}{more})",
                shown.join(", ")
            )
        }
        None => "whether Istio's CRDs were there before migrate installed is unknown".to_string(),
    };
    let message = format!(
        "uninstall in {cluster} without --purge: {why}, so they and every object of theirs stay"
    );
    ctx.env.observer.warning(&ctx.step, &message);
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Warning, Some(&ctx.step), message),
    )?;
    Ok(())
}

/// The rollback's uninstall when this run's `install` never ran here: what
/// is on the cluster was not installed by `migrate`, so it stays.
fn skip_uninstall(ctx: &StepCtx, cluster: &str) -> Result<(), ActionError> {
    let message = format!(
        "uninstall skipped in {cluster}: this step's installer never ran there, so migrate installed nothing to remove"
    );
    ctx.env.observer.warning(&ctx.step, &message);
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Note, Some(&ctx.step), message),
    )?;
    Ok(())
}

/// Installers of this step journalled as started and never as ended, newest
/// run first: at most one per run (the last record of the step in each).
fn unfinished_installers(ctx: &StepCtx) -> Result<Vec<ProcessIdentity>, ActionError> {
    let mut found = Vec::new();
    for run in ctx.env.store.runs()?.iter().rev() {
        let last = ctx
            .env
            .store
            .events(run.id, 0)?
            .into_iter()
            .rev()
            .filter(|e| e.step.as_deref() == Some(ctx.step.as_str()))
            .find_map(|e| e.details.and_then(|d| d.get(RECORD_KEY).cloned()));
        let Some(record) = last else { continue };
        if record.get("state").and_then(Value::as_str) != Some("started") {
            continue;
        }
        if let Some(identity) = record
            .get("process")
            .and_then(|p| serde_json::from_value::<ProcessIdentity>(p.clone()).ok())
        {
            found.push(identity);
        }
    }
    Ok(found)
}

/// Waits, up to `limit`, for an installer of this step that an earlier
/// `migrate` started and that still runs; fails naming its pid if it does not end.
async fn wait_for_earlier_installer(ctx: &StepCtx, limit: Duration) -> Result<(), ActionError> {
    for earlier in unfinished_installers(ctx)? {
        if !earlier.is_running() {
            continue;
        }
        let message = format!(
            "{} (pid {}) started by an earlier attempt of this step still runs: waiting up to {}s for it to end",
            earlier.program,
            earlier.pid,
            limit.as_secs()
        );
        ctx.env.observer.warning(&ctx.step, &message);
        ctx.env.store.record_event(
            ctx.run,
            NewEvent::new(EventKind::Warning, Some(&ctx.step), message),
        )?;
        if !earlier.wait_until_gone(limit).await {
            return Err(ActionError::Failed(format!(
                "{} (pid {}) started by an earlier attempt of this step still runs after {}s; \
                 running a second installer beside it is unsafe: let it end (or stop it), then resume",
                earlier.program,
                earlier.pid,
                limit.as_secs()
            )));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::context::{EngineOptions, Environment};
    use crate::engine::observer::NullObserver;
    use crate::state::{MemoryStore, NewRun, RunKind, Store};
    use std::sync::Arc;

    pub(super) fn step_ctx() -> StepCtx {
        let store = Arc::new(MemoryStore::new());
        let run = store
            .begin_run(NewRun {
                fingerprint: "sha256:x".into(),
                spec_name: "t".into(),
                kind: RunKind::Apply,
                plan: json!({}),
                steps: vec!["install-c1".into()],
            })
            .unwrap()
            .id;
        StepCtx {
            env: Arc::new(Environment {
                clusters: Default::default(),
                kubeconfigs: Default::default(),
                store,
                observer: Arc::new(NullObserver),
            }),
            opts: Arc::new(EngineOptions::default()),
            run,
            step: "install-c1".into(),
            plan_clusters: Arc::new(vec!["c1".into()]),
            cycle: 0,
            restores_scale: false,
        }
    }

    fn installer_records(ctx: &StepCtx) -> Vec<String> {
        ctx.env
            .store
            .events(ctx.run, 0)
            .unwrap()
            .into_iter()
            .filter_map(|e| {
                e.details?
                    .get(RECORD_KEY)?
                    .get("state")?
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    #[tokio::test]
    async fn journals_the_installer_before_and_after_it_runs() {
        let ctx = step_ctx();
        run(&ctx, "c1", "true", &[], None, 10).await.unwrap();
        assert_eq!(installer_records(&ctx), ["started", "ended"]);
        assert!(unfinished_installers(&ctx).unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_uninstall_runs_only_where_this_steps_install_ran() {
        let ctx = step_ctx();
        let uninstall = ["uninstall".to_string(), "--purge".into()];
        run(&ctx, "c1", "true", &uninstall, None, 10).await.unwrap();
        assert!(installer_records(&ctx).is_empty(), "skipped: nothing ran");
        let skipped = ctx.env.store.events(ctx.run, 0).unwrap();
        assert!(
            skipped
                .iter()
                .any(|e| e.message.contains("uninstall skipped in c1")),
            "the skip is journalled"
        );
        // An install on another cluster does not count for c1.
        run(&ctx, "c2", "true", &["install".into()], None, 10)
            .await
            .unwrap();
        run(&ctx, "c1", "true", &uninstall, None, 10).await.unwrap();
        assert_eq!(installer_records(&ctx), ["starting", "started", "ended"]);
        // Announced (durably) before it starts, then it runs: the uninstall follows.
        run(&ctx, "c1", "true", &["install".into()], None, 10)
            .await
            .unwrap();
        run(&ctx, "c1", "true", &uninstall, None, 10).await.unwrap();
        assert_eq!(
            installer_records(&ctx),
            [
                "starting", "started", "ended", "starting", "started", "ended", "started", "ended"
            ]
        );
        // A second install of the same execution announces nothing new.
        run(&ctx, "c1", "true", &["install".into()], None, 10)
            .await
            .unwrap();
        assert_eq!(installer_records(&ctx).len(), 10);
    }

    #[tokio::test]
    async fn an_earlier_installer_that_still_runs_is_waited_for_then_refused() {
        let ctx = step_ctx();
        let mut survivor = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep runs");
        let identity = ProcessIdentity::of(survivor.id(), "sleep");
        // Until it has exec'd, the child still shows the test binary's name.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !identity.is_running() {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep never showed up"
            );
            tokio::task::yield_now().await;
        }
        record(&ctx, &identity, "c1", None, "started", None).unwrap();
        assert_eq!(
            unfinished_installers(&ctx).unwrap(),
            std::slice::from_ref(&identity)
        );
        let err = wait_for_earlier_installer(&ctx, Duration::from_millis(300))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("pid {}", identity.pid)), "{text}");
        // Refused before anything ran: no second installer was journalled.
        assert_eq!(installer_records(&ctx), ["started"]);
        survivor.kill().unwrap();
        survivor.wait().unwrap();
        wait_for_earlier_installer(&ctx, Duration::from_secs(10))
            .await
            .expect("an installer that is gone does not block");
    }
}
