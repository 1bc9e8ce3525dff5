//! A `helm` stand-in: a real API client (kubeconfig, `--kube-context`,
//! HTTPS) that makes the in-cluster changes Helm 3 makes when it installs,
//! upgrades, rolls back and uninstalls Istio's charts `base`, `istiod` and
//! `gateway`:
//! - a release record per revision, the Secret `sh.helm.release.v1.<release>.v<N>`
//!   ([`release`]: type `helm.sh/release.v1`, labels `name`, `owner=helm`,
//!   `status`, `version`, gzipped JSON under `release`); an upgrade writes
//!   revision N+1 as `pending-upgrade`, applies, marks the previous deployed
//!   revision `superseded` and N+1 `deployed` (`failed` when applying fails);
//! - rendered objects labelled `app.kubernetes.io/managed-by: Helm` and
//!   annotated `meta.helm.sh/release-name` / `-namespace`; an upgrade deletes
//!   what the new revision no longer renders;
//! - `rollback RELEASE [R]` writes revision N+1 with revision R's values and
//!   manifest (R defaults to the one before the latest);
//! - `uninstall` deletes the rendered objects and every release Secret;
//! - a release whose latest record is `pending-*` (a Helm that was killed)
//!   refuses upgrade and rollback: "another operation (install/upgrade/rollback)
//!   is in progress", as Helm does.
//!
//! Tests count the changing invocations through [`invocation_log`]
//! (`MESHSIM_HELM_LOG`).
//!
//! The `migrate` binary runs it busybox-style when started as `helm` (a
//! symlink, see [`link`]); [`main`] takes the argv after the program name.
//!
//! Where it differs from Helm:
//! - charts are not templates: [`chart`] renders the objects the istioctl
//!   stand-in renders for the corresponding component, from the values that
//!   matter to a mesh (see there); a chart is named `istio/NAME`, `NAME`, or a
//!   directory whose `Chart.yaml` names it; nothing is downloaded;
//! - objects are written by server-side apply (field manager `helm`), not
//!   Helm's create and three-way merge patch; existing objects are adopted
//!   without Helm's ownership check; CustomResourceDefinitions are created
//!   only when absent and are kept by uninstall (Istio's base chart marks them
//!   `helm.sh/resource-policy: keep`);
//! - no hooks, no `--keep-history`, no `--reuse-values`; `--set` takes
//!   `a.b=value` (ints, booleans and null typed, `\.` escapes a dot), not lists;
//! - no `--history-max`: every revision's record is kept until uninstall.
//! - a release Secret that does not decode is an error naming the release
//!   (Helm passes over it).

mod args;
pub mod chart;
pub mod invocation_log;
pub mod release;

pub use args::{Command, Global, Output, ParseError, UpgradeArgs};

use crate::istioctl::IstioctlError;
use crate::istioctl::kube_api::KubeApi;
use crate::store::now_rfc3339;
use release::{Release, status};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::time::Duration;

/// The Helm release the stand-in reports as its own version.
pub const HELM_VERSION: &str = "v3.16.3";
/// The field manager the stand-in applies with.
pub const FIELD_MANAGER: &str = "helm";

#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error(transparent)]
    Usage(#[from] ParseError),
    #[error(transparent)]
    Kube(#[from] IstioctlError),
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
    #[error("could not read {path}: {message}")]
    Values { path: String, message: String },
    #[error("{0}: release: not found")]
    NotFound(String),
    #[error("UPGRADE FAILED: {0:?} has no deployed releases")]
    NoDeployed(String),
    #[error("INSTALLATION FAILED: cannot re-use a name that is still in use")]
    InUse,
    #[error("another operation (install/upgrade/rollback) is in progress")]
    InProgress,
    #[error("release: not found: {release} has no revision {revision}")]
    NoRevision { release: String, revision: u32 },
    #[error("release {0}: {1}")]
    Record(String, #[source] release::CodecError),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one helm command line (without the program name) and returns the
/// exit code. Builds its own current-thread runtime: call it from sync code.
pub fn main(args: Vec<String>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return 1;
        }
    };
    let invocation = invocation_log::Invocation::start(&args);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(run(&args, &mut out, &mut std::io::stdin().lock()));
    let _ = out.flush();
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    };
    if let Some(i) = invocation {
        i.end(code);
    }
    code
}

