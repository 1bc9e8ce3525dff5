//! A phase's gate: the mesh verifier's rule groups the phase is responsible
//! for, over every cluster, with the engine's own clients. Error findings
//! fail the step (each with code, cluster, object, message and fix);
//! warnings are shown and journalled, and pass. Every finding and the
//! gate's result are journalled, so `status` shows them after the process
//! ended. Reads only: re-running a gate (a resume) repeats no effect.

use super::super::context::{ActionError, StepCtx};
use super::warn;
use crate::check::{self, ClusterExpect, Expect, Finding, Group, Known, Model, Report, Role};
use crate::cluster::ClusterTarget;
use crate::engine::gate_record::{GateRecord, finding_line};
use crate::plan::GateExpectations;
use crate::plan::Step;
use crate::state::{EventKind, NewEvent, RunId, StateError, StepStatus, Store};

/// How long reading every cluster may take before the gate fails.
const GATE_TIMEOUT: u64 = 300;

/// Runs the gate of the step's phase.
pub(crate) async fn run(
    ctx: &StepCtx,
    groups: &[String],
    expectations: &GateExpectations,
) -> Result<(), ActionError> {
    let phase = ctx
        .step
        .strip_prefix("gate/")
        .unwrap_or(&ctx.step)
        .to_string();
    // A gate verifies what the phase's steps made; a dry run made nothing.
    // Shown, not only journalled: a dry run that passes has not verified it.
    if ctx.opts.dry_run {
        warn(
            ctx,
            &format!(
                "gate {phase} not run: it verifies what the phase made, and a dry run changes nothing"
            ),
        )?;
        return Ok(());
    }
    let chosen = parse_groups(&phase, groups)?;
    let (expect, clusters) = verifier_input(ctx, expectations)?;
    let report = tokio::time::timeout(
        ctx.timeout(GATE_TIMEOUT),
        check::run_on(expect, clusters, &chosen),
    )
    .await
    .map_err(|_| {
        ActionError::Failed(format!(
            "gate {phase}: reading the clusters took longer than {GATE_TIMEOUT}s; `migrate check -f SPEC` shows what answers slowly"
        ))
    })?;
    let record = record(&phase, groups, report);
    journal(ctx, &record)?;
    if record.passed() {
        return Ok(());
    }
    let lines: Vec<String> = record
        .errors()
        .map(|f| format!("\n  {}", finding_line(f)))
        .collect();
    Err(ActionError::Failed(format!(
        "gate {phase} {record}: the mesh is not as phase {phase} should leave it; fix it, then `migrate apply --resume` runs the gate again{}",
        lines.concat()
    )))
}

/// The groups a plan names; a name this build does not know is a plan from
/// another version of migrate, not a pass.
fn parse_groups(phase: &str, groups: &[String]) -> Result<Vec<Group>, ActionError> {
    groups
        .iter()
        .map(|g| {
            g.parse::<Group>().map_err(|e| {
                ActionError::Failed(format!(
                    "gate {phase}: {e}: the plan was made by another version of migrate"
                ))
            })
        })
        .collect()
}

/// The verifier's expectations and the engine's clients, in the plan's order.
fn verifier_input(
    ctx: &StepCtx,
    e: &GateExpectations,
) -> Result<(Expect, Vec<std::sync::Arc<crate::cluster::Cluster>>), ActionError> {
    let mut clusters = Vec::new();
    let mut targets = Vec::new();
    for c in &e.clusters {
        let client = ctx.cluster(&c.name)?;
        targets.push(ClusterTarget {
            name: c.name.clone(),
            context: client.context.clone(),
            kubeconfig: ctx.env.kubeconfigs.get(&c.name).cloned(),
        });
        clusters.push(client.clone());
    }
    Ok((verifier_expect(e, targets), clusters))
}

