//! The arguments commands share, resolved once: the kubeconfig that
//! reaches the clusters, the cluster targets, the state store, the observer
//! that shows progress, and the context hints are worded in.

use super::view::{self, hints::Hints, observer::CliObserver};
use super::{GlobalArgs, exit};
use crate::cluster::{Cluster, ClusterTarget, connect};
use crate::engine::{Environment, OffloadedStore, StoredPlan, scheduler::StopFlag};
use crate::plan::Plan;
use crate::spec::{self, Loaded};
use crate::state::{SledStore, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// One invocation's resolved arguments.
pub struct Session {
    /// The kubeconfig for clusters whose spec names none: `--kubeconfig`
    /// (or `$KUBECONFIG`), else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig the user gave (`--kubeconfig` or `$KUBECONFIG`), if
    /// any: it overrides the ones a stored run recorded (`run_targets`).
    pub given_kubeconfig: Option<PathBuf>,
    /// How hints name this invocation's spec, state directory and kubeconfig.
    pub hints: Hints,
}

impl Session {
    /// Resolves the global arguments, with the state directory and spec of
    /// the command when it has them.
    pub fn new(global: &GlobalArgs, state_dir: Option<&Path>, spec: Option<&Path>) -> Session {
        let kubeconfig = global.kubeconfig.clone().or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
        });
        Session {
            kubeconfig,
            given_kubeconfig: global.kubeconfig.clone(),
            hints: Hints::new(spec, state_dir, global.kubeconfig.as_deref()),
        }
    }

    /// Connects to every target (no request is sent yet).
    pub async fn connect(&self, targets: &[ClusterTarget]) -> anyhow::Result<Connected> {
        let mut clusters = BTreeMap::new();
        let mut kubeconfigs = BTreeMap::new();
        for t in targets {
            let c = connect(t, self.kubeconfig.as_deref()).await?;
            if let Some(p) = t.kubeconfig.as_deref().or(self.kubeconfig.as_deref()) {
                kubeconfigs.insert(t.name.clone(), absolute(p));
            }
            clusters.insert(t.name.clone(), Arc::new(c));
        }
        Ok(Connected {
            clusters,
            kubeconfigs,
        })
    }
}

/// The clusters of a run, connected.
pub struct Connected {
    clusters: BTreeMap<String, Arc<Cluster>>,
    kubeconfigs: BTreeMap<String, PathBuf>,
}

impl Connected {
    /// What a run needs: these clusters, the kubeconfig each was reached
    /// with, `store`, and an observer that shows progress.
    pub fn environment(self, store: Arc<dyn Store>) -> Arc<Environment> {
        Arc::new(Environment {
            clusters: self.clusters,
            kubeconfigs: self.kubeconfigs,
            store: Arc::new(OffloadedStore(store)),
            observer: CliObserver::new(),
        })
    }
}

/// Loads a spec; on invalid input shows every diagnostic and returns the
/// exit code to end with.
pub fn load_spec(file: &Path) -> Result<Loaded, ExitCode> {
    match spec::load_file(file) {
        Ok(loaded) => {
            view::spec::warnings(&loaded);
            Ok(loaded)
        }
        Err(e) => {
            view::spec::refused(&e);
            Err(ExitCode::from(exit::INVALID_INPUT))
        }
    }
}

/// Loads and plans a spec; on invalid input shows why and returns the exit
/// code to end with.
pub fn load_plan(file: &Path) -> Result<(Loaded, Plan), ExitCode> {
    let loaded = load_spec(file)?;
    match crate::phases::plan(&loaded.spec) {
        Ok(plan) => Ok((loaded, plan)),
        Err(e) => {
            view::spec::unplannable(file, &e);
            Err(ExitCode::from(exit::INVALID_INPUT))
        }
    }
}

/// Opens the state directory, showing a takeover notice if the previous
/// holder died.
pub fn open_store(dir: &Path) -> anyhow::Result<SledStore> {
    let opened = SledStore::open(dir)?;
    if let Some(notice) = opened.notice {
        view::takeover_note(&notice);
    }
    Ok(opened.store)
}

/// The clusters a spec names, with the kubeconfig each names (if any).
pub fn spec_targets(loaded: &Loaded) -> Vec<ClusterTarget> {
    loaded
        .spec
        .spec
        .clusters
        .iter()
        .map(|c| ClusterTarget {
            name: c.name.clone(),
            context: c.context.clone(),
            kubeconfig: c.kubeconfig.clone(),
        })
        .collect()
}

/// The clusters a stored run reached (for rollback), each with the
/// kubeconfig to reach it by: the one the user gave now (`given`) if any,
/// else the one the run recorded. The recorded path may be gone or stale (a
/// run started elsewhere, a kubeconfig regenerated), and the user's word wins.
pub fn run_targets(stored: &StoredPlan, given: Option<&Path>) -> Vec<ClusterTarget> {
    stored
        .header
        .clusters
        .iter()
        .map(|c| ClusterTarget {
            name: c.name.clone(),
            context: c.context.clone(),
            kubeconfig: given
                .map(Path::to_path_buf)
                .or_else(|| stored.kubeconfigs.get(&c.name).cloned()),
        })
        .collect()
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

/// Ctrl-C stops scheduling; a second Ctrl-C exits at once.
pub fn stop_on_ctrl_c() -> StopFlag {
    let stop = StopFlag::default();
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            view::interrupted();
            flag.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                view::quitting();
                std::process::exit(130);
            }
        }
    });
    stop
}
