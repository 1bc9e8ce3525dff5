//! `migrate demo`: the whole story on simulated clusters, in one command.
//!
//! Starts two meshsim clusters in this process, gives cluster1 the starting
//! point users have today (one cluster, Istio with a self-signed CA and
//! clusterName `Kubernetes`, helloworld v1 and curl in `sample`) and cluster2
//! helloworld v2, then runs the embedded `plans/demo.yaml` through the same
//! code as `migrate plan`, `apply`, `rollback --to phase3` and `status`.
//!
//! The simulated clusters run on a runtime of their own: each command below
//! builds its own runtime exactly as it does when run from the shell, and
//! talks to the clusters over HTTPS like any other client.

use super::StatusFormat;
use super::{ApplyArgs, DemoArgs, GlobalArgs, RollbackArgs, SpecArgs, StateArgs, StatusArgs};
use crate::plan::{Phase, Plan};
use anyhow::{Context, bail};
use meshsim::{Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The spec the demo runs: the same file users read in `plans/`.
const DEMO_SPEC: &str = include_str!("../../plans/demo.yaml");
const SOURCE: &str = "cluster1";
const JOINING: &str = "cluster2";
/// The phase the demo rolls back to: the mesh keeps its shared trust and
/// discovery, and loses routing, observability and the drill.
const ROLLBACK_TO: &str = "phase3";

pub fn run(global: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let workdir = tempfile::Builder::new()
        .prefix("migrate-demo-")
        .tempdir()
        .context("creating the demo's working directory")?;
    let dir = workdir.path().to_path_buf();
    let code = demo(global, &dir, args.keep);
    if args.keep {
        // The user looks around with kubectl; the files must outlive us.
        let _ = workdir.keep();
    }
    code
}

fn demo(global: &GlobalArgs, dir: &Path, keep: bool) -> anyhow::Result<ExitCode> {
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("meshsim")
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    let kubeconfig = dir.join("kubeconfig");

    banner("Starting two simulated clusters (meshsim, real HTTPS, real kube client)");
    let sim = sim_runtime
        .block_on(Sim::start(SimConfig {
            clusters: 2,
            kubeconfig_path: Some(kubeconfig.clone()),
            ..Default::default()
        }))
        .context("starting the simulated clusters")?;
    println!("  kubeconfig: {}", kubeconfig.display());
    for name in [SOURCE, JOINING] {
        let c = sim.cluster(name);
        println!("  {name}: context {} at {}", c.context(), c.server_url());
    }

    banner("Today's mesh: one cluster");
    sim_runtime
        .block_on(meshsim::seed::seed_source_mesh(&sim, SOURCE))
        .with_context(|| format!("setting up the single-cluster mesh on {SOURCE}"))?;
    println!(
        "  {SOURCE}: Istio {} (self-signed CA, clusterName Kubernetes), helloworld v1 and curl in namespace sample",
        meshsim::istioctl::VERSION
    );
    sim_runtime
        .block_on(async {
            meshsim::seed::deploy_helloworld(&sim, JOINING, "v2").await?;
            meshsim::seed::deploy_prometheus(&sim, JOINING).await
        })
        .with_context(|| format!("deploying helloworld v2 and Prometheus on {JOINING}"))?;
    println!("  {JOINING}: no Istio yet; helloworld v2 in namespace sample, Prometheus");

    let spec = write_spec(dir)?;
    let state = StateArgs {
        state_dir: dir.join("state"),
    };
    let global = GlobalArgs {
        kubeconfig: Some(kubeconfig.clone()),
        ..global.clone()
    };

    banner("Plan");
    let (_, plan) = match super::session::load_plan(&spec) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    print!("{}", outline(&plan));
    println!("  (every action: migrate plan -f {})", spec.display());

    banner("Apply");
    let applied = super::apply::run(
        &global,
        &ApplyArgs {
            spec: SpecArgs { file: spec.clone() },
            state: state.clone(),
            resume: false,
            replan: false,
            dry_run: false,
            parallelism: 8,
        },
    )?;
    if applied != ExitCode::SUCCESS {
        eprintln!(
            "demo: the migration did not complete (see above); `migrate demo --keep` leaves the clusters and state to look at"
        );
        return Ok(applied);
    }

    banner(&format!(
        "Roll back to {ROLLBACK_TO}: routing, observability and the drill are undone"
    ));
    let rolled_back = super::rollback::run(
        &global,
        &RollbackArgs {
            state: state.clone(),
            to: ROLLBACK_TO.into(),
            dry_run: false,
            parallelism: 8,
        },
    )?;
    if rolled_back != ExitCode::SUCCESS {
        return Ok(rolled_back);
    }

    banner("Status");
    let status = super::status::run(
        &global,
        &StatusArgs {
            state: state.clone(),
            output: StatusFormat::Text,
            events: false,
        },
    )?;
    if status != ExitCode::SUCCESS {
        return Ok(status);
    }

    if keep {
        banner("The clusters stay up until Ctrl-C");
        println!(
            "  kubectl --kubeconfig {} --context sim-cluster1 get pods -A",
            kubeconfig.display()
        );
        println!(
            "  migrate --kubeconfig {} status --state-dir {}",
            kubeconfig.display(),
            state.state_dir.display()
        );
        println!(
            "  migrate --kubeconfig {} apply -f {} --state-dir {} --resume",
            kubeconfig.display(),
            spec.display(),
            state.state_dir.display()
        );
        sim_runtime
            .block_on(tokio::signal::ctrl_c())
            .context("waiting for Ctrl-C")?;
    }
    sim_runtime.block_on(sim.shutdown());
    Ok(ExitCode::SUCCESS)
}

/// The embedded spec with the two paths that depend on this machine: the
/// installer (this very binary, run as `istioctl`) and where keys go.
fn write_spec(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let me = std::env::current_exe().context("locating the migrate binary")?;
    let istioctl = meshsim::istioctl::link(&bin, &me)
        .with_context(|| format!("linking {}/istioctl to {}", bin.display(), me.display()))?;
    let certs = dir.join("certs");
    let text = replace_once(
        DEMO_SPEC,
        "path: istioctl",
        &format!("path: {}", istioctl.display()),
    )?;
    let text = replace_once(
        &text,
        "certDir: ./migrate-certs",
        &format!("certDir: {}", certs.display()),
    )?;
    let spec = dir.join("demo.yaml");
    std::fs::write(&spec, text).with_context(|| format!("writing {}", spec.display()))?;
    Ok(spec)
}

fn replace_once(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    if text.matches(from).count() != 1 {
        bail!("plans/demo.yaml must contain `{from}` exactly once (the demo rewrites it)");
    }
    Ok(text.replacen(from, to, 1))
}

/// One line per phase: its steps and the clusters they touch.
fn outline(plan: &Plan) -> String {
    let mut out = String::new();
    for phase in Phase::ALL {
        let steps = plan.select(Some(phase));
        if steps.is_empty() {
            continue;
        }
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let title = phase.to_string();
        out.push_str(&format!("  {title:<22} {}\n", ids.join(", ")));
    }
    out
}

fn banner(title: &str) {
    println!("\n==> {title}");
}