/// The verifier's expectations of what a plan says of the mesh: every
/// value the user's word (`Said`), each cluster reached by the target of the
/// same position in `targets` (the plan's order). `migrate check -f SPEC`
/// uses it too, so a check and a gate expect the same of one spec.
pub fn verifier_expect(e: &GateExpectations, targets: Vec<ClusterTarget>) -> Expect {
    let expected = e
        .clusters
        .iter()
        .zip(targets)
        .map(|(c, target)| ClusterExpect {
            cluster_name: Some(Known::said(c.name.clone())),
            network: c.network.clone().map(Known::said),
            role: Some(Known::said(if c.remote {
                Role::Remote
            } else {
                Role::Primary
            })),
            primary: c.primary.clone(),
            api_server: c.api_server.clone(),
            ..ClusterExpect::new(target)
        })
        .collect();
    let mut expect = Expect::from_targets(Vec::new(), None);
    expect.clusters = expected;
    expect.namespace = e.namespace.clone();
    expect.mesh_id = Some(Known::said(e.mesh_id.clone()));
    expect.model = Some(Known::said(if e.topology == "primary-remote" {
        Model::PrimaryRemote
    } else {
        Model::MultiPrimary
    }));
    expect.multi_network = Some(Known::said(e.multi_network()));
    expect.revision = e.revision.clone();
    expect.istio_version = Some(e.istio_version.clone());
    expect
}

/// The journalled record of a report, its text redacted: findings quote
/// values read from clusters.
fn record(phase: &str, groups: &[String], report: Report) -> GateRecord {
    let findings: Vec<Finding> = report
        .findings
        .into_iter()
        .map(|mut f| {
            f.message = crate::state::redact_text(&f.message);
            f.fix = crate::state::redact_text(&f.fix);
            f
        })
        .collect();
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    GateRecord {
        phase: phase.to_string(),
        groups: groups.to_vec(),
        errors: count(check::Severity::Error),
        warnings: count(check::Severity::Warning),
        findings,
    }
}

/// The gate's result as one durable event (one write, one Secret on the
/// Kubernetes backend, however many findings), the whole record in its
/// details; warnings are shown as they come, and the result is told to the
/// observer (`-o json`'s `gate` event) once it is on record.
fn journal(ctx: &StepCtx, record: &GateRecord) -> Result<(), ActionError> {
    let phase = &record.phase;
    for f in record.warnings() {
        ctx.env.observer.warning(
            &ctx.step,
            &format!("gate {phase}: {} {}", f.severity, finding_line(f)),
        );
    }
    ctx.env
        .store
        .record_event(ctx.run, result_event(&ctx.step, record))?;
    ctx.env.observer.gate(&ctx.step, record);
    Ok(())
}

/// The journal entry of a gate's result: a warning when it failed.
fn result_event(step: &str, record: &GateRecord) -> NewEvent {
    let kind = if record.passed() {
        EventKind::Note
    } else {
        EventKind::Warning
    };
    NewEvent::new(kind, Some(step), format!("gate {} {record}", record.phase))
        .with_details(serde_json::json!({ "gate": record }))
}

/// The gates of `new` whose expectations differ from the same gate's in
/// `old` (`apply --resume --replan`: the spec's meshID, clusters, networks
/// or revision changed): a pass recorded against other expectations proves
/// nothing about these, so they run again.
pub(crate) fn changed_by_replan(old: &[Step], new: &[Step]) -> Vec<String> {
    new.iter()
        .filter(|s| is_gate(s))
        .filter(|s| {
            old.iter()
                .find(|o| o.id == s.id)
                .is_some_and(|o| o.forward != s.forward)
        })
        .map(|s| s.id.clone())
        .collect()
}

/// Whether `step` is a gate: its forward action runs the verifier.
pub(crate) fn is_gate(step: &Step) -> bool {
    step.forward.iter().any(|a| {
        matches!(
            a,
            crate::plan::Action::Check {
                check: crate::plan::Check::Gate { .. },
                ..
            }
        )
    })
}

