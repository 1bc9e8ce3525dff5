//! Every Istio object the example plans apply is accepted by Istio's real
//! CRDs: a simulated cluster serves `../shared/istio/crds` with their
//! structural schemas, and the real kubectl submits each object as a strict
//! server-side dry run.

use crate::support::{migrate, repo_root};
use meshsim::{Sim, SimConfig};
use std::collections::BTreeSet;
use std::process::Command;

/// The kubectl on PATH: the binary this machine's users run.
const KUBECTL: &str = "kubectl";

fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_istio_object_of_every_plan_passes_istios_crds() {
    let Some(crds) = meshsim::testdata::istio_file(
        "crds/crd-all.gen.yaml",
        "every_istio_object_of_every_plan_passes_istios_crds",
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let sim = runtime
        .block_on(Sim::start(SimConfig {
            clusters: 1,
            kubeconfig_path: Some(kubeconfig.clone()),
            ..Default::default()
        }))
        .unwrap();
    let crds = crds.display().to_string();
    let (ok, text) = kubectl(&kubeconfig, &["apply", "--server-side", "-f", &crds], None);
    assert!(ok, "loading Istio's CRDs: {text}");

    let mut checked = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let plans = std::fs::read_dir(repo_root().join("plans")).unwrap();
    for entry in plans {
        let path = entry.unwrap().path();
        let file = path.display().to_string();
        let out = migrate(&["plan", "-f", &file, "-o", "json", "--offline"]);
        assert!(out.status.success(), "{file}");
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for step in plan["steps"].as_array().unwrap() {
            for action in step["forward"].as_array().unwrap() {
                let manifest = &action["manifest"];
                let api = manifest["apiVersion"].as_str().unwrap_or_default();
                if action["type"] != "apply" || !api.contains("istio.io/") {
                    continue;
                }
                let ns = manifest["metadata"]["namespace"].as_str().unwrap();
                if namespaces.insert(ns.to_string()) {
                    let (ok, text) = kubectl(&kubeconfig, &["create", "namespace", ns], None);
                    assert!(ok || text.contains("AlreadyExists"), "{text}");
                }
                let (ok, text) = kubectl(
                    &kubeconfig,
                    &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
                    Some(&manifest.to_string()),
                );
                assert!(
                    ok,
                    "{file}, step {}: {} {}/{} rejected by Istio's CRD: {text}",
                    step["id"], manifest["kind"], ns, manifest["metadata"]["name"]
                );
                checked.insert(manifest["kind"].as_str().unwrap().to_string());
            }
        }
    }
    // The kinds the phases write: a plan change that drops one shows here.
    let want: BTreeSet<String> = [
        "AuthorizationPolicy",
        "DestinationRule",
        "Gateway",
        "PeerAuthentication",
        "ServiceEntry",
        "VirtualService",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert!(checked.is_superset(&want), "checked only {checked:?}");
    runtime.block_on(sim.shutdown());
}

/// The check above is not vacuous: a field Istio does not know is refused.
#[test]
fn istios_crds_refuse_an_unknown_field() {
    let Some(crds) = meshsim::testdata::istio_file(
        "crds/crd-all.gen.yaml",
        "istios_crds_refuse_an_unknown_field",
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let sim = runtime
        .block_on(Sim::start(SimConfig {
            clusters: 1,
            kubeconfig_path: Some(kubeconfig.clone()),
            ..Default::default()
        }))
        .unwrap();
    let (ok, text) = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", &crds.display().to_string()],
        None,
    );
    assert!(ok, "{text}");
    let dr = r#"{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"x","namespace":"default"},"spec":{"host":"a","trafficPolicy":{"outlierDetection":{"consecutiveErrorz":1}}}}"#;
    let (ok, text) = kubectl(
        &kubeconfig,
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(dr),
    );
    assert!(!ok, "accepted: {text}");
    assert!(text.contains("consecutiveErrorz"), "{text}");
    runtime.block_on(sim.shutdown());
}
