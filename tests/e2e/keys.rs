//! Keys at rest (issue 12, item 5): every file under the state directory
//! private, `state forget-snapshots` refusing while a rollback could need the
//! snapshots and leaving no key byte behind (also when killed mid-rewrite),
//! rollback of a forgotten snapshot failing clearly, and a kubeconfig typo
//! reported by file, line and column without printing a token.

use crate::apply::{apply, seeded};
use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A seeded world with the two-cluster plan in `generate` mode with a
/// multi-root transition: the trust phase replaces the source's CA and
/// snapshots the Secrets that hold its key.
fn generated_root() -> (SimEnv, PathBuf) {
    let env = seeded();
    let text = two_cluster().replace(
        "root: { adopt: cluster1 }",
        "root: { generate: { org: Acme Platform, validityDays: 3650, transition: multi-root } }",
    );
    assert!(
        text.contains("generate:"),
        "the plan no longer adopts a root"
    );
    let spec = env.write_spec("spec.yaml", &text);
    (env, spec)
}

/// Every path under `dir`, itself included.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&out[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// Paths under `dir` that are not exactly 0700 (directories) or 0600 (files).
fn loose_modes(dir: &Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.mode() & 0o7777;
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            (mode != want).then(|| format!("{} is {mode:04o}", p.display()))
        })
        .collect()
}

/// Which of `secrets` (origin, value) occur in any file under `dir`: the
/// origins and files, never the values.
fn secrets_in_files(dir: &Path, secrets: &[(String, String)]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for path in walk(dir) {
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for (origin, secret) in secrets {
            let needle = secret.as_bytes();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.insert(format!("{origin} in {}", path.display()));
            }
        }
    }
    found
}

#[test]
fn every_file_under_the_state_dir_is_private_after_a_generate_mode_apply() {
    let (env, spec) = generated_root();
    apply(&env, &spec, &[], None).expect_ok();
    let files = walk(&env.state_dir);
    assert!(
        files.iter().any(|p| p.ends_with("db/db")) && files.iter().any(|p| p.ends_with("db/conf")),
        "sled's files are not where the test looks: {files:?}"
    );
    let loose = loose_modes(&env.state_dir);
    assert!(loose.is_empty(), "not private:\n{}", loose.join("\n"));
    env.migrate(&["status"]).expect_ok();
    let loose = loose_modes(&env.state_dir);
    assert!(
        loose.is_empty(),
        "not private after status:\n{}",
        loose.join("\n")
    );
}

