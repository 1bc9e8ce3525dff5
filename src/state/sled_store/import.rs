//! Filling an empty state directory with every record of another store (`migrate state pull`): one transaction,
//! so the directory holds all of it or none.

use sled::Transactional;

use super::encoding::{
    SnapshotRecord, abort, encode, encode_plan, event_key, snapshot_key, step_key,
};
use super::{META_NEXT_RUN, SledStore};
use crate::state::Store;
use crate::state::error::StateError;
use crate::state::memory::MemoryStore;

impl SledStore {
    /// Writes every run of `from` (plan, steps, journal, snapshots, what steps left) into this store, which must
    /// hold no run yet; flushed before it returns. Returns how many runs it wrote.
    pub fn import(&self, from: &MemoryStore) -> Result<usize, StateError> {
        if let Some(run) = self.latest_run()? {
            return Err(StateError::InvalidInput(format!(
                "{} already holds runs (the latest is {}); pull only into an empty directory",
                self.dir.display(),
                run.id
            )));
        }
        type Rows = Vec<(Vec<u8>, Vec<u8>)>;
        let (mut runs, mut plans, mut steps, mut events, mut snapshots, mut left): (
            Rows,
            Rows,
            Rows,
            Rows,
            Rows,
            Rows,
        ) = Default::default();
        let mut next_run = 1u64;
        let image = from.image();
        for delta in &image {
            let id = delta.info.id;
            next_run = next_run.max(id.0 + 1);
            runs.push((id.0.to_be_bytes().to_vec(), encode(&delta.info)?));
            if let Some(plan) = &delta.plan {
                plans.push((id.0.to_be_bytes().to_vec(), encode_plan(plan)?));
            }
            for (step, state) in &delta.steps {
                steps.push((step_key(id, step), encode(state)?));
            }
            for e in &delta.events {
                events.push((event_key(id, e.seq).to_vec(), encode(e)?));
            }
            for (step, taken) in &delta.snapshots {
                for t in taken {
                    let record = SnapshotRecord {
                        key: t.key.clone(),
                        step: step.clone(),
                        taken: t.taken,
                        object: t.object.clone(),
                        forgotten: None,
                    };
                    snapshots.push((snapshot_key(id, step, &t.key), encode(&record)?));
                }
            }
            for (step, objects) in &delta.left {
                for l in objects {
                    left.push((snapshot_key(id, step, &l.key), encode(l)?));
                }
            }
        }
        // The counter as `begin_run` stores it.
        let counter = encode(&next_run)?;
        (
            &self.meta,
            &self.runs,
            &self.plans,
            &self.steps,
            &self.events,
            &self.snapshots,
            &self.left,
        )
            .transaction(|(meta, r, p, st, ev, sn, lf)| {
                if r.get(1u64.to_be_bytes())?.is_some() {
                    return abort(StateError::InvalidInput(
                        "the directory gained a run while it was being filled".into(),
                    ));
                }
                meta.insert(META_NEXT_RUN, counter.clone())?;
                for (tree, rows) in [
                    (r, &runs),
                    (p, &plans),
                    (st, &steps),
                    (ev, &events),
                    (sn, &snapshots),
                    (lf, &left),
                ] {
                    for (k, v) in rows {
                        tree.insert(k.as_slice(), v.as_slice())?;
                    }
                }
                Ok(())
            })
            .map_err(self.tx_err("copy runs in"))?;
        // Indexed from the journal just written (and checked against it), as opening would.
        for delta in &image {
            self.check_run(&delta.info)?;
        }
        self.flush()?;
        self.save_high_water()?;
        if let Some(latest) = image.last() {
            self.status.reload(latest.info.id, latest.plan.is_some());
        }
        Ok(image.len())
    }
}
