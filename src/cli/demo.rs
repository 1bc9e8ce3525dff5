//! `migrate demo`: the whole story on simulated clusters, in one command.
//!
//! Starts two meshsim clusters in this process, gives cluster1 the starting
//! point users have today (one cluster, Istio with a self-signed CA and
//! clusterName `Kubernetes`, helloworld v1 and curl in `sample`) and cluster2
//! helloworld v2, then runs the embedded `plans/demo.yaml` through the same
//! session, engine and views as `migrate plan`, `apply`, `rollback --to
//! phase3` and `status`.
//!
//! The simulated clusters run on a runtime of their own: apply and rollback
//! each get a runtime of theirs, as they do when run from the shell, and
//! talk to the clusters over HTTPS like any other client.

use super::session::{self, Session};
use super::view::{self, demo as narrate};
use super::{DemoArgs, DemoSource, GlobalArgs, StatusFormat, apply, results, rollback, status};
use crate::engine::{ApplyMode, StoredPlan};
use crate::plan::Phase;
use anyhow::{Context, bail};
use meshsim::{Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The spec the demo runs: the same file users read in `plans/`.
const DEMO_SPEC: &str = include_str!("../../plans/demo.yaml");
/// The spec of `demo --source helm`.
const HELM_SPEC: &str = include_str!("../../plans/helm-revision.yaml");
/// The Helm-installed source of `demo --source helm`, as HELM_SPEC says.
const HELM_REVISION: &str = "1-26-4";
const HELM_ISTIO: &str = "1.26.4";
const SOURCE: &str = "cluster1";
const JOINING: &str = "cluster2";
/// The phase the demo rolls back to: the mesh keeps its shared trust and
/// discovery, and loses routing, observability and the drill.
const ROLLBACK_TO: Phase = Phase::Discovery;
/// Steps running at once, as `apply` and `rollback` default to.
const PARALLELISM: usize = 8;

/// Runs `migrate demo`.
pub fn run(global: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let workdir = tempfile::Builder::new()
        .prefix("migrate-demo-")
        .tempdir()
        .context("creating the demo's working directory")?;
    let dir = workdir.path().to_path_buf();
    let code = demo(global, &dir, args.keep, args.source);
    if args.keep {
        // The user looks around with kubectl; the files must outlive us.
        let _ = workdir.keep();
    }
    code
}

fn demo(
    global: &GlobalArgs,
    dir: &Path,
    keep: bool,
    source: DemoSource,
) -> anyhow::Result<ExitCode> {
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("meshsim")
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    let kubeconfig = dir.join("kubeconfig");
    let sim = start(&sim_runtime, &kubeconfig, source)?;

    let spec = write_spec(dir, source)?;
    let state_dir = dir.join("state");
    let session = Session::new(
        &GlobalArgs {
            kubeconfig: Some(kubeconfig.clone()),
            ..global.clone()
        },
        Some(&state_dir),
        Some(&spec),
    );

    narrate::banner("Plan");
    let (loaded, plan) = match session::load_plan(&spec) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    narrate::outline(&plan, &spec);

    narrate::banner("Apply");
    let request = apply::Request {
        mode: ApplyMode::Start,
        dry_run: false,
        parallelism: PARALLELISM,
        accept_unknown_identity: false,
        until: None,
        mesh_lease: true,
    };
    let targets = session::spec_targets(&loaded);
    let applied = tokio::runtime::Runtime::new()?.block_on(apply::apply(
        &session,
        &targets,
        (&plan, Some(&loaded)),
        &session::StateLocation::Dir(state_dir.clone()),
        request,
    ))?;
    view::apply::show(&applied, &session.hints);
    if applied.exit_code() != ExitCode::SUCCESS {
        narrate::incomplete();
        return Ok(applied.exit_code());
    }

    narrate::banner(&format!(
        "Roll back to phase{}: routing, observability and the drill are undone",
        ROLLBACK_TO.number()
    ));
    let store = session::open_store(&state_dir)?;
    let run = crate::state::Store::latest_run(&store)?.context("the demo's run is gone")?;
    let stored = StoredPlan::load(&store, run.id)?;
    let to_arg = format!("phase{}", ROLLBACK_TO.number());
    let targets = rollback::targets(&session, &store, &stored, &Default::default())?;
    let summary = tokio::runtime::Runtime::new()?.block_on(rollback::rollback(
        &session,
        std::sync::Arc::new(store),
        &targets,
        ROLLBACK_TO,
        PARALLELISM,
    ))?;
    view::rollback::show(&summary, ROLLBACK_TO, &to_arg, &session.hints);
    if !results::completed(&summary) {
        return Ok(rollback::exit_code(&summary));
    }

    narrate::banner("Status");
    let report = status::read(&state_dir, false)?;
    view::status::show(&report, StatusFormat::Text, false, &session.hints)?;
    if report.exit_code() != ExitCode::SUCCESS {
        return Ok(report.exit_code());
    }

    if keep {
        let mut signals = {
            let _in_runtime = sim_runtime.enter();
            session::listen_for_stop().context("listening for Ctrl-C")?
        };
        narrate::look_around(&session.hints);
        sim_runtime.block_on(signals.next());
    }
    sim_runtime.block_on(sim.shutdown());
    Ok(ExitCode::SUCCESS)
}

/// Starts the two clusters, writing their kubeconfig, and sets up today's
/// mesh on the source and the workloads to migrate on the other.
fn start(
    runtime: &tokio::runtime::Runtime,
    kubeconfig: &Path,
    source: DemoSource,
) -> anyhow::Result<Sim> {
    narrate::banner("Starting two simulated clusters (meshsim, real HTTPS, real kube client)");
    let sim = runtime
        .block_on(Sim::start(SimConfig {
            clusters: 2,
            kubeconfig_path: Some(kubeconfig.to_path_buf()),
            ..Default::default()
        }))
        .context("starting the simulated clusters")?;
    narrate::line(&format!("kubeconfig: {}", kubeconfig.display()));
    for name in [SOURCE, JOINING] {
        let c = sim.cluster(name);
        narrate::line(&format!(
            "{name}: context {} at {}",
            c.context(),
            c.server_url()
        ));
    }

    narrate::banner("Today's mesh: one cluster");
    let mesh = match source {
        DemoSource::Istioctl => meshsim::seed::SourceMesh::default(),
        DemoSource::Helm => meshsim::seed::SourceMesh {
            installer: meshsim::seed::Installer::Helm,
            revision: HELM_REVISION.into(),
            istio_version: HELM_ISTIO.into(),
            ambient: false,
        },
    };
    runtime
        .block_on(meshsim::seed::seed_mesh(&sim, SOURCE, &mesh))
        .with_context(|| format!("setting up the single-cluster mesh on {SOURCE}"))?;
    narrate::line(&match source {
        DemoSource::Istioctl => format!(
            "{SOURCE}: Istio {} installed with istioctl (self-signed CA, clusterName Kubernetes), helloworld v1 and curl in namespace sample",
            mesh.istio_version
        ),
        DemoSource::Helm => format!(
            "{SOURCE}: Istio {} installed with Helm (releases istio-base, istiod, istio-ingressgateway), revision {}, \
             self-signed CA, clusterName Kubernetes; helloworld v1 and curl in namespace sample",
            mesh.istio_version, mesh.revision
        ),
    });
    runtime
        .block_on(async {
            meshsim::seed::deploy_helloworld(&sim, JOINING, "v2").await?;
            if source == DemoSource::Helm {
                // A revisioned control plane injects only namespaces naming it.
                meshsim::seed::use_revision(&sim, JOINING, HELM_REVISION).await?;
            }
            meshsim::seed::deploy_prometheus(&sim, JOINING).await
        })
        .with_context(|| format!("deploying helloworld v2 and Prometheus on {JOINING}"))?;
    narrate::line(&format!(
        "{JOINING}: no Istio yet; helloworld v2 in namespace sample, Prometheus"
    ));
    Ok(sim)
}

/// The embedded spec with the two paths that depend on this machine: the
/// installer (this very binary, run as `istioctl`) and where keys go.
fn write_spec(dir: &Path, source: DemoSource) -> anyhow::Result<PathBuf> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let me = std::env::current_exe().context("locating the migrate binary")?;
    let certs = dir.join("certs");
    let text = match source {
        DemoSource::Istioctl => {
            let istioctl = meshsim::istioctl::link(&bin, &me).with_context(|| {
                format!("linking {}/istioctl to {}", bin.display(), me.display())
            })?;
            replace_once(
                DEMO_SPEC,
                "path: istioctl",
                &format!("path: {}", istioctl.display()),
            )?
        }
        DemoSource::Helm => {
            let helm = meshsim::helm::link(&bin, &me)
                .with_context(|| format!("linking {}/helm to {}", bin.display(), me.display()))?;
            replace_once(
                HELM_SPEC,
                "    kind: helm",
                &format!("    path: {}\n    kind: helm", helm.display()),
            )?
        }
    };
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
        bail!("the demo's spec must contain `{from}` exactly once (the demo rewrites it)");
    }
    Ok(text.replacen(from, to, 1))
}
