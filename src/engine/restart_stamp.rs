//! The restart stamp: how a rollout restart is made idempotent. Apart from
//! the actions so that drift (which ignores the stamp) and the restart
//! decision can both use it without an import circle.

use super::context::{ActionError, StepCtx};
use crate::object::ObjectRef;

/// The value a restart stamps: derived from the run, the step, the action's
/// place in it and the step's cycle, never the clock. A re-run of the same
/// execution after a crash stamps the same value, which changes nothing (no
/// second rollout); a later execution (after a rollback, or in another run)
/// stamps a new one.
///
/// It goes in `migrate.meshops.dev/restart`, not `kubectl`'s
/// `restartedAt`: a deterministic timestamp would need each execution's first
/// start time kept in the store, which records only the latest attempt's.
/// The run's recorded start time is part of it: run numbers restart at 1 in
/// every state directory, and a run from another (or a recreated) directory
/// must still roll out what it restarts.
pub(crate) fn restart_value(ctx: &StepCtx, slot: &str) -> Result<String, ActionError> {
    let started = ctx.env.store.run(ctx.run)?.started;
    Ok(format!(
        "run{}@{started}/{}/{slot}/cycle{}",
        ctx.run.0, ctx.step, ctx.cycle
    ))
}

/// The pod-template annotation a restart sets.
pub const RESTART_ANNOTATION: &str = "migrate.meshops.dev/restart";

/// Stamps `value` on the pod template of `object`: a rollout unless it
/// carries that value already.
pub(crate) async fn stamp_restart(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    value: &str,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        RESTART_ANNOTATION: value
    }}}}});
    ctx.retry(|| c.merge_patch(object, &patch)).await?;
    Ok(())
}