/// Makes `dir/helm` a symlink to `target` (the `migrate` binary) and returns its path.
#[cfg(unix)]
pub fn link(
    dir: &std::path::Path,
    target: &std::path::Path,
) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("helm");
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path)?;
    }
    std::os::unix::fs::symlink(target, &path)?;
    Ok(path)
}

/// Parses and runs a command line, writing what helm prints to `out`
/// (`-f -` reads values from `input`).
pub async fn run(
    args: &[String],
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), HelmError> {
    let (global, command) = args::parse(args)?;
    match command {
        Command::Help => {
            write!(out, "{}", args::USAGE)?;
            return Ok(());
        }
        Command::Version { short } => {
            if short {
                writeln!(out, "{HELM_VERSION}+gcfd0749")?;
            } else {
                writeln!(
                    out,
                    "version.BuildInfo{{Version:\"{HELM_VERSION}\", GitCommit:\"cfd07493f46efc9debd9cc1b02a0961186df7fdf\", GitTreeState:\"clean\", GoVersion:\"go1.22.7\"}}"
                )?;
            }
            return Ok(());
        }
        _ => {}
    }
    let istioctl_global = crate::istioctl::Global {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
        ..Default::default()
    };
    let client = crate::istioctl::connect(&istioctl_global).await?;
    let mut helm = Helm {
        api: KubeApi::new(client),
        namespace: global.namespace.clone(),
    };
    match command {
        Command::Upgrade(a) => {
            let values = read_values(&a.values_files, &a.sets, input)?;
            let r = helm.upgrade(&a, values).await?;
            if r.version == 1 {
                writeln!(
                    out,
                    "Release {:?} does not exist. Installing it now.",
                    r.name
                )?;
            } else {
                writeln!(
                    out,
                    "Release {:?} has been upgraded. Happy Helming!",
                    r.name
                )?;
            }
            write_summary(out, &r)
        }
        Command::Rollback {
            release,
            revision,
            wait,
            timeout,
        } => {
            helm.rollback(&release, revision, wait.then_some(timeout))
                .await?;
            writeln!(out, "Rollback was a success! Happy Helming!")?;
            Ok(())
        }
        Command::Uninstall { release, .. } => {
            let kept = helm.uninstall(&release).await?;
            if !kept.is_empty() {
                writeln!(out, "These resources were kept due to the resource policy:")?;
                for k in kept {
                    writeln!(out, "[{k}]")?;
                }
                writeln!(out)?;
            }
            writeln!(out, "release {release:?} uninstalled")?;
            Ok(())
        }
        Command::List { output } => {
            let releases = helm.list().await?;
            write_list(out, &releases, output)
        }
        Command::GetValues {
            release,
            output,
            all,
        } => {
            let r = helm.latest(&release).await?;
            let values = if all {
                let chart = chart::Chart {
                    name: r.chart.metadata.name.clone(),
                    version: r.chart.metadata.version.clone(),
                };
                let mut v = chart::defaults(&chart);
                crate::istio::install::merge_into(&mut v, &r.config);
                v
            } else {
                r.config.clone()
            };
            match output {
                Output::Json => writeln!(out, "{values}")?,
                Output::Yaml => write!(out, "{}", to_yaml(&values))?,
                Output::Table => {
                    let title = if all { "COMPUTED" } else { "USER-SUPPLIED" };
                    write!(out, "{title} VALUES:\n{}", to_yaml(&values))?;
                }
            }
            Ok(())
        }
        Command::Status { release, output } => {
            let r = helm.latest(&release).await?;
            match output {
                Output::Json => writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default())?,
                Output::Yaml => write!(out, "{}", serde_yaml::to_string(&r).unwrap_or_default())?,
                Output::Table => write_summary(out, &r)?,
            }
            Ok(())
        }
        Command::Help | Command::Version { .. } => Ok(()),
    }
}

fn to_yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|_| "null\n".into())
}

fn write_summary(out: &mut dyn Write, r: &Release) -> Result<(), HelmError> {
    writeln!(out, "NAME: {}", r.name)?;
    writeln!(out, "LAST DEPLOYED: {}", r.info.last_deployed)?;
    writeln!(out, "NAMESPACE: {}", r.namespace)?;
    writeln!(out, "STATUS: {}", r.info.status)?;
    writeln!(out, "REVISION: {}", r.version)?;
    writeln!(out, "TEST SUITE: None")?;
    Ok(())
}

