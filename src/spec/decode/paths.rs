//! Paths in a spec are the spec's, not the shell's: a relative `certDir` is
//! taken relative to the spec file's directory and made absolute, so that
//! the plan (and the run that records it) names the same directory from
//! wherever `migrate` runs.

use crate::spec::MeshMigration;
use std::path::{Component, Path, PathBuf};

/// Makes `spec`'s certDir absolute: a relative one is joined to `base` (the
/// spec file's directory; itself made absolute from the working directory).
pub(crate) fn resolve_cert_dir(spec: &mut MeshMigration, base: &Path) {
    let dir = &mut spec.spec.trust.cert_dir;
    if dir.is_absolute() {
        return;
    }
    *dir = clean(&absolute(base).join(&*dir));
}

/// The directory a spec file's relative paths start from.
pub(crate) fn spec_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Drops `.` components (`/a/./b` is `/a/b`); `..` stays (a symlinked
/// directory would make its lexical removal wrong).
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_directory_of_a_bare_name_is_the_working_directory() {
        assert_eq!(spec_dir(Path::new("spec.yaml")), PathBuf::from("."));
        assert_eq!(spec_dir(Path::new("plans/x.yaml")), PathBuf::from("plans"));
        assert_eq!(
            spec_dir(Path::new("/etc/m/x.yaml")),
            PathBuf::from("/etc/m")
        );
    }

    #[test]
    fn dots_are_dropped_and_parents_kept() {
        assert_eq!(
            clean(Path::new("/a/./plans/./certs")),
            PathBuf::from("/a/plans/certs")
        );
        assert_eq!(
            clean(Path::new("/a/plans/../c")),
            PathBuf::from("/a/plans/../c")
        );
    }
}
