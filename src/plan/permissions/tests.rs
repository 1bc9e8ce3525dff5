//! The derivation of needs from actions.

use super::*;
use serde_json::json;

fn clusters() -> Vec<String> {
    vec!["c1".into(), "c2".into()]
}

/// (verb, resource name, namespace) of what `action` needs on `cluster`.
fn on(action: &Action, cluster: &str) -> BTreeSet<(String, String, Option<String>)> {
    action_needs(action, &clusters())
        .into_iter()
        .filter(|(c, _)| c == cluster)
        .map(|(_, a)| (a.verb.clone(), a.resource_name(), a.namespace.clone()))
        .collect()
}

fn has(
    set: &BTreeSet<(String, String, Option<String>)>,
    verb: &str,
    res: &str,
    ns: Option<&str>,
) -> bool {
    set.contains(&(verb.to_string(), res.to_string(), ns.map(str::to_string)))
}

#[test]
fn kinds_are_pluralised_as_the_api_server_names_them() {
    for (kind, resource) in [
        ("Secret", "secrets"),
        ("ConfigMap", "configmaps"),
        ("Deployment", "deployments"),
        ("DestinationRule", "destinationrules"),
        ("AuthorizationPolicy", "authorizationpolicies"),
        ("Gateway", "gateways"),
        ("Endpoints", "endpoints"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Gateway", "gateways"),
    ] {
        assert_eq!(plural(kind), resource, "{kind}");
    }
}

#[test]
fn apply_needs_read_create_and_patch_and_a_remote_token_read() {
    let object = ObjectRef::secret("istio-system", "istio-remote-secret-c2");
    let action = Action::Apply {
        cluster: "c1".into(),
        object: object.clone(),
        manifest: json!({}),
        secret_data: BTreeMap::from([(
            "c2".to_string(),
            SecretSource::RemoteKubeconfig(Box::new(super::super::RemoteKubeconfig {
                cluster: "c2".into(),
                context: "ctx2".into(),
                token_secret: ObjectRef::secret("istio-system", "reader-token"),
                server: None,
                tls_server_name: None,
            })),
        )]),
    };
    let c1 = on(&action, "c1");
    for verb in ["get", "create", "patch"] {
        assert!(
            has(&c1, verb, "secrets", Some("istio-system")),
            "{verb}: {c1:?}"
        );
    }
    assert_eq!(c1.len(), 3);
    let c2 = on(&action, "c2");
    assert_eq!(
        c2.into_iter().collect::<Vec<_>>(),
        vec![("get".into(), "secrets".into(), Some("istio-system".into()))]
    );
}

#[test]
fn restore_reads_recreates_replaces_or_deletes() {
    let action = Action::Restore {
        cluster: "c1".into(),
        object: ObjectRef::cluster_scoped("rbac.authorization.k8s.io/v1", "ClusterRole", "r"),
    };
    let got = on(&action, "c1");
    for verb in ["get", "create", "update", "delete"] {
        assert!(
            has(&got, verb, "clusterroles.rbac.authorization.k8s.io", None),
            "{verb}: {got:?}"
        );
    }
}

#[test]
fn scales_go_through_the_scale_subresource_and_waits_watch() {
    let service = ObjectRef::service("sample", "helloworld");
    let scale = Action::Scale {
        cluster: "c1".into(),
        target: ScaleTarget::ServiceBackends(service.clone()),
        replicas: 0,
    };
    let got = on(&scale, "c1");
    assert!(
        has(&got, "patch", "deployments.apps/scale", Some("sample")),
        "{got:?}"
    );
    assert!(has(&got, "list", "deployments.apps", Some("sample")));
    assert!(has(&got, "get", "services", Some("sample")));
    assert!(!has(&got, "patch", "deployments.apps", Some("sample")));

    let wait = Action::Wait {
        cluster: "c1".into(),
        object: ObjectRef::config_map("sample", "istio-ca-root-cert"),
        condition: Condition::Present,
        timeout_seconds: 1,
    };
    let got = on(&wait, "c1");
    for verb in ["get", "list", "watch"] {
        assert!(has(&got, verb, "configmaps", Some("sample")), "{verb}");
    }
    let synced = Action::Wait {
        cluster: "c1".into(),
        object: ObjectRef::deployment("istio-system", "istiod"),
        condition: Condition::RemoteClusterSynced {
            remote: "c2".into(),
        },
        timeout_seconds: 1,
    };
    // istiod's Deployment (its pod selector), its pods, a port-forward to one:
    // never the service proxy, which istiod answers with 401.
    let got = on(&synced, "c1");
    let ns = Some("istio-system");
    assert!(has(&got, "get", "deployments.apps", ns), "{got:?}");
    assert!(has(&got, "list", "pods", ns), "{got:?}");
    assert!(has(&got, "create", "pods/portforward", ns), "{got:?}");
    assert!(!has(&got, "get", "services/proxy", ns), "{got:?}");
    assert!(on(&synced, "c2").is_empty());
}

#[test]
fn a_probe_reads_the_pods_of_every_cluster() {
    let job = ObjectRef::namespaced("batch/v1", "Job", "sample", "probe");
    let action = Action::Probe {
        cluster: "c1".into(),
        job,
        manifest: json!({}),
        requests: 1,
        expect: super::super::ProbeExpect {
            all_answered: true,
            min_clusters: 1,
            not_from: vec![],
        },
        timeout_seconds: 1,
    };
    let c1 = on(&action, "c1");
    for verb in ["get", "create", "delete", "watch"] {
        assert!(has(&c1, verb, "jobs.batch", Some("sample")), "{verb}");
    }
    assert!(has(&c1, "get", "pods/log", Some("sample")));
    assert!(has(&on(&action, "c2"), "list", "pods", Some("sample")));
}

#[test]
fn the_installer_footprint_covers_the_control_plane_and_purge_removes_crds() {
    let exec = |args: &[&str], text: &str| Action::Exec {
        cluster: "c1".into(),
        program: "istioctl".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        file: Some(super::super::GeneratedFile {
            name: "iop.yaml".into(),
            content: FileContent::Inline {
                text: text.into(),
                substitutions: vec![],
            },
        }),
        timeout_seconds: 1,
    };
    let iop = "spec:\n  components:\n    ingressGateways:\n    - name: eastwest\n      namespace: gateways\n";
    let install = on(&exec(&["install", "-y"], iop), "c1");
    for ns in ["istio-system", "gateways"] {
        assert!(has(&install, "patch", "deployments.apps", Some(ns)), "{ns}");
        assert!(has(&install, "create", "serviceaccounts", Some(ns)), "{ns}");
    }
    assert!(has(
        &install,
        "create",
        "customresourcedefinitions.apiextensions.k8s.io",
        None
    ));
    assert!(has(
        &install,
        "patch",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        None
    ));
    assert!(
        has(&install, "list", "secrets", None),
        "the pruner lists across namespaces"
    );
    assert!(!has(
        &install,
        "delete",
        "customresourcedefinitions.apiextensions.k8s.io",
        None
    ));
    let purge = on(&exec(&["uninstall", "--purge", "-y"], ""), "c1");
    assert!(has(
        &purge,
        "delete",
        "customresourcedefinitions.apiextensions.k8s.io",
        None
    ));
    assert!(has(
        &purge,
        "delete",
        "deployments.apps",
        Some("istio-system")
    ));
    assert!(!has(
        &purge,
        "create",
        "deployments.apps",
        Some("istio-system")
    ));
}

#[test]
fn needs_are_grouped_per_cluster_and_access_with_the_steps_that_need_them() {
    let object = ObjectRef::config_map("istio-system", "istio");
    let mut a = Step::new(super::super::Phase::Install, "install/c1", "a");
    a.forward(Action::Snapshot {
        cluster: "c1".into(),
        object: object.clone(),
    });
    a.rollback(Action::Restore {
        cluster: "c1".into(),
        object: object.clone(),
    });
    let mut b = Step::new(super::super::Phase::Trust, "trust/c1", "b");
    b.forward(Action::Snapshot {
        cluster: "c1".into(),
        object,
    });
    let found = needs(&[a, b], &clusters());
    assert_eq!(found.keys().collect::<Vec<_>>(), ["c1"]);
    let get: Vec<&Need> = found["c1"]
        .iter()
        .filter(|n| {
            n.access.verb == "get" && n.steps != ["cluster identity"] && n.steps != ["mesh lease"]
        })
        .collect();
    assert_eq!(get.len(), 1, "one review per access");
    assert!(
        found["c1"]
            .iter()
            .any(|n| n.access.resource == "namespaces" && n.steps == ["cluster identity"]),
        "the kube-system uid is read for the cluster identity"
    );
    for verb in ["get", "create", "update", "delete"] {
        assert!(
            found["c1"].iter().any(|n| n.access.verb == verb
                && n.access.resource == "leases"
                && n.access.namespace.as_deref() == Some("kube-system")
                && n.steps == ["mesh lease"]),
            "the mesh's Lease: {verb}"
        );
    }
    assert_eq!(get[0].steps, ["install/c1", "trust/c1"]);
    assert!(
        found["c1"]
            .iter()
            .any(|n| n.access.verb == "update" && n.steps == ["install/c1"]),
        "rollback actions count"
    );
}
