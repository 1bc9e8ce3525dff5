//! The arguments commands share, resolved once: the kubeconfig that
//! reaches the clusters, the cluster targets, the state store, the observer
//! that shows progress, and the context hints are worded in.

use super::view::{self, hints::Hints, observer::CliObserver};
use super::{GlobalArgs, exit};
use crate::cluster::{Cluster, ClusterTarget, connect};
use crate::engine::{Environment, OffloadedStore, StoredPlan, scheduler::StopFlag};
use crate::plan::Plan;
use crate::spec::{self, Loaded};
use crate::state::{
    EventKind, KUBE_SCHEME, KubeLocation, KubeStore, NewEvent, SledStore, StateError, StepStatus,
    Store,
};
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
    /// The state store's location, as the mesh's Lease names it, when the run claims the mesh (apply and
    /// rollback, unless `--no-mesh-lease`).
    pub mesh_claim: Option<String>,
}

impl Session {
    /// Resolves the global arguments, with the state directory and spec of
    /// the command when it has them.
    pub fn new(global: &GlobalArgs, state_dir: Option<&Path>, spec: Option<&Path>) -> Session {
        let kubeconfig = global.kubeconfig.clone().or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
        });
        let given_kubeconfig = global
            .kubeconfig
            .clone()
            .filter(|_| kubeconfig_on_command_line());
        Session {
            kubeconfig,
            // Hints name the kubeconfig in use however it came (flag or
            // $KUBECONFIG): the line must work when pasted in another shell.
            hints: Hints::new(spec, state_dir, global.kubeconfig.as_deref()),
            given_kubeconfig,
            mesh_claim: None,
        }
    }

    /// The kubeconfig `target` is reached by, if any names it (else kube's
    /// default lookup).
    pub fn kubeconfig_of<'a>(&'a self, target: &'a ClusterTarget) -> Option<&'a Path> {
        target.kubeconfig.as_deref().or(self.kubeconfig.as_deref())
    }

    /// Connects to every target (no request is sent yet).
    pub async fn connect(&self, targets: &[ClusterTarget]) -> anyhow::Result<Connected> {
        let mut clusters = BTreeMap::new();
        let mut kubeconfigs = BTreeMap::new();
        for t in targets {
            let c = connect(t, self.kubeconfig.as_deref()).await?;
            if let Some(p) = self.kubeconfig_of(t) {
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
    /// The clusters, by name.
    pub fn clusters(&self) -> &BTreeMap<String, Arc<Cluster>> {
        &self.clusters
    }

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

/// Where a command's state lives: a directory, or a namespace of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// `--state-dir DIR` (the default `.migrate`), or `--state DIR`.
    Dir(PathBuf),
    /// `--state kubernetes://CONTEXT/NAMESPACE`, or the spec's `state: {kubernetes: ...}`.
    Kubernetes(KubeLocation),
}

impl StateLocation {
    /// The location `args` name: `--state`, else the spec's `state:` (`spec`), else `--state-dir`.
    pub fn of(args: &super::StateArgs, spec: Option<&Loaded>) -> anyhow::Result<StateLocation> {
        if let Some(text) = &args.state {
            return Self::parse(text);
        }
        if let Some(k) = spec
            .and_then(|l| l.spec.spec.state.as_ref())
            .and_then(|s| s.kubernetes.as_ref())
        {
            return Ok(StateLocation::Kubernetes(KubeLocation {
                context: k.context.clone(),
                namespace: k.namespace.clone(),
            }));
        }
        Ok(StateLocation::Dir(args.state_dir.clone()))
    }

    /// `kubernetes://CONTEXT/NAMESPACE`, or a directory.
    pub fn parse(text: &str) -> anyhow::Result<StateLocation> {
        if text.starts_with(KUBE_SCHEME) {
            Ok(StateLocation::Kubernetes(KubeLocation::parse(text)?))
        } else if text.contains("://") {
            anyhow::bail!("--state {text}: expected a directory or kubernetes://CONTEXT/NAMESPACE")
        } else {
            Ok(StateLocation::Dir(PathBuf::from(text)))
        }
    }

    /// `kubernetes://...` for hints to repeat; `None` for a directory (hints name it with `--state-dir`).
    pub fn shared(&self) -> Option<String> {
        match self {
            StateLocation::Dir(_) => None,
            StateLocation::Kubernetes(k) => Some(k.to_string()),
        }
    }

    /// How the mesh's Lease names this store: `kubernetes://...`, or the directory's absolute path.
    pub fn claim_name(&self) -> String {
        match self {
            StateLocation::Dir(d) => absolute(d).display().to_string(),
            StateLocation::Kubernetes(k) => k.to_string(),
        }
    }

    /// The directory, when the state is in one.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            StateLocation::Dir(d) => Some(d),
            StateLocation::Kubernetes(_) => None,
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Dir(d) => write!(f, "{}", d.display()),
            StateLocation::Kubernetes(k) => write!(f, "{k}"),
        }
    }
}