fn write_list(out: &mut dyn Write, releases: &[Release], output: Output) -> Result<(), HelmError> {
    let rows: Vec<Value> = releases
        .iter()
        .map(|r| {
            json!({"name": r.name, "namespace": r.namespace, "revision": r.version.to_string(),
                   "updated": r.info.last_deployed, "status": r.info.status,
                   "chart": format!("{}-{}", r.chart.metadata.name, r.chart.metadata.version),
                   "app_version": r.chart.metadata.app_version})
        })
        .collect();
    match output {
        Output::Json => writeln!(out, "{}", Value::Array(rows))?,
        Output::Yaml => write!(out, "{}", to_yaml(&Value::Array(rows)))?,
        Output::Table => {
            writeln!(
                out,
                "NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION"
            )?;
            for r in rows {
                let f = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    f("name"),
                    f("namespace"),
                    f("revision"),
                    f("updated"),
                    f("status"),
                    f("chart"),
                    f("app_version")
                )?;
            }
        }
    }
    Ok(())
}

/// `-f` files merged in order, then `--set` on top: the values Helm records as `config`.
pub fn read_values(
    files: &[String],
    sets: &[String],
    input: &mut dyn BufRead,
) -> Result<Value, HelmError> {
    let mut values = json!({});
    for path in files {
        let text = if path == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(input, &mut s).map_err(|e| HelmError::Values {
                path: "stdin".into(),
                message: e.to_string(),
            })?;
            s
        } else {
            std::fs::read_to_string(path).map_err(|e| HelmError::Values {
                path: path.clone(),
                message: e.to_string(),
            })?
        };
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| HelmError::Values {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !doc.is_null() {
            crate::istio::install::merge_into(&mut values, &doc);
        }
    }
    for set in sets {
        let (path, raw) = set.split_once('=').ok_or_else(|| HelmError::Values {
            path: "--set".into(),
            message: format!("key {set:?} has no value"),
        })?;
        let keys = split_key(path);
        let mut patch = typed(raw);
        for k in keys.iter().rev() {
            patch = json!({ k: patch });
        }
        crate::istio::install::merge_into(&mut values, &patch);
    }
    Ok(values)
}

/// `a.b\.c` -> [`a`, `b.c`].
fn split_key(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(k) = keys.last_mut() {
                    k.push('.');
                }
            }
            '.' => keys.push(String::new()),
            c => {
                if let Some(k) = keys.last_mut() {
                    k.push(c);
                }
            }
        }
    }
    keys
}

