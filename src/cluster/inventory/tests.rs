use super::*;
use serde_json::{Value, json};

fn deployment(name: &str, labels: Value, image: &str, env: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": image, "env": env}]}}}})
}

fn release_secret(release: &str, version: u32, status: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{release}.v{version}"), "namespace": "istio-system",
            "labels": {"owner": "helm", "name": release, "status": status, "version": version.to_string()}}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

#[test]
fn istioctl_is_recognised_by_the_operator_labels() {
    let d = deployment(
        "istiod",
        json!({"app": "istiod", "operator.istio.io/managed": "Reconcile", "operator.istio.io/version": "1.30.3"}),
        "docker.io/istio/pilot:1.30.3",
        json!([]),
    );
    let found = installer::classify(&[&d], &[], None);
    assert_eq!(found.kind, InstallerKind::Istioctl);
    assert!(
        found.evidence.contains("operator.istio.io/managed"),
        "{}",
        found.evidence
    );
}

#[test]
fn helm_is_recognised_by_the_release_that_rendered_istiod() {
    let d = deployment(
        "istiod-1-26-4",
        json!({"app": "istiod", "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "istiod"}),
        "docker.io/istio/pilot:1.26.4",
        json!([]),
    );
    let secrets = [
        release_secret("istio-base", 1, "deployed"),
        release_secret("istiod", 1, "superseded"),
        release_secret("istiod", 2, "deployed"),
        // Not a release record: ignored.
        json!({"type": "Opaque", "metadata": {"name": "x", "labels": {"owner": "helm", "name": "y"}}}),
    ];
    let found = installer::classify(&[&d], &secrets, None);
    assert_eq!(found.kind, InstallerKind::Helm);
    assert_eq!(found.evidence, "release istiod in istio-system");
    assert_eq!(found.releases.len(), 2);
    let istiod = found.releases.iter().find(|r| r.name == "istiod").unwrap();
    assert_eq!((istiod.version, istiod.status.as_str()), (2, "deployed"));
    // The label alone, with no record readable, still says Helm.
    let alone = installer::classify(&[&d], &[], None);
    assert_eq!(alone.kind, InstallerKind::Helm);
    assert!(
        alone.evidence.contains("managed-by: Helm"),
        "{}",
        alone.evidence
    );
}

#[test]
fn sail_wins_and_no_labels_is_unknown_and_no_istiod_is_none() {
    let d = deployment(
        "istiod",
        json!({"app": "istiod"}),
        "pilot:1.28.0",
        json!([]),
    );
    let sail = [json!({"kind": "Istio", "metadata": {"name": "default"}})];
    let found = installer::classify(&[&d], &[], Some(&sail));
    assert_eq!(found.kind, InstallerKind::Sail);
    assert_eq!(found.evidence, "Istio default (sailoperator.io)");
    // The API served with no objects says nothing.
    assert_eq!(
        installer::classify(&[&d], &[], Some(&[])).kind,
        InstallerKind::Unknown
    );
    assert_eq!(
        installer::classify(&[], &[], None).kind,
        InstallerKind::None
    );
}

#[test]
fn revisions_versions_tags_and_namespaces() {
    let deployments = [
        deployment(
            "istiod",
            json!({"app": "istiod", "operator.istio.io/version": "1.25.2"}),
            "pilot:1.30.3",
            json!([]),
        ),
        deployment(
            "istiod-1-26-4",
            json!({"app": "istiod", "istio.io/rev": "1-26-4"}),
            "gcr.io/istio/pilot:1.26.4-distroless",
            json!([]),
        ),
        deployment(
            "istio-ingressgateway",
            json!({"app": "istio-ingressgateway"}),
            "proxyv2:1.26.4",
            json!([]),
        ),
        deployment(
            "istiod-canary",
            json!({}),
            "registry:5000/pilot@sha256:abc",
            json!([]),
        ),
    ];
    let planes: Vec<ControlPlane> = revisions::istiods(&deployments)
        .into_iter()
        .map(revisions::control_plane)
        .collect();
    let got: Vec<(&str, &str, Option<&str>)> = planes
        .iter()
        .map(|c| {
            (
                c.deployment.as_str(),
                c.revision.as_str(),
                c.version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("istiod", "default", Some("1.25.2")),
            ("istiod-1-26-4", "1-26-4", Some("1.26.4")),
            ("istiod-canary", "canary", None),
        ]
    );
    let webhooks = [
        json!({"metadata": {"name": "istio-revision-tag-prod", "labels": {"istio.io/rev": "1-26-4", "istio.io/tag": "prod"}}}),
        json!({"metadata": {"name": "istio-sidecar-injector-1-26-4", "labels": {"istio.io/rev": "1-26-4"}}}),
    ];
    assert_eq!(
        revisions::tags(&webhooks),
        [RevisionTag {
            tag: "prod".into(),
            revision: "1-26-4".into()
        }]
    );
    let namespaces = [
        namespace("b", json!({"istio.io/rev": "prod"})),
        namespace("a", json!({"istio-injection": "enabled"})),
        namespace(
            "c",
            json!({"istio-injection": "disabled", "istio.io/rev": "x"}),
        ),
        namespace("d", json!({})),
    ];
    let uses: Vec<(String, String)> = revisions::namespace_uses(&namespaces)
        .into_iter()
        .map(|u| (u.namespace, u.uses))
        .collect();
    assert_eq!(
        uses,
        [("a".into(), "default".into()), ("b".into(), "prod".into())]
    );
}

#[test]
fn minor_skew_is_reported_only_across_minor_versions() {
    let v = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        revisions::minor_skew(&v(&[("c1", "1.26.4"), ("c2", "1.26.1")])),
        None
    );
    assert_eq!(
        revisions::minor_skew(&v(&[("c1", "1.26.4"), ("c2", "1.28.0")])).as_deref(),
        Some("c1 runs Istio 1.26.4, c2 runs Istio 1.28.0")
    );
    assert_eq!(revisions::minor_skew(&[]), None);
}

#[test]
fn ambient_is_recognised_by_ztunnel_or_a_namespace_label() {
    let ztunnel = json!({"metadata": {"name": "ztunnel", "namespace": "istio-system", "labels": {"app": "ztunnel"}}});
    let sidecar = dataplane::classify(
        &[],
        &[namespace("sample", json!({"istio-injection": "enabled"}))],
    );
    assert_eq!(sidecar.mode, DataPlaneMode::Sidecar);
    assert!(sidecar.evidence.is_empty());
    let ambient = dataplane::classify(
        &[ztunnel],
        &[namespace(
            "sample",
            json!({"istio.io/dataplane-mode": "ambient"}),
        )],
    );
    assert_eq!(ambient.mode, DataPlaneMode::Ambient);
    assert_eq!(
        ambient.evidence,
        [
            "DaemonSet istio-system/ztunnel",
            "Namespace sample (istio.io/dataplane-mode=ambient)"
        ]
    );
    let label_only = dataplane::classify(
        &[],
        &[namespace(
            "x",
            json!({"istio.io/dataplane-mode": "ambient"}),
        )],
    );
    assert_eq!(label_only.mode, DataPlaneMode::Ambient);
}

#[test]
fn the_ca_is_self_signed_plugged_in_with_or_without_root_key_or_external() {
    let istiod = |env: Value| deployment("istiod", json!({}), "pilot:1.30.3", env);
    let plain = istiod(json!([]));
    let secret = |data: Value| json!({"metadata": {"name": "cacerts"}, "data": data});
    let ca_secret = json!({"metadata": {"name": "istio-ca-secret"}, "data": {"ca-key.pem": "k"}});
    assert_eq!(
        ca::classify(&[&plain], Some(&ca_secret), None).kind,
        CaKind::SelfSigned
    );
    let root = secret(
        json!({"ca-cert.pem": "R", "ca-key.pem": "k", "root-cert.pem": "R", "cert-chain.pem": "R"}),
    );
    assert_eq!(
        ca::classify(&[&plain], Some(&ca_secret), Some(&root)).kind,
        CaKind::PluggedIn { root_key: true }
    );
    let intermediate = secret(
        json!({"ca-cert.pem": "I", "ca-key.pem": "k", "root-cert.pem": "R", "cert-chain.pem": "I R"}),
    );
    let found = ca::classify(&[&plain], None, Some(&intermediate));
    assert_eq!(found.kind, CaKind::PluggedIn { root_key: false });
    assert_eq!(found.kind.trust_modes(), ["generate", "files"]);
    let generated = secret(json!({"istio-generated": "", "ca-cert.pem": "R"}));
    assert_eq!(
        ca::classify(&[&plain], None, Some(&generated)).kind,
        CaKind::SelfSigned
    );
    assert_eq!(ca::classify(&[&plain], None, None).kind, CaKind::None);
    // External: the evidence names the env, and no trust mode applies.
    let csr = istiod(json!([{"name": "ENABLE_CA_SERVER", "value": "false"},
        {"name": "CA_ADDR", "value": "cert-manager-istio-csr.cert-manager.svc:443"}]));
    let found = ca::classify(&[&csr], Some(&ca_secret), Some(&root));
    assert_eq!(found.kind, CaKind::External);
    assert_eq!(found.evidence.len(), 2, "{:?}", found.evidence);
    assert!(found.kind.trust_modes().is_empty());
    let ra = istiod(json!([{"name": "EXTERNAL_CA", "value": "ISTIOD_RA_KUBERNETES_API"}]));
    assert_eq!(ca::classify(&[&ra], None, None).kind, CaKind::External);
    // No secret value ever reaches the inventory.
    let text = serde_json::to_string(&ca::classify(&[&plain], None, Some(&root))).unwrap();
    assert!(!text.contains("\"k\""), "{text}");
}

#[test]
fn leftovers_of_a_multi_cluster_mesh_are_named() {
    let ns = namespace(
        "istio-system",
        json!({"topology.istio.io/network": "network1"}),
    );
    let secret =
        json!({"metadata": {"name": "istio-remote-secret-cluster2", "namespace": "istio-system"}});
    let gw = json!({"metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system", "labels": {"istio": "eastwestgateway"}}});
    let ingress = json!({"metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": {"istio": "ingressgateway"}}});
    let found = multicluster::evidence(
        Some(&ns),
        &[secret],
        &[gw.clone(), ingress.clone()],
        &[gw, ingress],
    );
    assert_eq!(
        found,
        [
            "remote secret istio-system/istio-remote-secret-cluster2",
            "east-west gateway Deployment istio-system/istio-eastwestgateway",
            "east-west gateway Service istio-system/istio-eastwestgateway",
            "Namespace istio-system labelled topology.istio.io/network=network1",
        ]
    );
    assert!(
        multicluster::evidence(Some(&namespace("istio-system", json!({}))), &[], &[], &[])
            .is_empty()
    );
}

#[test]
fn the_inventory_summarises_in_one_line_and_round_trips() {
    let objects = Objects {
        namespace: "istio-system".into(),
        deployments: vec![deployment(
            "istiod-1-26-4",
            json!({"app": "istiod", "istio.io/rev": "1-26-4", "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/instance": "istiod", "app.kubernetes.io/version": "1.26.4"}),
            "pilot:1.26.4",
            json!([]),
        )],
        helm_releases: vec![release_secret("istiod", 1, "deployed")],
        ca_secret: Some(json!({"metadata": {"name": "istio-ca-secret"}})),
        ..Default::default()
    };
    let inv = classify(&objects);
    assert_eq!(
        inv.summary(),
        "installer helm, revision 1-26-4 (Istio 1.26.4), sidecar mode, CA self-signed"
    );
    assert_eq!(inv.version(), Some("1.26.4"));
    let back: MeshInventory = serde_json::from_value(serde_json::to_value(&inv).unwrap()).unwrap();
    assert_eq!(back, inv);
}
