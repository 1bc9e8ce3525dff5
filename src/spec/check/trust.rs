//! The root CA choice and certificate lifetimes.

use super::Checker;
use crate::spec::mesh_migration::{RootTransition, TrustRoot};
use std::path::Path;

/// X.509 validity beyond a century is a typo, not a policy.
const MAX_DAYS: u32 = 36_500;

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let trust = &spec.spec.trust;
    let inter = trust.intermediate_validity_days;
    if inter == 0 {
        c.error(
            "spec.trust.intermediateValidityDays",
            "intermediate CAs need a validity of at least one day",
            None,
        );
    } else if inter > MAX_DAYS {
        c.error(
            "spec.trust.intermediateValidityDays",
            format!("{inter} days is more than 100 years"),
            None,
        );
    }
    match &trust.root {
        TrustRoot::Adopt(name) => adopt(c, name),
        TrustRoot::Generate(g) => {
            let base = "spec.trust.root.generate";
            if g.validity_days == 0 {
                c.error(
                    &format!("{base}.validityDays"),
                    "the root needs a validity of at least one day",
                    None,
                );
            } else if g.validity_days > MAX_DAYS {
                c.error(
                    &format!("{base}.validityDays"),
                    format!("{} days is more than 100 years", g.validity_days),
                    None,
                );
            } else if inter > g.validity_days {
                c.error(
                    "spec.trust.intermediateValidityDays",
                    format!(
                        "intermediates ({inter} days) would outlive the root that signs them ({} days)",
                        g.validity_days
                    ),
                    Some("make intermediateValidityDays at most the root's validityDays".into()),
                );
            }
            if g.org.trim().is_empty() {
                c.error(
                    &format!("{base}.org"),
                    "the organisation (certificate subject O=) is empty",
                    None,
                );
            }
            if g.transition == RootTransition::RestartAll {
                c.warn(
                    &format!("{base}.transition"),
                    "`restart-all` switches to the new root at once: cross-cluster and in-cluster mTLS fail until every injected workload has restarted",
                    Some("`multi-root` trusts both roots during the switch and needs no downtime".into()),
                );
            }
        }
        TrustRoot::Files(files) => {
            // Only warnings: the plan may be written on another machine than
            // the one that applies it.
            let base = "spec.trust.root.files";
            existing_file(c, &format!("{base}.cert"), &files.cert, "root certificate");
            if existing_file(c, &format!("{base}.key"), &files.key, "root key") {
                private_key_mode(c, &format!("{base}.key"), &files.key);
            }
        }
    }
}

fn adopt(c: &mut Checker, name: &str) {
    let path = "spec.trust.root.adopt";
    if !c.cluster_ref(path, name) {
        return;
    }
    let source = c
        .spec
        .spec
        .clusters
        .iter()
        .find(|cl| cl.source)
        .map(|cl| cl.name.clone());
    if let Some(source) = source
        && source != name
    {
        c.error(
            path,
            format!("`{name}` is not the source cluster; only the source cluster's live root can be adopted"),
            Some(format!("adopt: {source}")),
        );
    }
}

fn existing_file(c: &mut Checker, path: &str, file: &Path, what: &str) -> bool {
    if file.is_file() {
        return true;
    }
    c.warn(
        path,
        format!("{what} `{}` is not a file here", file.display()),
        Some("relative paths are read from the directory migrate runs in; fine if the plan is applied elsewhere".into()),
    );
    false
}

#[cfg(unix)]
fn private_key_mode(c: &mut Checker, path: &str, file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        c.warn(
            path,
            format!(
                "root key `{}` is readable by other users (mode {:o})",
                file.display(),
                meta.permissions().mode() & 0o777
            ),
            Some("chmod 600 it".into()),
        );
    }
}

#[cfg(not(unix))]
fn private_key_mode(_c: &mut Checker, _path: &str, _file: &Path) {}
