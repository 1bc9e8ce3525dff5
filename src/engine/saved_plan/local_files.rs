//! The files on this machine a saved plan's CA work reads, as they were:
//! a root to import, and what already lies under certDir (an existing root
//! or intermediate is reused rather than made again, so a file put there
//! since the plan was saved changes what the plan does). Each is kept as
//! the SHA-256 of its content, or its absence; never the content (a key's
//! hash does not give the key).

use crate::ca::{CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT, ROOT_KEY};
use crate::plan::{Action, LocalOp, Plan};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The CA files a directory of certDir may hold.
const CA_FILES: [&str; 5] = [ROOT_CERT, ROOT_KEY, CA_CERT, CA_KEY, CERT_CHAIN];

/// One local file as the plan found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFingerprint {
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of its content (absent: there was no file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Every local file `plan` reads, sorted: the files its `local` actions
/// name, and the CA files of every directory they read or write.
pub fn watched(plan: &Plan) -> Vec<PathBuf> {
    let mut out = BTreeSet::new();
    let dir = |d: &Path, out: &mut BTreeSet<PathBuf>| {
        for f in CA_FILES {
            out.insert(d.join(f));
        }
    };
    for step in &plan.steps {
        for action in step.forward.iter().chain(&step.finally) {
            let Action::Local { op } = action else {
                continue;
            };
            match op {
                LocalOp::FetchLiveRoot { dir: d, .. } | LocalOp::GenerateRoot { dir: d, .. } => {
                    dir(d, &mut out)
                }
                LocalOp::ImportRoot { cert, key, dir: d } => {
                    out.insert(cert.clone());
                    out.insert(key.clone());
                    dir(d, &mut out);
                }
                LocalOp::SignIntermediate {
                    root_dir,
                    dir: d,
                    trusted_roots,
                    ..
                } => {
                    dir(root_dir, &mut out);
                    dir(d, &mut out);
                    out.extend(trusted_roots.iter().cloned());
                }
                LocalOp::BundleCacerts {
                    signer_dir,
                    dir: d,
                    trusted_roots,
                    ..
                } => {
                    dir(signer_dir, &mut out);
                    dir(d, &mut out);
                    out.extend(trusted_roots.iter().cloned());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// `path` as it is now. A file that cannot be read (other than absent) is
/// an error: the plan could not read it either.
pub fn read(path: &Path) -> Result<FileFingerprint, std::io::Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(FileFingerprint {
            path: path.to_path_buf(),
            sha256: Some(hex::encode(Sha256::digest(&bytes))),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileFingerprint {
            path: path.to_path_buf(),
            sha256: None,
        }),
        Err(e) => Err(e),
    }
}

/// How `now` differs from `then`, if it does.
pub fn compare(then: &FileFingerprint, now: &FileFingerprint) -> Option<&'static str> {
    match (&then.sha256, &now.sha256) {
        (None, None) => None,
        (None, Some(_)) => Some("created"),
        (Some(_), None) => Some("deleted"),
        (Some(a), Some(b)) if a != b => Some("content changed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_as_a_hash_and_compared_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(ROOT_KEY);
        let absent = read(&key).unwrap();
        assert_eq!(absent.sha256, None);
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nsecret\n").unwrap();
        let then = read(&key).unwrap();
        assert!(!serde_json::to_string(&then).unwrap().contains("secret"));
        assert_eq!(compare(&absent, &then), Some("created"));
        assert_eq!(compare(&then, &read(&key).unwrap()), None);
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nother\n").unwrap();
        assert_eq!(
            compare(&then, &read(&key).unwrap()),
            Some("content changed")
        );
        std::fs::remove_file(&key).unwrap();
        assert_eq!(compare(&then, &read(&key).unwrap()), Some("deleted"));
    }
}
