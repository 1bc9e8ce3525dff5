//! The command line: clap definitions here; one module per command that
//! resolves its arguments into a [`session::Session`], calls the library and
//! returns a value; and [`view`], which words those values for the terminal.
//! `demo` and `sim` exist with the `sim` feature (meshsim) only.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

// Defined before the modules so every command and view can print with them.

/// `eprintln!` that never panics: after SIGHUP the terminal may be gone, and
/// the running steps must still finish and be checkpointed.
/// With `--log-format json` each line is a JSON log record ([`view::progress::err_line`]).
macro_rules! say {
    () => {{
        $crate::cli::view::progress::err_line(format_args!(""));
    }};
    ($($arg:tt)*) => {{
        $crate::cli::view::progress::err_line(format_args!($($arg)*));
    }};
}

/// `println!` that never panics (a closed pipe or terminal); on stderr
/// when stdout carries `-o json` events ([`view::progress::out_line`]).
macro_rules! tell {
    ($($arg:tt)*) => {{
        $crate::cli::view::progress::out_line(format_args!($($arg)*));
    }};
}

pub mod apply;
pub mod check;
pub mod completion;
#[cfg(feature = "sim")]
pub mod demo;
pub mod logging;
pub mod plan;
pub mod results;
pub mod rollback;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod status;
pub mod unlock;
pub mod validate;
pub mod version;
pub mod view;

/// Exit codes shared by every command.
pub mod exit {
    /// The input (spec, flags) is invalid: nothing was done.
    pub const INVALID_INPUT: u8 = 2;
    /// The command ran and failed (a cluster refused, a step failed).
    pub const FAILED: u8 = 1;
    /// Done in part: some of the places to act on could not be reached (`unlock`); running it again once they
    /// answer finishes it.
    pub const PARTIAL: u8 = 3;
}

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Plan and carry out the migration of an Istio mesh from one cluster to a multi-cluster mesh",
    long_about = None,
    after_help = "Examples:\n  migrate validate -f plans/two-cluster.yaml\n  migrate plan -f plans/two-cluster.yaml\n  migrate apply -f plans/two-cluster.yaml\n  migrate rollback --to phase3\n  migrate demo\n  source <(migrate completion bash)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Kubeconfig file with the contexts the spec names.
    #[arg(long, env = "KUBECONFIG", global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// `--log-format`: how log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec: every error with file, line, column and field path.
    #[command(
        after_help = "Examples:\n  migrate validate -f plans/two-cluster.yaml\n  migrate validate -f plans/two-cluster.yaml -o json"
    )]
    Validate(validate::ValidateArgs),
    /// Show the DAG of phases and steps, every action and its rollback.
    #[command(
        after_help = "Examples:\n  migrate plan -f plans/two-cluster.yaml\n  migrate plan -f plans/two-cluster.yaml -o json\n  migrate plan -f plans/two-cluster.yaml --phase 2 -o mermaid"
    )]
    Plan(PlanArgs),
    /// Run the plan against the clusters, checkpointing after every step.
    #[command(
        after_help = "Examples:\n  migrate apply -f plans/two-cluster.yaml\n  migrate apply -f plans/two-cluster.yaml --until trust\n  migrate apply -f plans/two-cluster.yaml --resume"
    )]
    Apply(ApplyArgs),
    /// Where the current run stands.
    #[command(after_help = "Example:\n  migrate status\n  migrate status -o json --events")]
    Status(StatusArgs),
    /// Undo every phase after the given one, in reverse order.
    #[command(
        after_help = "Examples:\n  migrate rollback --to phase3\n  migrate rollback --to discovery --dry-run\n  migrate rollback --to phase0   # everything"
    )]
    Rollback(RollbackArgs),
    /// Verify a multi-cluster mesh: roots, names, networks, gateways, remote secrets, failover rules, Services, versions.
    #[command(
        after_help = "Examples:\n  migrate check -f plans/demo.yaml\n  migrate check --context east --context west -o json\n  migrate check -f plans/demo.yaml --group roots --group remote-secrets\n\nExit status: 0 without error findings, 1 with, 2 for input that cannot be used.\nEvery code is listed in README.md (migrate check)."
    )]
    Check(check::CheckArgs),
    /// The whole story on simulated clusters: plan, apply, failover test, rollback.
    #[cfg(feature = "sim")]
    #[command(after_help = "Example:\n  migrate demo\n  migrate demo --keep")]
    Demo(DemoArgs),
    /// Operations on the state directory itself.
    #[command(
        subcommand,
        after_help = "Example:\n  migrate state forget-snapshots          # after sign-off: no CA key or Secret left in the state\n  migrate state forget-snapshots --yes    # even though rollback could still need them\n  migrate state push --to kubernetes://mgmt/migrate-state   # share the run with the team"
    )]
    State(StateCommand),
    /// Release the locks a process gone for good held: the state store's, and the mesh's Lease on every cluster.
    #[command(
        after_help = "Examples:\n  migrate status                              # names the holder and its id\n  migrate unlock --force 4f2a9c               # the store's lock, and the mesh's Leases of its run\n  migrate unlock --force 4f2a9c -f SPEC       # the mesh's Leases on the spec's clusters (another team's id)\n\nExit status: 0 something held by ID was released, 1 nothing was held by ID, 3 partial: some cluster or\nthe store could not be reached (what could be released was)."
    )]
    Unlock(UnlockArgs),
    /// A shell completion script on stdout.
    #[command(
        after_help = "Examples:\n  source <(migrate completion bash)                                # this shell\n  migrate completion zsh > \"${fpath[1]}/_migrate\"\n  migrate completion fish > ~/.config/fish/completions/migrate.fish"
    )]
    Completion(CompletionArgs),
    /// This build's version and the Istio releases it supports.
    #[command(after_help = "Example:\n  migrate version\n  migrate version -o json")]
    Version(VersionArgs),
    /// Simulated Kubernetes clusters for trying migrate and kubectl.
    #[cfg(feature = "sim")]
    #[command(
        subcommand,
        after_help = "Example:\n  migrate sim serve --clusters 2 --kubeconfig ./sim.kubeconfig"
    )]
    Sim(SimCommand),
}

