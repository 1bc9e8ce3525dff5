//! The product's generated objects pinned to what they stand for, where the
//! product itself may not look: the drill's Job (`migrate::phases::probe_job`)
//! against meshsim's `recognise` (its kubelet runs only that documented
//! shape), and the east-west gateway against Istio's own sample (found through
//! `meshsim::testdata`). The product never uses meshsim, so they meet here.

use crate::support::repo_root;
use migrate::plan::Action;
use std::path::PathBuf;

/// Every example plan and spec fixture that has a failover drill.
fn specs_with_a_drill() -> Vec<PathBuf> {
    let root = repo_root();
    let mut out = Vec::new();
    for dir in ["plans", "tests/golden/specs"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

#[test]
fn meshsim_recognises_every_probe_job_the_product_plans() {
    let mut probes = 0;
    for file in specs_with_a_drill() {
        let loaded = migrate::spec::load_file(&file).expect("the spec loads");
        let Some(drill) = &loaded.spec.spec.failover_test else {
            continue;
        };
        let svc = &drill.service;
        let url = format!(
            "http://{}.{}:{}{}",
            svc.name, svc.namespace, svc.port, svc.path
        );
        let plan = migrate::phases::plan(&loaded.spec).expect("it plans");
        for step in &plan.steps {
            for action in &step.forward {
                let Action::Probe {
                    manifest, requests, ..
                } = action
                else {
                    continue;
                };
                let probe = meshsim::mesh::probe::recognise(manifest).unwrap_or_else(|e| {
                    panic!(
                        "{}: {}: meshsim refuses the Job: {e}",
                        file.display(),
                        step.id
                    )
                });
                assert_eq!(probe.url, url, "{}: {}", file.display(), step.id);
                assert_eq!(probe.count, *requests, "{}: {}", file.display(), step.id);
                assert_eq!(probe.count, drill.requests);
                probes += 1;
            }
        }
    }
    assert!(probes >= 2, "expected probe Jobs in the example plans");
}

/// A probe Job built directly: meshsim reads back its URL, count, per-call
/// timeout and image.
#[test]
fn meshsim_reads_back_url_count_and_timeout() {
    let job = migrate::phases::probe_job::manifest(
        "probe-1",
        "sample",
        "http://helloworld.sample:5000/hello",
        20,
        5,
    );
    let probe = meshsim::mesh::probe::recognise(&job).expect("meshsim runs our probe Job");
    assert_eq!(probe.url, "http://helloworld.sample:5000/hello");
    assert_eq!(probe.count, 20);
    assert_eq!(probe.timeout_secs, 5);
    assert_eq!(probe.image, migrate::phases::probe_job::IMAGE);
}

/// The east-west gateway the install phase generates is Istio's own sample
/// (`gen-eastwest-gateway.sh --network network1`), field for field.
#[test]
fn the_shipped_eastwest_sample_is_what_we_generate() {
    let Some(path) = meshsim::testdata::istio_file(
        "samples/multicluster/eastwest-gateway-iop.network1.generated.yaml",
        "the_shipped_eastwest_sample_is_what_we_generate",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let sample: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        migrate::phases::install::eastwest_operator(Some("network1")),
        sample
    );
}
