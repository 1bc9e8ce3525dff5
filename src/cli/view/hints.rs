//! Hints: the command to type next, worded for this invocation, and the
//! advice that follows an error of a given kind.
//!
//! The library's errors say what is wrong; what to do about it on the
//! command line is worded here. Until every lower-layer message has shed its
//! own advice, [`with_hint`] leaves a message that already gives it alone, so
//! nothing is said twice.

use crate::engine::EngineError;
use crate::plan::Phase;
use crate::state::StateError;
use std::path::{Path, PathBuf};

/// The state directory used when `--state-dir` is not given.
pub const DEFAULT_STATE_DIR: &str = ".migrate";

/// What hints need to know to name this invocation's files.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    spec: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    /// `--state LOCATION` when the state is not in a directory: every hint must name it.
    state: Option<String>,
}

impl Hints {
    /// The spec, state directory and `--kubeconfig` the command was given.
    pub fn new(spec: Option<&Path>, state_dir: Option<&Path>, kubeconfig: Option<&Path>) -> Hints {
        Hints {
            spec: spec.map(Path::to_path_buf),
            state_dir: state_dir.map(Path::to_path_buf),
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            state: None,
        }
    }

    /// The hints with `--state LOCATION` in every command they suggest.
    pub fn with_state(mut self, location: Option<String>) -> Hints {
        self.state = location;
        self
    }

    /// ` --state-dir DIR`, or nothing for the default directory.
    fn state_flag(&self) -> String {
        if let Some(location) = &self.state {
            return format!(" --state {location}");
        }
        match &self.state_dir {
            Some(dir) if dir.as_os_str() != DEFAULT_STATE_DIR => {
                format!(" --state-dir {}", dir.display())
            }
            _ => String::new(),
        }
    }

    /// ` --kubeconfig FILE`, or nothing when none was given.
    fn kubeconfig_flag(&self) -> String {
        self.kubeconfig
            .as_ref()
            .map(|k| format!(" --kubeconfig {}", k.display()))
            .unwrap_or_default()
    }

    fn spec(&self) -> String {
        self.spec
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| "SPEC".to_string())
    }

    /// The two ways on after a failed or interrupted apply.
    pub fn after_failed_apply(&self) -> [String; 2] {
        let state = self.state_flag();
        let kubeconfig = self.kubeconfig_flag();
        [
            format!(
                "resume with:   migrate{kubeconfig} apply -f {}{state} --resume",
                self.spec()
            ),
            format!(
                "or undo with:  migrate{kubeconfig} rollback{state} --to phase0   (or --to the last good phase)"
            ),
        ]
    }

    /// The ways on from a run paused before phase `next` (`apply --until`):
    /// the rest, one phase more, a look, or undo.
    pub fn after_pause(&self, next: Phase) -> [String; 4] {
        let state = self.state_flag();
        let kubeconfig = self.kubeconfig_flag();
        let apply = format!(
            "migrate{kubeconfig} apply -f {}{state} --resume",
            self.spec()
        );
        [
            format!("go on with:    {apply}"),
            format!("or one phase:  {apply} --until {}", next.name()),
            format!("look with:     migrate{kubeconfig} status{state}"),
            format!(
                "or undo with:  migrate{kubeconfig} rollback{state} --to phase0   (or --to the last good phase)"
            ),
        ]
    }

    /// The ways on when `apply` refused to start a run over an earlier run's
    /// steps: continue that run with this plan (only the latest run can be),
    /// or undo it.
    pub fn after_refused_start(&self, latest: bool) -> Vec<String> {
        let state = self.state_flag();
        let kubeconfig = self.kubeconfig_flag();
        let mut lines = Vec::new();
        if latest {
            lines.push(format!(
                "continue it with this plan:  migrate{kubeconfig} apply -f {}{state} --resume --replan",
                self.spec()
            ));
        }
        lines.push(format!(
            "or undo it first with:       migrate{kubeconfig} rollback{state} --to phase0"
        ));
        lines
    }

    /// How to continue a rollback that failed or was interrupted.
    pub fn continue_rollback(&self, to: &str) -> String {
        format!(
            "migrate{} rollback{} --to {to}",
            self.kubeconfig_flag(),
            self.state_flag()
        )
    }

    /// The commands to look around with after `migrate demo --keep`, the
    /// kubeconfig and state directory spelled out in full.
    pub fn look_around(&self) -> [String; 3] {
        let kubeconfig = self.kubeconfig_flag();
        let state = self
            .state_dir
            .as_ref()
            .map(|d| format!(" --state-dir {}", d.display()))
            .unwrap_or_default();
        [
            format!("kubectl{kubeconfig} --context sim-cluster1 get pods -A"),
            format!("migrate{kubeconfig} status{state}"),
            format!(
                "migrate{kubeconfig} apply -f {}{state} --resume",
                self.spec()
            ),
        ]
    }
}

