//! Keeping the status copy (`state::mirror`) current while this process holds the store, so `migrate status`
//! can read it.
//!
//! Off the writers' path: a store call only notes what changed and returns; one thread of the store's own writes
//! the copy, with whatever changed since its last write (so a burst of transitions costs one write). It reads
//! the store for a whole copy only when a run starts, resumes, is reopened or replanned; otherwise it appends the
//! steps that changed (`mirror::Copy`). The copy is advisory: its failures are logged, never the run's. Closing
//! the store waits for the writer to write what is pending, so the copy ends with the store's last state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sled::Tree;

use crate::state::error::StateError;
use crate::state::mirror;
use crate::state::model::{RunId, StepState};

/// The store's handle on the copy's writer.
pub(super) struct StatusCopy {
    shared: Arc<Shared>,
    source: Source,
    /// Started on the first change.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the writer reads: the store's trees (sled's handles are shared, not copies).
#[derive(Clone)]
struct Source {
    dir: PathBuf,
    runs: Tree,
    steps: Tree,
    plans: Tree,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// What changed since the writer last looked.
#[derive(Default)]
struct Pending {
    /// Write the whole copy of this run afresh from the store (and its plan, when `plan`).
    reload: Option<(RunId, bool)>,
    /// The run whose record changed.
    run: Option<RunId>,
    /// The steps that changed, as their transitions left them.
    steps: BTreeMap<String, StepState>,
    /// The store is closing: write what is pending, then stop.
    stop: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.reload.is_none() && self.run.is_none()
    }
}

impl StatusCopy {
    pub(super) fn new(dir: PathBuf, runs: Tree, steps: Tree, plans: Tree) -> StatusCopy {
        StatusCopy {
            shared: Arc::default(),
            source: Source {
                dir,
                runs,
                steps,
                plans,
            },
            writer: Mutex::new(None),
        }
    }

    /// Run `run` started, resumed, was reopened or replanned: the copy is written afresh (with its plan when
    /// `plan`).
    pub(super) fn reload(&self, run: RunId, plan: bool) {
        self.note(|p| {
            let plan = plan || p.reload.is_some_and(|(_, plan)| plan);
            p.reload = Some((run, plan));
            // Older than what the writer will read.
            p.run = None;
            p.steps.clear();
        });
    }

    /// `step` of `run` is now `state`.
    pub(super) fn step(&self, run: RunId, step: &str, state: &StepState) {
        self.note(|p| {
            p.run = Some(run);
            p.steps.insert(step.to_string(), state.clone());
        });
    }

    /// The record of `run` changed (it ended, or was paused).
    pub(super) fn run(&self, run: RunId) {
        self.note(|p| p.run = Some(run));
    }

    fn note(&self, change: impl FnOnce(&mut Pending)) {
        change(&mut lock(&self.shared.pending));
        self.shared.wake.notify_one();
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            let (shared, source) = (self.shared.clone(), self.source.clone());
            let spawned = std::thread::Builder::new()
                .name("status-copy".into())
                .spawn(move || write_until_stopped(&shared, &source));
            match spawned {
                Ok(handle) => *writer = Some(handle),
                Err(e) => tracing::warn!(
                    "cannot keep the status copy in {}: {e}",
                    self.source.dir.display()
                ),
            }
        }
    }

    /// Lets the writer write what is pending, and waits for it to stop.
    pub(super) fn close(&self) {
        lock(&self.shared.pending).stop = true;
        self.shared.wake.notify_one();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = writer
            && handle.join().is_err()
        {
            tracing::warn!(
                "the status copy's writer in {} stopped with a panic",
                self.source.dir.display()
            );
        }
    }
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer's loop: waits for changes, writes them, until the store closes.
fn write_until_stopped(shared: &Shared, source: &Source) {
    let mut copy = mirror::Copy::new(&source.dir);
    loop {
        let batch = {
            let mut pending = lock(&shared.pending);
            while pending.is_empty() && !pending.stop {
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if pending.is_empty() {
                return;
            }
            let stop = pending.stop;
            std::mem::replace(
                &mut *pending,
                Pending {
                    stop,
                    ..Pending::default()
                },
            )
        };
        if let Err(e) = write(source, &mut copy, batch) {
            tracing::warn!(
                "cannot refresh the status copy in {}: {e}",
                source.dir.display()
            );
        }
    }
}

/// Writes one batch of changes: afresh when asked or when the copy shows another run (or failed before), else
/// by appending the steps that changed.
fn write(source: &Source, copy: &mut mirror::Copy, batch: Pending) -> Result<(), String> {
    let afresh = match (batch.reload, batch.run) {
        (Some((run, plan)), _) => Some((run, plan)),
        (None, Some(run)) if copy.run() != Some(run) => Some((run, false)),
        (None, Some(run)) => {
            let info = read(super::read_run(&source.dir, &source.runs, run))?;
            match copy.change(info, batch.steps) {
                Ok(()) => None,
                // Whatever the files hold now, a fresh copy replaces them.
                Err(_) => Some((run, false)),
            }
        }
        (None, None) => None,
    };
    let Some((run, plan)) = afresh else {
        return Ok(());
    };
    if plan {
        let text = read(super::records::read_plan_text(
            &source.dir,
            &source.plans,
            run,
        ))?;
        copy.write_plan(&text).map_err(|e| e.to_string())?;
    }
    let info = read(super::read_run(&source.dir, &source.runs, run))?;
    let states = read(super::records::read_steps(&source.dir, &source.steps, run))?;
    copy.reset(info, states).map_err(|e| e.to_string())
}

fn read<T>(result: Result<T, StateError>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}
