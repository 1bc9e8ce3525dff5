//! `migrate state pull`: a Kubernetes store's records copied into a new state directory.
//!
//! Read only: no Lease is taken and nothing is written to the cluster. Refused while a run holds the store's
//! Lease (checked before and after reading the log): that run goes on changing the mesh and its records, so a
//! copy would be out of date at once, and resuming it would act on the mesh beside the live run. Whatever the
//! copy reads is a prefix of the log, whole entries only, which is a state a SIGKILL could have left: resumable
//! and rollbackable like any checkpoint.

use std::path::Path;

use super::{KubeLocation, KubeStore, LEASE_NAME, lease};
use crate::state::error::StateError;
use crate::state::memory::MemoryStore;
use crate::state::sled_store::SledStore;

/// What `pull` copied.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Runs copied.
    pub runs: usize,
    /// SHA-256 of every record, the same read from both stores.
    pub digest: String,
}

/// Copies every run of the store at `location` (plans, steps, journals, snapshots, what steps left) into the
/// state directory `dir`, which must not exist or be empty (it is created 0700, its files 0600), then opens the
/// directory again and compares every record with what was read. On failure `dir` is left as it was found.
pub fn pull(
    location: &KubeLocation,
    kubeconfig: Option<&Path>,
    dir: &Path,
) -> Result<Pulled, StateError> {
    let existed = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StateError::InvalidInput(format!(
                    "{} exists and is not empty; pull into a new directory",
                    dir.display()
                )));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(StateError::Io {
                dir: dir.to_path_buf(),
                op: "read",
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let text = location.to_string();
    let refuse_if_held = |store: &KubeStore| -> Result<(), StateError> {
        match store.lease_holder()? {
            Some(h) => Err(h.refusal(&text, LEASE_NAME)),
            None => Ok(()),
        }
    };
    refuse_if_held(&KubeStore::connect(location, kubeconfig)?)?;
    let (source, holder) = KubeStore::open_read_only(location, kubeconfig)?;
    if let Some(h) = holder {
        return Err(h.refusal(&text, LEASE_NAME));
    }
    let copy = MemoryStore::copied_from(&source)?;
    drop(source);
    let want = copy.digest();
    match fill(dir, &copy, &want) {
        Ok(runs) => Ok(Pulled { runs, digest: want }),
        Err(e) => {
            clear(dir, existed);
            Err(e)
        }
    }
}

fn fill(dir: &Path, copy: &MemoryStore, want: &str) -> Result<usize, StateError> {
    let runs = SledStore::open(dir)?.store.import(copy)?;
    // Closed (the directory's lock released) and opened again: the read-back goes through the open checks.
    let back = SledStore::open(dir)?.store;
    let got = MemoryStore::copied_from(&back)?.digest();
    if got != want {
        return Err(StateError::InvalidInput(format!(
            "{} read back differs from the store (sha256 {got} against {want})",
            dir.display()
        )));
    }
    Ok(runs)
}

/// Puts `dir` back as it was: gone, or empty.
fn clear(dir: &Path, existed: bool) {
    let result = if existed {
        std::fs::read_dir(dir).and_then(|entries| {
            for e in entries {
                let path = e?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        })
    } else {
        std::fs::remove_dir_all(dir)
    };
    if let Err(e) = result {
        tracing::warn!("{}: cannot clear the partial copy: {e}", dir.display());
    }
}

impl KubeStore {
    /// Who holds the store's Lease now, if anyone does and has not let it lapse.
    pub(super) fn lease_holder(&self) -> Result<Option<lease::LeaseHolder>, StateError> {
        let (leases, loc) = (self.leases.clone(), self.location.clone());
        self.worker
            .run(async move { lease::read(&leases, LEASE_NAME).await })
            .ok_or_else(|| self.gone())?
            .map_err(|e| StateError::Kube {
                location: loc,
                op: "read the Lease",
                source: Box::new(e),
            })
    }
}
