//! `apply --until PHASE`: which of the steps not done run now, and the pause
//! at the phase's end.
//!
//! The steps of later phases are left out of the walk altogether, so none can
//! start whatever its dependencies; the walk ends when the last step up to
//! the phase has finished (running steps finish and are checkpointed as
//! always), and only then is the pause recorded. A crash before that record
//! leaves the run `running` with its done steps done: a resume goes on from
//! there like after any crash. A phase's gate (a check the phase is
//! responsible for) is a step of that phase, so it runs before the pause.

use crate::plan::{Phase, Step};
use crate::state::{Outcome, RunInfo, StepState, StepStatus};
use std::collections::{BTreeMap, BTreeSet};

/// Where an `apply --until` stopped: after which phase, and what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// The last phase run.
    pub after: Phase,
    /// The first phase with a step not done.
    pub next: Phase,
    /// Steps not done in the later phases.
    pub remaining: usize,
}

/// The walk's share of an `--until` run: the steps held back.
#[derive(Debug, Clone, Default)]
pub(super) struct HeldBack {
    /// The phase the run stops after.
    after: Option<Phase>,
    /// Steps of later phases, not done, in plan order.
    later: Vec<(String, Phase)>,
    /// Steps up to the phase that need a held-back step (a plan whose needs
    /// point forward in phase order): they cannot run now, so the run ends
    /// interrupted rather than paused.
    blocked: Vec<String>,
}

impl HeldBack {
    /// The steps up to the phase that could not run now.
    pub(super) fn blocked(&self) -> &[String] {
        &self.blocked
    }

    /// Where the run pauses once the walk ended with `outcome`: only after a
    /// clean walk, and only when later steps are left (otherwise the plan is
    /// simply done).
    pub(super) fn pause(&self, outcome: Outcome) -> Option<Paused> {
        let after = self.after?;
        if outcome != Outcome::Succeeded {
            return None;
        }
        let next = self.later.iter().map(|(_, p)| *p).min()?;
        Some(Paused {
            after,
            next,
            remaining: self.later.len(),
        })
    }
}

/// Splits `todo` (the steps not done, in plan order) into those to run now
/// and those held back for a later invocation. Without `until` every step
/// runs now.
pub(super) fn select(todo: Vec<&Step>, until: Option<Phase>) -> (Vec<&Step>, HeldBack) {
    let Some(after) = until else {
        return (todo, HeldBack::default());
    };
    let (mut now, later): (Vec<&Step>, Vec<&Step>) =
        todo.into_iter().partition(|s| within(s, until));
    // The walk takes needs outside it as met (done earlier): a step needing
    // a held-back one must be held back too, and so on.
    let mut held: BTreeSet<&str> = later.iter().map(|s| s.id.as_str()).collect();
    let mut blocked = Vec::new();
    loop {
        let (waiting, ready): (Vec<&Step>, Vec<&Step>) = now
            .into_iter()
            .partition(|s| s.needs.iter().any(|n| held.contains(n.as_str())));
        now = ready;
        if waiting.is_empty() {
            break;
        }
        for s in waiting {
            held.insert(&s.id);
            blocked.push(s.id.clone());
        }
    }
    let held_back = HeldBack {
        after: Some(after),
        later: later.iter().map(|s| (s.id.clone(), s.phase)).collect(),
        blocked,
    };
    (now, held_back)
}

/// Whether a resume `--until after` of `run` has nothing to do: every step up
/// to that phase is done and later steps are left; `Some` says where the run
/// stands. Only a paused run qualifies: one still marked running (its
/// process died, perhaps between the phase's last step and the pause), or
/// one that failed or was interrupted later on, is resumed, and the walk
/// records where it stops, so `status` and this answer never disagree.
pub(super) fn nothing_to_do(
    run: &RunInfo,
    steps: &[Step],
    states: &BTreeMap<String, StepState>,
    after: Option<Phase>,
) -> Option<Paused> {
    let after = after?;
    if run.outcome == Outcome::Running || run.paused_after.is_none() {
        return None;
    }
    let not_done = |s: &&Step| {
        states
            .get(&s.id)
            .is_none_or(|st| st.status != StepStatus::Done)
    };
    if steps
        .iter()
        .filter(not_done)
        .any(|s| within(s, Some(after)))
    {
        return None;
    }
    let later: Vec<Phase> = steps.iter().filter(not_done).map(|s| s.phase).collect();
    Some(Paused {
        after,
        next: later.iter().copied().min()?,
        remaining: later.len(),
    })
}

/// Whether `step` is within reach of this invocation (`--until` or none).
pub(super) fn within(step: &Step, until: Option<Phase>) -> bool {
    until.is_none_or(|after| step.phase <= after)
}