/// Advice that follows an error's message: what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// Between the message and the advice (`: ` or `; `).
    separator: &'static str,
    text: String,
}

impl Hint {
    fn new(separator: &'static str, text: impl Into<String>) -> Option<Hint> {
        Some(Hint {
            separator,
            text: text.into(),
        })
    }
}

/// `message` followed by `hint`, unless the message already gives it.
pub fn with_hint(message: String, hint: Option<Hint>) -> String {
    match hint {
        Some(h) if !message.contains(&h.text) => format!("{message}{}{}", h.separator, h.text),
        _ => message,
    }
}

/// The hint for the first error in `err`'s chain that has one.
pub fn for_any(err: &anyhow::Error, hints: &Hints) -> Option<Hint> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<EngineError>() {
            for_engine(e, hints)
        } else {
            e.downcast_ref::<StateError>().and_then(for_state)
        }
    })
}

/// The hint for an engine error, with this invocation's spec and flags.
pub fn for_engine(err: &EngineError, hints: &Hints) -> Option<Hint> {
    let state = hints.state_flag();
    let kubeconfig = hints.kubeconfig_flag();
    let spec = hints.spec();
    let undo = format!("`migrate{kubeconfig} rollback{state} --to phase0`");
    match err {
        EngineError::UnfinishedRun { .. } => Hint::new(
            ": ",
            format!(
                "continue it with `migrate{kubeconfig} apply -f {spec}{state} --resume`, or undo it with {undo}"
            ),
        ),
        EngineError::SpecChanged { .. } => Hint::new(
            "; ",
            format!(
                "`migrate{kubeconfig} apply -f {spec}{state} --resume --replan` continues with the new plan (done steps stay done)"
            ),
        ),
        EngineError::EarlierRunHolds { latest: true, .. } => Hint::new(
            "; ",
            format!(
                "continue it with this plan with `migrate{kubeconfig} apply -f {spec}{state} --resume --replan`, or undo it first with {undo}"
            ),
        ),
        EngineError::EarlierRunHolds { latest: false, .. } => Hint::new(
            "; ",
            format!("undo it first with {undo} (it undoes every run, newest first)"),
        ),
        EngineError::ReplanDropsHeldSteps { .. } => Hint::new(
            "; ",
            format!(
                "undo them first with `migrate{kubeconfig} rollback{state} --to PHASE` (the phase before them)"
            ),
        ),
        EngineError::ClusterChanged { context, .. } => Hint::new(
            ": ",
            format!(
                "point context {context} back at the cluster the run changed, or give the kubeconfig that reaches it \
                 (`--kubeconfig FILE`, or the spec's per-cluster kubeconfig with `-f SPEC`)"
            ),
        ),
        EngineError::RollbackUnfinished { to, .. } => Hint::new(
            "; ",
            format!(
                "finish undoing them with `{}`, then `migrate{kubeconfig} apply -f {spec}{state} --resume` goes forward again",
                hints.continue_rollback(&format!("phase{}", to.number()))
            ),
        ),
        EngineError::State(e) => for_state(e),
        EngineError::StoreFailed {
            rollback_to,
            holder,
            ..
        } => {
            let again = match rollback_to {
                Some(to) => format!(
                    "continue the rollback with `{}`",
                    hints.continue_rollback(&format!("phase{}", to.number()))
                ),
                None => {
                    format!("resume with `migrate{kubeconfig} apply -f {spec}{state} --resume`")
                }
            };
            // A Kubernetes store's Lease stays held until it lapses when it
            // could not be given back; a directory's lock goes with the process.
            let unlock = match (holder, &hints.state) {
                (Some(id), Some(_)) => format!(
                    "; if that is refused because this process (holder id {id}) still holds the store, \
                     free it first with `migrate{kubeconfig} unlock --force {id}{state}`"
                ),
                _ => String::new(),
            };
            Hint::new(
                "; ",
                format!("once the store answers again, {again}{unlock}"),
            )
        }
        EngineError::NoRun(_)
        | EngineError::BadStoredPlan(_)
        | EngineError::RestoreFailed(_)
        | EngineError::Drifted(_)
        | EngineError::DriftCheck(_)
        | EngineError::IdentityUnknown { .. }
        | EngineError::MeshLease(_)
        | EngineError::PermissionsMissing(_) => None,
    }
}

