//! Permissions first (issue 12, item 4): with credentials allowed everything
//! but writes to Secrets, `migrate apply` stops in preflight, lists what each
//! cluster lacks in a table, and changes nothing anywhere; with the admin
//! credentials the same plan's preflight passes.

use crate::apply::seeded_with_spec;
use crate::sim_support::SimEnv;
use meshsim::kubeconfig::{Entry, render, write};
use std::path::PathBuf;

/// The account the limited kubeconfig authenticates as, in every cluster.
const ACCOUNT: (&str, &str) = ("kube-system", "migrator");

/// Secret verbs the account lacks.
const DENIED: [&str; 4] = ["create", "update", "patch", "delete"];

/// Every resource name the clusters serve (a ClusterRole may name resources
/// a cluster does not serve yet: cluster2 gets Istio's CRDs only at install),
/// Secrets left out, plus every subresource the plan uses.
fn every_resource_but_secrets(env: &SimEnv) -> Vec<String> {
    let mut resources = Vec::new();
    for c in env.sim.clusters() {
        let out = env.kubectl(c.name(), &["api-resources", "-o", "name"]);
        assert!(out.status.success(), "{out:?}");
        resources.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split('.').next().unwrap_or_default().to_string())
                .filter(|r| !r.is_empty() && r != "secrets"),
        );
    }
    assert!(
        resources.iter().any(|r| r == "destinationrules"),
        "{resources:?}"
    );
    // Kinds every real cluster serves and meshsim does not (istioctl's pruner looks at them).
    for served_elsewhere in [
        "daemonsets",
        "horizontalpodautoscalers",
        "leases",
        "poddisruptionbudgets",
    ] {
        resources.push(served_elsewhere.into());
    }
    for sub in [
        "scale",
        "status",
        "log",
        "proxy",
        "token",
        "exec",
        "portforward",
    ] {
        resources.push(format!("*/{sub}"));
    }
    resources.sort();
    resources.dedup();
    resources
}

/// A ServiceAccount bound to a ClusterRole that allows every verb on
/// `resources` and only reads of Secrets. RBAC is additive, so "everything
/// but" is every other resource named.
fn grant(env: &SimEnv, cluster: &str, resources: &[String]) {
    let (ns, name) = ACCOUNT;
    let manifests = serde_json::json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "all-but-secret-writes"},
         "rules": [
            {"apiGroups": ["*"], "resources": resources, "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "migrator-all-but-secret-writes"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "all-but-secret-writes"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]);
    let text: Vec<String> = manifests
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_yaml::to_string(m).unwrap())
        .collect();
    let file = env.path(&format!("rbac-{cluster}.yaml"));
    std::fs::write(&file, text.join("\n---\n")).unwrap();
    let out = env.kubectl(cluster, &["apply", "-f", &file.to_string_lossy()]);
    assert!(out.status.success(), "{out:?}");
}

/// A kubeconfig with the sim's context names whose users are the account.
fn limited_kubeconfig(env: &SimEnv) -> PathBuf {
    let (ns, name) = ACCOUNT;
    let clusters = env.sim.clusters();
    let tokens: Vec<String> = clusters.iter().map(|c| c.mint_token(ns, name)).collect();
    let entries: Vec<Entry<'_>> = clusters
        .iter()
        .zip(&tokens)
        .map(|(c, token)| Entry {
            name: c.name(),
            server: c.server_url(),
            ca_pem: c.ca_pem(),
            token,
        })
        .collect();
    let path = env.path("limited.kubeconfig");
    write(&path, &render(&entries)).unwrap();
    path
}

/// The table rows (verb, resource, namespace) under one cluster's header line.
fn table_rows(output: &str, cluster: &str) -> Vec<(String, String, String)> {
    let header = format!("the credentials for cluster {cluster} lack");
    let mut lines = output.lines().skip_while(|l| !l.contains(&header)).skip(1);
    let Some(columns) = lines.next() else {
        return Vec::new();
    };
    assert!(
        columns.contains("VERB") && columns.contains("NEEDED BY"),
        "{columns}"
    );
    lines
        .take_while(|l| l.starts_with("  ") && l.split_whitespace().count() >= 4)
        .map(|l| {
            let mut cells = l.split_whitespace();
            let mut next = || cells.next().unwrap_or_default().to_string();
            (next(), next(), next())
        })
        .collect()
}

