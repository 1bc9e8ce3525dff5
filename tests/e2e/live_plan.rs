//! `migrate plan` with reachable clusters: a live diff from server-side dry
//! runs (create / update with fields / unchanged), nothing persisted;
//! `--offline` and unreachable clusters give the plan from the spec alone.

use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use serde_json::{Value, json};

fn create(env: &SimEnv, cluster: &str, object: Value) {
    let store = env.sim.cluster(cluster).store();
    let rt = store
        .resolve_kind(
            object["apiVersion"].as_str().unwrap(),
            object["kind"].as_str().unwrap(),
        )
        .unwrap();
    store.create(&rt, object, &Default::default()).unwrap();
}

fn diff_line<'a>(text: &'a str, needle: &str) -> &'a str {
    let section = text
        .split("live diff (server-side dry run")
        .nth(1)
        .unwrap_or_else(|| panic!("no live diff section in:\n{text}"));
    section
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no diff line for {needle} in:\n{section}"))
}

#[test]
fn live_diff_says_create_update_and_unchanged_and_changes_nothing() {
    let env = SimEnv::start(2);
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec = spec.to_string_lossy();
    // cluster1: istio-system without the network label and the namespace
    // `sample`; cluster2: istio-system already as the plan wants it.
    create(
        &env,
        "cluster1",
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "istio-system", "labels": {"keep": "me"}}}),
    );
    create(
        &env,
        "cluster2",
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": "network2"}}}),
    );
    // The namespace controller adds a ServiceAccount and a ConfigMap to each.
    env.wait_for(
        "namespace contents",
        std::time::Duration::from_secs(10),
        || {
            let d = env.dump();
            ["cluster1", "cluster2"].iter().all(|c| {
                d.keys(c)
                    .contains(&"v1 ServiceAccount istio-system/default")
                    && d.keys(c)
                        .contains(&"v1 ConfigMap istio-system/kube-root-ca.crt")
            })
        },
    );
    let before = env.dump();

    let run = env.migrate(&["plan", "-f", &spec]).expect_ok();
    let out = &run.stdout;
    assert!(
        out.contains("phase0 preflight"),
        "the plan itself is printed:\n{out}"
    );
    let ns1 = diff_line(out, "Namespace istio-system @cluster1");
    assert!(
        ns1.contains("update") && ns1.contains("/metadata/labels/topology.istio.io~1network"),
        "{ns1}"
    );
    assert!(
        !ns1.contains("keep"),
        "only changed fields are named: {ns1}"
    );
    assert!(diff_line(out, "Namespace istio-system @cluster2").ends_with("unchanged"));
    assert!(
        diff_line(
            out,
            "ClusterRole istio-reader-clusterrole-istio-system @cluster1"
        )
        .ends_with("create")
    );
    assert!(diff_line(out, "Secret istio-system/cacerts @cluster1").contains("create"));
    // Nothing was persisted by the dry runs.
    env.dump().assert_eq(&before, "after migrate plan");

    // The JSON document gains a liveDiff member.
    let run = env
        .migrate(&["plan", "-f", &spec, "-o", "json"])
        .expect_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = doc["liveDiff"]
        .as_array()
        .expect("liveDiff in the JSON plan");
    let ns2 = entries
        .iter()
        .find(|e| e["cluster"] == "cluster2" && e["object"] == "Namespace istio-system")
        .unwrap();
    assert_eq!(ns2["change"], "unchanged");
    assert_eq!(ns2["step"], "install/cluster2");

    // --offline: no contact, no diff.
    let run = env.migrate(&["plan", "-f", &spec, "--offline"]).expect_ok();
    assert!(!run.stdout.contains("live diff"), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    env.assert_no_secrets_in_outputs();
}

#[test]
fn unreachable_clusters_give_a_note_and_the_offline_plan() {
    let env = SimEnv::start(2);
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec = spec.to_string_lossy();
    let offline = env.migrate(&["plan", "-f", &spec, "--offline"]).expect_ok();
    for c in env.sim.clusters() {
        c.faults().set_down(true);
    }
    let run = env.migrate(&["plan", "-f", &spec]).expect_ok();
    assert_eq!(run.stdout, offline.stdout, "the offline plan, unchanged");
    assert!(run.stderr.contains("cluster unreachable"), "{}", run.stderr);
    assert!(
        run.stderr.contains("cluster1") && run.stderr.contains("cluster2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no cluster reachable"),
        "{}",
        run.stderr
    );

    // One cluster back: its objects are diffed, the other's noted.
    env.sim.cluster("cluster2").faults().set_down(false);
    assert!(
        env.sim
            .cluster("cluster2")
            .wait_listening(std::time::Duration::from_secs(10))
    );
    let run = env.migrate(&["plan", "-f", &spec]).expect_ok();
    assert!(diff_line(&run.stdout, "Namespace istio-system @cluster2").contains("create"));
    let section = run.stdout.split("live diff (server-side").nth(1).unwrap();
    assert!(!section.contains("@cluster1"), "{section}");
    assert!(run.stderr.contains("cluster1"), "{}", run.stderr);
}