/// Opens the store at `location` for writing (a Kubernetes store through
/// `kubeconfig`, taking its Lease).
pub fn open_any(
    location: &StateLocation,
    kubeconfig: Option<&Path>,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match location {
        StateLocation::Dir(dir) => Arc::new(open_store(dir)?),
        StateLocation::Kubernetes(k) => Arc::new(KubeStore::open(k, kubeconfig)?),
    })
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
/// kubeconfig to reach it by, the first of: `--kubeconfig` typed now
/// (`given`: the user's word wins, as for a run started elsewhere or a
/// kubeconfig regenerated); the spec's kubeconfig for that cluster (`spec`,
/// when the command was given one); the one the run recorded while it
/// exists; `fallback` (`$KUBECONFIG` or ~/.kube/config); the recorded one
/// (its absence is then reported when connecting). `$KUBECONFIG` alone
/// never replaces a recorded path that still exists: a shell's default must
/// not redirect a rollback.
pub fn run_targets(
    stored: &StoredPlan,
    given: Option<&Path>,
    spec: &BTreeMap<String, PathBuf>,
    fallback: Option<&Path>,
) -> Vec<ClusterTarget> {
    stored
        .header
        .clusters
        .iter()
        .map(|c| ClusterTarget {
            name: c.name.clone(),
            context: c.context.clone(),
            kubeconfig: overriding(&c.name, given, spec, &stored.kubeconfigs, fallback),
        })
        .collect()
}

/// The clusters of a spec (`spec_targets`) for `apply --resume`, with the
/// same order of kubeconfigs as [`run_targets`]: the typed flag, the spec's
/// own, the one `stored` recorded, then `fallback`. A cluster the run does
/// not know is reached as a new apply would reach it.
pub fn resume_targets(
    targets: &[ClusterTarget],
    stored: &StoredPlan,
    given: Option<&Path>,
    fallback: Option<&Path>,
) -> Vec<ClusterTarget> {
    let spec: BTreeMap<String, PathBuf> = targets
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.kubeconfig.clone()?)))
        .collect();
    targets
        .iter()
        .map(|t| ClusterTarget {
            kubeconfig: overriding(&t.name, given, &spec, &stored.kubeconfigs, fallback),
            ..t.clone()
        })
        .collect()
}

/// The kubeconfig files a spec names, by cluster.
pub fn spec_kubeconfigs(loaded: &Loaded) -> BTreeMap<String, PathBuf> {
    loaded
        .spec
        .spec
        .clusters
        .iter()
        .filter_map(|c| Some((c.name.clone(), c.kubeconfig.clone()?)))
        .collect()
}

/// typed flag > spec > recorded (while it exists) > fallback > recorded.
fn overriding(
    cluster: &str,
    given: Option<&Path>,
    spec: &BTreeMap<String, PathBuf>,
    recorded: &BTreeMap<String, PathBuf>,
    fallback: Option<&Path>,
) -> Option<PathBuf> {
    let recorded_path = recorded.get(cluster);
    given
        .map(Path::to_path_buf)
        .or_else(|| spec.get(cluster).cloned())
        .or_else(|| recorded_path.filter(|p| p.exists()).cloned())
        .or_else(|| fallback.map(Path::to_path_buf))
        .or_else(|| recorded_path.cloned())
}

