//! Permissions before the first change of a resume or a rollback. Preflight
//! asks the API servers about every access the plan needs, but a resume
//! skips it (its steps are done) and a rollback never runs it, while the
//! credentials may have changed since (another kubeconfig, RBAC edited).
//! So both ask again, for what they are about to do, with preflight's own
//! check (`checks::permissions`): a 403 halfway through a rollback leaves a
//! mesh half undone.

use super::context::{EngineOptions, Environment, StepCtx};
use crate::plan::permissions::{Need, action_needs, needs};
use crate::plan::{Access, Step};
use crate::state::RunId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name the check's journal notes are recorded under.
const SUBJECT: &str = "permissions";

/// What is about to run.
pub(crate) enum Work<'a> {
    /// Steps a resume runs: their forward, finally and rollback actions (as
    /// preflight checked them).
    Forward(&'a [&'a Step]),
    /// Steps a rollback undoes: their rollback actions.
    Back(&'a [&'a Step]),
}

/// Every access `work` needs, per cluster, one per distinct access with the
/// steps needing it.
pub(crate) fn work_needs(work: &Work<'_>, clusters: &[String]) -> BTreeMap<String, Vec<Need>> {
    match work {
        Work::Forward(steps) => {
            let owned: Vec<Step> = steps.iter().map(|s| (*s).clone()).collect();
            needs(&owned, clusters)
        }
        Work::Back(steps) => {
            let mut found: BTreeMap<String, BTreeMap<Access, Vec<String>>> = BTreeMap::new();
            for step in *steps {
                for action in &step.rollback {
                    for (cluster, access) in action_needs(action, clusters) {
                        let named = found.entry(cluster).or_default().entry(access).or_default();
                        if !named.contains(&step.id) {
                            named.push(step.id.clone());
                        }
                    }
                }
            }
            found
                .into_iter()
                .map(|(cluster, accesses)| {
                    let list = accesses
                        .into_iter()
                        .map(|(access, steps)| Need { access, steps })
                        .collect();
                    (cluster, list)
                })
                .collect()
        }
    }
}

/// Asks every cluster `work` touches whether its credentials allow what
/// `work` needs; refuses with preflight's table of what is missing, before
/// any change (the tables, one per cluster). Clusters the environment does not reach are left to the
/// steps (they fail naming the cluster).
pub(crate) async fn check(
    env: &Arc<Environment>,
    opts: &EngineOptions,
    run: RunId,
    plan_clusters: Arc<Vec<String>>,
    work: Work<'_>,
) -> Result<(), String> {
    let all = work_needs(&work, &plan_clusters);
    let ctx = StepCtx {
        env: env.clone(),
        opts: Arc::new(opts.clone()),
        run,
        step: SUBJECT.into(),
        plan_clusters,
        cycle: 0,
        restores_scale: false,
    };
    // Every cluster at once: their reviews' round trips and their notes' flushes overlap (the notes share
    // group commits) instead of adding up, cluster after cluster, before a resume's first action.
    let mut asks = tokio::task::JoinSet::new();
    for (i, (cluster, needs)) in all.into_iter().enumerate() {
        if needs.is_empty() || !env.clusters.contains_key(&cluster) {
            continue;
        }
        let ctx = ctx.clone();
        asks.spawn(async move {
            let asked = super::checks::permissions(&ctx, &cluster, &needs).await;
            (
                i,
                asked.map_err(|e| crate::state::redact_text(&e.to_string())),
            )
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = asks.join_next().await {
        answers.push(joined.map_err(|e| format!("asking for access: {e}"))?);
    }
    // In the clusters' order, as one after the other said them.
    answers.sort_by_key(|(i, _)| *i);
    let refusals: Vec<String> = answers.into_iter().filter_map(|(_, a)| a.err()).collect();
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(refusals.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectRef;
    use crate::plan::{Action, Phase};

    fn step(id: &str, forward: Vec<Action>, rollback: Vec<Action>) -> Step {
        let mut s = Step::new(Phase::Trust, id, "");
        s.clusters = vec!["c1".into()];
        s.forward = forward;
        s.rollback = rollback;
        s
    }

    fn secret() -> ObjectRef {
        ObjectRef::new("v1", "Secret", Some("istio-system"), "cacerts")
    }

    #[test]
    fn a_rollback_needs_its_rollback_actions_only() {
        let apply = Action::Patch {
            cluster: "c1".into(),
            object: ObjectRef::new("v1", "ConfigMap", Some("istio-system"), "istio"),
            patch: serde_json::json!({}),
        };
        let delete = Action::Delete {
            cluster: "c1".into(),
            object: secret(),
        };
        let s = step("trust/c1", vec![apply], vec![delete]);
        let clusters = vec!["c1".to_string()];
        let back = work_needs(&Work::Back(&[&s]), &clusters);
        let verbs: Vec<(&str, &str)> = back["c1"]
            .iter()
            .map(|n| (n.access.verb.as_str(), n.access.resource.as_str()))
            .collect();
        assert_eq!(verbs, [("delete", "secrets"), ("get", "secrets")]);
        assert!(back["c1"].iter().all(|n| n.steps == ["trust/c1"]));
        let forward = work_needs(&Work::Forward(&[&s]), &clusters);
        assert!(
            forward["c1"]
                .iter()
                .any(|n| n.access.resource == "configmaps"),
            "{forward:?}"
        );
    }
}
