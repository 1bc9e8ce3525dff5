//! Keeping the status copy (`state::mirror`) current while this process
//! holds the store, so `migrate status` can read it.

use super::SledStore;
use crate::state::Store;
use crate::state::mirror;
use crate::state::model::RunId;

impl SledStore {
    /// Refreshes the copy `migrate status` reads while this process holds
    /// the store. Advisory: a failure is logged, never fatal to the run.
    ///
    /// Coalesced: callers record what to write and return if another thread
    /// is writing; that writer writes again until nothing is pending, so the
    /// last state always lands and parallel steps do not queue behind it.
    /// `plan`: the plan's JSON text, when it changed.
    pub(super) fn mirror(&self, run: RunId, plan: Option<String>) {
        {
            let mut pending = self
                .mirror_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.run = Some(run);
            if let Some(plan) = plan {
                pending.plan = Some(plan);
            }
        }
        loop {
            let Ok(_writer) = self.mirror_lock.try_lock() else {
                // The writer will see what we recorded.
                return;
            };
            loop {
                let (run, plan) = {
                    let mut pending = self
                        .mirror_pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    match pending.run.take() {
                        Some(run) => (run, pending.plan.take()),
                        None => break,
                    }
                };
                self.write_mirror(run, plan.as_ref());
            }
            drop(_writer);
            // Something recorded between our last look and the unlock is ours to write.
            let again = self
                .mirror_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .run
                .is_some();
            if !again {
                return;
            }
        }
    }

    fn write_mirror(&self, run: RunId, plan: Option<&String>) {
        let result = (|| -> Result<(), String> {
            if let Some(plan) = plan {
                mirror::write_plan(&self.dir, plan).map_err(|e| e.to_string())?;
            }
            let info = self.read_run(run).map_err(|e| e.to_string())?;
            let states = self.step_states(run).map_err(|e| e.to_string())?;
            mirror::write_state(&self.dir, &info, &states).map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(
                "cannot refresh the status copy in {}: {e}",
                self.dir.display()
            );
        }
    }
}
