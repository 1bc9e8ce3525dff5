//! Whether a conditional restart (`Restart` with `onlyIfChanged`) is made:
//! only when the step replaced the object with different content. Before
//! Istio 1.31 istiod keeps its client of a remote secret that changes until
//! it restarts, while a new Secret is picked up on every version; a needless
//! restart reconnects every proxy of the mesh.
//!
//! The decision reads only what a crash leaves unchanged: the step's first
//! snapshot (never overwritten), what the step left (written with its Done
//! mark, kept until its rollback is done) and, forward, the live object the
//! step's own apply wrote (a re-run writes the same). So a re-run after
//! SIGKILL decides the same, and the deterministic restart stamp makes a
//! repeated restart change nothing: exactly one restart, or none.
//!
//! Where the answer is unknown (no snapshot forward, nothing recorded of
//! what the step left), it restarts: a stale view is worse than a restart.

use super::context::{ActionError, StepCtx};
use super::drift;
use crate::object::ObjectRef;
use crate::state::{Left, SnapshotKey};
use serde_json::{Map, Value};

/// Which list of its step the restart runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// After the step's own change (`forward` or `finally`).
    Forward,
    /// After the rollback's restore.
    Rollback,
}

impl Side {
    /// The side of an action from its slot (`forward.1`, `rollback.1`).
    pub fn of_slot(slot: &str) -> Side {
        if slot.starts_with("rollback.") {
            Side::Rollback
        } else {
            Side::Forward
        }
    }
}

/// A decision and why, worded for the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Restart.
    pub restart: bool,
    /// Why, completing "<object> ...".
    pub why: &'static str,
}

const fn restart(why: &'static str) -> Decision {
    Decision { restart: true, why }
}

const fn skip(why: &'static str) -> Decision {
    Decision {
        restart: false,
        why,
    }
}

/// `data` of an object; absent counts as empty.
fn data_of(object: &Value) -> Map<String, Value> {
    object
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Forward: `snapshot` is the step's snapshot of the object (`None`: none
/// taken; `Some(None)`: it was absent), `live` the object after the step
/// wrote it.
pub(crate) fn forward(snapshot: Option<Option<&Value>>, live: Option<&Value>) -> Decision {
    match (snapshot, live) {
        (None, _) => restart("has no snapshot of before the step: whether it changed is unknown"),
        (Some(None), _) => skip("was new (none before): istiod picks it up without a restart"),
        (Some(Some(_)), None) => skip("is absent now: istiod keeps no client of it"),
        (Some(Some(before)), Some(live)) if data_of(before) == data_of(live) => {
            skip("held the same data before the step: nothing changed for istiod")
        }
        (Some(Some(_)), Some(_)) => restart("replaced one with different data"),
    }
}

/// Rollback, after the restore: `snapshot` as for [`forward`], `left` what
/// the step left of the object when it was done (`None`: not recorded).
pub(crate) fn rollback(snapshot: Option<Option<&Value>>, left: Option<&Left>) -> Decision {
    let Some(snapshot) = snapshot else {
        return skip("was never changed by the step: nothing was restored");
    };
    let Some(before) = snapshot else {
        return skip("was deleted by the restore (the step created it): istiod drops its client");
    };
    match left {
        Some(Left::Absent) => skip("was created by the restore (the step left none)"),
        Some(Left::Present { hash, .. }) if *hash == drift::hash(&drift::owned_content(before)) => {
            skip("was put back as the step left it: nothing changed for istiod")
        }
        Some(Left::Present { .. }) => restart("was put back, different from what the step left"),
        None => restart("was put back, and what the step left was not recorded"),
    }
}

/// Decides for the object `changed` in `cluster`, on `side` of the step.
pub(crate) async fn decide(
    ctx: &StepCtx,
    cluster: &str,
    changed: &ObjectRef,
    side: Side,
) -> Result<Decision, ActionError> {
    let key = SnapshotKey::of(cluster, changed);
    let snapshot = ctx.env.store.snapshot(ctx.run, &ctx.step, &key)?;
    let before = snapshot.as_ref().map(|s| s.object.as_ref());
    match side {
        Side::Forward => {
            let c = ctx.cluster(cluster)?;
            let live = ctx.retry(|| c.get(changed)).await?;
            Ok(forward(before, live.as_ref()))
        }
        Side::Rollback => {
            let left = ctx.env.store.left_objects(ctx.run, &ctx.step)?;
            let left = left.iter().find(|l| l.key == key).map(|l| &l.left);
            Ok(rollback(before, left))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(kubeconfig: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "istio-remote-secret-c2", "namespace": "istio-system",
                "labels": { "istio/multiCluster": "true" },
                "annotations": { "networking.istio.io/cluster": "c2" },
                "resourceVersion": "7",
            },
            "type": "Opaque",
            "data": { "c2": kubeconfig },
        })
    }

    fn left_of(object: &Value) -> Left {
        let key = SnapshotKey::of(
            "c1",
            &ObjectRef::secret("istio-system", "istio-remote-secret-c2"),
        );
        drift::left_of(&key, Some(object))
    }

    #[test]
    fn forward_restarts_only_when_a_different_secret_was_replaced() {
        let written = secret("bmV3");
        // A new remote secret: every version picks it up.
        assert!(!forward(Some(None), Some(&written)).restart);
        // The same data was there already (a re-run, or an identical manual secret).
        let mut same = secret("bmV3");
        same["metadata"]["resourceVersion"] = json!("3");
        assert!(!forward(Some(Some(&same)), Some(&written)).restart);
        // A half-done manual migration left a different kubeconfig.
        let old = secret("b2xk");
        assert!(forward(Some(Some(&old)), Some(&written)).restart);
        // A Secret with no data, or another key, counts as different.
        let mut empty = secret("");
        empty.as_object_mut().unwrap().remove("data");
        assert!(forward(Some(Some(&empty)), Some(&written)).restart);
        // Unknown before: restart to be safe.
        assert!(forward(None, Some(&written)).restart);
        // Gone now: istiod holds no client of it.
        assert!(!forward(Some(Some(&old)), None).restart);
    }

    #[test]
    fn rollback_restarts_only_when_the_restore_wrote_back_a_different_secret() {
        let written = secret("bmV3");
        let old = secret("b2xk");
        let left = left_of(&written);
        // The step created it: the restore deletes it.
        assert!(!rollback(Some(None), Some(&left)).restart);
        // Nothing to restore.
        assert!(!rollback(None, Some(&left)).restart);
        // The previous, different Secret is put back.
        assert!(rollback(Some(Some(&old)), Some(&left)).restart);
        // Put back as the step left it (server bookkeeping aside).
        let mut same = secret("bmV3");
        same["metadata"]["resourceVersion"] = json!("1");
        assert!(!rollback(Some(Some(&same)), Some(&left)).restart);
        // The step did not finish (nothing recorded): restart to be safe.
        assert!(rollback(Some(Some(&old)), None).restart);
        assert!(!rollback(Some(Some(&old)), Some(&Left::Absent)).restart);
    }

    #[test]
    fn the_side_comes_from_the_slot() {
        assert_eq!(Side::of_slot("forward.1"), Side::Forward);
        assert_eq!(Side::of_slot("finally.0"), Side::Forward);
        assert_eq!(Side::of_slot("rollback.1"), Side::Rollback);
    }
}
