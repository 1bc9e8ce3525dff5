//! `migrate sim serve`: simulated clusters in the foreground until Ctrl-C.

use super::{GlobalArgs, SimServeArgs, exit};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_KUBECONFIG: &str = "sim.kubeconfig";

/// Which installer `--seed` installs the source mesh with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SeedInstaller {
    /// `istioctl install` (today's seed).
    #[default]
    Istioctl,
    /// Helm releases of Istio's charts base, istiod and gateway.
    Helm,
}

/// The mesh `--seed` starts from (see `meshsim::seed::SourceMesh`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SeedFlags {
    /// With --seed: the installer of cluster1's mesh.
    #[arg(long, value_enum, default_value_t = SeedInstaller::Istioctl, requires = "seed")]
    pub seed_installer: SeedInstaller,
    /// With --seed: the control plane's revision (`1-26-4`: istiod-1-26-4, and the sample
    /// namespace labelled istio.io/rev=1-26-4); the default revision when absent.
    #[arg(long, value_name = "REV", requires = "seed")]
    pub seed_revision: Option<String>,
    /// With --seed: the Istio release cluster1 runs.
    #[arg(long, value_name = "X.Y.Z", default_value = meshsim::istio::install::VERSION, requires = "seed")]
    pub seed_istio_version: String,
    /// With --seed: the ambient data plane (ztunnel, the sample namespace labelled
    /// istio.io/dataplane-mode=ambient, no sidecars).
    #[arg(long, requires = "seed")]
    pub seed_ambient: bool,
}

impl SeedFlags {
    /// The mesh these flags ask for.
    pub fn source_mesh(&self) -> meshsim::seed::SourceMesh {
        meshsim::seed::SourceMesh {
            installer: match self.seed_installer {
                SeedInstaller::Istioctl => meshsim::seed::Installer::Istioctl,
                SeedInstaller::Helm => meshsim::seed::Installer::Helm,
            },
            revision: self.seed_revision.clone().unwrap_or_default(),
            istio_version: self.seed_istio_version.clone(),
            ambient: self.seed_ambient,
        }
    }
}

/// Where `sim serve` writes its kubeconfig: `--kubeconfig` when given on the
/// command line, never `$KUBECONFIG` (a user's own kubeconfig must not be
/// overwritten), else ./sim.kubeconfig.
fn kubeconfig_out(global: &GlobalArgs) -> PathBuf {
    let from_command_line = super::session::kubeconfig_on_command_line();
    match (&global.kubeconfig, from_command_line) {
        (Some(path), true) => path.clone(),
        _ => PathBuf::from(DEFAULT_KUBECONFIG),
    }
}

