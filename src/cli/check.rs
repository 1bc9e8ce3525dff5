//! `migrate check`: the multi-cluster verifier on the command line. The
//! expectations come from a spec (`-f`) or only from the clusters
//! (`--context A --context B`); findings go to stdout as text or JSON.
//! Exit 0 without error findings, 1 with, 2 for input that cannot be used.

use super::session::{load_spec, spec_targets};
use super::view::check::{self as view, CheckFormat};
use super::{GlobalArgs, exit};
use crate::check::{self, CheckError, ClusterExpect, Expect, Group, Known, Model, Role};
use crate::cluster::ClusterTarget;
use crate::spec::{self, Loaded, Topology};
use clap::Args;
use std::collections::BTreeSet;
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

/// The expectations a spec states: every cluster's clusterName (its name),
/// network, role and primary; the meshID, model, revision and version.
pub fn from_spec(loaded: &Loaded, default_kubeconfig: Option<PathBuf>) -> Expect {
    let s = &loaded.spec.spec;
    let mut expect = Expect::from_targets(Vec::new(), default_kubeconfig);
    expect.clusters = spec_targets(loaded)
        .into_iter()
        .zip(&s.clusters)
        .map(|(target, c)| ClusterExpect {
            cluster_name: Some(Known::said(c.name.clone())),
            network: c.network.clone().map(Known::said),
            role: Some(Known::said(match c.role {
                Some(spec::Role::Remote) => Role::Remote,
                _ => Role::Primary,
            })),
            primary: c.primary.clone(),
            api_server: c.api_server.clone(),
            ..ClusterExpect::new(target)
        })
        .collect();
    let networks: BTreeSet<&str> = s
        .clusters
        .iter()
        .filter_map(|c| c.network.as_deref())
        .collect();
    expect.multi_network = Some(Known::said(networks.len() > 1));
    expect.mesh_id = Some(Known::said(s.mesh.id.clone()));
    expect.model = Some(Known::said(match s.topology {
        Topology::MultiPrimary => Model::MultiPrimary,
        Topology::PrimaryRemote => Model::PrimaryRemote,
    }));
    expect.revision = s.mesh.revision.clone().filter(|r| !r.is_empty());
    expect.istio_version = Some(s.mesh.istio_version.clone());
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
