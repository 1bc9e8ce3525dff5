//! `Store` in memory, with the same rules as the sled store (both apply `rules`); for tests and for measuring
//! what durability costs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use super::Store;
use super::error::StateError;
use super::model::{
    Event, Left, LeftObject, NewEvent, NewRun, Outcome, RunId, RunInfo, Snapshot, SnapshotFilter,
    SnapshotKey, StepState, StepStatus, Timestamp,
};
use super::rules;

/// A `Store` in memory, with the rules of the sled store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: BTreeMap<RunId, RunData>,
}

struct RunData {
    info: RunInfo,
    plan: Value,
    steps: BTreeMap<String, StepState>,
    /// By (step, key).
    snapshots: BTreeMap<(String, SnapshotKey), Snapshot>,
    /// What each step left, by (step, key).
    left: BTreeMap<(String, SnapshotKey), LeftObject>,
    events: Vec<Event>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave a half-applied change: each method mutates only after validating.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn get(&self, run: RunId) -> Result<&RunData, StateError> {
        self.runs.get(&run).ok_or(StateError::UnknownRun { run })
    }

    fn get_mut(&mut self, run: RunId) -> Result<&mut RunData, StateError> {
        self.runs
            .get_mut(&run)
            .ok_or(StateError::UnknownRun { run })
    }

    fn latest(&self) -> Option<&RunInfo> {
        self.runs.values().next_back().map(|r| &r.info)
    }
}

impl RunData {
    fn journal(&mut self, event: NewEvent, now: Timestamp) -> u64 {
        let e = rules::next_event(&mut self.info, event, now);
        let seq = e.seq;
        self.events.push(e);
        seq
    }
}

impl Store for MemoryStore {
    fn begin_run(&self, new: NewRun) -> Result<RunInfo, StateError> {
        rules::validate_new_run(&new)?;
        let mut inner = self.lock();
        rules::check_can_begin(inner.latest())?;
        let id = RunId(inner.latest().map_or(1, |r| r.id.0 + 1));
        let now = Timestamp::now();
        let mut data = RunData {
            info: rules::new_run_info(id, &new, now),
            plan: new.plan.clone(),
            steps: new
                .steps
                .iter()
                .map(|s| (s.clone(), StepState::pending()))
                .collect(),
            snapshots: BTreeMap::new(),
            left: BTreeMap::new(),
            events: Vec::new(),
        };
        data.journal(rules::run_started_event(&new), now);
        let info = data.info.clone();
        inner.runs.insert(id, data);
        Ok(info)
    }

    fn current_run(&self) -> Result<Option<RunInfo>, StateError> {
        Ok(rules::current(self.lock().latest().cloned()))
    }

    fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        Ok(self.lock().latest().cloned())
    }

    fn run(&self, run: RunId) -> Result<RunInfo, StateError> {
        Ok(self.lock().get(run)?.info.clone())
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        Ok(self.lock().runs.values().map(|r| r.info.clone()).collect())
    }

    fn plan(&self, run: RunId) -> Result<Value, StateError> {
        Ok(self.lock().get(run)?.plan.clone())
    }

    fn plan_json(&self, run: RunId) -> Result<String, StateError> {
        // Written from the held plan: no copy of a large plan first.
        Ok(self.lock().get(run)?.plan.to_string())
    }

    fn resume_run(&self, run: RunId) -> Result<RunInfo, StateError> {
        let mut inner = self.lock();
        let latest = inner
            .latest()
            .map(|r| r.id)
            .ok_or(StateError::UnknownRun { run })?;
        let data = inner.get_mut(run)?;
        let (info, event) = rules::resume(&data.info, latest)?;
        data.info = info;
        data.journal(event, Timestamp::now());
        Ok(data.info.clone())
    }

    fn reopen_for_rollback(&self, run: RunId) -> Result<RunInfo, StateError> {
        let mut inner = self.lock();
        let later_running = inner
            .runs
            .values()
            .find(|r| r.info.id > run && r.info.outcome == Outcome::Running)
            .map(|r| r.info.id);
        let data = inner.get_mut(run)?;
        let (info, event) = rules::reopen_for_rollback(&data.info, later_running)?;
        data.info = info;
        data.journal(event, Timestamp::now());
        Ok(data.info.clone())
    }

    fn finish_run(&self, run: RunId, outcome: Outcome) -> Result<RunInfo, StateError> {
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        let now = Timestamp::now();
        let (info, event) = rules::finish(&data.info, outcome, now)?;
        data.info = info;
        data.journal(event, now);
        Ok(data.info.clone())
    }

    fn pause_run(&self, run: RunId, after: &str) -> Result<RunInfo, StateError> {
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        let now = Timestamp::now();
        let (info, event) = rules::pause(&data.info, after, now)?;
        data.info = info;
        data.journal(event, now);
        Ok(data.info.clone())
    }

    fn step_states(&self, run: RunId) -> Result<BTreeMap<String, StepState>, StateError> {
        Ok(self.lock().get(run)?.steps.clone())
    }

    fn step_state(&self, run: RunId, step: &str) -> Result<StepState, StateError> {
        let inner = self.lock();
        inner
            .get(run)?
            .steps
            .get(step)
            .cloned()
            .ok_or_else(|| StateError::UnknownStep {
                run,
                step: step.to_string(),
            })
    }

    fn set_step_status(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        error: Option<&str>,
    ) -> Result<StepState, StateError> {
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        let old = data
            .steps
            .get(step)
            .ok_or_else(|| StateError::UnknownStep {
                run,
                step: step.to_string(),
            })?;
        let now = Timestamp::now();
        let (new, event) = rules::step_transition(&data.info, step, old, status, error, now)?;
        data.steps.insert(step.to_string(), new.clone());
        data.journal(event, now);
        Ok(new)
    }

    fn finish_step(
        &self,
        run: RunId,
        step: &str,
        status: StepStatus,
        left: Vec<(SnapshotKey, Left)>,
    ) -> Result<StepState, StateError> {
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        let old = data
            .steps
            .get(step)
            .ok_or_else(|| StateError::UnknownStep {
                run,
                step: step.to_string(),
            })?;
        for (key, _) in &left {
            rules::validate_key(key)?;
        }
        let now = Timestamp::now();
        let (new, event) = rules::step_transition(&data.info, step, old, status, None, now)?;
        data.left.retain(|(s, _), _| s != step);
        for (key, left) in left {
            let record = LeftObject {
                key: key.clone(),
                step: step.to_string(),
                recorded: now,
                left,
            };
            data.left.insert((step.to_string(), key), record);
        }
        data.steps.insert(step.to_string(), new.clone());
        data.journal(event, now);
        Ok(new)
    }

    fn left_objects(&self, run: RunId, step: &str) -> Result<Vec<LeftObject>, StateError> {
        let inner = self.lock();
        Ok(inner
            .get(run)?
            .left
            .iter()
            .filter(|((s, _), _)| s == step)
            .map(|(_, l)| l.clone())
            .collect())
    }

    fn record_event(&self, run: RunId, event: NewEvent) -> Result<u64, StateError> {
        let mut inner = self.lock();
        Ok(inner.get_mut(run)?.journal(event, Timestamp::now()))
    }

    fn events(&self, run: RunId, since: u64) -> Result<Vec<Event>, StateError> {
        let inner = self.lock();
        Ok(inner
            .get(run)?
            .events
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect())
    }

    fn put_snapshot_if_absent(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
        object: Option<Value>,
    ) -> Result<bool, StateError> {
        rules::validate_key(key)?;
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        rules::require_running(&data.info)?;
        if !data.steps.contains_key(step) {
            return Err(StateError::UnknownStep {
                run,
                step: step.to_string(),
            });
        }
        let id = (step.to_string(), key.clone());
        if data.snapshots.contains_key(&id) {
            return Ok(false);
        }
        let now = Timestamp::now();
        let event = rules::snapshot_event(step, key, object.is_some());
        data.snapshots.insert(
            id,
            Snapshot {
                key: key.clone(),
                step: step.to_string(),
                taken: now,
                object,
            },
        );
        data.journal(event, now);
        Ok(true)
    }

    fn snapshot(
        &self,
        run: RunId,
        step: &str,
        key: &SnapshotKey,
    ) -> Result<Option<Snapshot>, StateError> {
        Ok(self
            .lock()
            .get(run)?
            .snapshots
            .get(&(step.to_string(), key.clone()))
            .cloned())
    }

    fn drop_snapshots(&self, run: RunId, step: &str) -> Result<usize, StateError> {
        let mut inner = self.lock();
        let data = inner.get_mut(run)?;
        rules::require_running(&data.info)?;
        let before = data.snapshots.len();
        data.snapshots.retain(|(s, _), _| s != step);
        let dropped = before - data.snapshots.len();
        if dropped > 0 {
            data.journal(
                rules::snapshots_dropped_event(step, dropped),
                Timestamp::now(),
            );
        }
        Ok(dropped)
    }

    fn replace_plan(
        &self,
        run: RunId,
        fingerprint: &str,
        plan: Value,
        steps: &[String],
    ) -> Result<RunInfo, StateError> {
        let mut inner = self.lock();
        rules::check_can_replace_plan(inner.latest().map(|r| r.id), run)?;
        let data = inner.get_mut(run)?;
        let mut added = 0;
        for s in steps {
            if !data.steps.contains_key(s) {
                data.steps.insert(s.clone(), StepState::pending());
                added += 1;
            }
        }
        data.plan = plan;
        data.info.fingerprint = fingerprint.to_string();
        data.journal(
            rules::plan_replaced_event(fingerprint, added),
            Timestamp::now(),
        );
        Ok(data.info.clone())
    }

    fn snapshots(&self, run: RunId, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, StateError> {
        let inner = self.lock();
        Ok(inner
            .get(run)?
            .snapshots
            .values()
            .filter(|s| filter.cluster.as_ref().is_none_or(|c| *c == s.key.cluster))
            .filter(|s| filter.step.as_ref().is_none_or(|st| *st == s.step))
            .cloned()
            .collect::<Vec<_>>())
        .map(|mut v| {
            v.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.step.cmp(&b.step)));
            v
        })
    }
}