/// Runs `migrate sim serve`.
pub fn serve(global: &GlobalArgs, args: &SimServeArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        say!(
            "error: --error-rate must be between 0.0 and 1.0, got {}",
            args.error_rate
        );
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let mesh = args.seed_mesh.source_mesh();
    if let Err(e) = mesh.check() {
        say!("error: {e}");
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let path = kubeconfig_out(global);
    let config = meshsim::SimConfig {
        clusters: usize::from(args.clusters),
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        kubeconfig_path: Some(path.clone()),
        faults: meshsim::FaultConfig {
            latency: Duration::from_millis(args.latency_ms),
            error_rate: args.error_rate,
            ..Default::default()
        },
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Before anything is printed: a script may stop us once it reads it.
        let mut signals = super::session::listen_for_stop().context("listening for Ctrl-C")?;
        let sim = meshsim::Sim::start(config)
            .await
            .with_context(|| format!("starting {} simulated clusters", args.clusters))?;
        let shown = std::fs::canonicalize(&path).unwrap_or(path.clone());
        tell!(
            "meshsim: {} simulated cluster(s) serving the Kubernetes {} API:",
            sim.clusters().len(),
            meshsim::GIT_VERSION
        );
        for c in sim.clusters() {
            tell!(
                "  {:<10} {}  context {}",
                c.name(),
                c.server_url(),
                c.context()
            );
        }
        if args.seed {
            seed(&sim, &mesh).await?;
            let dir = shown.parent().unwrap_or(std::path::Path::new("."));
            let me = std::env::current_exe().context("locating the migrate binary")?;
            let istioctl = meshsim::istioctl::link(dir, &me)
                .with_context(|| format!("linking {}/istioctl", dir.display()))?;
            let helm = meshsim::helm::link(dir, &me)
                .with_context(|| format!("linking {}/helm", dir.display()))?;
            tell!("{}", describe(&mesh));
            tell!("the other clusters run helloworld v2, v3... and Prometheus, no mesh yet.");
            tell!("istioctl stand-in: {}", istioctl.display());
            tell!("helm stand-in:     {}", helm.display());
            tell!("Migrate them (plans/demo.yaml names this installer `istioctl` on PATH):");
            tell!("  export PATH={}:$PATH", dir.display());
            tell!(
                "  migrate --kubeconfig {} apply -f plans/demo.yaml",
                shown.display()
            );
        } else {
            tell!("No Istio yet: the clusters serve Istio's kinds once Istio is installed");
            tell!("(`istioctl install`, or `kubectl apply --server-side` of Istio's CRDs).");
        }
        tell!("Kubeconfig (admin tokens, mode 0600): {}", shown.display());
        tell!("Point kubectl at it:");
        tell!("  export KUBECONFIG={}", shown.display());
        tell!("  kubectl --context sim-cluster1 get namespaces");
        tell!("Press Ctrl-C to stop.");
        signals.next().await;
        sim.shutdown().await;
        tell!("meshsim: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One line saying what cluster1 runs.
fn describe(mesh: &meshsim::seed::SourceMesh) -> String {
    let installer = match mesh.installer {
        meshsim::seed::Installer::Istioctl => "istioctl",
        meshsim::seed::Installer::Helm => {
            "Helm (releases istio-base, istiod, istio-ingressgateway)"
        }
    };
    let revision = if mesh.revision.is_empty() {
        "the default revision".to_string()
    } else {
        format!("revision {} (istiod-{})", mesh.revision, mesh.revision)
    };
    let data_plane = if mesh.ambient {
        "ambient (ztunnel, no sidecars)"
    } else {
        "sidecars"
    };
    format!(
        "cluster1 runs Istio {} installed by {installer}, {revision}, {data_plane}, self-signed CA, clusterName Kubernetes, with helloworld v1 and curl in `sample`;",
        mesh.istio_version
    )
}

/// The mesh asked for on cluster1, workloads to migrate to on the others.
async fn seed(sim: &meshsim::Sim, mesh: &meshsim::seed::SourceMesh) -> anyhow::Result<()> {
    meshsim::seed::seed_mesh(sim, "cluster1", mesh)
        .await
        .context("seeding cluster1 with a single-cluster mesh")?;
    for (i, c) in sim.clusters().iter().enumerate().skip(1) {
        let version = format!("v{}", i + 1);
        meshsim::seed::deploy_helloworld(sim, c.name(), &version)
            .await
            .with_context(|| format!("deploying helloworld {version} on {}", c.name()))?;
        meshsim::seed::deploy_prometheus(sim, c.name())
            .await
            .with_context(|| format!("deploying Prometheus on {}", c.name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    #[test]
    fn global_kubeconfig_from_env_is_not_the_output() {
        let global = GlobalArgs {
            kubeconfig: Some(PathBuf::from("/home/user/.kube/config")),
            verbose: 0,
            log_format: super::super::LogFormat::Text,
        };
        // The test binary's own argv has no --kubeconfig: the value came from elsewhere.
        assert_eq!(kubeconfig_out(&global), PathBuf::from(DEFAULT_KUBECONFIG));
    }

    #[test]
    fn flags_parse() {
        use clap::CommandFactory;
        let cli = super::super::Cli::from_arg_matches(
            &super::super::Cli::command()
                .try_get_matches_from([
                    "migrate",
                    "sim",
                    "serve",
                    "--clusters",
                    "3",
                    "--kubeconfig",
                    "k.yaml",
                    "--latency-ms",
                    "5",
                    "--error-rate",
                    "0.5",
                ])
                .expect("parses"),
        )
        .expect("cli");
        match cli.command {
            super::super::Command::Sim(super::super::SimCommand::Serve(a)) => {
                assert_eq!((a.clusters, a.latency_ms, a.error_rate), (3, 5, 0.5));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(cli.global.kubeconfig, Some(PathBuf::from("k.yaml")));
    }

    fn serve_args(argv: &[&str]) -> Result<SimServeArgs, clap::Error> {
        use clap::CommandFactory;
        let mut full = vec!["migrate", "sim", "serve"];
        full.extend_from_slice(argv);
        let cli = super::super::Cli::from_arg_matches(
            &super::super::Cli::command().try_get_matches_from(full)?,
        )?;
        match cli.command {
            super::super::Command::Sim(super::super::SimCommand::Serve(a)) => Ok(a),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn seed_flags_describe_the_source_mesh() {
        let a = serve_args(&[]).expect("parses");
        assert_eq!(
            a.seed_mesh.source_mesh(),
            meshsim::seed::SourceMesh::default()
        );
        let a = serve_args(&[
            "--seed",
            "--seed-installer",
            "helm",
            "--seed-revision",
            "1-26-4",
            "--seed-istio-version",
            "1.26.4",
        ])
        .expect("parses");
        let mesh = a.seed_mesh.source_mesh();
        assert_eq!(mesh.installer, meshsim::seed::Installer::Helm);
        assert_eq!(mesh.revision, "1-26-4");
        assert_eq!(mesh.istio_version, "1.26.4");
        assert!(!mesh.ambient);
        assert!(describe(&mesh).contains("istiod-1-26-4"));
        assert!(
            serve_args(&["--seed", "--seed-ambient"])
                .unwrap()
                .seed_mesh
                .seed_ambient
        );
        // The seed's shape without --seed is a mistake, not ignored.
        assert!(serve_args(&["--seed-ambient"]).is_err());
        assert!(serve_args(&["--seed", "--seed-installer", "kustomize"]).is_err());
    }
}
