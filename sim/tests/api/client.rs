//! The kube client (kube 5, k8s-openapi v1_34) against meshsim.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::discovery::{Discovery, Scope};
use kube::runtime::wait::{Condition, await_condition, conditions};
use serde_json::json;
use std::time::Duration;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}
    }))
    .expect("deployment")
}

fn rolled_out() -> impl Condition<Deployment> {
    |obj: Option<&Deployment>| {
        let Some(d) = obj else { return false };
        let Some(st) = &d.status else { return false };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && st.updated_replicas.unwrap_or(0) == want
            && st.available_replicas.unwrap_or(0) == want
            && st.replicas.unwrap_or(0) == want
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_serves_builtins_and_crds() {
    let Some(crds) = crd_file("discovery_serves_builtins_and_crds") else {
        return;
    };
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let crds = std::fs::read_to_string(crds).expect("Istio CRDs");
    let crd_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(&()),
    );
    for doc in serde_yaml::Deserializer::from_str(&crds) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).expect("yaml");
        if v.is_null() {
            continue;
        }
        let name = v["metadata"]["name"].as_str().expect("name").to_string();
        crd_api
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&v),
            )
            .await
            .expect("CRD applies");
    }
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        ))
        .expect("deployments");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources.iter().any(|(s, _)| s.plural == "scale"),
        "scale subresource"
    );
    let (ar, caps) = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "networking.istio.io",
            "v1",
            "DestinationRule",
        ))
        .expect("DestinationRule served");
    assert_eq!(ar.plural, "destinationrules");
    assert_eq!(caps.scope, Scope::Namespaced);
    let ns = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("namespaces");
    assert_eq!(ns.1.scope, Scope::Cluster);
    let group = discovery.get("networking.istio.io").expect("group");
    assert_eq!(group.preferred_version_or_latest(), "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_is_idempotent_and_conflicts_are_409() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"a": "1"}});
    let pp = PatchParams::apply("migrate").force();
    let first = cms
        .patch("app", &pp, &Patch::Apply(&cm))
        .await
        .expect("apply creates");
    let second = cms
        .patch("app", &pp, &Patch::Apply(&cm))
        .await
        .expect("apply again");
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );
    assert_eq!(first.metadata.uid, second.metadata.uid);

    // A write with a stale resourceVersion conflicts.
    let mut stale = first.clone();
    let changed = cms.patch("app", &pp, &Patch::Apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"a": "2"}}))).await.expect("apply change");
    assert_ne!(
        changed.metadata.resource_version,
        first.metadata.resource_version
    );
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let err = cms
        .replace("app", &PostParams::default(), &stale)
        .await
        .expect_err("stale write");
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("expected a 409 Status, got {other:?}"),
    }
    let dup = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(cm.clone()).expect("cm"),
        )
        .await
        .expect_err("exists");
    match dup {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_condition_sees_rollouts_through_watch() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("migrate").force();
    deploys
        .patch("web", &pp, &Patch::Apply(&deployment("web", 2)))
        .await
        .expect("apply");
    let cond = conditions::is_deployment_completed().and(rolled_out());
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deploys.clone(), "web", cond),
    )
    .await
    .expect("rolled out in time")
    .expect("watch works")
    .expect("object");
    assert_eq!(
        done.status.as_ref().and_then(|s| s.available_replicas),
        Some(2)
    );
    let generation = done.metadata.generation;

    // A spec change bumps generation; waiting again watches the new rollout.
    deploys
        .patch("web", &pp, &Patch::Apply(&deployment("web", 4)))
        .await
        .expect("scale via apply");
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deploys.clone(), "web", rolled_out()),
    )
    .await
    .expect("rolled out in time")
    .expect("watch works")
    .expect("object");
    assert_eq!(done.metadata.generation, generation.map(|g| g + 1));
    assert_eq!(done.status.and_then(|s| s.ready_replicas), Some(4));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods");
    assert_eq!(list.items.len(), 4);
    let owner = &list.items[0]
        .metadata
        .owner_references
        .as_ref()
        .expect("owner")[0];
    assert_eq!(owner.kind, "ReplicaSet");

    let scale = deploys.get_scale("web").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("patch scale");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deploys.clone(), "web", rolled_out()),
    )
    .await
    .expect("scaled in time")
    .expect("watch");
    assert_eq!(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .expect("pods")
            .items
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_get_opt() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(cms.get_opt("missing").await.expect("404 is None").is_none());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "dry"}, "data": {"a": "b"}}))
            .expect("cm");
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &cm,
        )
        .await
        .expect("dry create");
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert!(
        cms.get_opt("dry").await.expect("get").is_none(),
        "dry run persisted nothing"
    );
    let pp = PatchParams::apply("t").dry_run();
    cms.patch(
        "dry",
        &pp,
        &Patch::Apply(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}}),
        ),
    )
    .await
    .expect("dry apply");
    assert!(cms.get_opt("dry").await.expect("get").is_none());
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    cms.delete(
        "dry",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .expect("dry delete");
    assert!(
        cms.get_opt("dry").await.expect("get").is_some(),
        "dry delete kept it"
    );

    // A namespaced object in a missing namespace: 404 for the namespace.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    match elsewhere.create(&PostParams::default(), &cm).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert!(
                s.message.contains("namespaces \"nowhere\" not found"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 404, got {other:?}"),
    }
    // A bad name is 422 Invalid with causes.
    let bad: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).expect("cm");
    match cms.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (422, "Invalid")),
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_token_from_a_secret_authenticates_with_rbac() {
    let sim = start(2).await;
    let admin = client(&sim, "cluster1").await;
    let pp = PatchParams::apply("test").force();
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "istio-reader", "namespace": "istio-system"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "istio-reader-token", "namespace": "istio-system",
                "annotations": {"kubernetes.io/service-account.name": "istio-reader"}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "namespaces"], "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "istio-reader", "namespace": "istio-system"}]}),
    ];
    let discovery = Discovery::new(admin.clone())
        .run()
        .await
        .expect("discovery");
    for obj in &objects {
        let dynobj: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
        let (ar, caps) = discovery.resolve_object(&dynobj).expect("known kind");
        let api = Api::<DynamicObject>::dynamic(admin.clone(), &ar, &caps.scope)
            .constrain("istio-system");
        api.patch(
            obj["metadata"]["name"].as_str().expect("name"),
            &pp,
            &Patch::Apply(obj),
        )
        .await
        .expect("apply");
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "istio-system");
    let token = std::sync::Mutex::new(String::new());
    eventually("the token controller fills the secret", || {
        let secrets = secrets.clone();
        let token = &token;
        async move {
            let s = secrets.get("istio-reader-token").await.expect("secret");
            let data = s.data.unwrap_or_default();
            match (data.get("token"), data.get("ca.crt"), data.get("namespace")) {
                (Some(t), Some(ca), Some(ns)) => {
                    assert!(String::from_utf8_lossy(&ca.0).contains("BEGIN CERTIFICATE"));
                    assert_eq!(ns.0, b"istio-system");
                    *token.lock().expect("lock") =
                        String::from_utf8(t.0.clone()).expect("utf-8 token");
                    true
                }
                _ => false,
            }
        }
    })
    .await;
    let token = token.into_inner().expect("lock");

    // A kubeconfig built from the secret, as a remote secret carries it.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("remote.kubeconfig");
    let c1 = sim.cluster("cluster1");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "remote",
        "clusters": [{"name": "cluster1", "cluster": {"server": c1.server_url(),
            "certificate-authority-data": base64_encode(c1.ca_pem())}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "remote", "context": {"cluster": "cluster1", "user": "reader"}}],
    });
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).expect("yaml")).expect("write");
    let reader = client_for(&path, "remote").await;
    let namespaces: Api<Namespace> = Api::all(reader.clone());
    assert!(
        namespaces
            .get_opt("istio-system")
            .await
            .expect("reader reads")
            .is_some()
    );
    let cms: Api<ConfigMap> = Api::namespaced(reader.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "nope"}})).expect("cm");
    match cms.create(&PostParams::default(), &cm).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden")),
        other => panic!("expected 403, got {other:?}"),
    }
    let secrets_as_reader: Api<Secret> = Api::namespaced(reader.clone(), "istio-system");
    assert!(
        matches!(secrets_as_reader.list(&ListParams::default()).await, Err(kube::Error::Api(s)) if s.code == 403)
    );

    // The token is this cluster's: cluster2 does not accept it.
    let other = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "remote",
        "clusters": [{"name": "c2", "cluster": {"server": sim.cluster("cluster2").server_url(),
            "certificate-authority-data": base64_encode(sim.cluster("cluster2").ca_pem())}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "remote", "context": {"cluster": "c2", "user": "reader"}}],
    });
    std::fs::write(&path, serde_yaml::to_string(&other).expect("yaml")).expect("write");
    let foreign = client_for(&path, "remote").await;
    match Api::<Namespace>::all(foreign)
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized")),
        other => panic!("expected 401, got {other:?}"),
    }
    // Deleting the token Secret revokes its token; a new Secret gets a new one.
    let ns_reader: Api<Namespace> = Api::all(reader.clone());
    secrets
        .delete("istio-reader-token", &DeleteParams::default())
        .await
        .expect("delete secret");
    assert!(
        matches!(ns_reader.list(&ListParams::default()).await, Err(kube::Error::Api(s)) if s.code == 401)
    );
    // Deleting the service account revokes its tokens.
    let direct = sim
        .cluster("cluster1")
        .mint_token("istio-system", "istio-reader");
    let ok = kubectl(
        &sim,
        "cluster1",
        &[
            "--token",
            &direct,
            "get",
            "ns",
            "istio-system",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(ok.ok().trim(), "namespace/istio-system");
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), "istio-system")
        .delete("istio-reader", &DeleteParams::default())
        .await
        .expect("delete sa");
    let revoked = kubectl(
        &sim,
        "cluster1",
        &["--token", &direct, "get", "ns", "istio-system"],
    )
    .await;
    assert!(
        revoked.stderr.contains("You must be logged in"),
        "{}",
        revoked.stderr
    );
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_with_the_runners_log_and_lb_services_get_addresses() {
    let runner = |ctx: &meshsim::JobContext<'_>| meshsim::JobOutcome {
        succeeded: ctx.job["metadata"]["name"] != "fails",
        log: format!(
            "line1\nrun in {} of {}\n",
            ctx.cluster,
            ctx.clusters.iter().count()
        ),
        ..Default::default()
    };
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(5),
        job_runner: std::sync::Arc::new(runner),
        ..Default::default()
    })
    .await
    .expect("sim");
    let client = client(&sim, "cluster2").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    for name in ["probe", "fails"] {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "curl", "image": "curlimages/curl"}]}}}}))
        .expect("job");
        jobs.create(&PostParams::default(), &job)
            .await
            .expect("create job");
    }
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs.clone(), "probe", conditions::is_job_completed()),
    )
    .await
    .expect("in time")
    .expect("watch")
    .expect("job");
    assert_eq!(done.status.as_ref().and_then(|s| s.succeeded), Some(1));
    let failed = |j: Option<&Job>| {
        j.and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs.clone(), "fails", failed),
    )
    .await
    .expect("in time")
    .expect("watch");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods
        .list(&ListParams::default().labels("job-name=probe"))
        .await
        .expect("pods")
        .items
        .remove(0);
    assert_eq!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded")
    );
    let name = pod.metadata.name.expect("name");
    let log = pods.logs(&name, &LogParams::default()).await.expect("log");
    assert_eq!(log, "line1\nrun in cluster2 of 2\n");
    let tail = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                container: Some("curl".into()),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(tail, "run in cluster2 of 2\n");

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "eastwest"}, "spec": {"type": "LoadBalancer",
        "ports": [{"name": "tls", "port": 15443}]}}),
    )
    .expect("svc");
    services
        .create(&PostParams::default(), &svc)
        .await
        .expect("create svc");
    let svc = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(
            services.clone(),
            "eastwest",
            conditions::is_service_loadbalancer_provisioned(),
        ),
    )
    .await
    .expect("in time")
    .expect("watch")
    .expect("svc");
    let ip = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .expect("ingress")[0]
        .ip
        .clone()
        .expect("ip");
    assert!(ip.starts_with("172.18.2."), "{ip}");
}