#[test]
fn forget_snapshots_refuses_then_leaves_no_key_bytes_and_rollback_says_so() {
    let (env, spec) = generated_root();
    // The source's own CA key (istio-ca-secret) is replaced by the trust
    // phase: only the snapshots keep it. Keep everything met before and after.
    let mut secrets = env.secrets();
    apply(&env, &spec, &[], None).expect_ok();
    secrets.extend(env.secrets());
    let before = secrets_in_files(&env.state_dir, &secrets);
    assert!(
        before.iter().any(|s| s.contains("Secret istio-system/")),
        "the state holds no Secret value before forget-snapshots, so this test proves nothing: {before:?}"
    );
    let state_dir = env.state_dir.to_string_lossy().into_owned();
    let forget = |extra: &[&str], env_vars: &[(&str, &str)]| {
        let mut args = vec!["state", "forget-snapshots", "--state-dir", &state_dir];
        args.extend_from_slice(extra);
        env.migrate_env(&args, env_vars)
    };

    // Refused without --yes while a rollback could still need them: named, nothing changed.
    let refused = forget(&[], &[]);
    assert_eq!(
        refused.code,
        Some(2),
        "{}",
        refused.describe("forget without --yes")
    );
    assert!(
        refused.stderr.contains("rollback can no longer restore")
            && refused.stderr.contains("cluster1 Secret istio-system/")
            && refused.stderr.contains("--yes"),
        "{}",
        refused.describe("the refusal names what rollback needs")
    );
    assert_eq!(secrets_in_files(&env.state_dir, &secrets), before);

    // Killed after the copy is written, before it is committed: the old database stays and works.
    let killed = forget(
        &["--yes"],
        &[(migrate::state::FORGET_FAILPOINT_ENV, "copied")],
    );
    assert_eq!(
        killed.signal,
        Some(9),
        "{}",
        killed.describe("killed at copied")
    );
    env.migrate(&["rollback", "--to", "phase1", "--dry-run"])
        .expect_ok();
    // Killed between the two renames of the swap: no `db` at all until the next open finishes it.
    let killed = forget(
        &["--yes"],
        &[(migrate::state::FORGET_FAILPOINT_ENV, "renamed")],
    );
    assert_eq!(
        killed.signal,
        Some(9),
        "{}",
        killed.describe("killed at renamed")
    );
    assert!(
        !env.state_dir.join("db").exists(),
        "the kill came too late to test anything"
    );
    env.migrate(&["status"]).expect_ok();
    assert!(env.state_dir.join("db").exists());

    // Done (again: the kill had already swapped the copy in), no key byte remains in any file.
    let done = forget(&["--yes"], &[]).expect_ok();
    assert!(
        done.stdout.contains("forgot"),
        "{}",
        done.describe("forget --yes")
    );
    let after = secrets_in_files(&env.state_dir, &secrets);
    assert!(
        after.is_empty(),
        "still in the state directory:\n{after:#?}"
    );
    let loose = loose_modes(&env.state_dir);
    assert!(loose.is_empty(), "not private:\n{}", loose.join("\n"));

    // Rollback of a step whose snapshots are gone fails, says why, and
    // changes nothing first (no step is undone half-way to the refusal).
    let before = env.dump();
    let rollback = env.migrate(&["rollback", "--to", "phase1"]);
    env.dump()
        .assert_eq(&before, "a rollback refused for forgotten snapshots");
    let status = env.migrate(&["status", "-o", "json"]);
    assert!(
        !status.stdout.contains("rolled-back") && !status.stdout.contains("rolling-back"),
        "{}",
        status.describe("no step was undone")
    );
    assert_ne!(
        rollback.code,
        Some(0),
        "{}",
        rollback.describe("rollback after forget")
    );
    let said = format!("{}{}", rollback.stdout, rollback.stderr);
    assert!(
        said.contains("snapshot forgotten on") && said.contains("forget-snapshots"),
        "{}",
        rollback.describe("rollback names the forgotten snapshot")
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_kubeconfig_typo_is_located_and_prints_no_token() {
    let (env, spec) = crate::apply::seeded_with_spec();
    let text = std::fs::read_to_string(env.kubeconfig()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("token:"))
        .expect("the sim's kubeconfig has token lines");
    let indent = lines[at].len() - lines[at].trim_start().len();
    lines.insert(at + 1, format!("{}oops: : :", " ".repeat(indent)));
    assert!(
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with("token:"))
            .count()
            >= 2,
        "the test wants a token on each side of the typo"
    );
    let typo = env.path("typo.kubeconfig");
    std::fs::write(&typo, lines.join("\n") + "\n").unwrap();
    let typo_path = typo.to_string_lossy();
    let spec = spec.to_string_lossy();
    let run = env.migrate(&["--kubeconfig", &typo_path, "apply", "-f", &spec]);
    assert_ne!(
        run.code,
        Some(0),
        "{}",
        run.describe("apply with a broken kubeconfig")
    );
    let located = format!("{typo_path}:{}:", at + 2);
    assert!(
        run.stderr.contains(&located),
        "{}",
        run.describe(&format!("the error names {located}"))
    );
    for c in env.sim.clusters() {
        let token = c.admin_token();
        assert!(
            !run.stderr.contains(token) && !run.stdout.contains(token),
            "{}",
            run.describe(&format!("the admin token of {} was printed", c.name()))
        );
    }
    assert!(
        !run.stderr.contains("oops"),
        "{}",
        run.describe("the file's text was printed")
    );
    env.assert_no_secrets_in_outputs();
}
