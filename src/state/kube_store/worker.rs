//! The store's own runtime: the `Store` trait is blocking and may be called from any thread, an async runtime's
//! workers included, so each Kubernetes call is spawned on this runtime and waited for on a channel (never
//! `block_on`, which panics inside another runtime).

use std::future::Future;

/// A small multi-threaded runtime that only this store's requests use.
pub struct Worker {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Worker {
    /// Starts the runtime.
    pub fn start() -> std::io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("migrate-state")
            .enable_all()
            .build()?;
        Ok(Worker {
            runtime: Some(runtime),
        })
    }

    /// Runs `f` on the store's runtime and waits for its answer; `None` if the runtime is gone.
    pub fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it wind down on its own.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Worker {
    /// Starts `f` on the store's runtime without waiting for it (clean-up whose failure costs nothing).
    pub fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        if let Some(rt) = &self.runtime {
            rt.spawn(f);
        }
    }
}