/// Helm's `--set` typing: booleans, null and integers (no leading zero) are typed; the rest are strings.
fn typed(raw: &str) -> Value {
    match raw {
        "true" => json!(true),
        "false" => json!(false),
        "null" => Value::Null,
        _ if (raw == "0" || !raw.starts_with('0')) && raw.parse::<i64>().is_ok() => {
            json!(raw.parse::<i64>().unwrap_or_default())
        }
        _ => json!(raw),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `kind namespace/name` identity of a rendered object.
fn identity(o: &Value) -> (String, String, String, String) {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

/// One namespace's releases, through the API.
pub struct Helm {
    api: KubeApi,
    namespace: String,
}

impl Helm {
    /// A client acting in `namespace`.
    pub fn new(api: KubeApi, namespace: &str) -> Self {
        Helm {
            api,
            namespace: namespace.to_string(),
        }
    }

    /// Every record of `release` in the namespace, oldest first.
    pub async fn records(&mut self, release: &str) -> Result<Vec<Release>, HelmError> {
        let secrets = self
            .api
            .list("v1", "Secret", &format!("owner=helm,name={release}"))
            .await?;
        let mut out = Vec::new();
        for s in secrets {
            if s.metadata.namespace.as_deref() != Some(self.namespace.as_str()) {
                continue;
            }
            let v = serde_json::to_value(&s).unwrap_or(Value::Null);
            out.push(
                release::from_secret(&v).map_err(|e| HelmError::Record(release.to_string(), e))?,
            );
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// The latest record of `release`.
    pub async fn latest(&mut self, release: &str) -> Result<Release, HelmError> {
        self.records(release)
            .await?
            .pop()
            .ok_or_else(|| HelmError::NotFound(release.to_string()))
    }

    /// The latest revision of every release that is deployed or failed, as `helm list` shows.
    pub async fn list(&mut self) -> Result<Vec<Release>, HelmError> {
        let secrets = self.api.list("v1", "Secret", "owner=helm").await?;
        let mut names: Vec<String> = secrets
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            .filter_map(|s| s.metadata.labels.as_ref()?.get("name").cloned())
            .collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            let r = self.latest(&n).await?;
            if r.info.status == status::DEPLOYED || r.info.status == status::FAILED {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn write(&mut self, r: &Release, created: bool) -> Result<(), HelmError> {
        let secret = release::to_secret(r, created, unix_now())
            .map_err(|e| HelmError::Record(r.name.clone(), e))?;
        self.api.apply_as(&secret, FIELD_MANAGER).await?;
        Ok(())
    }

    /// `helm upgrade [--install]`: the new record once deployed.
    pub async fn upgrade(&mut self, a: &UpgradeArgs, values: Value) -> Result<Release, HelmError> {
        let chart = chart::resolve(&a.chart, a.version.as_deref())?;
        let records = self.records(&a.release).await?;
        let last = records.last();
        if a.fresh && last.is_some() {
            return Err(HelmError::InUse);
        }
        if last.is_none() && !a.install {
            return Err(HelmError::NoDeployed(a.release.clone()));
        }
        if last.is_some_and(|l| l.info.status.starts_with("pending-")) {
            return Err(HelmError::InProgress);
        }
        if a.create_namespace {
            self.api
                .create_if_absent(&json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": self.namespace}}))
                .await?;
        }
        let previous = records
            .iter()
            .rev()
            .find(|r| r.info.status == status::DEPLOYED)
            .cloned();
        let objects = chart::render(&chart, &a.release, &self.namespace, &values)?;
        let now = now_rfc3339();
        let first = last.is_none();
        let mut record = Release {
            name: a.release.clone(),
            info: release::Info {
                first_deployed: previous
                    .as_ref()
                    .map(|p| p.info.first_deployed.clone())
                    .unwrap_or_else(|| now.clone()),
                last_deployed: now,
                deleted: String::new(),
                description: if first {
                    "Initial install underway".into()
                } else {
                    "Preparing upgrade".into()
                },
                status: if first {
                    status::PENDING_INSTALL
                } else {
                    status::PENDING_UPGRADE
                }
                .into(),
                notes: String::new(),
            },
            chart: release::Chart {
                metadata: release::Metadata {
                    name: chart.name.clone(),
                    version: chart.version.clone(),
                    app_version: chart.version.clone(),
                    api_version: "v2".into(),
                    description: format!("Helm chart for {} (meshsim)", chart.name),
                },
                values: chart::defaults(&chart),
            },
            config: values,
            manifest: chart::manifest(&chart, &objects),
            version: last.map_or(1, |l| l.version + 1),
            namespace: self.namespace.clone(),
        };
        let done = if first {
            "Install complete"
        } else {
            "Upgrade complete"
        };
        self.deploy(
            &mut record,
            previous,
            objects,
            a.wait.then_some(a.timeout),
            done,
        )
        .await?;
        Ok(record)
    }

    /// `helm rollback RELEASE [REVISION]`: a new revision with REVISION's values and manifest.
    pub async fn rollback(
        &mut self,
        release: &str,
        revision: Option<u32>,
        wait: Option<Duration>,
    ) -> Result<Release, HelmError> {
        let records = self.records(release).await?;
        let Some(last) = records.last() else {
            return Err(HelmError::NotFound(release.to_string()));
        };
        if last.info.status.starts_with("pending-") {
            return Err(HelmError::InProgress);
        }
        let wanted = revision.unwrap_or(last.version.saturating_sub(1));
        let target = records
            .iter()
            .find(|r| r.version == wanted)
            .cloned()
            .ok_or(HelmError::NoRevision {
                release: release.to_string(),
                revision: wanted,
            })?;
        let previous = records
            .iter()
            .rev()
            .find(|r| r.info.status == status::DEPLOYED)
            .cloned();
        let now = now_rfc3339();
        let mut record = Release {
            info: release::Info {
                first_deployed: target.info.first_deployed.clone(),
                last_deployed: now,
                deleted: String::new(),
                description: format!("Rollback to {wanted}"),
                status: status::PENDING_ROLLBACK.into(),
                notes: String::new(),
            },
            version: last.version + 1,
            ..target.clone()
        };
        let objects = chart::parse_manifest(&target.manifest);
        let done = format!("Rollback to {wanted}");
        self.deploy(&mut record, previous, objects, wait, &done)
            .await?;
        Ok(record)
    }

    /// Writes the pending record, applies `objects`, deletes what `previous`
    /// rendered and `objects` does not, supersedes `previous`, then marks the record deployed
    /// (or failed, and returns the error).
    async fn deploy(
        &mut self,
        record: &mut Release,
        previous: Option<Release>,
        objects: Vec<Value>,
        wait: Option<Duration>,
        done: &str,
    ) -> Result<(), HelmError> {
        self.write(record, true).await?;
        let applied = self.apply_all(&objects, previous.as_ref(), wait).await;
        if let Err(e) = applied {
            record.info.status = status::FAILED.into();
            record.info.description = format!("Release {:?} failed: {e}", record.name);
            self.write(record, false).await?;
            return Err(e);
        }
        if let Some(delay) = invocation_log::deploy_delay() {
            tokio::time::sleep(delay).await;
        }
        if let Some(mut p) = previous {
            p.info.status = status::SUPERSEDED.into();
            p.info.description = "Superseded".into();
            self.write(&p, false).await?;
        }
        record.info.status = status::DEPLOYED.into();
        record.info.description = done.to_string();
        self.write(record, false).await
    }

    async fn apply_all(
        &mut self,
        objects: &[Value],
        previous: Option<&Release>,
        wait: Option<Duration>,
    ) -> Result<(), HelmError> {
        for o in objects {
            if o["kind"] == "CustomResourceDefinition" {
                self.api.create_if_absent(o).await?;
            } else {
                self.api.apply_as(o, FIELD_MANAGER).await?;
            }
        }
        let keep: HashSet<_> = objects.iter().map(identity).collect();
        if let Some(p) = previous {
            for old in chart::parse_manifest(&p.manifest).iter().rev() {
                let id = identity(old);
                if keep.contains(&id) || id.1 == "CustomResourceDefinition" {
                    continue;
                }
                let ns = Some(id.2.as_str()).filter(|n| !n.is_empty());
                self.api.delete(&id.0, &id.1, ns, &id.3).await?;
            }
        }
        if let Some(timeout) = wait {
            for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
                let id = identity(o);
                self.api.wait_deployment(&id.2, &id.3, timeout).await?;
            }
        }
        Ok(())
    }

    /// `helm uninstall`: deletes the deployed objects (CRDs kept, named in the
    /// result) and every release Secret.
    pub async fn uninstall(&mut self, release: &str) -> Result<Vec<String>, HelmError> {
        let records = self.records(release).await?;
        if records.is_empty() {
            return Err(HelmError::NotFound(format!(
                "uninstall: Release not loaded: {release}"
            )));
        }
        let current = records
            .iter()
            .rev()
            .find(|r| r.info.status == status::DEPLOYED)
            .or(records.last())
            .cloned();
        let mut kept = Vec::new();
        if let Some(current) = current {
            for o in chart::parse_manifest(&current.manifest).iter().rev() {
                let id = identity(o);
                if id.1 == "CustomResourceDefinition" {
                    kept.push(format!("{}.{}", id.3, id.1));
                    continue;
                }
                let ns = Some(id.2.as_str()).filter(|n| !n.is_empty());
                self.api.delete(&id.0, &id.1, ns, &id.3).await?;
            }
        }
        for r in &records {
            self.api
                .delete(
                    "v1",
                    "Secret",
                    Some(&self.namespace.clone()),
                    &release::secret_name(release, r.version),
                )
                .await?;
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_files_then_sets_typed_as_helm_types_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "global:\n  meshID: m1\n  network: n1\nrevision: x\n").unwrap();
        let v = read_values(
            &[a.display().to_string()],
            &[
                "revision=1-26-4".into(),
                "pilot.env.PILOT\\.X=true".into(),
                "replicas=2".into(),
                "global.tag=01".into(),
            ],
            &mut std::io::empty(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"global": {"meshID": "m1", "network": "n1", "tag": "01"}, "revision": "1-26-4",
                   "pilot": {"env": {"PILOT.X": true}}, "replicas": 2})
        );
        assert!(read_values(&[], &["novalue".into()], &mut std::io::empty()).is_err());
    }
}