/// `-f SPEC`.
#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// The MeshMigration spec (YAML).
    #[arg(short = 'f', long = "file", value_name = "SPEC")]
    pub file: PathBuf,
}

/// `migrate plan -o`: the plan's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Yaml,
    Dot,
    Mermaid,
}

/// `migrate plan`'s flags.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Only this phase (`2`, `phase2` or `trust`).
    #[arg(long, value_name = "PHASE")]
    pub phase: Option<String>,
    /// Do not contact clusters (no live diff).
    #[arg(long)]
    pub offline: bool,
    /// Save the plan with a fingerprint of every live object it reads or changes, for
    /// `apply --plan FILE` (which refuses if they changed since).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["offline", "phase"])]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `--state-dir DIR` or `--state LOCATION`.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Where the run's checkpoint lives.
    #[arg(long, value_name = "DIR", default_value = view::hints::DEFAULT_STATE_DIR, global = true)]
    pub state_dir: PathBuf,
    /// Where the run's checkpoint lives, shared by a team: `kubernetes://CONTEXT/NAMESPACE` (Secrets and a Lease
    /// in that namespace, reached with the kubeconfig) or a directory. Overrides --state-dir and the spec's
    /// `state:`.
    #[arg(long = "state", value_name = "LOCATION", global = true)]
    pub state: Option<String>,
}

/// `migrate apply`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The MeshMigration spec (YAML).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "SPEC",
        required_unless_present = "plan"
    )]
    pub file: Option<PathBuf>,
    /// Apply exactly this saved plan (`migrate plan --out FILE`); refused if an object it reads or
    /// changes moved since it was saved.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "resume"])]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Continue an interrupted or failed run.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: accept a spec that changed since the run started.
    #[arg(long, requires = "resume")]
    pub replan: bool,
    /// Go on when a cluster's kube-system uid cannot be read (then or now): only its API server CA is
    /// compared, which cannot tell apart two clusters behind one proxy.
    #[arg(long)]
    pub accept_unknown_identity: bool,
    /// Do not claim the mesh: by default a Lease `migrate-mesh` in kube-system of every cluster of the run names
    /// this state store while it changes the mesh (and, while its run is unfinished, between invocations), so a
    /// run from another store is refused.
    #[arg(long)]
    pub no_mesh_lease: bool,
    /// Server-side dry run: change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this phase (`2`, `phase2` or `trust`), checkpointed: no step of a later phase starts;
    /// `--resume` goes on.
    #[arg(long, value_name = "PHASE")]
    pub until: Option<String>,
    /// Steps running at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Output: text for people; json: one event per line on stdout (README, "Events"), the rest on stderr.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RunFormat::Text)]
    pub output: RunFormat,
}