/// Records taken out and put back whole: how the Kubernetes backend writes transactions and replays them.
impl MemoryStore {
    /// The records of `run` that `scope` names.
    pub(super) fn delta(
        &self,
        run: RunId,
        scope: &super::delta::DeltaScope,
    ) -> Result<super::delta::RunDelta, StateError> {
        use super::delta::{RunDelta, SnapshotRecord};
        let inner = self.lock();
        let data = inner.get(run)?;
        let mut delta = RunDelta {
            info: data.info.clone(),
            plan: None,
            steps: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            left: BTreeMap::new(),
            events: data
                .events
                .iter()
                .filter(|e| e.seq > scope.events_after)
                .cloned()
                .collect(),
        };
        if scope.whole_plan {
            delta.plan = Some(data.plan.clone());
            delta.steps = data.steps.clone();
        }
        if let Some(step) = &scope.step
            && let Some(state) = data.steps.get(step)
        {
            delta.steps.insert(step.clone(), state.clone());
        }
        if let Some(step) = &scope.snapshots_of {
            let taken = data
                .snapshots
                .iter()
                .filter(|((s, _), _)| s == step)
                .map(|(_, snap)| SnapshotRecord {
                    key: snap.key.clone(),
                    taken: snap.taken,
                    object: snap.object.clone(),
                })
                .collect();
            delta.snapshots.insert(step.clone(), taken);
        }
        if let Some(step) = &scope.left_of {
            let left = data
                .left
                .iter()
                .filter(|((s, _), _)| s == step)
                .map(|(_, l)| l.clone())
                .collect();
            delta.left.insert(step.clone(), left);
        }
        Ok(delta)
    }

