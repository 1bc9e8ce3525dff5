//! The rules of the API server, through the in-process store API and HTTP.

use crate::common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use meshsim::{DeleteOptions, Deleted, EventType, WriteOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_uid_and_resource_version() {
    let sim = start(1).await;
    let store = sim.cluster("cluster1").store();
    let rt = store
        .resolve("apps", "v1", "deployments")
        .expect("deployments");
    let d = json!({"metadata": {"name": "d", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let created = store
        .create(&rt, d, &WriteOptions::default())
        .expect("create");
    assert_eq!(created["metadata"]["generation"], 1);
    let uid = created["metadata"]["uid"].clone();
    let ts = created["metadata"]["creationTimestamp"].clone();

    // The deployment controller writes this Deployment too (revision, status): each change
    // re-reads and retries on conflict, as a client of a real cluster must.
    let labelled = update_retrying(store, &rt, Some("default"), "d", |d| {
        d["metadata"]["labels"] = json!({"x": "y"});
    });
    assert_eq!(
        labelled["metadata"]["generation"], 1,
        "metadata changes keep generation"
    );
    assert_ne!(
        labelled["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    let scaled = update_retrying(store, &rt, Some("default"), "d", |d| {
        d["spec"]["replicas"] = json!(3);
        d["metadata"]["uid"] = json!(null);
    });
    assert_eq!(scaled["metadata"]["generation"], 2);
    assert_eq!(scaled["metadata"]["uid"], uid);
    assert_eq!(scaled["metadata"]["creationTimestamp"], ts);

    // The stale version conflicts (it is older than the scale, whatever the controller did).
    let err = store
        .update(&rt, labelled, &WriteOptions::default())
        .expect_err("stale");
    assert_eq!((err.code, err.reason), (409, "Conflict"));

    // generateName.
    let cm_rt = store.resolve("", "v1", "configmaps").expect("configmaps");
    let g = store
        .create(
            &cm_rt,
            json!({"metadata": {"generateName": "cfg-", "namespace": "default"}}),
            &WriteOptions::default(),
        )
        .expect("generateName");
    let name = g["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_deletion_until_removed() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let deleted = cms
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = deleted.left().expect("still there: the object comes back");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(cms.get_opt("held").await.expect("get").is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert!(
        cms.get_opt("held").await.expect("get").is_none(),
        "the last finalizer gone deletes it"
    );

    // Preconditions on delete.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("cm"),
    )
    .await
    .expect("create");
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert!(matches!(cms.delete("p", &dp).await, Err(kube::Error::Api(s)) if s.code == 409));
    let gone = cms
        .delete("p", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(
        gone.is_right(),
        "an object without finalizers is gone at once (Status)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_expires_and_store_events_flow() {
    let sim = start(1).await;
    let store = sim.cluster("cluster1").store();
    let cm_rt = store.resolve("", "v1", "configmaps").expect("configmaps");
    let start_rv = store.resource_version();
    let mut events = store.events();
    store
        .create(
            &cm_rt,
            json!({"metadata": {"name": "w", "namespace": "default"}}),
            &WriteOptions::default(),
        )
        .expect("create");
    // The cluster's controllers may publish events of their own meanwhile: find ours.
    let e = loop {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("event in time")
            .expect("event");
        if e.object.pointer("/metadata/name") == Some(&json!("w")) {
            break e;
        }
    };
    assert_eq!(
        (e.kind, e.gr.resource.as_str()),
        (EventType::Added, "configmaps")
    );
    match store
        .delete(&cm_rt, Some("default"), "w", &DeleteOptions::default())
        .expect("delete")
    {
        Deleted::Gone(_) => {}
        Deleted::Finalizing(_) => panic!("no finalizers"),
    }
    for i in 0..2100 {
        store
            .create(
                &cm_rt,
                json!({"metadata": {"name": format!("c{i}"), "namespace": "default"}}),
                &WriteOptions::default(),
            )
            .expect("create");
    }
    let err = store.subscribe(start_rv).expect_err("too old");
    assert_eq!((err.code, err.reason), (410, "Expired"));
    // Over HTTP: a 200 watch whose only event is a 410 ERROR Status.
    let path =
        format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start_rv}");
    let out = kubectl(&sim, "cluster1", &["get", "--raw", &path]).await;
    let line: serde_json::Value =
        serde_json::from_str(out.ok().lines().next().expect("one event")).expect("json");
    assert_eq!(line["type"], "ERROR");
    assert_eq!(line["object"]["code"], 410);
    assert_eq!(line["object"]["reason"], "Expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_with_selectors_see_objects_enter_and_leave() {
    use futures_util::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let sim = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sim, "cluster1").await, "default");
    let rv = sim
        .cluster("cluster1")
        .store()
        .resource_version()
        .to_string();
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=x").timeout(20), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "w"}})).expect("cm"),
    )
    .await
    .expect("create");
    let label = |v: serde_json::Value| Patch::Merge(json!({"metadata": {"labels": {"app": v}}}));
    cms.patch("w", &PatchParams::default(), &label(json!("x")))
        .await
        .expect("label");
    cms.patch("w", &PatchParams::default(), &label(json!("y")))
        .await
        .expect("relabel");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("event in time");
        match next.expect("stream open").expect("event") {
            WatchEvent::Added(cm) => seen.push(("ADDED", cm.metadata.name)),
            WatchEvent::Deleted(cm) => seen.push(("DELETED", cm.metadata.name)),
            WatchEvent::Modified(cm) => seen.push(("MODIFIED", cm.metadata.name)),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    let w = Some("w".to_string());
    assert_eq!(seen, vec![("ADDED", w.clone()), ("DELETED", w)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_policies() {
    let sim = start(1).await;
    let store = sim.cluster("cluster1").store();
    let cm = store.resolve("", "v1", "configmaps").expect("configmaps");
    let opts = WriteOptions::default();
    let owner = store
        .create(
            &cm,
            json!({"metadata": {"name": "owner", "namespace": "default"}}),
            &opts,
        )
        .expect("owner");
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]);
    for name in ["dep1", "dep2"] {
        store
            .create(&cm, json!({"metadata": {"name": name, "namespace": "default", "ownerReferences": owner_ref}}), &opts)
            .expect("dependent");
    }
    let orphan = DeleteOptions {
        propagation: meshsim::Propagation::Orphan,
        ..Default::default()
    };
    store
        .delete(&cm, Some("default"), "owner", &orphan)
        .expect("delete owner");
    let dep = store
        .get(&cm, Some("default"), "dep1")
        .expect("orphan kept");
    assert_eq!(
        dep["metadata"]["ownerReferences"],
        json!(null),
        "the reference to the gone owner is dropped"
    );

    let owner = store
        .create(
            &cm,
            json!({"metadata": {"name": "owner2", "namespace": "default"}}),
            &opts,
        )
        .expect("owner");
    let mut dep2 = store.get(&cm, Some("default"), "dep2").expect("dep2");
    dep2["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner["metadata"]["uid"]}]);
    store.update(&cm, dep2, &opts).expect("re-own");
    store
        .delete(&cm, Some("default"), "owner2", &DeleteOptions::default())
        .expect("background delete");
    assert!(
        store.get(&cm, Some("default"), "dep2").is_err(),
        "background deletion takes dependents"
    );
}
