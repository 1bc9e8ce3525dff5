//! `migrate sim serve`: simulated clusters in the foreground until Ctrl-C.

use super::{GlobalArgs, SimServeArgs, exit};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_KUBECONFIG: &str = "sim.kubeconfig";

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
        eprintln!(
            "error: --error-rate must be between 0.0 and 1.0, got {}",
            args.error_rate
        );
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
        let sim = meshsim::Sim::start(config)
            .await
            .with_context(|| format!("starting {} simulated clusters", args.clusters))?;
        let shown = std::fs::canonicalize(&path).unwrap_or(path.clone());
        println!(
            "meshsim: {} simulated cluster(s) serving the Kubernetes {} API:",
            sim.clusters().len(),
            meshsim::GIT_VERSION
        );
        for c in sim.clusters() {
            println!(
                "  {:<10} {}  context {}",
                c.name(),
                c.server_url(),
                c.context()
            );
        }
        if args.seed {
            seed(&sim).await?;
            let dir = shown.parent().unwrap_or(std::path::Path::new("."));
            let me = std::env::current_exe().context("locating the migrate binary")?;
            let istioctl = meshsim::istioctl::link(dir, &me)
                .with_context(|| format!("linking {}/istioctl", dir.display()))?;
            println!("cluster1 runs Istio {} (self-signed CA, clusterName Kubernetes) with helloworld v1 and curl in `sample`;", meshsim::istioctl::VERSION);
            println!("the other clusters run helloworld v2, v3... and Prometheus, no mesh yet.");
            println!("istioctl stand-in: {}", istioctl.display());
            println!("Migrate them (plans/demo.yaml names this installer `istioctl` on PATH):");
            println!("  export PATH={}:$PATH", dir.display());
            println!("  migrate --kubeconfig {} apply -f plans/demo.yaml", shown.display());
        } else {
            println!("No Istio yet: the clusters serve Istio's kinds once Istio is installed");
            println!("(`istioctl install`, or `kubectl apply --server-side` of Istio's CRDs).");
        }
        println!("Kubeconfig (admin tokens, mode 0600): {}", shown.display());
        println!("Point kubectl at it:");
        println!("  export KUBECONFIG={}", shown.display());
        println!("  kubectl --context sim-cluster1 get namespaces");
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        sim.shutdown().await;
        println!("meshsim: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Today's mesh on cluster1, workloads to migrate to on the others.
async fn seed(sim: &meshsim::Sim) -> anyhow::Result<()> {
    meshsim::seed::seed_source_mesh(sim, "cluster1")
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
}