    /// Every record of every run, one delta per run, oldest first.
    pub(super) fn image(&self) -> Vec<super::delta::RunDelta> {
        let ids: Vec<RunId> = self.lock().runs.keys().copied().collect();
        let mut image = Vec::with_capacity(ids.len());
        for id in ids {
            let steps: Vec<String> = self
                .lock()
                .runs
                .get(&id)
                .map(|d| {
                    let mut s: Vec<String> = d.snapshots.keys().map(|(s, _)| s.clone()).collect();
                    s.extend(d.left.keys().map(|(s, _)| s.clone()));
                    s.sort();
                    s.dedup();
                    s
                })
                .unwrap_or_default();
            let scope = super::delta::DeltaScope {
                whole_plan: true,
                ..Default::default()
            };
            let Ok(mut whole) = self.delta(id, &scope) else {
                continue;
            };
            for step in steps {
                let part = super::delta::DeltaScope {
                    snapshots_of: Some(step.clone()),
                    left_of: Some(step),
                    events_after: u64::MAX,
                    ..Default::default()
                };
                if let Ok(d) = self.delta(id, &part) {
                    whole
                        .snapshots
                        .extend(d.snapshots.into_iter().filter(|(_, v)| !v.is_empty()));
                    whole
                        .left
                        .extend(d.left.into_iter().filter(|(_, v)| !v.is_empty()));
                }
            }
            image.push(whole);
        }
        image
    }

    /// Applies `delta`: the run is created or updated, what it names replaced. Its events must continue the
    /// run's journal (an event already there is skipped, a gap refused), so a log replays only in order.
    pub(super) fn apply_delta(&self, delta: super::delta::RunDelta) -> Result<(), StateError> {
        let mut inner = self.lock();
        let run = delta.info.id;
        let data = inner.runs.entry(run).or_insert_with(|| RunData {
            info: delta.info.clone(),
            plan: Value::Null,
            steps: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            left: BTreeMap::new(),
            events: Vec::new(),
        });
        let mut next = data.events.last().map_or(1, |e| e.seq + 1);
        for e in &delta.events {
            if e.seq < next {
                continue;
            }
            if e.seq != next {
                return Err(StateError::InvalidInput(format!(
                    "run {run}: journal entry {} follows {} (a gap)",
                    e.seq,
                    next - 1
                )));
            }
            next += 1;
        }
        data.info = delta.info;
        if let Some(plan) = delta.plan {
            data.plan = plan;
        }
        data.steps.extend(delta.steps);
        for (step, taken) in delta.snapshots {
            data.snapshots.retain(|(s, _), _| *s != step);
            for t in taken {
                let snap = Snapshot {
                    key: t.key.clone(),
                    step: step.clone(),
                    taken: t.taken,
                    object: t.object,
                };
                data.snapshots.insert((step.clone(), t.key), snap);
            }
        }
        for (step, left) in delta.left {
            data.left.retain(|(s, _), _| *s != step);
            for l in left {
                data.left.insert((step.clone(), l.key.clone()), l);
            }
        }
        let have = data.events.last().map_or(0, |e| e.seq);
        data.events
            .extend(delta.events.into_iter().filter(|e| e.seq > have));
        Ok(())
    }
}

impl MemoryStore {
    /// A copy of every record of `store`, read through the `Store` trait (to move a run between backends).
    pub fn copied_from(store: &dyn Store) -> Result<MemoryStore, StateError> {
        use super::delta::{RunDelta, SnapshotRecord};
        let copy = MemoryStore::new();
        for info in store.runs()? {
            let run = info.id;
            let steps = store.step_states(run)?;
            let mut snapshots: BTreeMap<String, Vec<SnapshotRecord>> = BTreeMap::new();
            for s in store.snapshots(run, &SnapshotFilter::default())? {
                snapshots
                    .entry(s.step.clone())
                    .or_default()
                    .push(SnapshotRecord {
                        key: s.key,
                        taken: s.taken,
                        object: s.object,
                    });
            }
            let mut left = BTreeMap::new();
            for step in steps.keys() {
                let l = store.left_objects(run, step)?;
                if !l.is_empty() {
                    left.insert(step.clone(), l);
                }
            }
            copy.apply_delta(RunDelta {
                plan: Some(store.plan(run)?),
                events: store.events(run, 0)?,
                info,
                steps,
                snapshots,
                left,
            })?;
        }
        Ok(copy)
    }

    /// SHA-256 (hex) of every record, to compare two stores' contents (snapshots included, never shown).
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let image = serde_json::to_vec(&self.image()).unwrap_or_default();
        hex::encode(Sha256::digest(image))
    }
}
