//! `migrate state forget-snapshots`'s output: what rollback will no longer restore (objects named, never
//! their content), and what was removed.

use crate::state::{HeldSnapshot, Timestamp};
use std::path::Path;

/// One object a rollback would put back: cluster, kind, namespace/name, and whose snapshot it is.
fn line(h: &HeldSnapshot) -> String {
    let o = &h.key.object;
    let name = match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    };
    format!(
        "  {} {} {name}  (run {}, step {}, {})",
        h.key.cluster, o.kind, h.run, h.step, h.status
    )
}

/// Refused without `--yes`: the snapshots a rollback could still need.
pub fn refused(dir: &Path, needed: &[HeldSnapshot]) {
    say!(
        "error: a rollback could still need {} snapshot(s) in {}; nothing was changed. After forget-snapshots, \
         rollback can no longer restore:",
        needed.len(),
        dir.display()
    );
    for h in needed {
        say!("{}", line(h));
    }
    say!(
        "hint: once the migration is signed off, run `migrate state forget-snapshots --yes --state-dir {}`; or undo \
         it first with `migrate rollback --to phase0`",
        dir.display()
    );
}

/// Done: how many payloads were removed, and what rollback can no longer restore.
pub fn forgotten(dir: &Path, all: &[HeldSnapshot], needed: &[HeldSnapshot], on: Timestamp) {
    tell!(
        "forgot {} snapshot payload(s) in {} on {on}; the database was rewritten, so no copy of them remains on disk",
        all.len(),
        dir.display()
    );
    if !needed.is_empty() {
        tell!("rollback can no longer restore:");
        for h in needed {
            tell!("{}", line(h));
        }
    }
}

/// `state push` copied the directory's runs and read them back the same.
pub fn pushed(dir: &Path, to: &str, runs: usize, digest: &str) {
    tell!(
        "pushed {runs} run(s) from {} to {to}, read back identical (records sha256 {}); from now on use \
         --state {to}, everywhere",
        dir.display(),
        &digest[..12.min(digest.len())]
    );
}

/// `state pull` copied the store's runs into a directory and read them back the same.
pub fn pulled(from: &str, dir: &Path, runs: usize, digest: &str) {
    tell!(
        "pulled {runs} run(s) from {from} into {}, read back identical (records sha256 {}); the store in the \
         cluster is unchanged: use one of the two from now on, not both",
        dir.display(),
        &digest[..12.min(digest.len())]
    );
}
