//! `helm-upgrade` and `helm-rollback`: Helm as the installer.
//!
//! Helm keeps a record per release revision, the Secret
//! `sh.helm.release.v1.<release>.v<N>` labelled `owner=helm`, `name`,
//! `status` and `version`; the engine reads those labels, never the payload.
//!
//! Crash safety, in the order things happen:
//! - before the step's first upgrade of a release, its deployed revision (or
//!   its absence) is journalled durably: rollback returns to that revision,
//!   or uninstalls a release the step installed from nothing, and does
//!   nothing where no upgrade ever started;
//! - a helm killed mid-operation leaves its newest record `pending-*`, and
//!   Helm then refuses every operation on the release. When the journal
//!   says this step's own helm was killed (started, never ended) and none
//!   still runs, the pending record is deleted, as an operator does, and the
//!   operation is redone; a pending record nobody here left is refused;
//! - an upgrade whose merged values equal the release's values of record is
//!   not run again, nor a rollback already done.

use super::{RECORD_KEY, run_recorded, wait_for_earlier_installer};
use crate::cluster::{InputFile, run_command};
use crate::engine::context::{ActionError, StepCtx};
use crate::plan::{ObjectRef, Substitution};
use crate::state::{EventKind, NewEvent};
use serde_json::{Value, json};
use std::time::Duration;

/// The key of the record of a release's revision before the step's upgrade.
const BEFORE_KEY: &str = "helmBefore";
/// The status of a release record Helm finished.
const DEPLOYED: &str = "deployed";
/// Runs of a helm command before its failure fails the step.
const ATTEMPTS: u32 = 3;
/// How long a read-only helm command (`get values`, `status`) may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One release on one cluster, and how to reach it.
pub(crate) struct Release<'a> {
    pub cluster: &'a str,
    pub program: &'a str,
    pub context: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The chart and values of an upgrade.
pub(crate) struct Chart<'a> {
    pub chart: &'a str,
    pub repo: Option<&'a str>,
    pub version: &'a str,
    pub values: &'a Value,
    /// Placeholders in string values, filled in when the upgrade runs.
    pub substitutions: &'a [Substitution],
}

/// One release record, from its Secret's labels.
#[derive(Debug, Clone)]
struct Record {
    version: u32,
    status: String,
    secret: String,
}