/// Finishes setting back each gate of `steps` a crash left rolling back (a
/// rollback killed at the gate, or `rerun` killed between its two marks),
/// so a resumed forward run runs it again: a step rolling back cannot start
/// running, and a gate changed nothing, so there is nothing left to undo.
/// Each transition is durable; a crash before it leaves the same to do.
/// Other steps rolling back are left to `rollback`: they may hold changes.
/// `states`: the run's step states as read; true when any was set back.
pub(crate) fn finish_interrupted_resets(
    store: &dyn Store,
    run: RunId,
    steps: &[Step],
    states: &std::collections::BTreeMap<String, crate::state::StepState>,
) -> Result<bool, StateError> {
    let mut changed = false;
    for gate in steps.iter().filter(|s| is_gate(s)) {
        if states
            .get(&gate.id)
            .is_none_or(|st| st.status != StepStatus::RollingBack)
        {
            continue;
        }
        store.set_step_status(run, &gate.id, StepStatus::RolledBack, None)?;
        store.record_event(
            run,
            NewEvent::new(
                EventKind::Note,
                Some(&gate.id),
                format!(
                    "{}: setting it back was interrupted; a gate changes nothing, so it runs again",
                    gate.id
                ),
            ),
        )?;
        changed = true;
    }
    Ok(changed)
}