/// `apply -o` and `rollback -o`: progress for people, or events for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
}

/// `migrate completion`'s argument.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `migrate version`'s flags.
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
}

/// `migrate status`'s flags.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// Include the event journal.
    #[arg(long)]
    pub events: bool,
    /// Draw the run's timeline into FILE (`.svg`, or `.html` with the picture inline) instead.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<std::path::PathBuf>,
}

/// `migrate status -o`: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

/// `migrate rollback`'s flags.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// A spec whose per-cluster kubeconfigs override those the run recorded.
    #[arg(short = 'f', long = "file", value_name = "SPEC")]
    pub file: Option<PathBuf>,
    /// The phase to return to (`phase3`, `3` or `discovery`); `phase0` undoes everything.
    #[arg(long, value_name = "PHASE")]
    pub to: String,
    /// Print what would be undone, object by object, and what drifted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Undo objects changed since migrate left them too (overwriting those changes).
    #[arg(long)]
    pub force: bool,
    /// Go on when a cluster's kube-system uid cannot be read (then or now): only its API server CA is
    /// compared, which cannot tell apart two clusters behind one proxy.
    #[arg(long)]
    pub accept_unknown_identity: bool,
    /// Do not claim the mesh: by default a Lease `migrate-mesh` in kube-system of every cluster of the run names
    /// this state store while it changes the mesh (and, while its run is unfinished, between invocations), so a
    /// run from another store is refused.
    #[arg(long)]
    pub no_mesh_lease: bool,
    /// Steps running at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Output: text for people; json: one event per line on stdout (README, "Events"), the rest on stderr.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RunFormat::Text, conflicts_with = "dry_run")]
    pub output: RunFormat,
}

/// `migrate unlock`'s flags.
#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The holder id the lock's or the mesh claim's error names: only locks naming it are released.
    #[arg(long, value_name = "ID")]
    pub force: String,
    /// The spec whose clusters' mesh Leases to release (else the clusters the store's latest run recorded).
    #[arg(short = 'f', long = "file", value_name = "SPEC")]
    pub file: Option<PathBuf>,
}

/// `migrate state`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Remove the snapshots' payloads (Secrets, CA keys) from the state directory, after sign-off.
    ForgetSnapshots(ForgetSnapshotsArgs),
    /// Copy the state directory's runs (journal and snapshots included) to a Kubernetes store a team shares,
    /// verified by reading them back.
    Push(PushArgs),
    /// Copy a Kubernetes store's runs (journal and snapshots included) into a new state directory, verified by
    /// reading them back; refused while a run holds the store's Lease.
    Pull(PullArgs),
}

/// `migrate state pull`'s flags.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The directory to copy to: new, or empty.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

/// `migrate state push`'s flags.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The store to copy to: `kubernetes://CONTEXT/NAMESPACE`, holding no run yet.
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
}

/// `migrate state forget-snapshots`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ForgetSnapshotsArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Forget them even though a rollback could still need them (rollback of those steps then fails).
    #[arg(long)]
    pub yes: bool,
}

/// `migrate demo`'s flags.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Leave the simulated clusters running, with a kubeconfig, after the demo.
    #[arg(long)]
    pub keep: bool,
    /// How today's mesh was installed: istioctl (Istio 1.30.3, default
    /// revision) or helm (Istio's charts, Istio 1.26.4, revision 1-26-4).
    #[arg(long, value_enum, default_value_t = DemoSource::Istioctl)]
    pub source: DemoSource,
}

/// The source mesh `migrate demo` starts from.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoSource {
    /// Installed with istioctl, default revision (plans/demo.yaml).
    Istioctl,
    /// Installed with Helm, revisioned (plans/helm-revision.yaml).
    Helm,
}

