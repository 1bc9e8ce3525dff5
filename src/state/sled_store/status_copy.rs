//! Keeping the status copy (`state::mirror`) current while this process holds the store, so `migrate status`
//! can read it.
//!
//! A step transition (or a run's end) is appended to the copy before the store call returns: one line, not a
//! rewrite of every step (`mirror::Copy`). The whole copy is written afresh, reading the store, when a run
//! starts, is reopened, replanned or pulled in, also before the call returns. A resume defers that rewrite to a
//! thread of its own, so the run's first action does not wait for it; transitions meanwhile are queued and
//! appended after it. Until then a reader sees the copy as it was (kept current, by the same appends, up to the
//! last transition of whoever held the store before). The copy is advisory: its failures are logged, never the
//! run's. Closing the store waits for a deferred rewrite to finish.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sled::Tree;

use crate::state::error::StateError;
use crate::state::mirror;
use crate::state::model::{RunId, StepState};

/// The store's handle on the copy.
pub(super) struct StatusCopy {
    inner: Arc<Mutex<Inner>>,
    source: Arc<Source>,
    /// The thread writing a deferred rewrite, while there is one.
    deferred: Mutex<Option<JoinHandle<()>>>,
}

/// What the copy is written from: the store's trees (sled's handles are shared, not copies).
struct Source {
    dir: PathBuf,
    runs: Tree,
    steps: Tree,
    plans: Tree,
}

struct Inner {
    /// The files' writer; away (`None`) while a deferred rewrite has it.
    copy: Option<mirror::Copy>,
    /// Changes made while it is away: the run whose record changed, and the steps, as their transitions left
    /// them (appended in this order, each step's latest last).
    queued_run: Option<RunId>,
    queued_steps: BTreeMap<String, StepState>,
}

impl StatusCopy {
    pub(super) fn new(dir: PathBuf, runs: Tree, steps: Tree, plans: Tree) -> StatusCopy {
        StatusCopy {
            inner: Arc::new(Mutex::new(Inner {
                copy: Some(mirror::Copy::new(&dir)),
                queued_run: None,
                queued_steps: BTreeMap::new(),
            })),
            source: Arc::new(Source {
                dir,
                runs,
                steps,
                plans,
            }),
            deferred: Mutex::new(None),
        }
    }

    /// Run `run` started, was reopened, replanned or pulled in: the copy is written afresh (with its plan when
    /// `plan`).
    pub(super) fn reload(&self, run: RunId, plan: bool) {
        self.finish_deferred();
        let mut inner = lock(&self.inner);
        if let Some(copy) = inner.copy.as_mut() {
            warn_on(&self.source, rewrite(&self.source, copy, run, plan));
        }
    }

    /// Run `run` resumed: as `reload`, on a thread of its own (see the module docs).
    pub(super) fn reload_later(&self, run: RunId, plan: bool) {
        self.finish_deferred();
        let Some(mut copy) = lock(&self.inner).copy.take() else {
            return;
        };
        let (inner, source) = (self.inner.clone(), self.source.clone());
        let spawned = std::thread::Builder::new()
            .name("status-copy".into())
            .spawn(move || {
                warn_on(&source, rewrite(&source, &mut copy, run, plan));
                let mut inner = lock(&inner);
                let steps = std::mem::take(&mut inner.queued_steps);
                if let Some(queued) = inner.queued_run.take() {
                    warn_on(&source, append(&source, &mut copy, queued, steps));
                }
                inner.copy = Some(copy);
            });
        match spawned {
            Ok(handle) => {
                *self.deferred.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            }
            Err(e) => {
                tracing::warn!(
                    "cannot refresh the status copy in {}: {e}",
                    self.source.dir.display()
                );
                // Lost with the closure: the next change writes a fresh copy.
                lock(&self.inner).copy = Some(mirror::Copy::new(&self.source.dir));
            }
        }
    }

    /// `step` of `run` is now `state`.
    pub(super) fn step(&self, run: RunId, step: &str, state: &StepState) {
        self.change(run, Some((step, state)));
    }

    /// The record of `run` changed (it ended, or was paused).
    pub(super) fn run(&self, run: RunId) {
        self.change(run, None);
    }

    fn change(&self, run: RunId, step: Option<(&str, &StepState)>) {
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let changed: BTreeMap<String, StepState> = step
            .map(|(step, state)| (step.to_string(), state.clone()))
            .into_iter()
            .collect();
        match inner.copy.as_mut() {
            Some(copy) => warn_on(&self.source, append(&self.source, copy, run, changed)),
            None => {
                inner.queued_run = Some(run);
                inner.queued_steps.extend(changed);
            }
        }
    }

    /// Waits for a deferred rewrite (and what was queued behind it) to be written.
    pub(super) fn finish_deferred(&self) {
        let handle = self
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::warn!(
                "the status copy's writer in {} stopped with a panic",
                self.source.dir.display()
            );
            lock(&self.inner).copy = Some(mirror::Copy::new(&self.source.dir));
        }
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends a change of `run` (its record as it is now, and `changed`), or writes the copy afresh when it shows
/// another run or could not append.
fn append(
    source: &Source,
    copy: &mut mirror::Copy,
    run: RunId,
    changed: BTreeMap<String, StepState>,
) -> Result<(), String> {
    if copy.run() == Some(run) {
        let info = read(super::read_run(&source.dir, &source.runs, run))?;
        if copy.change(info, changed).is_ok() {
            return Ok(());
        }
    }
    rewrite(source, copy, run, false)
}

/// Writes the copy of `run` afresh from the store (its plan too when `plan`).
fn rewrite(source: &Source, copy: &mut mirror::Copy, run: RunId, plan: bool) -> Result<(), String> {
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

fn warn_on(source: &Source, result: Result<(), String>) {
    if let Err(e) = result {
        tracing::warn!(
            "cannot refresh the status copy in {}: {e}",
            source.dir.display()
        );
    }
}
