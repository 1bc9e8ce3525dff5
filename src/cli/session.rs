//! What `apply` and `rollback` share: loading the spec, opening the state
//! directory, connecting to the clusters, showing progress, and Ctrl-C.

use super::progress::Progress;
use super::{GlobalArgs, exit};
use crate::cluster::{ClusterTarget, connect};
use crate::engine::{Environment, Observer, ProbeReport, scheduler::StopFlag};
use crate::plan::Plan;
use crate::spec::{self, Loaded, SpecError};
use crate::state::{SledStore, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Loads and plans a spec; on invalid input prints every diagnostic and
/// returns the exit code to end with.
pub fn load_plan(file: &Path) -> Result<(Loaded, Plan), ExitCode> {
    let loaded = match spec::load_file(file) {
        Ok(l) => l,
        Err(SpecError::Invalid { diagnostics, file }) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!("error: {} is not a valid MeshMigration", file.display());
            return Err(ExitCode::from(exit::INVALID_INPUT));
        }
        Err(other) => {
            eprintln!("error: {other}");
            return Err(ExitCode::from(exit::INVALID_INPUT));
        }
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    match crate::phases::plan(&loaded.spec) {
        Ok(plan) => Ok((loaded, plan)),
        Err(e) => {
            eprintln!("error: cannot plan {}: {e}", file.display());
            Err(ExitCode::from(exit::INVALID_INPUT))
        }
    }
}

/// Opens the state directory, printing a takeover notice if the previous
/// holder died.
pub fn open_store(dir: &Path) -> anyhow::Result<SledStore> {
    let opened = SledStore::open(dir)?;
    if let Some(notice) = opened.notice {
        eprintln!("note: {notice}");
    }
    Ok(opened.store)
}

/// The kubeconfig the user pointed at, or the default one.
pub fn default_kubeconfig(global: &GlobalArgs) -> Option<PathBuf> {
    global
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config")))
}

/// Connects to every cluster (no request is sent yet).
pub async fn connect_all(
    targets: &[ClusterTarget],
    default: Option<&Path>,
) -> anyhow::Result<(
    BTreeMap<String, Arc<crate::cluster::Cluster>>,
    BTreeMap<String, PathBuf>,
)> {
    let mut clusters = BTreeMap::new();
    let mut kubeconfigs = BTreeMap::new();
    for t in targets {
        let c = connect(t, default).await?;
        if let Some(p) = t.kubeconfig.as_deref().or(default) {
            kubeconfigs.insert(t.name.clone(), absolute(p));
        }
        clusters.insert(t.name.clone(), Arc::new(c));
    }
    Ok((clusters, kubeconfigs))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

pub fn environment(
    clusters: BTreeMap<String, Arc<crate::cluster::Cluster>>,
    kubeconfigs: BTreeMap<String, PathBuf>,
    store: Arc<dyn Store>,
    observer: Arc<dyn Observer>,
) -> Arc<Environment> {
    Arc::new(Environment {
        clusters,
        kubeconfigs,
        store: Arc::new(crate::engine::OffloadedStore(store)),
        observer,
    })
}

/// Ctrl-C stops scheduling; a second Ctrl-C exits at once.
pub fn stop_on_ctrl_c() -> StopFlag {
    let stop = StopFlag::default();
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: starting no new step; running steps finish and are checkpointed (Ctrl-C again to quit now)"
            );
            flag.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("quitting; the checkpoint shows every step that finished");
                std::process::exit(130);
            }
        }
    });
    stop
}

/// The engine's progress, shown with bars or lines; probe tables printed
/// as they come, and kept for the summary.
pub struct CliObserver {
    progress: Mutex<Option<Progress>>,
    pub probes: Mutex<Vec<ProbeReport>>,
}

impl CliObserver {
    pub fn new() -> Arc<CliObserver> {
        Arc::new(CliObserver {
            progress: Mutex::new(None),
            probes: Mutex::new(Vec::new()),
        })
    }

    fn with(&self, f: impl FnOnce(&Progress)) {
        if let Ok(p) = self.progress.lock()
            && let Some(p) = p.as_ref()
        {
            f(p);
        }
    }
}

impl Observer for CliObserver {
    fn run_started(&self, title: &str, total: usize, done: usize) {
        if let Ok(mut p) = self.progress.lock() {
            *p = Some(Progress::new(title, total, done));
        }
    }
    fn step_started(&self, step: &str, description: &str) {
        self.with(|p| p.step_started(step, description));
    }
    fn action_started(&self, step: &str, action: &str) {
        tracing::info!(step, "{action}");
        self.with(|p| p.step_action(step, action));
    }
    fn retrying(&self, step: &str, attempt: u32, error: &str) {
        self.with(|p| p.step_retrying(step, attempt, error));
    }
    fn warning(&self, step: &str, message: &str) {
        super::progress::multi().suspend(|| eprintln!("warning: {step}: {message}"));
    }
    fn probe(&self, report: &ProbeReport) {
        super::progress::multi().suspend(|| eprint!("{}", probe_table(report)));
        if let Ok(mut probes) = self.probes.lock() {
            probes.push(report.clone());
        }
    }
    fn step_finished(&self, step: &str, ok: bool, elapsed: Duration) {
        self.with(|p| p.step_finished(step, ok, elapsed));
    }
    fn run_finished(&self) {
        if let Ok(mut p) = self.progress.lock() {
            p.take();
        }
    }
}

/// The answers of a probe per cluster, as a small table.
pub fn probe_table(r: &ProbeReport) -> String {
    let mut out = format!(
        "probe {} from {}: {} requests {}\n",
        r.step,
        r.from,
        r.requests,
        if r.passed { "PASSED" } else { "FAILED" }
    );
    out.push_str(&format!("  {:<16} {:>8}\n", "cluster", "answers"));
    for (cluster, n) in &r.answers {
        out.push_str(&format!("  {cluster:<16} {n:>8}\n"));
    }
    for (error, n) in &r.errors {
        out.push_str(&format!("  error x{n}: {error}\n"));
    }
    if !r.passed {
        out.push_str(&format!("  why: {}\n", r.verdict));
    }
    out
}