/// `migrate sim`'s subcommands.
#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve simulated clusters until Ctrl-C and write a kubeconfig for them.
    #[command(
        after_help = "Example:\n  migrate sim serve --clusters 2 --kubeconfig ./sim.kubeconfig\n  kubectl --kubeconfig ./sim.kubeconfig --context sim-cluster1 get ns"
    )]
    Serve(SimServeArgs),
}

/// `migrate sim serve`'s flags.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Args)]
pub struct SimServeArgs {
    /// How many clusters.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub clusters: u16,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests (0.0 to 1.0) answered with an injected 500, 503 or 429.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// How long new pods take to become ready, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub ready_delay_ms: u64,
    /// Start from today's mesh, as `migrate demo` does: Istio with a
    /// self-signed CA, helloworld v1 and curl on cluster1; helloworld vN and
    /// Prometheus on the others; an `istioctl` stand-in next to the kubeconfig.
    #[arg(long)]
    pub seed: bool,
    #[command(flatten)]
    pub seed_mesh: sim::SeedFlags,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    logging::init(&cli.global);
    if let Some(dry_run) = events_asked(&cli.command) {
        view::events::enable(dry_run);
    }
    let result = match &cli.command {
        Command::Validate(args) => validate::run(&cli.global, args),
        Command::Plan(args) => plan::run(&cli.global, args),
        Command::Apply(args) => apply::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Rollback(args) => rollback::run(&cli.global, args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Unlock(args) => unlock::run(&cli.global, args),
        Command::State(command) => state::run(&cli.global, command),
        Command::Completion(args) => completion::run(args),
        Command::Version(args) => version::run(args),
        #[cfg(feature = "sim")]
        Command::Sim(SimCommand::Serve(args)) => sim::serve(&cli.global, args),
        #[cfg(feature = "sim")]
        Command::Demo(args) => demo::run(&cli.global, args),
    };
    if let Some(events) = view::events::sink() {
        // Every event stream ends with run_finished, whatever ended the command.
        match &result {
            Ok(code) => events.ended(*code == ExitCode::from(exit::INVALID_INPUT), None),
            Err(err) => events.ended(false, Some(err)),
        }
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            view::error(&err, &hints_for(&cli));
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `Some(dry_run)` when the command is to print events on stdout (`-o json`).
fn events_asked(command: &Command) -> Option<bool> {
    match command {
        Command::Apply(a) if a.output == RunFormat::Json => Some(a.dry_run),
        Command::Rollback(a) if a.output == RunFormat::Json => Some(false),
        _ => None,
    }
}

/// The hints' view of this invocation: its spec, state directory and kubeconfig.
fn hints_for(cli: &Cli) -> view::hints::Hints {
    let (spec, state_dir) = match &cli.command {
        Command::Validate(a) => (Some(&a.spec.file), None),
        Command::Plan(a) => (Some(&a.spec.file), None),
        Command::Apply(a) => (a.file.as_ref(), Some(&a.state.state_dir)),
        Command::Status(a) => (None, Some(&a.state.state_dir)),
        Command::Rollback(a) => (a.file.as_ref(), Some(&a.state.state_dir)),
        Command::Check(a) => (a.file.as_ref(), None),
        Command::Unlock(a) => (a.file.as_ref(), Some(&a.state.state_dir)),
        Command::State(StateCommand::ForgetSnapshots(a)) => (None, Some(&a.state.state_dir)),
        Command::Completion(_) | Command::Version(_) => (None, None),
        Command::State(StateCommand::Push(a)) => (None, Some(&a.state.state_dir)),
        Command::State(StateCommand::Pull(a)) => (None, Some(&a.to)),
        #[cfg(feature = "sim")]
        _ => (None, None),
    };
    let shared = match &cli.command {
        Command::Apply(a) => a.state.state.clone(),
        Command::Status(a) => a.state.state.clone(),
        Command::Rollback(a) => a.state.state.clone(),
        Command::Unlock(a) => a.state.state.clone(),
        _ => None,
    }
    .filter(|s| s.starts_with(crate::state::KUBE_SCHEME));
    view::hints::Hints::new(
        spec.map(|p| p.as_path()),
        state_dir.map(|p| p.as_path()),
        cli.global.kubeconfig.as_deref(),
    )
    .with_state(shared)
}
