//! The store's calls are blocking (sled writes and fsyncs). Made from async
//! steps on a runtime's worker threads, they would stall every other step's
//! requests queued on that worker; `OffloadedStore` runs each call with
//! `block_in_place`, so the runtime moves its other tasks elsewhere.

use crate::state::{
    Event, Left, LeftObject, NewEvent, NewRun, Outcome, RunId, RunInfo, Snapshot, SnapshotFilter,
    SnapshotKey, StateError, StepState, StepStatus, Store,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Wraps a store whose calls block (see the module docs).
pub struct OffloadedStore(pub Arc<dyn Store>);

/// Runs `f` letting a multi-threaded runtime reschedule this worker's
/// other tasks; runs it directly anywhere else (a current-thread runtime
/// or no runtime), where `block_in_place` is not available.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Store for OffloadedStore {
    fn store_id(&self) -> Result<Option<String>, StateError> {
        blocking(|| self.0.store_id())
    }
    fn holder_id(&self) -> Option<String> {
        self.0.holder_id()
    }
    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError> {
        blocking(|| self.0.begin_run(new))
    }
    fn current_run(&self) -> Result<Option<RunInfo>, StateError> {
        blocking(|| self.0.current_run())
    }
    fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        blocking(|| self.0.latest_run())
    }
    fn run(&self, run: RunId) -> Result<RunInfo, StateError> {
        blocking(|| self.0.run(run))
    }
    fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        blocking(|| self.0.runs())
    }
    fn plan(&self, run: RunId) -> Result<Value, StateError> {
        blocking(|| self.0.plan(run))
    }
    fn plan_json(&self, run: RunId) -> Result<String, StateError> {
        blocking(|| self.0.plan_json(run))
    }
    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        blocking(|| self.0.resume_run(run))
    }
    fn reopen_for_rollback(&self, run: RunId) -> Result<RunInfo, StateError> {
        blocking(|| self.0.reopen_for_rollback(run))
    }
    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError> {
        blocking(|| self.0.finish_run(run, outcome))
    }
    fn pause_run(&self, run: RunId, after: &str) -> Result<RunInfo, StateError> {
        blocking(|| self.0.pause_run(run, after))
    }
    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError> {
        blocking(|| self.0.step_states(run))
    }
    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError> {
        blocking(|| self.0.step_state(run, step))
    }
    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        blocking(|| self.0.set_step_status(run, step, status, error))
    }
    fn begin_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        snapshots: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<StepState, StateError> {
        blocking(|| self.0.begin_step(run, step, status, snapshots))
    }
    fn finish_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        left: Vec<(SnapshotKey, Left)>,
    ) -> Result<StepState, StateError> {
        blocking(|| self.0.finish_step(run, step, status, left))
    }
    fn left_objects(&self, run: RunId, step: &str) -> Result<Vec<LeftObject>, StateError> {
        blocking(|| self.0.left_objects(run, step))
    }
    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        blocking(|| self.0.record_event(run, event))
    }
    fn record_progress(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        blocking(|| self.0.record_progress(run, event))
    }
    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError> {
        blocking(|| self.0.events(run, since))
    }
    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError> {
        blocking(|| self.0.put_snapshot_if_absent(run, step, key, object))
    }
    fn put_snapshots_if_absent(
        &self,
        run: RunId,
        step: &str,
        objects: Vec<(SnapshotKey, Option<Value>)>,
    ) -> Result<usize, StateError> {
        blocking(|| self.0.put_snapshots_if_absent(run, step, objects))
    }
    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError> {
        blocking(|| self.0.snapshot(run, step, key))
    }
    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError> {
        blocking(|| self.0.drop_snapshots(run, step))
    }
    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError> {
        blocking(|| self.0.replace_plan(run, fingerprint, plan, steps))
    }
    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError> {
        blocking(|| self.0.snapshots(run, filter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, RunKind};

    fn new_run() -> NewRun {
        NewRun {
            fingerprint: "sha256:x".into(),
            spec_name: "t".into(),
            kind: RunKind::Apply,
            plan: serde_json::json!({}),
            steps: vec!["a".into()],
        }
    }

    #[test]
    fn delegates_outside_a_runtime() {
        let s = OffloadedStore(Arc::new(MemoryStore::new()));
        let run = s.begin_run(new_run()).unwrap();
        assert_eq!(s.latest_run().unwrap().unwrap().id, run.id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delegates_on_a_multi_threaded_runtime() {
        let s = OffloadedStore(Arc::new(MemoryStore::new()));
        let run = s.begin_run(new_run()).unwrap();
        s.set_step_status(run.id, "a", StepStatus::Running, None)
            .unwrap();
        assert_eq!(
            s.step_state(run.id, "a").unwrap().status,
            StepStatus::Running
        );
    }

    #[tokio::test]
    async fn delegates_on_a_current_thread_runtime() {
        let s = OffloadedStore(Arc::new(MemoryStore::new()));
        assert!(s.latest_run().unwrap().is_none());
    }
}