impl Release<'_> {
    fn scope(&self) -> Vec<String> {
        vec![
            "-n".into(),
            self.namespace.into(),
            "--kube-context".into(),
            self.context.into(),
        ]
    }

    fn env(&self, ctx: &StepCtx) -> Vec<(String, String)> {
        ctx.env
            .kubeconfigs
            .get(self.cluster)
            .map(|p| vec![("KUBECONFIG".to_string(), p.to_string_lossy().into_owned())])
            .unwrap_or_default()
    }

    /// The release's records, oldest first.
    async fn records(&self, ctx: &StepCtx) -> Result<Vec<Record>, ActionError> {
        let c = ctx.cluster(self.cluster)?;
        let selector = format!("owner=helm,name={}", self.name);
        let secrets = ctx
            .retry(|| c.list("v1", "Secret", Some(self.namespace), Some(&selector)))
            .await?;
        let mut out: Vec<Record> = secrets
            .iter()
            .filter_map(|s| {
                let label = |k: &str| s.pointer(&format!("/metadata/labels/{k}"))?.as_str();
                Some(Record {
                    version: label("version")?.parse().ok()?,
                    status: label("status")?.to_string(),
                    secret: s.pointer("/metadata/name")?.as_str()?.to_string(),
                })
            })
            .collect();
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// A read-only helm command's JSON output.
    async fn read_json(&self, ctx: &StepCtx, args: &[&str]) -> Result<Value, ActionError> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(self.scope());
        all.extend(["-o".into(), "json".into()]);
        let out = run_command(self.program, &all, None, &self.env(ctx), READ_TIMEOUT).await?;
        serde_json::from_str(out.stdout.trim()).map_err(|e| {
            ActionError::Failed(format!(
                "{} {} in {}: the output is not JSON: {e}",
                self.program,
                args.join(" "),
                self.cluster
            ))
        })
    }

    /// Runs a changing helm command, journalled as installers are, retried
    /// a few times on a non-zero exit (Helm converges: an upgrade after a
    /// failed one, an uninstall of what is half gone).
    async fn run(
        &self,
        ctx: &StepCtx,
        args: Vec<String>,
        file: Option<&InputFile>,
        timeout: Duration,
    ) -> Result<(), ActionError> {
        let mut args = args;
        args.extend(self.scope());
        let env = self.env(ctx);
        let mut attempt = 1;
        loop {
            match run_recorded(ctx, self.cluster, self.program, &args, file, &env, timeout).await {
                Ok(out) => {
                    tracing::info!(step = %ctx.step, "{} {}: {}", self.program, args.join(" "),
                        out.stdout.lines().last().unwrap_or_default());
                    return Ok(());
                }
                Err(ActionError::Cluster(
                    e @ crate::cluster::ClusterError::Exec {
                        status: Some(_), ..
                    },
                )) if attempt < ATTEMPTS.min(ctx.opts.backoff.max_attempts.max(1)) => {
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
        }
    }

    fn note(&self, ctx: &StepCtx, message: String) -> Result<(), ActionError> {
        ctx.env.observer.warning(&ctx.step, &message);
        ctx.env.store.record_event(
            ctx.run,
            NewEvent::new(EventKind::Note, Some(&ctx.step), message),
        )?;
        Ok(())
    }

    /// The refusal of a pending record no helm of this step left.
    fn pending_elsewhere(&self, last: &Record) -> ActionError {
        ActionError::Failed(format!(
            "Helm release {} in {} ({}) is {} at revision {}, and no helm of this step left it so: another helm may be working on it. \
             Once none is, roll it back (`helm rollback {} -n {}`) or delete the Secret {}, then resume",
            self.name,
            self.cluster,
            self.namespace,
            last.status,
            last.version,
            self.name,
            self.namespace,
            last.secret
        ))
    }

    /// The release's records once a pending one that this step's killed
    /// helm left is deleted (then `true`: the objects may be half applied);
    /// an error for a pending one it did not leave.
    async fn settled_records(&self, ctx: &StepCtx) -> Result<(Vec<Record>, bool), ActionError> {
        let mut records = self.records(ctx).await?;
        let Some(last) = records.last().cloned() else {
            return Ok((records, false));
        };
        if !last.status.starts_with("pending-") {
            return Ok((records, false));
        }
        if !own_helm_was_killed(ctx, self.cluster)? {
            return Err(self.pending_elsewhere(&last));
        }
        let c = ctx.cluster(self.cluster)?;
        let secret = ObjectRef::secret(self.namespace, &last.secret);
        ctx.retry(|| c.delete(&secret)).await?;
        self.note(
            ctx,
            format!(
                "Helm release {} in {}: revision {} was left {} by a helm this step started and that was killed; its record is deleted and the operation redone",
                self.name, self.cluster, last.version, last.status
            ),
        )?;
        records.pop();
        Ok((records, true))
    }
}

/// `helm upgrade --install` with `chart.values` merged over the release's
/// values of record.
pub(crate) async fn upgrade(
    ctx: &StepCtx,
    r: &Release<'_>,
    chart: &Chart<'_>,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    let timeout = ctx.timeout(timeout_seconds);
    wait_for_earlier_installer(ctx, timeout).await?;
    let (records, _) = r.settled_records(ctx).await?;
    let deployed = records
        .iter()
        .rev()
        .find(|x| x.status == DEPLOYED)
        .map(|x| x.version);
    if recorded_before(ctx, r.cluster, r.name)?.is_none() {
        let crds = match deployed {
            None => Some(istio_crds(ctx, r.cluster).await?),
            Some(_) => None,
        };
        record_before(ctx, r, deployed, crds)?;
    }
    let theirs = match deployed {
        Some(_) => match r.read_json(ctx, &["get", "values", r.name]).await? {
            Value::Null => json!({}),
            v => v,
        },
        None => json!({}),
    };
    let ours = substituted(ctx, chart.values, chart.substitutions).await?;
    let mut merged = theirs.clone();
    merge_into(&mut merged, &ours);
    let latest_deployed = records.last().is_some_and(|x| x.status == DEPLOYED);
    if latest_deployed && merged == theirs {
        r.note(
            ctx,
            format!(
                "Helm release {} in {} already has these values: not upgraded again",
                r.name, r.cluster
            ),
        )?;
        return Ok(());
    }
    let text = serde_yaml::to_string(&merged).map_err(|e| ActionError::Failed(e.to_string()))?;
    let file = InputFile {
        name: format!("{}-values.yaml", r.name),
        content: text,
    };
    let mut args: Vec<String> = ["upgrade", "--install", r.name, chart.chart]
        .iter()
        .map(|a| a.to_string())
        .collect();
    if let Some(repo) = chart.repo {
        args.extend(["--repo".into(), repo.into()]);
    }
    args.extend([
        "--version".into(),
        chart.version.into(),
        "-f".into(),
        "{file}".into(),
        "--wait".into(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs().max(1)),
    ]);
    r.run(ctx, args, Some(&file), timeout).await
}

/// `helm rollback` to the revision recorded before the step's first
/// upgrade, `helm uninstall` where there was none; nothing where no upgrade
/// of this execution of the step started.
pub(crate) async fn rollback(
    ctx: &StepCtx,
    r: &Release<'_>,
    timeout_seconds: u64,
) -> Result<(), ActionError> {
    if ctx.opts.dry_run {
        return Ok(());
    }
    let Some(before) = recorded_before(ctx, r.cluster, r.name)? else {
        return r.note(
            ctx,
            format!(
                "Helm release {} in {}: this step never upgraded it, nothing to roll back",
                r.name, r.cluster
            ),
        );
    };
    let timeout = ctx.timeout(timeout_seconds);
    wait_for_earlier_installer(ctx, timeout).await?;
    let wait = [
        "--wait".to_string(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs().max(1)),
    ];
    match before.revision {
        None => {
            // A release this step installed from nothing goes whole. A
            // pending record this step's killed helm left is kept: Helm
            // uninstalls a pending release too, and its record's manifest
            // names what the killed install may have applied.
            let records = r.records(ctx).await?;
            if let Some(last) = records.last()
                && last.status.starts_with("pending-")
                && !own_helm_was_killed(ctx, r.cluster)?
            {
                return Err(r.pending_elsewhere(last));
            }
            if !records.is_empty() {
                let mut args = vec!["uninstall".to_string(), r.name.into()];
                args.extend(wait);
                r.run(ctx, args, None, timeout).await?;
            }
            // Helm keeps the CRDs of Istio's base chart (resource-policy
            // keep): those this release brought to the cluster go too.
            remove_new_crds(ctx, r, &before.crds).await
        }
        Some(n) => {
            let (records, cleared) = r.settled_records(ctx).await?;
            // A killed helm's half-applied objects: revision n applied again.
            if !cleared {
                let latest = records.last();
                if latest.is_some_and(|x| x.version == n && x.status == DEPLOYED) {
                    // The upgrade never wrote a revision: nothing changed.
                    return Ok(());
                }
                let status = r.read_json(ctx, &["status", r.name]).await?;
                let done = status.pointer("/info/status").and_then(Value::as_str) == Some(DEPLOYED)
                    && status.pointer("/info/description").and_then(Value::as_str)
                        == Some(format!("Rollback to {n}").as_str());
                if done {
                    return Ok(());
                }
            }
            let mut args = vec!["rollback".to_string(), r.name.into(), n.to_string()];
            args.extend(wait);
            r.run(ctx, args, None, timeout).await
        }
    }
}

/// The group suffix of Istio's CustomResourceDefinitions.
const ISTIO_GROUP: &str = ".istio.io";

fn crd_ref(name: &str) -> ObjectRef {
    ObjectRef::new(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        name,
    )
}

/// The names of Istio's CRDs on `cluster`.
async fn istio_crds(ctx: &StepCtx, cluster: &str) -> Result<Vec<String>, ActionError> {
    Ok(crds(ctx, cluster)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Istio's CRDs on `cluster` with the release that rendered them.
async fn crds(ctx: &StepCtx, cluster: &str) -> Result<Vec<(String, String)>, ActionError> {
    let c = ctx.cluster(cluster)?;
    let all = ctx
        .retry(|| {
            c.list(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                None,
            )
        })
        .await?;
    Ok(all
        .iter()
        .filter_map(|crd| {
            let name = crd.pointer("/metadata/name")?.as_str()?;
            let release = crd
                .pointer("/metadata/annotations/meta.helm.sh~1release-name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            name.ends_with(ISTIO_GROUP)
                .then(|| (name.to_string(), release.to_string()))
        })
        .collect())
}

/// Deletes Istio's CRDs that `r` rendered and that were not there before it.
async fn remove_new_crds(
    ctx: &StepCtx,
    r: &Release<'_>,
    before: &[String],
) -> Result<(), ActionError> {
    let c = ctx.cluster(r.cluster)?;
    for (name, release) in crds(ctx, r.cluster).await? {
        if release != r.name || before.contains(&name) {
            continue;
        }
        let crd = crd_ref(&name);
        ctx.retry(|| c.delete(&crd)).await?;
    }
    Ok(())
}

/// Journals durably, before the upgrade starts, the release's deployed
/// revision (None: no release): what rollback returns to.
fn record_before(
    ctx: &StepCtx,
    r: &Release<'_>,
    deployed: Option<u32>,
    crds: Option<Vec<String>>,
) -> Result<(), ActionError> {
    let message = match deployed {
        Some(n) => format!(
            "Helm release {} in {} is at revision {n} before this step: rollback returns to it",
            r.name, r.cluster
        ),
        None => format!(
            "Helm release {} in {} does not exist before this step: rollback uninstalls it",
            r.name, r.cluster
        ),
    };
    let details = json!({ BEFORE_KEY: {
        "cluster": r.cluster, "release": r.name, "namespace": r.namespace, "revision": deployed,
        "crds": crds,
    } });
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Action, Some(&ctx.step), message).with_details(details),
    )?;
    Ok(())
}

/// What was journalled before this execution of the step (since it was
/// last rolled back) first upgraded a release.
struct Before {
    /// The deployed revision; None: the release did not exist.
    revision: Option<u32>,
    /// Where the release did not exist: Istio's CRDs that existed then.
    crds: Vec<String>,
}

/// What was journalled before this execution of the step first upgraded
/// `release` on `cluster`; None when no upgrade started.
fn recorded_before(
    ctx: &StepCtx,
    cluster: &str,
    release: &str,
) -> Result<Option<Before>, ActionError> {
    let records = super::records_since_rollback(ctx, BEFORE_KEY)?;
    let first = records.iter().find(|record| {
        record.get("cluster").and_then(Value::as_str) == Some(cluster)
            && record.get("release").and_then(Value::as_str) == Some(release)
    });
    Ok(first.map(|record| {
        let revision = record
            .get("revision")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        let crds = record
            .get("crds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Before { revision, crds }
    }))
}

/// Whether the last installer this step journalled on `cluster` (in any
/// run) started and never ended: a helm killed with `migrate`.
fn own_helm_was_killed(ctx: &StepCtx, cluster: &str) -> Result<bool, ActionError> {
    for run in ctx.env.store.runs()?.iter().rev() {
        let last = ctx
            .env
            .store
            .events(run.id, 0)?
            .into_iter()
            .rev()
            .filter(|e| e.step.as_deref() == Some(ctx.step.as_str()))
            .filter_map(|e| e.details.and_then(|d| d.get(RECORD_KEY).cloned()))
            .find(|rec| rec.get("cluster").and_then(Value::as_str) == Some(cluster));
        if let Some(rec) = last {
            return Ok(rec.get("state").and_then(Value::as_str) == Some("started"));
        }
    }
    Ok(false)
}

/// `values` with every placeholder in its strings replaced by its run-time
/// value (read once per placeholder).
async fn substituted(
    ctx: &StepCtx,
    values: &Value,
    substitutions: &[Substitution],
) -> Result<Value, ActionError> {
    let mut out = values.clone();
    for s in substitutions {
        let value =
            crate::engine::secrets::substitute(ctx, &s.placeholder, std::slice::from_ref(s))
                .await?;
        replace_in_strings(&mut out, &s.placeholder, &value);
    }
    Ok(out)
}

/// Replaces `placeholder` by `value` in every string of `v`.
fn replace_in_strings(v: &mut Value, placeholder: &str, value: &str) {
    match v {
        Value::String(s) if s.contains(placeholder) => *s = s.replace(placeholder, value),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| replace_in_strings(i, placeholder, value)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| replace_in_strings(i, placeholder, value)),
        _ => {}
    }
}

/// Helm's merge of values: maps merge key by key, anything else is replaced.
fn merge_into(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge_into(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::record;
    use super::super::tests::step_ctx;
    use super::*;
    use crate::cluster::ProcessIdentity;

    fn release() -> Release<'static> {
        Release {
            cluster: "c1",
            program: "helm",
            context: "k1",
            namespace: "istio-system",
            name: "istiod",
        }
    }

    #[test]
    fn the_first_record_of_an_execution_is_what_rollback_returns_to() {
        let ctx = step_ctx();
        assert!(recorded_before(&ctx, "c1", "istiod").unwrap().is_none());
        record_before(&ctx, &release(), None, Some(vec!["a.istio.io".into()])).unwrap();
        record_before(&ctx, &release(), Some(5), None).unwrap();
        let before = recorded_before(&ctx, "c1", "istiod").unwrap().unwrap();
        assert_eq!(before.revision, None, "the first record wins");
        assert_eq!(before.crds, ["a.istio.io"]);
        assert!(recorded_before(&ctx, "c2", "istiod").unwrap().is_none());
        assert!(recorded_before(&ctx, "c1", "istio-base").unwrap().is_none());
        // Rolled back: the next execution records afresh.
        let rolled_back = NewEvent::new(EventKind::StepStatus, Some(&ctx.step), "rolled back")
            .with_details(json!({"to": "rolled-back"}));
        ctx.env.store.record_event(ctx.run, rolled_back).unwrap();
        assert!(recorded_before(&ctx, "c1", "istiod").unwrap().is_none());
        record_before(&ctx, &release(), Some(7), None).unwrap();
        let before = recorded_before(&ctx, "c1", "istiod").unwrap().unwrap();
        assert_eq!(before.revision, Some(7));
    }

    #[test]
    fn a_pending_record_is_ours_only_when_our_last_helm_there_never_ended() {
        let ctx = step_ctx();
        assert!(!own_helm_was_killed(&ctx, "c1").unwrap());
        let helm = ProcessIdentity::of(4242, "helm");
        record(&ctx, &helm, "c1", Some("upgrade"), "started", None).unwrap();
        assert!(own_helm_was_killed(&ctx, "c1").unwrap());
        assert!(
            !own_helm_was_killed(&ctx, "c2").unwrap(),
            "another cluster's"
        );
        record(&ctx, &helm, "c2", Some("upgrade"), "started", None).unwrap();
        assert!(
            own_helm_was_killed(&ctx, "c1").unwrap(),
            "c1's last is still open"
        );
        record(&ctx, &helm, "c1", Some("upgrade"), "ended", Some("ok")).unwrap();
        assert!(!own_helm_was_killed(&ctx, "c1").unwrap());
    }

    #[test]
    fn placeholders_are_replaced_in_strings_only() {
        let mut v = json!({"global": {"remotePilotAddress": "${a}", "n": 1,
                           "list": ["x-${a}", true]}, "${a}": "key stays"});
        replace_in_strings(&mut v, "${a}", "10.0.0.7");
        assert_eq!(
            v,
            json!({"global": {"remotePilotAddress": "10.0.0.7", "n": 1,
                   "list": ["x-10.0.0.7", true]}, "${a}": "key stays"})
        );
    }

    #[test]
    fn ours_merge_over_theirs_and_theirs_stay() {
        let mut theirs = json!({"global": {"hub": "my.registry/istio", "meshID": "old"},
            "pilot": {"resources": {"requests": {"cpu": "1"}}}});
        merge_into(
            &mut theirs,
            &json!({"global": {"meshID": "mesh1", "multiCluster": {"clusterName": "c1"}},
                    "revision": "1-26-4"}),
        );
        assert_eq!(
            theirs,
            json!({"global": {"hub": "my.registry/istio", "meshID": "mesh1",
                              "multiCluster": {"clusterName": "c1"}},
                   "pilot": {"resources": {"requests": {"cpu": "1"}}}, "revision": "1-26-4"})
        );
    }
}
