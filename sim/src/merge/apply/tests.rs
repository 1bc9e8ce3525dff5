use super::*;
use serde_json::json;

const T1: &str = "2026-11-21T17:00:00Z";
const T2: &str = "2026-11-21T18:00:00Z";

fn deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    })
}

fn entries(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"].as_array().unwrap()
}

fn entry<'a>(obj: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
    entries(obj)
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
}

fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    server_side_apply("Deployment", live, config, manager, force, now)
}

#[test]
fn create_records_the_configuration_fields() {
    let obj = apply(None, &deploy(2, "nginx:1"), "kubectl", false, T1).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["name"], "web");
    let es = entries(&obj);
    assert_eq!(es.len(), 1);
    assert_eq!(
        es[0],
        json!({
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                    }
                }
            }
        })
    );
}

#[test]
fn applying_twice_changes_nothing() {
    let first = apply(None, &deploy(2, "nginx:1"), "kubectl", false, T1).unwrap();
    let second = apply(Some(&first), &deploy(2, "nginx:1"), "kubectl", false, T2).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
    // a real change moves the time
    let third = apply(Some(&second), &deploy(3, "nginx:1"), "kubectl", false, T2).unwrap();
    assert_eq!(third["spec"]["replicas"], 3);
    assert_eq!(entry(&third, "kubectl", "Apply").unwrap()["time"], T2);
}

#[test]
fn different_value_from_another_manager_conflicts() {
    let live = apply(None, &deploy(2, "nginx:1"), "alice", false, T1).unwrap();
    let err = apply(Some(&live), &deploy(3, "nginx:2"), "bob", false, T2).unwrap_err();
    let ApplyError::Conflicts(cs) = &err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = cs
        .iter()
        .map(|c| (c.manager.as_str(), c.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("alice", ".spec.replicas"),
            (
                "alice",
                ".spec.template.spec.containers[name=\"web\"].image"
            ),
        ]
    );
    assert_eq!(err.to_string(), "Apply failed with 2 conflict(s)");
    assert_eq!(
        conflict_message(cs),
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    assert_eq!(
        conflict_message(&cs[..1]),
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
}

#[test]
fn force_moves_ownership() {
    let live = apply(None, &deploy(2, "nginx:1"), "alice", false, T1).unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let out = apply(Some(&live), &bob, "bob", true, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["spec"]["template"], live["spec"]["template"]);
    let alice = &entry(&out, "alice", "Apply").unwrap()["fieldsV1"]["f:spec"];
    assert!(alice.get("f:replicas").is_none(), "{alice}");
    assert!(alice.get("f:template").is_some());
    assert_eq!(
        entry(&out, "bob", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    // alice agreeing with bob's value is no change: shared ownership
    let again = apply(Some(&out), &deploy(5, "nginx:1"), "alice", false, T2).unwrap();
    assert!(
        entry(&again, "alice", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    assert!(
        entry(&again, "bob", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // alice wanting her old value back conflicts with bob now
    let err = apply(Some(&out), &deploy(2, "nginx:1"), "alice", false, T2).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![FieldConflict {
            manager: "bob".into(),
            field: ".spec.replicas".into()
        }])
    );
}

#[test]
fn same_value_is_shared_and_survives_one_owner_leaving() {
    let live = apply(None, &deploy(2, "nginx:1"), "alice", false, T1).unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let shared = apply(Some(&live), &bob, "bob", false, T2).unwrap();
    assert_eq!(shared["spec"], live["spec"]);
    assert!(
        entry(&shared, "alice", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    assert!(
        entry(&shared, "bob", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // alice drops replicas: bob still owns it, so the value stays
    let mut cfg = deploy(2, "nginx:1");
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let out = apply(Some(&shared), &cfg, "alice", false, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert!(
        entry(&out, "alice", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // bob drops it too: now it goes
    let empty = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "b"}}});
    let out = apply(Some(&out), &empty, "bob", false, T2).unwrap();
    assert!(out["spec"].get("replicas").is_none(), "{}", out["spec"]);
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "team": "b"})
    );
}

#[test]
fn omitted_fields_are_removed() {
    let mut cfg = deploy(2, "nginx:1");
    cfg["metadata"]["labels"]["tier"] = json!("front");
    cfg["metadata"]["annotations"] = json!({"note": "x"});
    cfg["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "proxy"}));
    let live = apply(None, &cfg, "kubectl", false, T1).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = apply(Some(&live), &deploy(2, "nginx:1"), "kubectl", false, T2).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert!(
        out["metadata"].get("annotations").is_none(),
        "emptied map dropped: {}",
        out["metadata"]
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:1"}])
    );
    assert_eq!(out["metadata"]["name"], "web");
}

#[test]
fn item_kept_when_another_manager_owns_part_of_it() {
    let mut cfg = deploy(2, "nginx:1");
    cfg["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "proxy"}));
    let live = apply(None, &cfg, "alice", false, T1).unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "env": [{"name": "A", "value": "1"}]}]}}}});
    let live = apply(Some(&live), &bob, "bob", false, T1).unwrap();
    let out = apply(Some(&live), &deploy(2, "nginx:1"), "alice", false, T2).unwrap();
    let cs = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 2);
    // alice's image is gone, bob's name (shared) and env stay
    assert_eq!(
        cs[1],
        json!({"name": "sidecar", "env": [{"name": "A", "value": "1"}]})
    );
}