/// Sets each gate of `gates` that is done (or half reset by a crash) back,
/// so the resumed run runs it again: `done` to `rolled-back` through
/// `rolling-back`, as rolling a gate back does (it changed nothing, so
/// there is nothing to undo), each transition durable. Called before the
/// new plan is recorded: a crash in between leaves the old plan recorded,
/// so the next `--resume --replan` finds the same gates changed and
/// finishes; any other status already runs again.
pub(crate) fn rerun(store: &dyn Store, run: RunId, gates: &[String]) -> Result<(), StateError> {
    for gate in gates {
        let status = store.step_state(run, gate)?.status;
        if !matches!(status, StepStatus::Done | StepStatus::RollingBack) {
            continue;
        }
        if status == StepStatus::Done {
            store.set_step_status(run, gate, StepStatus::RollingBack, None)?;
        }
        store.set_step_status(run, gate, StepStatus::RolledBack, None)?;
        store.record_event(
            run,
            NewEvent::new(
                EventKind::Note,
                Some(gate),
                format!("{gate}: the replanned spec expects another mesh of it; it runs again"),
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str) -> Finding {
        Finding::new(code, "cluster2", "Secret istio-system/cacerts", "m", "f")
    }

    #[test]
    fn a_record_says_passed_failed_or_warned() {
        let report = |codes: &[&str]| {
            Report::new(
                vec!["cluster1".into(), "cluster2".into()],
                vec![Group::Roots],
                codes.iter().map(|c| finding(c)).collect(),
            )
        };
        let groups = vec!["roots".to_string()];
        let clean = record("trust", &groups, report(&["MC002"]));
        assert!(clean.passed());
        assert_eq!(clean.to_string(), "passed");
        let warned = record("trust", &groups, report(&["MC104", "MC105"]));
        assert!(warned.passed());
        assert_eq!(warned.to_string(), "passed with 2 warning(s)");
        let failed = record("trust", &groups, report(&["MC103", "MC104"]));
        assert!(!failed.passed());
        assert_eq!(
            failed.to_string(),
            "failed with 1 error(s) and 1 warning(s)"
        );
        assert_eq!(
            failed.errors().next().map(|f| f.code.as_str()),
            Some("MC103")
        );
    }

    #[test]
    fn every_group_a_plan_gates_on_is_known() {
        for (phase, groups) in crate::phases::gates::GATED {
            let names: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let parsed = parse_groups(phase.name(), &names).expect("known groups");
            assert_eq!(parsed.len(), groups.len());
        }
        assert!(parse_groups("trust", &["roots-of-all-evil".into()]).is_err());
    }

    /// Moves `step` of `run` through `statuses`, in order.
    fn move_through(store: &dyn Store, run: RunId, step: &str, statuses: &[StepStatus]) {
        for to in statuses {
            store.set_step_status(run, step, *to, None).unwrap();
        }
    }

    fn gate_step(mesh_id: &str) -> Step {
        let mut s = Step::new(crate::plan::Phase::Trust, "gate/trust", "gate");
        s.forward(crate::plan::Action::Check {
            cluster: None,
            check: crate::plan::Check::Gate {
                groups: vec!["roots".into()],
                expectations: GateExpectations {
                    namespace: "istio-system".into(),
                    mesh_id: mesh_id.into(),
                    topology: "multi-primary".into(),
                    revision: None,
                    istio_version: "1.30.3".into(),
                    clusters: vec![],
                },
            },
        });
        s.finish()
    }

    #[test]
    fn a_replan_reruns_only_the_gates_whose_expectations_changed() {
        let other = Step::new(crate::plan::Phase::Trust, "trust/root", "x").finish();
        let old = [gate_step("mesh1"), other.clone()];
        assert!(changed_by_replan(&old, &[gate_step("mesh1"), other.clone()]).is_empty());
        assert_eq!(
            changed_by_replan(&old, &[gate_step("mesh2"), other]),
            ["gate/trust"]
        );

        let store = crate::state::MemoryStore::new();
        let run = store
            .begin_run(crate::state::NewRun {
                fingerprint: "sha256:x".into(),
                spec_name: "t".into(),
                kind: crate::state::RunKind::Apply,
                plan: serde_json::json!({}),
                steps: vec!["gate/trust".into()],
            })
            .unwrap()
            .id;
        let status = || store.step_state(run, "gate/trust").unwrap().status;
        let gates = ["gate/trust".to_string()];
        rerun(&store, run, &gates).unwrap();
        assert_eq!(status(), StepStatus::Pending, "not done: runs anyway");
        move_through(
            &store,
            run,
            "gate/trust",
            &[StepStatus::Running, StepStatus::Done],
        );
        rerun(&store, run, &gates).unwrap();
        assert_eq!(status(), StepStatus::RolledBack);
        // Half reset by a crash: finished by the next replan.
        move_through(
            &store,
            run,
            "gate/trust",
            &[
                StepStatus::Running,
                StepStatus::Done,
                StepStatus::RollingBack,
            ],
        );
        rerun(&store, run, &gates).unwrap();
        assert_eq!(status(), StepStatus::RolledBack);
        // A rolled-back step may run again.
        store
            .set_step_status(run, "gate/trust", StepStatus::Running, None)
            .unwrap();
    }

    #[test]
    fn a_gate_left_rolling_back_is_set_back_for_the_resumed_run_and_nothing_else() {
        let other = Step::new(crate::plan::Phase::Trust, "trust/root", "x").finish();
        let steps = [gate_step("mesh1"), other];
        let store = crate::state::MemoryStore::new();
        let run = store
            .begin_run(crate::state::NewRun {
                fingerprint: "sha256:x".into(),
                spec_name: "t".into(),
                kind: crate::state::RunKind::Apply,
                plan: serde_json::json!({}),
                steps: vec!["gate/trust".into(), "trust/root".into()],
            })
            .unwrap()
            .id;
        for id in ["gate/trust", "trust/root"] {
            move_through(
                &store,
                run,
                id,
                &[
                    StepStatus::Running,
                    StepStatus::Done,
                    StepStatus::RollingBack,
                ],
            );
        }
        let states = store.step_states(run).unwrap();
        assert!(finish_interrupted_resets(&store, run, &steps, &states).unwrap());
        let status = |id| store.step_state(run, id).unwrap().status;
        assert_eq!(status("gate/trust"), StepStatus::RolledBack);
        assert_eq!(
            status("trust/root"),
            StepStatus::RollingBack,
            "a step that may hold changes is left to rollback"
        );
        // Again (a crash after the mark): nothing more to do.
        let states = store.step_states(run).unwrap();
        assert!(!finish_interrupted_resets(&store, run, &steps, &states).unwrap());
        store
            .set_step_status(run, "gate/trust", StepStatus::Running, None)
            .unwrap();
    }

    #[test]
    fn the_latest_record_of_a_step_wins() {
        let event = |seq: u64, step: &str, errors: usize| crate::state::Event {
            seq,
            at: crate::state::Timestamp::now(),
            step: Some(step.into()),
            kind: EventKind::Note,
            message: String::new(),
            details: Some(serde_json::json!({ "gate": GateRecord {
                phase: "trust".into(), groups: vec![], errors, warnings: 0, findings: vec![],
            }})),
        };
        let journal = [
            event(1, "gate/trust", 1),
            event(2, "gate/trust", 0),
            event(3, "gate/discovery", 2),
        ];
        let found = GateRecord::latest(journal.iter(), "gate/trust").expect("a record");
        assert!(found.passed());
        assert!(GateRecord::latest(journal.iter(), "gate/routing").is_none());
    }
}