/// The hint for a state store error.
pub fn for_state(err: &StateError) -> Option<Hint> {
    const ANOTHER_DIR: &str = "pass another --state-dir";
    match err {
        StateError::NotADirectory { .. } => Hint::new("; ", ANOTHER_DIR),
        StateError::InsecurePermissions { dir, .. } => {
            Hint::new("; ", format!("run `chmod 700 {}`", dir.display()))
        }
        StateError::NotOwner { .. } => {
            Hint::new("; ", format!("run migrate as the owner or {ANOTHER_DIR}"))
        }
        StateError::NotAStateDir { .. } => Hint::new("; ", "pass an empty or new --state-dir"),
        StateError::NewerSchema { .. } | StateError::NewerRecord { .. } => {
            Hint::new("; ", format!("upgrade migrate, or {ANOTHER_DIR}"))
        }
        StateError::UnknownSchema { .. } => Hint::new(
            "; ",
            format!("use the migrate version that wrote it, or {ANOTHER_DIR}"),
        ),
        StateError::Damaged { .. } => Hint::new(
            "; ",
            "move it aside (its snapshots may still be needed for rollback) and restore it from a backup, or \
             start over with a new --state-dir",
        ),
        StateError::Locked {
            holder: Some(_), ..
        } => Hint::new(
            "; ",
            "wait for it to finish, or stop it (its checkpoint lets `migrate apply --resume` continue)",
        ),
        StateError::Locked { holder: None, .. } => Hint::new("; ", "wait for it to finish"),
        StateError::StaleLock { holder, .. } => Hint::new(
            "; ",
            format!(
                "if that process is gone, run `migrate unlock --force {}`",
                holder.id
            ),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Holder, Outcome, RunId, RunInfo, RunKind, Timestamp};

    /// Each hint is said once, at the end, whether or not the library's
    /// message already words it.
    fn said_once_at_the_end(message: String, hint: Option<Hint>) {
        let hint = hint.expect("a hint");
        let shown = with_hint(message.clone(), Some(hint.clone()));
        assert!(shown.ends_with(&hint.text), "{shown}");
        assert_eq!(shown.matches(&hint.text).count(), 1, "{shown}");
    }

    #[test]
    fn every_hinted_error_kind_ends_with_its_hint() {
        let dir = PathBuf::from("/tmp/st");
        let holder = Holder {
            id: "4f2a9c".into(),
            pid: 7,
            host: "h".into(),
            command: "migrate apply".into(),
            since: Timestamp::now(),
        };
        let state = [
            StateError::NotADirectory { dir: dir.clone() },
            StateError::InsecurePermissions {
                dir: dir.clone(),
                mode: 0o755,
            },
            StateError::NotOwner {
                dir: dir.clone(),
                owner: 1,
                uid: 2,
            },
            StateError::NotAStateDir {
                dir: dir.clone(),
                found: "x".into(),
            },
            StateError::NewerSchema {
                dir: dir.clone(),
                found: 9,
                supported: 1,
                written_by: None,
            },
            StateError::UnknownSchema {
                dir: dir.clone(),
                found: 0,
                supported: 1,
            },
            StateError::Damaged {
                dir: dir.clone(),
                detail: "d".into(),
            },
            StateError::Locked {
                dir: dir.clone(),
                holder: Some(Box::new(holder.clone())),
            },
            StateError::Locked {
                dir: dir.clone(),
                holder: None,
            },
            StateError::StaleLock {
                dir: dir.clone(),
                holder: Box::new(holder),
                reason: "r".into(),
            },
        ];
        for e in &state {
            said_once_at_the_end(e.to_string(), for_state(e));
        }
        let run = RunInfo {
            id: RunId(3),
            fingerprint: "f".into(),
            spec_name: "s".into(),
            kind: RunKind::Apply,
            started: Timestamp::now(),
            finished: None,
            outcome: Outcome::Failed,
            resumed: 0,
            last_event_seq: 0,
            paused_after: None,
        };
        let engine = [
            EngineError::EarlierRunHolds {
                run: Box::new(run.clone()),
                held: 4,
                latest: true,
            },
            EngineError::EarlierRunHolds {
                run: Box::new(run.clone()),
                held: 4,
                latest: false,
            },
            EngineError::UnfinishedRun { run: Box::new(run) },
            EngineError::SpecChanged {
                run: RunId(3),
                changes: "c".into(),
            },
            EngineError::RollbackUnfinished {
                run: RunId(3),
                steps: vec!["routing/c1".into()],
                to: Phase::Discovery,
            },
        ];
        for e in &engine {
            said_once_at_the_end(e.to_string(), for_engine(e, &Hints::default()));
        }
        for rollback_to in [None, Some(Phase::Install)] {
            let e = EngineError::StoreFailed {
                run: RunId(3),
                rollback_to,
                holder: Some("4f2a9c".into()),
                source: StateError::InvalidInput("x".into()),
            };
            said_once_at_the_end(e.to_string(), for_engine(&e, &Hints::default()));
        }
    }

    #[test]
    fn a_hint_is_added_once() {
        let hint = || Hint::new("; ", "pass another --state-dir");
        assert_eq!(
            with_hint("state directory x: not a directory".into(), hint()),
            "state directory x: not a directory; pass another --state-dir"
        );
        let said = "state directory x: not a directory; pass another --state-dir".to_string();
        assert_eq!(with_hint(said.clone(), hint()), said);
    }

    #[test]
    fn a_store_failing_mid_run_says_how_to_take_the_run_up_again() {
        let io = || StateError::Io {
            dir: PathBuf::from("/tmp/st"),
            op: "write",
            path: PathBuf::from("/tmp/st/db"),
            source: std::io::Error::other("disk full"),
        };
        let failed = |rollback_to, source| EngineError::StoreFailed {
            run: RunId(2),
            rollback_to,
            holder: Some("4f2a9c".into()),
            source,
        };
        let dir = Hints::new(Some(Path::new("s.yaml")), Some(Path::new("/tmp/st")), None);
        let shown = with_hint(
            format!("{:#}", anyhow::Error::new(failed(None, io()))),
            for_engine(&failed(None, io()), &dir),
        );
        // A directory's lock goes with the process: only the resume.
        assert!(
            shown.ends_with(
                "disk full; once the store answers again, resume with \
                 `migrate apply -f s.yaml --state-dir /tmp/st --resume`"
            ),
            "{shown}"
        );
        let kube = Hints::new(Some(Path::new("s.yaml")), None, Some(Path::new("k.yaml")))
            .with_state(Some("kubernetes://ctx/team".into()));
        let lost = StateError::LostLease {
            location: "kubernetes://ctx/team".into(),
            lease: "migrate-state".into(),
            holder: None,
        };
        let hint = for_engine(&failed(Some(Phase::Trust), lost), &kube).expect("a hint");
        assert_eq!(
            hint.text,
            "once the store answers again, continue the rollback with \
             `migrate --kubeconfig k.yaml rollback --state kubernetes://ctx/team --to phase2`; \
             if that is refused because this process (holder id 4f2a9c) still holds the store, free it first \
             with `migrate --kubeconfig k.yaml unlock --force 4f2a9c --state kubernetes://ctx/team`"
        );
    }

    #[test]
    fn the_state_flag_is_named_only_when_not_the_default() {
        let default = Hints::new(
            Some(Path::new("s.yaml")),
            Some(Path::new(DEFAULT_STATE_DIR)),
            None,
        );
        assert_eq!(
            default.after_failed_apply()[0],
            "resume with:   migrate apply -f s.yaml --resume"
        );
        let other = Hints::new(Some(Path::new("s.yaml")), Some(Path::new("/tmp/st")), None);
        let with_kubeconfig = Hints::new(
            Some(Path::new("s.yaml")),
            Some(Path::new("/tmp/st")),
            Some(Path::new("k.yaml")),
        );
        assert_eq!(
            with_kubeconfig.after_failed_apply(),
            [
                "resume with:   migrate --kubeconfig k.yaml apply -f s.yaml --state-dir /tmp/st --resume",
                "or undo with:  migrate --kubeconfig k.yaml rollback --state-dir /tmp/st --to phase0   (or --to the last good phase)",
            ]
        );
        assert_eq!(
            with_kubeconfig.after_refused_start(true)[0],
            "continue it with this plan:  migrate --kubeconfig k.yaml apply -f s.yaml --state-dir /tmp/st --resume --replan"
        );
        assert_eq!(
            with_kubeconfig.continue_rollback("phase0"),
            "migrate --kubeconfig k.yaml rollback --state-dir /tmp/st --to phase0"
        );
        assert_eq!(
            with_kubeconfig.after_pause(Phase::Discovery)[..2],
            [
                "go on with:    migrate --kubeconfig k.yaml apply -f s.yaml --state-dir /tmp/st --resume",
                "or one phase:  migrate --kubeconfig k.yaml apply -f s.yaml --state-dir /tmp/st --resume --until discovery",
            ]
        );
        assert_eq!(
            default.after_pause(Phase::Routing)[2],
            "look with:     migrate status"
        );
        assert_eq!(
            other.continue_rollback("phase3"),
            "migrate rollback --state-dir /tmp/st --to phase3"
        );
    }
}
