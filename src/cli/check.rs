//! `migrate check`: the multi-cluster verifier on the command line. The
//! expectations come from a spec (`-f`) or only from the clusters
//! (`--context A --context B`); findings go to stdout as text or JSON.
//! Exit 0 without error findings, 1 with, 2 for input that cannot be used.

use super::session::{load_spec, spec_targets};
use super::view::check::{self as view, CheckFormat};
use super::{GlobalArgs, exit};
use crate::check::{self, CheckError, Expect, Group};
use crate::cluster::ClusterTarget;
use crate::spec::Loaded;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `migrate check`'s flags.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The MeshMigration spec whose clusters, names and networks are expected.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "SPEC",
        conflicts_with = "contexts"
    )]
    pub file: Option<PathBuf>,
    /// A context to check, without a spec (repeat: --context A --context B); names, networks and the model are read from the clusters.
    #[arg(long = "context", value_name = "CONTEXT", id = "contexts")]
    pub contexts: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckFormat::Text)]
    pub output: CheckFormat,
    /// Only this group of checks (repeat); all when none: read, roots, names, networks, gateway, remote-secrets, destination-rules, services, webhook, reader-rbac, skew, stale-pods.
    #[arg(long = "group", value_name = "GROUP", value_parser = parse_group)]
    pub groups: Vec<Group>,
    /// The control plane's namespace.
    #[arg(long, value_name = "NAMESPACE", default_value = check::expect::ISTIO_SYSTEM)]
    pub namespace: String,
}

fn parse_group(s: &str) -> Result<Group, String> {
    s.parse()
}

/// Runs `migrate check`.
pub fn run(global: &GlobalArgs, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut expect = match &args.file {
        Some(file) => match load_spec(file) {
            Ok(loaded) => from_spec(&loaded, global.kubeconfig.clone()),
            Err(code) => return Ok(code),
        },
        None if args.contexts.is_empty() => {
            super::view::invalid(
                "give a spec (-f SPEC) or the contexts to check (--context A --context B)",
            );
            return Ok(ExitCode::from(exit::INVALID_INPUT));
        }
        None => from_contexts(&args.contexts, global.kubeconfig.clone()),
    };
    expect.namespace = args.namespace.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    match runtime.block_on(check::run(expect, &args.groups)) {
        Ok(mut report) => {
            // The last line of defence: findings quote values read from clusters.
            for f in &mut report.findings {
                f.message = crate::state::redact_text(&f.message);
                f.fix = crate::state::redact_text(&f.fix);
            }
            view::show(&report, args.output)?;
            Ok(if report.has_errors() {
                ExitCode::from(exit::FAILED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e @ (CheckError::Connect(_) | CheckError::NoClusters)) => {
            super::view::invalid(&crate::state::redact_text(&e.to_string()));
            Ok(ExitCode::from(exit::INVALID_INPUT))
        }
    }
}

/// The expectations a spec states, exactly as `apply`'s gates expect them:
/// the planner's reading of the spec (`phases::gates::expectations`: every
/// cluster's clusterName, network, role and primary, a remote's default
/// primary included; the meshID, model, revision and version), turned into
/// the verifier's by the function the gates use.
pub fn from_spec(loaded: &Loaded, default_kubeconfig: Option<PathBuf>) -> Expect {
    let said = crate::phases::gates::expectations(&crate::phases::Ctx::new(&loaded.spec));
    let mut expect = crate::engine::verifier_expect(&said, spec_targets(loaded));
    expect.default_kubeconfig = default_kubeconfig;
    expect
}

/// Clusters named by their contexts, nothing else said.
pub fn from_contexts(contexts: &[String], default_kubeconfig: Option<PathBuf>) -> Expect {
    let targets = contexts
        .iter()
        .map(|c| ClusterTarget {
            name: c.clone(),
            context: c.clone(),
            kubeconfig: None,
        })
        .collect();
    Expect::from_targets(targets, default_kubeconfig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Model, Role};

    /// `check -f` expects of a spec what its gates expect, cluster by cluster.
    #[test]
    fn a_spec_is_expected_as_the_gates_expect_it() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/primary-remote.yaml");
        let loaded = crate::spec::load_file(&path).unwrap();
        let expect = from_spec(&loaded, Some(PathBuf::from("/k")));
        let gate = crate::phases::gates::expectations(&crate::phases::Ctx::new(&loaded.spec));
        assert_eq!(expect.clusters.len(), gate.clusters.len());
        for (c, g) in expect.clusters.iter().zip(&gate.clusters) {
            assert_eq!(c.name(), g.name);
            assert_eq!(
                c.cluster_name.as_ref().map(|k| k.value.as_str()),
                Some(g.name.as_str())
            );
            assert_eq!(c.network.as_ref().map(|k| k.value.clone()), g.network);
            let role = if g.remote {
                Role::Remote
            } else {
                Role::Primary
            };
            assert_eq!(c.role.as_ref().map(|k| k.value), Some(role));
            assert_eq!(c.primary, g.primary);
        }
        let remote = expect.cluster("cluster2").unwrap();
        assert_eq!(remote.primary.as_deref(), Some("cluster1"));
        assert_eq!(remote.target.context, loaded.spec.spec.clusters[1].context);
        assert_eq!(
            expect.model.as_ref().map(|m| m.value),
            Some(Model::PrimaryRemote)
        );
        assert_eq!(expect.default_kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(
            expect.mesh_id.as_ref().map(|m| m.value.as_str()),
            Some(gate.mesh_id.as_str())
        );
        assert_eq!(
            expect.istio_version.as_deref(),
            Some(gate.istio_version.as_str())
        );
    }
}