#[test]
fn secret_writes_denied_stop_apply_in_preflight_with_a_table_and_nothing_changed() {
    let (env, spec) = seeded_with_spec();
    let resources = every_resource_but_secrets(&env);
    for cluster in ["cluster1", "cluster2"] {
        grant(&env, cluster, &resources);
    }
    let kubeconfig = limited_kubeconfig(&env);
    let before = env.settled_dump();
    let log = env.path("istioctl.log");
    let spec = spec.to_string_lossy();
    let run = env.migrate_env(
        &["apply", "-f", &spec],
        &[
            ("KUBECONFIG", &kubeconfig.to_string_lossy()),
            ("MESHSIM_ISTIOCTL_LOG", &log.to_string_lossy()),
        ],
    );
    assert!(!run.ok(), "{}", run.describe("expected a failure"));
    let output = format!("{}\n{}", run.stdout, run.stderr);
    for cluster in ["cluster1", "cluster2"] {
        let rows = table_rows(&output, cluster);
        assert!(!rows.is_empty(), "no table for {cluster}:\n{output}");
        // Exactly the Secret writes are missing: nothing the account may do
        // is reported, and every denied verb the plan uses is.
        for (verb, resource, _) in &rows {
            assert_eq!(resource, "secrets", "{cluster}: {rows:?}");
            assert!(DENIED.contains(&verb.as_str()), "{cluster}: {rows:?}");
        }
        for verb in ["create", "patch", "delete"] {
            assert!(
                rows.iter()
                    .any(|(v, _, ns)| v == verb && ns == "istio-system"),
                "{cluster} lacks {verb} secrets in istio-system: {rows:?}\n{output}"
            );
        }
    }
    // Nothing changed anywhere, and the installer never installed.
    env.settled_dump()
        .assert_eq(&before, "after apply stopped in preflight");
    let invocations = std::fs::read_to_string(&log).unwrap_or_default();
    // Preflight asks the installer its version; nothing else ran it.
    assert!(
        invocations.lines().all(|l| l.contains(" command=version ")),
        "istioctl ran: {invocations}"
    );
    env.assert_no_secrets_in_outputs();

    // The admin credentials may do everything: the same plan's preflight
    // passes. A dry run goes through every check and changes nothing (it
    // fails later, where a step needs what an earlier one would have made).
    let admin_state = env.path("admin-state").to_string_lossy().into_owned();
    let run = env.migrate(&[
        "apply",
        "-f",
        &spec,
        "--dry-run",
        "--state-dir",
        &admin_state,
    ]);
    let output = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        !output.contains(" lack "),
        "{}",
        run.describe("the admin's dry run")
    );
    // A dry run keeps no state: its progress lines tell.
    for step in [
        "preflight/local",
        "preflight/cluster1",
        "preflight/cluster2",
    ] {
        let done = output.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(2).any(|w| w == ["done", step])
        });
        assert!(done, "{step} not done in the admin's dry run:\n{output}");
    }
    env.dump().assert_eq(&before, "after the admin's dry run");
}

/// Rollback never runs preflight: it asks for what its undo needs before
/// any change, and refuses with the same table.
#[test]
fn a_rollback_that_may_not_write_secrets_is_refused_before_any_change() {
    let (env, spec) = seeded_with_spec();
    crate::apply::apply(&env, &spec, &[], None).expect_ok();
    let resources = every_resource_but_secrets(&env);
    for cluster in ["cluster1", "cluster2"] {
        grant(&env, cluster, &resources);
    }
    let kubeconfig = limited_kubeconfig(&env);
    let before = env.settled_dump();
    // Undoing trust puts back or deletes `cacerts`: Secret writes. A
    // kubeconfig typed now overrides the one the run recorded.
    let k = kubeconfig.to_string_lossy();
    let run = env.migrate(&["rollback", "--to", "phase1", "--kubeconfig", &k]);
    assert!(!run.ok(), "{}", run.describe("expected a refusal"));
    let output = format!("{}\n{}", run.stdout, run.stderr);
    let mut named = Vec::new();
    for cluster in ["cluster1", "cluster2"] {
        for (verb, resource, ns) in table_rows(&output, cluster) {
            assert_eq!(
                resource, "secrets",
                "{cluster}: {verb} {resource}\n{output}"
            );
            assert!(
                DENIED.contains(&verb.as_str()),
                "{cluster}: {verb}\n{output}"
            );
            named.push((cluster, verb, ns));
        }
    }
    assert!(
        named
            .iter()
            .any(|(_, v, ns)| (v == "delete" || v == "patch") && ns == "istio-system"),
        "the missing Secret writes are named: {named:?}\n{output}"
    );
    env.settled_dump()
        .assert_eq(&before, "after the refused rollback");
    env.assert_no_secrets_in_outputs();
}