/// Whether `--kubeconfig` was typed on the command line (at any level), not
/// taken from `$KUBECONFIG`.
pub fn kubeconfig_on_command_line() -> bool {
    use clap::CommandFactory;
    use clap::parser::{ArgMatches, ValueSource};
    fn typed(m: &ArgMatches) -> bool {
        m.value_source("kubeconfig") == Some(ValueSource::CommandLine)
            || m.subcommand().is_some_and(|(_, sub)| typed(sub))
    }
    super::Cli::command()
        .try_get_matches_from(std::env::args_os())
        .is_ok_and(|m| typed(&m))
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

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP: the first stops scheduling (no new
/// step; running ones finish and are checkpointed). A second one, of any of
/// the three, stops at once: no step records its end any more, the steps
/// still running are journalled (durably, in the latest run of `store`), the
/// children (installers) are killed with their process groups, and the
/// process exits with 128 + the signal's number.
///
/// The handlers are installed before this returns. Must be called inside a
/// tokio runtime; where signals cannot be watched, says so and returns a flag
/// nothing sets.
pub fn stop_on_signals(store: Arc<dyn Store>) -> StopFlag {
    let stop = StopFlag::default();
    let mut signals = match StopSignals::listen() {
        Ok(s) => s,
        Err(e) => {
            view::no_signals(&e);
            return stop;
        }
    };
    let flag = stop.clone();
    tokio::spawn(async move {
        let (name, _) = signals.next().await;
        // Stop first: printing may fail (SIGHUP: the terminal is gone).
        flag.stop();
        view::interrupted(name);
        let (name, number) = signals.next().await;
        // No step records its end from here on: what the journal says was
        // running stays so in the checkpoint, although its installer dies.
        crate::engine::halt();
        let running = journal_running_steps(store, name).await;
        let killed = crate::cluster::kill_children();
        view::quitting(name, killed, &running);
        std::process::exit(128 + number);
    });
    stop
}

/// Starts listening for SIGINT, SIGTERM and SIGHUP: how a command that
/// serves until stopped (`sim serve`, `demo --keep`) waits, listening before
/// it tells the user to stop it (a signal sent before is not seen). Once a
/// run has watched SIGTERM its default action is gone for the whole process,
/// so Ctrl-C alone would leave `kill PID` unanswered. Must be called inside
/// a tokio runtime.
pub fn listen_for_stop() -> std::io::Result<StopSignals> {
    StopSignals::listen()
}

/// The three signals that stop a run.
pub struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal: its name and number.
    pub async fn next(&mut self) -> (&'static str, i32) {
        tokio::select! {
            _ = self.interrupt.recv() => ("SIGINT", libc::SIGINT),
            _ = self.terminate.recv() => ("SIGTERM", libc::SIGTERM),
            _ = self.hangup.recv() => ("SIGHUP", libc::SIGHUP),
        }
    }
}

/// How long recording the running steps may take before exiting anyway.
const JOURNAL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Journals a note naming the latest run's running steps (`record_event`:
/// durable) and says what it recorded, in words for the user.
async fn journal_running_steps(store: Arc<dyn Store>, signal: &'static str) -> String {
    let record = tokio::task::spawn_blocking(move || -> Result<Vec<String>, StateError> {
        let Some(run) = store.latest_run()? else {
            return Ok(Vec::new());
        };
        let running: Vec<String> = store
            .step_states(run.id)?
            .into_iter()
            .filter(|(_, s)| matches!(s.status, StepStatus::Running | StepStatus::RollingBack))
            .map(|(id, _)| id)
            .collect();
        let message = if running.is_empty() {
            format!("stopped at once by a second {signal}; no step was running")
        } else {
            format!(
                "stopped at once by a second {signal} while these steps were running: {}",
                running.join(", ")
            )
        };
        store.record_event(
            run.id,
            NewEvent::new(EventKind::Note, None, message)
                .with_details(serde_json::json!({ "stoppedBy": signal, "runningSteps": running })),
        )?;
        Ok(running)
    });
    match tokio::time::timeout(JOURNAL_DEADLINE, record).await {
        Ok(Ok(Ok(running))) if running.is_empty() => "no step was running".into(),
        Ok(Ok(Ok(running))) => format!(
            "still running, journalled: {}; `apply --resume` runs them again",
            running.join(", ")
        ),
        Ok(Ok(Err(e))) => format!("could not journal the running steps: {e}"),
        Ok(Err(e)) => format!("could not journal the running steps: {e}"),
        Err(_) => format!(
            "could not journal the running steps within {}s",
            JOURNAL_DEADLINE.as_secs()
        ),
    }
}
