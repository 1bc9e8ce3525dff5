//! Restore-pending records: a workload the drain scaled down is never left
//! scaled down unnoticed.
//!
//! Before a scale that a `RestoreScale` will undo, the journal durably gets a
//! "restore pending" event (cluster, object, replicas to restore); after the
//! restore, a "restore done" event. The journal is the store's write-ahead log,
//! so the latest such event per object says whether a restore is owed, after
//! any crash. `status` names what is owed; `rollback` and the end of every
//! `apply` perform it.

use super::context::{ActionError, StepCtx};
use crate::object::ObjectRef;
use crate::state::{EventKind, NewEvent, RunId, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The `details` field that marks a restore record in the journal.
const FIELD: &str = "scaleRestore";

/// A workload scaled down whose replicas are still to be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRestore {
    /// The cluster's name in the plan.
    pub cluster: String,
    /// The Deployment scaled.
    pub object: ObjectRef,
    /// What it was scaled to.
    pub scaled_to: i32,
    /// What to put back (the step's snapshot).
    pub replicas: i32,
    /// The step that scaled it.
    pub step: String,
}

impl fmt::Display for PendingRestore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.object;
        let name = match &o.namespace {
            Some(ns) => format!("{ns}/{}", o.name),
            None => o.name.clone(),
        };
        write!(
            f,
            "{} {name} scaled to {}, restore pending (to {} replicas)",
            self.cluster, self.scaled_to, self.replicas
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    restore: PendingRestore,
    pending: bool,
}

fn record(
    store: &dyn Store,
    run: RunId,
    restore: &PendingRestore,
    pending: bool,
) -> Result<(), ActionError> {
    let message = if pending {
        format!("{restore}")
    } else {
        format!(
            "{} {} restored to {} replicas",
            restore.cluster, restore.object, restore.replicas
        )
    };
    let details = serde_json::json!({ FIELD: Record { restore: restore.clone(), pending } });
    // `record_event` is durable when it returns: the record is on disk before
    // the scale it announces.
    store.record_event(
        run,
        NewEvent::new(EventKind::Note, Some(&restore.step), message).with_details(details),
    )?;
    Ok(())
}

/// Durably records that `restore` is owed, before the scale.
pub(crate) fn mark_pending(
    store: &dyn Store,
    run: RunId,
    restore: &PendingRestore,
) -> Result<(), ActionError> {
    record(store, run, restore, true)
}

/// Records that `restore` was performed.
pub(crate) fn mark_done(
    store: &dyn Store,
    run: RunId,
    restore: &PendingRestore,
) -> Result<(), ActionError> {
    record(store, run, restore, false)
}

/// The restores `run`'s journal says are still owed, by cluster and object.
pub fn pending(
    store: &dyn Store,
    run: RunId,
) -> Result<Vec<PendingRestore>, crate::state::StateError> {
    let mut latest: BTreeMap<(String, ObjectRef), Record> = BTreeMap::new();
    for event in store.events(run, 0)? {
        if event.kind != EventKind::Note {
            continue;
        }
        let Some(found) = event.details.as_ref().and_then(|d| d.get(FIELD)) else {
            continue;
        };
        let Ok(rec) = serde_json::from_value::<Record>(found.clone()) else {
            continue;
        };
        let key = (rec.restore.cluster.clone(), rec.restore.object.clone());
        latest.insert(key, rec);
    }
    Ok(latest
        .into_values()
        .filter(|r| r.pending)
        .map(|r| r.restore)
        .collect())
}

/// The live replicas of `object`, if it exists.
pub(crate) async fn live_replicas(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
) -> Result<Option<i32>, ActionError> {
    let c = ctx.cluster(cluster)?;
    let live = ctx.retry(|| c.get(object)).await?;
    Ok(live.as_ref().map(replicas_of))
}

/// `spec.replicas` of a Deployment (1 when unset, as Kubernetes defaults it).
pub(crate) fn replicas_of(object: &Value) -> i32 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .and_then(|r| i32::try_from(r).ok())
        .unwrap_or(1)
}

/// Scales `object` to `replicas` unless it is there already (equal effects:
/// a re-run must not add a scale operation), then clears its record if one
/// is given.
pub(crate) async fn scale_to(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    replicas: i32,
) -> Result<(), ActionError> {
    match live_replicas(ctx, cluster, object).await? {
        Some(live) if live != replicas => {
            let c = ctx.cluster(cluster)?;
            ctx.retry(|| c.scale(object, replicas)).await?;
        }
        // Already there, or gone: nothing to change.
        _ => {}
    }
    Ok(())
}

/// Performs every restore `run` still owes, each cleared once done. Run by
/// `apply` before it returns (whatever the outcome) and by `rollback` first.
pub(crate) async fn perform_pending(ctx: &StepCtx) -> Result<usize, ActionError> {
    let owed = pending(ctx.env.store.as_ref(), ctx.run)?;
    for restore in &owed {
        scale_to(ctx, &restore.cluster, &restore.object, restore.replicas).await?;
        mark_done(ctx.env.store.as_ref(), ctx.run, restore)?;
    }
    Ok(owed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, NewRun, RunKind};

    fn restore(name: &str) -> PendingRestore {
        PendingRestore {
            cluster: "cluster1".into(),
            object: ObjectRef::namespaced("apps/v1", "Deployment", "sample", name),
            scaled_to: 0,
            replicas: 2,
            step: "failover/drain".into(),
        }
    }

    #[test]
    fn the_latest_record_per_object_says_what_is_owed() {
        let store = MemoryStore::new();
        let run = store
            .begin_run(NewRun {
                fingerprint: "f".into(),
                spec_name: "s".into(),
                kind: RunKind::Apply,
                plan: serde_json::json!({}),
                steps: vec!["failover/drain".into()],
            })
            .unwrap()
            .id;
        assert!(pending(&store, run).unwrap().is_empty());
        mark_pending(&store, run, &restore("helloworld-v1")).unwrap();
        mark_pending(&store, run, &restore("helloworld-v2")).unwrap();
        mark_done(&store, run, &restore("helloworld-v2")).unwrap();
        let owed = pending(&store, run).unwrap();
        assert_eq!(owed, vec![restore("helloworld-v1")]);
        assert_eq!(
            owed[0].to_string(),
            "cluster1 sample/helloworld-v1 scaled to 0, restore pending (to 2 replicas)"
        );
        // A crashed re-run records it again; still one owed.
        mark_pending(&store, run, &restore("helloworld-v1")).unwrap();
        assert_eq!(pending(&store, run).unwrap().len(), 1);
        mark_done(&store, run, &restore("helloworld-v1")).unwrap();
        assert!(pending(&store, run).unwrap().is_empty());
    }
}