/// The title of the progress of a run, naming where it stops.
pub(super) fn title(name: &str, until: Option<Phase>) -> String {
    match until {
        Some(phase) => format!("apply {name} until {phase}"),
        None => format!("apply {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RunId, RunKind, Timestamp};

    fn step(phase: Phase, id: &str, needs: &[&str]) -> Step {
        let mut s = Step::new(phase, id, id);
        s.needs_all(needs.iter().copied());
        s
    }

    fn ids<'a>(steps: &[&'a Step]) -> Vec<&'a str> {
        steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn later_phases_are_held_back_even_with_their_needs_met() {
        let steps = [
            step(Phase::Install, "install/a", &[]),
            step(Phase::Trust, "trust/a", &["install/a"]),
            // Needs nothing at all: still not now.
            step(Phase::Discovery, "discovery/a", &[]),
            step(Phase::Routing, "routing/a", &["discovery/a"]),
        ];
        let (now, held) = select(steps.iter().collect(), Some(Phase::Trust));
        assert_eq!(ids(&now), ["install/a", "trust/a"]);
        assert!(held.blocked().is_empty());
        assert_eq!(
            held.pause(Outcome::Succeeded),
            Some(Paused {
                after: Phase::Trust,
                next: Phase::Discovery,
                remaining: 2
            })
        );
        assert_eq!(
            held.pause(Outcome::Failed),
            None,
            "a failed walk is not a pause"
        );
        assert_eq!(held.pause(Outcome::Interrupted), None);
    }

    #[test]
    fn without_until_or_with_nothing_later_there_is_no_pause() {
        let steps = [step(Phase::Install, "install/a", &[])];
        let (now, held) = select(steps.iter().collect(), None);
        assert_eq!(ids(&now), ["install/a"]);
        assert_eq!(held.pause(Outcome::Succeeded), None);
        let (now, held) = select(steps.iter().collect(), Some(Phase::Failover));
        assert_eq!(ids(&now), ["install/a"]);
        assert_eq!(held.pause(Outcome::Succeeded), None, "the plan is done");
    }

    #[test]
    fn a_step_needing_a_later_phase_waits_and_so_does_what_needs_it() {
        let steps = [
            step(Phase::Discovery, "discovery/a", &[]),
            step(Phase::Trust, "trust/a", &["discovery/a"]),
            step(Phase::Trust, "trust/b", &["trust/a"]),
            step(Phase::Trust, "trust/c", &[]),
        ];
        let (now, held) = select(steps.iter().collect(), Some(Phase::Trust));
        assert_eq!(ids(&now), ["trust/c"]);
        assert_eq!(held.blocked(), ["trust/a", "trust/b"]);
    }

    /// Drives `engine::apply` on a plan of action-less steps (no cluster needed).
    mod applied {
        use super::*;
        use crate::engine::scheduler::StopFlag;
        use crate::engine::{ApplyMode, EngineOptions, Environment, NullObserver, RunSummary};
        use crate::plan::{Plan, PlanHeader};
        use crate::state::{MemoryStore, Store};
        use std::sync::Arc;

        fn plan() -> Plan {
            let header = PlanHeader {
                name: "until".into(),
                topology: "multi-primary".into(),
                clusters: Vec::new(),
            };
            let steps = vec![
                step(Phase::Preflight, "preflight/a", &[]),
                step(Phase::Install, "install/a", &["preflight/a"]),
                step(Phase::Trust, "trust/a", &["install/a"]),
                // Its needs are met once install is done: --until install must still hold it.
                step(Phase::Discovery, "discovery/a", &["install/a"]),
            ];
            Plan::new(header, steps).unwrap()
        }

        fn apply(store: &Arc<dyn Store>, mode: ApplyMode, until: Option<Phase>) -> RunSummary {
            let env = Arc::new(Environment {
                clusters: BTreeMap::new(),
                kubeconfigs: BTreeMap::new(),
                store: store.clone(),
                observer: Arc::new(NullObserver),
            });
            let opts = EngineOptions {
                until,
                ..Default::default()
            };
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::engine::apply(
                    &plan(),
                    env,
                    opts,
                    mode,
                    &StopFlag::default(),
                ))
                .unwrap()
        }

        fn done(store: &Arc<dyn Store>) -> Vec<String> {
            let states = store.step_states(RunId(1)).unwrap();
            states
                .into_iter()
                .filter(|(_, st)| st.status == StepStatus::Done)
                .map(|(id, _)| id)
                .collect()
        }

        const RESUME: ApplyMode = ApplyMode::Resume { replan: false };

        #[test]
        fn until_pauses_then_resume_goes_on_and_an_earlier_phase_has_nothing_to_do() {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let first = apply(&store, ApplyMode::Start, Some(Phase::Install));
            assert_eq!(first.outcome, Outcome::Interrupted);
            assert_eq!(first.succeeded, ["preflight/a", "install/a"]);
            assert!(
                first.not_started.is_empty(),
                "held back is not 'not started'"
            );
            assert_eq!(
                first.paused,
                Some(Paused {
                    after: Phase::Install,
                    next: Phase::Trust,
                    remaining: 2
                })
            );
            let run = store.latest_run().unwrap().unwrap();
            assert_eq!(run.standing(), "paused after install");
            assert_eq!(done(&store), ["install/a", "preflight/a"]);

            let seq = run.last_event_seq;
            let again = apply(&store, RESUME, Some(Phase::Preflight));
            assert!(again.already_done && again.paused.is_some());
            assert_eq!(
                store.latest_run().unwrap().unwrap(),
                run,
                "nothing to do changes nothing"
            );
            assert_eq!(store.events(RunId(1), seq).unwrap(), Vec::new());

            let second = apply(&store, RESUME, Some(Phase::Trust));
            assert_eq!(second.succeeded, ["trust/a"]);
            assert_eq!(second.paused.map(|p| p.next), Some(Phase::Discovery));

            let last = apply(&store, RESUME, None);
            assert_eq!(last.outcome, Outcome::Succeeded);
            assert_eq!(last.succeeded, ["discovery/a"]);
            assert_eq!(last.paused, None);
            assert_eq!(store.latest_run().unwrap().unwrap().paused_after, None);
        }

        #[test]
        fn a_run_whose_process_died_before_its_pause_records_it_without_running_a_step_again() {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            apply(&store, ApplyMode::Start, Some(Phase::Install));
            // As after a SIGKILL between install's last Done and the pause.
            store.resume_run(RunId(1)).unwrap();
            let attempts = store.step_state(RunId(1), "install/a").unwrap().attempts;
            let resumed = apply(&store, RESUME, Some(Phase::Install));
            assert!(resumed.succeeded.is_empty(), "{:?}", resumed.succeeded);
            assert_eq!(resumed.paused.map(|p| p.after), Some(Phase::Install));
            assert_eq!(
                store.step_state(RunId(1), "install/a").unwrap().attempts,
                attempts
            );
            assert_eq!(
                store.latest_run().unwrap().unwrap().standing(),
                "paused after install"
            );
        }

        #[test]
        fn until_the_last_phase_is_a_whole_run() {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let all = apply(&store, ApplyMode::Start, Some(Phase::Failover));
            assert_eq!(all.outcome, Outcome::Succeeded);
            assert_eq!(all.paused, None);
        }
    }

    fn run(outcome: Outcome) -> RunInfo {
        RunInfo {
            id: RunId(1),
            fingerprint: "f".into(),
            spec_name: "s".into(),
            kind: RunKind::Apply,
            started: Timestamp::now(),
            finished: None,
            outcome,
            resumed: 0,
            last_event_seq: 0,
            paused_after: None,
        }
    }

    #[test]
    fn nothing_to_do_once_every_step_up_to_the_phase_is_done() {
        let steps = vec![
            step(Phase::Trust, "trust/a", &[]),
            step(Phase::Discovery, "discovery/a", &[]),
            step(Phase::Routing, "routing/a", &[]),
        ];
        let mut states = BTreeMap::new();
        let done = |states: &mut BTreeMap<String, StepState>, id: &str| {
            let mut st = StepState::pending();
            st.status = StepStatus::Done;
            states.insert(id.to_string(), st);
        };
        let paused = RunInfo {
            paused_after: Some("discovery".into()),
            ..run(Outcome::Interrupted)
        };
        assert_eq!(
            nothing_to_do(&paused, &steps, &states, Some(Phase::Trust)),
            None
        );
        done(&mut states, "trust/a");
        done(&mut states, "discovery/a");
        assert_eq!(
            nothing_to_do(&paused, &steps, &states, Some(Phase::Trust)),
            Some(Paused {
                after: Phase::Trust,
                next: Phase::Routing,
                remaining: 1
            })
        );
        assert_eq!(nothing_to_do(&paused, &steps, &states, None), None);
        assert_eq!(
            nothing_to_do(&paused, &steps, &states, Some(Phase::Routing)),
            None,
            "routing is left to do"
        );
        assert_eq!(
            nothing_to_do(&run(Outcome::Running), &steps, &states, Some(Phase::Trust)),
            None,
            "a run whose process died is resumed so that its pause is recorded"
        );
        assert_eq!(
            nothing_to_do(&run(Outcome::Failed), &steps, &states, Some(Phase::Trust)),
            None,
            "a run that failed later on is not called paused"
        );
    }
}
