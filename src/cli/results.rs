//! What each command comes to, as values: the commands compute them, the
//! views (`view`) word them. Neither imports the other's module for them.

use super::exit;
use crate::engine::{EngineError, ObjectDiff, PendingRestore, RunLineage, RunSummary, StoredPlan};
use crate::plan::{Phase, Plan, Step};
use crate::spec::{Diagnostic, Severity, SpecError};
use crate::state::{Event, Holder, Outcome, RunId, RunInfo, StateError, StepState};
use clap::ValueEnum;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

/// What an apply came to.
pub enum Applied {
    /// Nothing ran: the state directory holds an unfinished run (or none to
    /// resume), or the spec changed since the run started.
    Refused(EngineError),
    /// The run ended: done, failed or interrupted.
    Ran {
        /// The engine's account of the run.
        summary: RunSummary,
        /// It was a dry run.
        dry_run: bool,
    },
}

impl Applied {
    /// 0 when the plan is applied (or paused after `--until`'s phase), 2 when refused, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Applied::Refused(_) => ExitCode::from(exit::INVALID_INPUT),
            Applied::Ran { summary, .. }
                if summary.already_done
                    || summary.outcome == Outcome::Succeeded
                    || summary.paused.is_some() =>
            {
                ExitCode::SUCCESS
            }
            Applied::Ran { .. } => ExitCode::from(exit::FAILED),
        }
    }
}

/// What `--dry-run` would undo.
pub struct UndoList {
    /// The run the steps belong to.
    pub run: RunId,
    /// The phase to return to.
    pub to: Phase,
    /// The steps to undo, in the order they would be undone.
    pub steps: Vec<Step>,
    /// Where each step of the run stands.
    pub states: BTreeMap<String, StepState>,
    /// Failed or interrupted steps after `to` that changed nothing: skipped.
    pub nothing_to_undo: Vec<String>,
}

/// The rollback undid every step and was not interrupted.
pub fn completed(summary: &RunSummary) -> bool {
    summary.failed.is_empty() && !summary.stopped
}

/// What the state directory says.
pub enum Status {
    /// The directory does not exist: no run has started there.
    NoState(PathBuf),
    /// The store holds no run yet.
    NoRun(PathBuf),
    /// Another process holds the store, and what it keeps for us cannot be
    /// read (`copy` says why), or it names no holder (`copy` is None).
    Unreadable {
        /// The refusal to open the store.
        locked: StateError,
        /// Why the status copy cannot be read.
        copy: Option<StateError>,
    },
    /// The latest run.
    Run(Box<RunReport>),
}

/// The latest run, its plan and where each step stands.
pub struct RunReport {
    /// The run.
    pub run: RunInfo,
    /// Its plan.
    pub plan: StoredPlan,
    /// Where each step stands (steps not yet recorded are pending).
    pub states: BTreeMap<String, StepState>,
    /// The journal, when asked for and readable.
    pub events: Vec<Event>,
    /// The process running it now, when another one holds the store: then
    /// this comes from the copy it keeps, and has no journal.
    pub live: Option<Holder>,
    /// Every apply run of the directory, oldest first, with the steps each
    /// still holds (empty when read from the copy).
    pub lineage: Vec<RunLineage>,
    /// Workloads scaled down whose restore is still owed, of any run.
    pub pending_restores: Vec<PendingRestore>,
    /// Failed or interrupted steps that changed nothing: rollback has
    /// nothing to undo for them (empty when read from the copy).
    pub untouched: BTreeSet<String>,
    /// The mesh inventory preflight journalled, per cluster (latest).
    pub inventory: Inventories,
    /// Each gate's latest result, by step id (empty when read from the copy).
    pub gates: BTreeMap<String, crate::engine::GateRecord>,
}

impl Status {
    /// 2 without a state directory, 1 when it cannot be read, else 0.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Status::NoState(_) => ExitCode::from(exit::INVALID_INPUT),
            Status::Unreadable { .. } => ExitCode::from(exit::FAILED),
            Status::NoRun(_) | Status::Run(_) => ExitCode::SUCCESS,
        }
    }
}

/// What `migrate plan` computed.
pub struct Planned {
    /// The plan of the whole spec.
    pub plan: Plan,
    /// The one phase asked for, if any.
    pub phase: Option<Phase>,
    /// The live diff, or why there is none.
    pub live: LiveDiff,
    /// The mesh each reachable cluster runs (empty offline).
    pub inventory: Inventories,
}

/// The mesh inventory per cluster, or why it could not be read.
pub type Inventories =
    std::collections::BTreeMap<String, Result<crate::cluster::inventory::MeshInventory, String>>;

/// What the attempt at a live diff came to.
pub enum LiveDiff {
    /// `--offline`: no cluster was contacted.
    Offline,
    /// No async runtime could be started, so no cluster was contacted.
    NoRuntime(std::io::Error),
    /// The clusters were tried.
    Tried {
        /// One line per cluster that could not be reached: its name and why.
        unreachable: Vec<String>,
        /// The diff against the reachable clusters; None when none was.
        diff: Option<Vec<ObjectDiff>>,
    },
}

/// How `migrate validate` reports: diagnostics on stderr with the verdict
/// after them, or one JSON report on stdout. (The variants carry no doc
/// comments: clap would list them in `--help`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

/// What validating a spec found.
pub enum Validation {
    /// The file could not be read.
    Unreadable(SpecError),
    /// The file was checked.
    Checked {
        /// Every error and warning, in file order.
        diagnostics: Vec<Diagnostic>,
        /// For a valid spec: how many clusters, and the topology's name.
        valid: Option<(usize, &'static str)>,
    },
}

/// The report: the file and what was found in it.
pub struct Report {
    /// The spec's path as given.
    pub file: PathBuf,
    /// What was found.
    pub validation: Validation,
}

impl Report {
    /// 0 for a valid spec, 2 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self.validation {
            Validation::Checked { valid: Some(_), .. } => ExitCode::SUCCESS,
            _ => ExitCode::from(exit::INVALID_INPUT),
        }
    }
}

/// Errors among `diagnostics`.
pub fn errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// What `migrate version` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionInfo {
    /// migrate's own version (Cargo's).
    pub version: &'static str,
    /// The git commit built from, when the build could read it.
    pub commit: Option<&'static str>,
    /// The Istio releases `migrate` plans for.
    pub istio: IstioRange,
}

/// The supported Istio releases, from `spec::version`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IstioRange {
    /// The oldest minor release, `1.24`.
    pub min: String,
    /// The newest minor release, `1.31` (every patch of it).
    pub max: String,
    /// The range in words, `1.24.0 to 1.31.x`.
    pub supported: String,
}