#[test]
fn update_managers_take_changed_fields() {
    let live = apply(None, &deploy(2, "nginx:1"), "kubectl", false, T1).unwrap();
    // kubectl label / kubectl set image, as Update operations
    let mut edited = live.clone();
    edited["metadata"]["labels"]["new"] = json!("yes");
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let out = record_update("Deployment", Some(&live), &edited, "kubectl-edit", T2);
    let edit = entry(&out, "kubectl-edit", "Update").unwrap();
    assert_eq!(edit["time"], T2);
    assert_eq!(
        edit["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:new": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}
        })
    );
    let applier = &entry(&out, "kubectl", "Apply").unwrap()["fieldsV1"];
    assert!(
        applier["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            .get("f:image")
            .is_none(),
        "{applier}"
    );
    // re-applying the old image now conflicts with the editor
    let err = apply(Some(&out), &deploy(2, "nginx:1"), "kubectl", false, T2).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![FieldConflict {
            manager: "kubectl-edit".into(),
            field: ".spec.template.spec.containers[name=\"web\"].image".into()
        }])
    );
    // an apply that leaves the image alone is fine, and keeps the label it never owned
    let mut cfg = deploy(2, "nginx:1");
    cfg["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    let ok = apply(Some(&out), &cfg, "kubectl", false, T2).unwrap();
    assert_eq!(
        ok["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(ok["metadata"]["labels"]["new"], "yes");
}

#[test]
fn record_update_on_create_and_no_op() {
    let created = record_update("Deployment", None, &deploy(1, "a"), "kubectl-create", T1);
    let e = entry(&created, "kubectl-create", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert!(e["fieldsV1"]["f:spec"].get("f:replicas").is_some());
    assert!(e["fieldsV1"]["f:metadata"].get("f:name").is_none());
    // an update that changes nothing leaves everything as it was
    let same = record_update("Deployment", Some(&created), &created, "other", T2);
    assert_eq!(same, created);
    // a PUT without managedFields keeps the stored ones
    let mut put = created.clone();
    put["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    put["spec"]["replicas"] = json!(4);
    let out = record_update("Deployment", Some(&created), &put, "kubectl-replace", T2);
    assert_eq!(entries(&out).len(), 2);
    assert!(
        entry(&out, "kubectl-create", "Update").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(
        entry(&out, "kubectl-replace", "Update").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    // an explicit empty list resets ownership to this write
    let mut reset = out.clone();
    reset["metadata"]["managedFields"] = json!([]);
    reset["spec"]["replicas"] = json!(5);
    let out = record_update("Deployment", Some(&out), &reset, "resetter", T2);
    assert_eq!(entries(&out).len(), 1);
    assert_eq!(entries(&out)[0]["manager"], "resetter");
}

#[test]
fn removed_fields_leave_every_set() {
    let live = record_update("Deployment", None, &deploy(1, "a"), "creator", T1);
    let mut edited = live.clone();
    edited["metadata"].as_object_mut().unwrap().remove("labels");
    let out = record_update("Deployment", Some(&live), &edited, "editor", T2);
    assert!(
        entry(&out, "creator", "Update").unwrap()["fieldsV1"]["f:metadata"]
            .get("f:labels")
            .is_none()
    );
    // the editor only removed things, so it owns nothing and has no entry
    assert!(entry(&out, "editor", "Update").is_none());
}

#[test]
fn server_owned_fields_and_status_are_never_applied_or_owned() {
    let live = apply(None, &deploy(2, "a"), "kubectl", false, T1).unwrap();
    let mut stored = live.clone();
    stored["metadata"]["uid"] = json!("u-1");
    stored["metadata"]["resourceVersion"] = json!("7");
    stored["metadata"]["creationTimestamp"] = json!(T1);
    stored["status"] = json!({"replicas": 2});
    let mut cfg = deploy(2, "a");
    cfg["metadata"]["uid"] = json!("evil");
    cfg["metadata"]["generation"] = json!(99);
    cfg["metadata"]["managedFields"] = json!([]);
    cfg["status"] = json!({"replicas": 100});
    let out = apply(Some(&stored), &cfg, "kubectl", false, T2).unwrap();
    assert_eq!(out, stored);
    let created = apply(None, &cfg, "kubectl", false, T1).unwrap();
    assert!(created.get("status").is_none());
    assert!(created["metadata"].get("uid").is_none());
    let fields = &entries(&created)[0]["fieldsV1"];
    assert!(fields.get("f:status").is_none(), "{fields}");
    let meta = fields["f:metadata"].as_object().unwrap();
    assert_eq!(
        meta.keys().collect::<Vec<_>>(),
        vec!["f:labels"],
        "{fields}"
    );
}

#[test]
fn objects_without_managed_fields_get_before_first_apply() {
    let live = deploy(2, "nginx:1");
    let err = apply(Some(&live), &deploy(3, "nginx:1"), "kubectl", false, T1).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![FieldConflict {
            manager: BEFORE_FIRST_APPLY.into(),
            field: ".spec.replicas".into()
        }])
    );
    let out = apply(Some(&live), &deploy(2, "nginx:1"), "kubectl", false, T1).unwrap();
    assert!(entry(&out, BEFORE_FIRST_APPLY, "Update").is_some());
    assert!(entry(&out, "kubectl", "Apply").is_some());
}

#[test]
fn invalid_configurations() {
    let cases = [
        (json!([1]), "kubectl", "object"),
        (deploy(1, "a"), "", "fieldManager"),
        (json!({"kind": "Deployment"}), "kubectl", "apiVersion"),
        (
            json!({"apiVersion": "v1", "kind": "Service"}),
            "kubectl",
            "does not match",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": "x"}),
            "kubectl",
            "metadata",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "kubectl",
            "omits key field \"name\"",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
            "kubectl",
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        ),
    ];
    for (cfg, manager, expect) in cases {
        match apply(None, &cfg, manager, false, T1) {
            Err(ApplyError::Invalid(m)) => {
                assert!(m.contains(expect), "{m} should mention {expect}")
            }
            other => panic!("{cfg}: {other:?}"),
        }
    }
}

#[test]
fn container_ports_keyed_with_protocol_default() {
    // coredns-style: the same port twice with different protocols is legal for apply
    let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns"}, "spec": {"containers": [
        {"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]}]}});
    let out = server_side_apply("Pod", None, &cfg, "kubectl", false, T1).unwrap();
    let ports =
        &entries(&out)[0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"dns\"}"]["f:ports"];
    assert!(
        ports
            .get("k:{\"containerPort\":53,\"protocol\":\"UDP\"}")
            .is_some(),
        "{ports}"
    );
    assert!(
        ports
            .get("k:{\"containerPort\":53,\"protocol\":\"TCP\"}")
            .is_some(),
        "{ports}"
    );
}

#[test]
fn finalizers_are_owned_per_value() {
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x"]}, "data": {"k": "v"}});
    let live = server_side_apply("ConfigMap", None, &cfg, "one", false, T1).unwrap();
    let two = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b/y"]}});
    let live = server_side_apply("ConfigMap", Some(&live), &two, "two", false, T1).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    assert_eq!(
        entry(&live, "two", "Apply").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"b/y\"": {}}}})
    );
    // one drops its finalizer: only its own goes
    let one = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    let out = server_side_apply("ConfigMap", Some(&live), &one, "one", false, T2).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b/y"]));
}

#[test]
fn custom_resources_own_lists_whole() {
    let dr = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "r"},
        "spec": {"host": "a", "subsets": [{"name": "v1"}]}});
    let live = server_side_apply("DestinationRule", None, &dr, "migrate", false, T1).unwrap();
    assert_eq!(
        entries(&live)[0]["fieldsV1"],
        json!({"f:spec": {"f:host": {}, "f:subsets": {}}})
    );
    let other = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "r"},
        "spec": {"subsets": [{"name": "v2"}]}});
    let err = server_side_apply("DestinationRule", Some(&live), &other, "someone", false, T2)
        .unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![FieldConflict {
            manager: "migrate".into(),
            field: ".spec.subsets".into()
        }])
    );
    let forced =
        server_side_apply("DestinationRule", Some(&live), &other, "someone", true, T2).unwrap();
    assert_eq!(forced["spec"]["subsets"], json!([{"name": "v2"}]));
}

#[test]
fn null_in_configuration_removes_without_owning() {
    let live = apply(None, &deploy(2, "a"), "alice", false, T1).unwrap();
    let mut cfg = deploy(2, "a");
    cfg["metadata"]["labels"]["app"] = Value::Null;
    let out = apply(Some(&live), &cfg, "alice", false, T2).unwrap();
    assert!(
        out["metadata"].get("labels").is_none() || out["metadata"]["labels"].get("app").is_none()
    );
}

#[test]
fn malformed_managed_fields_are_dropped_and_empty_sets_ignored() {
    let mut live = deploy(2, "a");
    live["metadata"]["managedFields"] = json!([
        {"manager": "junk", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {}},
        {"manager": "bad", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"x:y": {}}},
        {"manager": "empty", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {}},
        {"manager": "owner", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]);
    let err = apply(Some(&live), &deploy(3, "a"), "kubectl", false, T1).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![FieldConflict {
            manager: "owner".into(),
            field: ".spec.replicas".into()
        }])
    );
    let out = apply(Some(&live), &deploy(2, "b"), "kubectl", false, T1).unwrap();
    let managers: Vec<_> = entries(&out)
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, vec!["owner", "kubectl"]);
}
