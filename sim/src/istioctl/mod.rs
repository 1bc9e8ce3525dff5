//! An `istioctl` stand-in: a real API client (kubeconfig, context, HTTPS)
//! that makes the in-cluster changes `istioctl` 1.30 makes for `install`,
//! `uninstall`, `version` and `remote-clusters`, the way its installer does
//! (`operator/pkg/install`, `operator/pkg/uninstall`): server-side apply with
//! field manager `istio-operator`, component by component, waiting for each
//! component's Deployments, then pruning what the operator no longer renders.
//!
//! The `migrate` binary runs it busybox-style when started as `istioctl`
//! (a symlink, see [`link`]); [`main`] takes the argv after the program name.
//! In process, [`install::install`] is the same code path without argv.
//!
//! Test hooks (see [`invocation_log`]): `MESHSIM_ISTIOCTL_LOG=PATH` appends a
//! line per invocation when it starts and when it ends (pid, command, context,
//! file); `MESHSIM_ISTIOCTL_DELAY_MS=N` makes `install` and `uninstall` wait N ms
//! before acting, so a test can signal `migrate` while an installer runs.
//!
//! Like istioctl 1.30, and unlike older releases:
//! - no `installed-state` IstioOperator CR is written (dropped in 1.21,
//!   FACTS 4.2), and the IstioOperator CRD is not installed; rollback reads
//!   the `values` ConfigMap instead;
//! - `istio-system` is created only when absent, labelled with the network
//!   then; an existing namespace is never labelled (FACTS 4.1).
//!
//! Deliberate differences:
//! - the base component's CRDs ([`crate::istio::crds`]: Istio's kinds with
//!   structural schemas of meshsim's own) are created only when the kind is
//!   not served yet (an existing CRD, such as Istio's own, is never replaced);
//! - deletes use background propagation (istioctl asks for foreground);
//! - prune and uninstall also cover the EndpointSlice the remote profile renders.

mod args;
pub mod install;
pub mod invocation_log;
pub(crate) mod kube_api;
mod operator;
mod pruned;
mod remote_clusters;
pub mod uninstall;
mod version;

pub use crate::istio::install::VERSION;

/// The release this istioctl plays: `MESHSIM_ISTIOCTL_VERSION` when it is a
/// `1.minor.patch` (tests of other releases), else [`VERSION`].
pub fn release() -> String {
    std::env::var("MESHSIM_ISTIOCTL_VERSION")
        .ok()
        .filter(|v| {
            let parts: Vec<&str> = v.split('.').collect();
            parts.len() == 3
                && parts[0] == "1"
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or_else(|| VERSION.to_string())
}
pub use args::{Command, Global, ParseError};
pub use kube_api::connect;

use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum IstioctlError {
    #[error(transparent)]
    Usage(#[from] ParseError),
    #[error("could not read {path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: String, message: String },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("the cluster does not serve {kind} ({api_version})")]
    NotServed { api_version: String, kind: String },
    #[error("watching {what}: {message}")]
    Watch { what: String, message: String },
    #[error("{what} is not ready after {seconds}s")]
    NotReady { what: String, seconds: u64 },
    #[error("Istio is not present in the cluster: no running Istio pods in {0:?}")]
    NoIstioPods(String),
    #[error("unable to find any Istiod instances")]
    NoIstiod,
    #[error("asking istiod {pod} for debug/clusterz through a port-forward: {message}")]
    Forward { pod: String, message: String },
    #[error(
        "istiod {pod} answered debug/clusterz with something that is not a cluster list: {message}"
    )]
    BadClusterz { pod: String, message: String },
    #[error("invalid IstioOperator: {0}")]
    Operator(#[from] crate::istio::install::InstallError),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("Cancelled.")]
    Cancelled,
}

impl IstioctlError {
    pub(crate) fn api(what: impl Into<String>, source: kube::Error) -> Self {
        IstioctlError::Api {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// Runs one istioctl command line (without the program name) and returns the
/// exit code. Builds its own current-thread runtime: call it from sync code.
pub fn main(args: Vec<String>) -> i32 {
    let invocation = invocation_log::Invocation::start(&args);
    let code = main_inner(args, &invocation);
    invocation.end(code);
    code
}

fn main_inner(args: Vec<String>, invocation: &invocation_log::Invocation) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(stderr.lock(), "Error: starting the async runtime: {e}");
            return 1;
        }
    };
    if let Some(delay) = invocation.delay() {
        std::thread::sleep(delay);
    }
    let mut out = stdout.lock();
    let result = runtime.block_on(run(&args, &mut out, &mut std::io::stdin().lock()));
    let _ = out.flush();
    match result {
        Ok(()) => 0,
        Err(IstioctlError::Cancelled) => {
            let _ = writeln!(out, "Cancelled.");
            1
        }
        Err(e) => {
            let mut err = stderr.lock();
            let _ = writeln!(err, "Error: {e}");
            if matches!(e, IstioctlError::Usage(_)) {
                let _ = writeln!(err, "Run 'istioctl --help' for usage.");
            }
            1
        }
    }
}

/// Parses and runs a command line, writing what istioctl prints to `out`
/// and reading confirmations from `input`.
pub async fn run(
    args: &[String],
    out: &mut dyn Write,
    input: &mut dyn std::io::BufRead,
) -> Result<(), IstioctlError> {
    let (global, command) = args::parse(args)?;
    match command {
        Command::Help => {
            write!(out, "{}", args::USAGE)?;
            Ok(())
        }
        Command::Version(v) => version::run(&global, &v, out).await,
        Command::Install(a) => install::run(&global, &a, out, input).await,
        Command::Uninstall(a) => uninstall::run(&global, &a, out, input).await,
        Command::RemoteClusters => {
            let client = connect(&global).await?;
            remote_clusters::run(&client, &global, out).await
        }
    }
}

/// Makes `dir/istioctl` a symlink to `target` (the `migrate` binary, which
/// turns into this stand-in when started under that name) and returns its
/// path: what the demo and the tests put on PATH or in `spec.installer.path`.
#[cfg(unix)]
pub fn link(
    dir: &std::path::Path,
    target: &std::path::Path,
) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("istioctl");
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path)?;
    }
    std::os::unix::fs::symlink(target, &path)?;
    Ok(path)
}

/// Asks `prompt` and reads one answer: only `y`/`yes` proceeds, as istioctl's `Confirm`.
pub(crate) fn confirm(
    prompt: &str,
    out: &mut dyn Write,
    input: &mut dyn std::io::BufRead,
) -> Result<bool, IstioctlError> {
    write!(out, "{prompt} ")?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
