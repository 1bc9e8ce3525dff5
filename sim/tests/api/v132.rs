//! What a current client expects of a v1.32 API server: aggregated discovery
//! (negotiated as the API server does), TokenRequest, APIService objects and
//! node cordon, with the kube client and the real kubectl.

use crate::common::*;
use http_body_util::BodyExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::discovery::v2::{APIGroupDiscovery, APIGroupDiscoveryList, APIResourceDiscovery};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// A small CRD with two served versions (v1 stored), independent of Istio's files.
fn widget_crd() -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {"group": "example.dev", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"], "categories": ["all"]},
        "versions": [
            {"name": "v1alpha1", "served": true, "storage": false, "schema": schema},
            {"name": "v1", "served": true, "storage": true, "schema": schema, "subresources": {"status": {}}},
        ]}})
}

fn crd_api(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    )
}

fn group<'a>(list: &'a APIGroupDiscoveryList, name: &str) -> Option<&'a APIGroupDiscovery> {
    list.items.iter().find(|g| {
        g.metadata
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or_default()
            == name
    })
}

fn resource<'a>(g: &'a APIGroupDiscovery, version: &str, plural: &str) -> &'a APIResourceDiscovery {
    g.versions
        .iter()
        .find(|v| v.version.as_deref() == Some(version))
        .unwrap_or_else(|| panic!("version {version} listed"))
        .resources
        .iter()
        .find(|r| r.resource.as_deref() == Some(plural))
        .unwrap_or_else(|| panic!("{plural} listed"))
}

fn kind_of(r: &APIResourceDiscovery) -> (String, String, String) {
    let k = r.response_kind.clone().unwrap_or_default();
    (
        k.group.unwrap_or_default(),
        k.version.unwrap_or_default(),
        k.kind.unwrap_or_default(),
    )
}

/// A GET with headers; the status, headers and body.
async fn get(
    client: &kube::Client,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut req = http::Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .send(
            req.body(kube::client::Body::from(Vec::new()))
                .expect("request"),
        )
        .await
        .expect("answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_lists_every_group_and_follows_crds() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;
    let apis = client
        .list_api_groups_aggregated()
        .await
        .expect("aggregated /apis");
    let names: Vec<&str> = apis
        .items
        .iter()
        .filter_map(|g| g.metadata.as_ref().and_then(|m| m.name.as_deref()))
        .collect();
    // The aggregator's order: its own group, then the built-ins by priority.
    assert_eq!(names.first(), Some(&"apiregistration.k8s.io"), "{names:?}");
    assert_eq!(names.get(1), Some(&"apps"), "{names:?}");
    for expected in [
        "batch",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "discovery.k8s.io",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let apps = group(&apis, "apps").expect("apps");
    assert_eq!(apps.versions[0].freshness.as_deref(), Some("Current"));
    let deployments = resource(apps, "v1", "deployments");
    assert_eq!(
        kind_of(deployments),
        ("apps".into(), "v1".into(), "Deployment".into())
    );
    assert_eq!(deployments.scope.as_deref(), Some("Namespaced"));
    assert_eq!(deployments.singular_resource.as_deref(), Some("deployment"));
    assert_eq!(deployments.short_names, ["deploy"]);
    assert_eq!(deployments.categories, ["all"]);
    assert!(deployments.verbs.iter().any(|v| v == "watch"));
    let subs: Vec<(&str, (String, String, String))> = deployments
        .subresources
        .iter()
        .map(|s| {
            let k = s.response_kind.clone().unwrap_or_default();
            (
                s.subresource.as_deref().unwrap_or_default(),
                (
                    k.group.unwrap_or_default(),
                    k.version.unwrap_or_default(),
                    k.kind.unwrap_or_default(),
                ),
            )
        })
        .collect();
    assert_eq!(
        subs,
        [
            ("scale", ("autoscaling".into(), "v1".into(), "Scale".into())),
            ("status", ("apps".into(), "v1".into(), "Deployment".into())),
        ]
    );
    let core = client
        .list_core_api_versions_aggregated()
        .await
        .expect("aggregated /api");
    assert_eq!(core.items.len(), 1);
    let nodes = resource(&core.items[0], "v1", "nodes");
    assert_eq!(nodes.scope.as_deref(), Some("Cluster"));
    let sa = resource(&core.items[0], "v1", "serviceaccounts");
    let token = sa
        .subresources
        .iter()
        .find(|s| s.subresource.as_deref() == Some("token"))
        .expect("serviceaccounts/token");
    assert_eq!(token.verbs, ["create"]);
    assert_eq!(
        token.response_kind.as_ref().and_then(|k| k.kind.as_deref()),
        Some("TokenRequest")
    );

    // A CRD appears (versions by preference), and kube's aggregated discovery resolves it.
    assert!(group(&apis, "example.dev").is_none());
    crd_api(&client)
        .patch(
            "widgets.example.dev",
            &PatchParams::apply("test"),
            &Patch::Apply(widget_crd()),
        )
        .await
        .expect("CRD applies");
    let apis = client
        .list_api_groups_aggregated()
        .await
        .expect("aggregated /apis");
    assert_eq!(
        apis.items
            .last()
            .and_then(|g| g.metadata.as_ref()?.name.as_deref()),
        Some("example.dev"),
        "CRD groups rank last"
    );
    let widgets_group = group(&apis, "example.dev").expect("the CRD's group");
    let versions: Vec<&str> = widgets_group
        .versions
        .iter()
        .filter_map(|v| v.version.as_deref())
        .collect();
    assert_eq!(versions, ["v1", "v1alpha1"]);
    let widgets = resource(widgets_group, "v1", "widgets");
    assert_eq!(widgets.short_names, ["wdg"]);
    assert_eq!(widgets.singular_resource.as_deref(), Some("widget"));
    assert_eq!(widgets.subresources.len(), 1, "status on v1");
    assert!(
        resource(widgets_group, "v1alpha1", "widgets")
            .subresources
            .is_empty()
    );
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("kube's aggregated discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "example.dev",
            "v1",
            "Widget",
        ))
        .expect("Widget resolved");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        discovery
            .resolve_gvk(&kube::core::GroupVersionKind::gvk("", "v1", "Pod"))
            .is_some()
    );

    // The crdregistration controller's APIServices come and go with the CRD.
    let apiservices: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
        )),
    );
    eventually("APIServices for the CRD's versions", || async {
        let v1 = apiservices.get_opt("v1.example.dev").await.expect("get");
        let alpha = apiservices
            .get_opt("v1alpha1.example.dev")
            .await
            .expect("get");
        v1.is_some_and(|s| s.data["spec"]["groupPriorityMinimum"] == json!(1000)) && alpha.is_some()
    })
    .await;
    crd_api(&client)
        .delete("widgets.example.dev", &DeleteParams::default())
        .await
        .expect("CRD deletes");
    let apis = client
        .list_api_groups_aggregated()
        .await
        .expect("aggregated /apis");
    assert!(
        group(&apis, "example.dev").is_none(),
        "the group left with its CRD"
    );
    eventually("the CRD's APIServices removed", || async {
        apiservices
            .get_opt("v1.example.dev")
            .await
            .expect("get")
            .is_none()
            && apiservices
                .get_opt("v1alpha1.example.dev")
                .await
                .expect("get")
                .is_none()
    })
    .await;
    assert!(
        apiservices.get_opt("v1.apps").await.expect("get").is_some(),
        "built-ins stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_content_negotiation_as_the_api_server() {
    let sim = start(1).await;
    let client = client(&sim, "cluster1").await;

    // Asked for v2: the aggregated list, typed in Content-Type, cacheable by ETag.
    let (status, h, body) = get(&client, "/apis", &[("accept", AGGREGATED_V2)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), AGGREGATED_V2);
    assert_eq!(header(&h, "vary"), "Accept");
    let etag = header(&h, "etag").to_string();
    assert!(
        etag.starts_with('"') && etag.len() > 100,
        "a quoted SHA-512: {etag}"
    );
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
    let (status, _, body) = get(
        &client,
        "/apis",
        &[("accept", AGGREGATED_V2), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!((status, body.len()), (304, 0), "unchanged: Not Modified");

    // Not asked: the legacy list.
    for accept in ["", "application/json", "application/json, */*"] {
        let headers: &[(&str, &str)] = if accept.is_empty() {
            &[]
        } else {
            &[("accept", accept)]
        };
        let (status, h, body) = get(&client, "/apis", headers).await;
        assert_eq!(status, 200);
        assert_eq!(header(&h, "content-type"), "application/json", "{accept:?}");
        let doc: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(doc["kind"], "APIGroupList", "{accept:?}");
    }
    let (_, _, body) = get(&client, "/api", &[("accept", "application/json")]).await;
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["kind"], "APIVersions");

    // v2beta1, still served by 1.32, as asked; order and q decide between the two.
    let (status, h, body) = get(&client, "/api", &[("accept", AGGREGATED_V2BETA1)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), AGGREGATED_V2BETA1);
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    let list = format!("{AGGREGATED_V2BETA1},{AGGREGATED_V2},application/json");
    let (_, h, _) = get(&client, "/apis", &[("accept", &list)]).await;
    assert_eq!(
        header(&h, "content-type"),
        AGGREGATED_V2BETA1,
        "the first clause wins"
    );
    let weighted = format!("{AGGREGATED_V2BETA1};q=0.5,{AGGREGATED_V2};q=0.9");
    let (_, h, _) = get(&client, "/apis", &[("accept", &weighted)]).await;
    assert_eq!(
        header(&h, "content-type"),
        AGGREGATED_V2,
        "q outranks order"
    );
    // A plain clause first is not a transform: the aggregated one later still answers.
    let plain_first = format!("application/json,{AGGREGATED_V2}");
    let (_, h, _) = get(&client, "/apis", &[("accept", &plain_first)]).await;
    assert_eq!(header(&h, "content-type"), AGGREGATED_V2);
    // Protobuf is not spoken here: the next clause decides.
    let proto_first = format!(
        "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,{AGGREGATED_V2}"
    );
    let (_, h, _) = get(&client, "/apis", &[("accept", &proto_first)]).await;
    assert_eq!(header(&h, "content-type"), AGGREGATED_V2);
    // Only the roots aggregate: a group's document stays legacy.
    let (_, h, body) = get(&client, "/apis/apps", &[("accept", AGGREGATED_V2)]).await;
    assert_eq!(header(&h, "content-type"), "application/json");
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["kind"], "APIGroup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_receives_the_aggregated_document() {
    let sim = start(1).await;
    let out = kubectl(&sim, "cluster1", &["get", "deployments", "-A", "-v=8"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = &out.stderr;
    // client-go logs the request's Accept and the response's Content-Type.
    assert!(
        log.lines()
            .any(|l| l.contains("Accept:") && l.contains(AGGREGATED_V2)),
        "kubectl asked for v2:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("Content-Type:") && l.contains(AGGREGATED_V2)),
        "kubectl received v2:\n{log}"
    );
    // Had it fallen back to legacy discovery it would have read each group's document.
    assert!(
        !log.contains("/apis/apps/v1?timeout"),
        "no per-group discovery:\n{log}"
    );
    let out = kubectl(
        &sim,
        "cluster1",
        &["api-resources", "--api-group=apps", "-o", "name"],
    )
    .await;
    let names: Vec<&str> = out.ok().lines().collect();
    assert!(names.contains(&"deployments.apps"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_lists_local_apiservices() {
    let sim = start(1).await;
    let out = kubectl(&sim, "cluster1", &["get", "apiservices"]).await;
    let text = out.ok();
    let header = text.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    );
    for name in [
        "v1.",
        "v1.apps",
        "v1.batch",
        "v1.apiextensions.k8s.io",
        "v1.apiregistration.k8s.io",
    ] {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} listed:\n{text}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[1..3], ["Local", "True"], "{row}");
    }
    let out = kubectl(
        &sim,
        "cluster1",
        &[
            "get",
            "apiservice",
            "v1.apps",
            "-o",
            "jsonpath={.spec.groupPriorityMinimum} {.spec.versionPriority}",
        ],
    )
    .await;
    assert_eq!(out.ok(), "17800 15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_cordon_and_uncordon_taint_the_node() {
    let sim = start(1).await;
    let node = "cluster1-control-plane";
    let taints = || async {
        kubectl(
            &sim,
            "cluster1",
            &["get", "node", node, "-o", "jsonpath={.spec.taints[*].key}"],
        )
        .await
        .ok()
        .to_string()
    };
    assert_eq!(
        kubectl(&sim, "cluster1", &["cordon", node])
            .await
            .ok()
            .trim(),
        format!("node/{node} cordoned")
    );
    let out = kubectl(
        &sim,
        "cluster1",
        &["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"],
    )
    .await;
    assert_eq!(out.ok(), "true");
    eventually("the unschedulable taint", || async {
        taints().await == "node.kubernetes.io/unschedulable"
    })
    .await;
    let out = kubectl(&sim, "cluster1", &["get", "nodes", "--no-headers"]).await;
    let status = out
        .ok()
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert_eq!(status, "Ready,SchedulingDisabled");
    assert_eq!(
        kubectl(&sim, "cluster1", &["cordon", node])
            .await
            .ok()
            .trim(),
        format!("node/{node} already cordoned")
    );
    assert_eq!(
        kubectl(&sim, "cluster1", &["uncordon", node])
            .await
            .ok()
            .trim(),
        format!("node/{node} uncordoned")
    );
    eventually("the taint removed", || async { taints().await.is_empty() }).await;
    let out = kubectl(&sim, "cluster1", &["get", "nodes", "--no-headers"]).await;
    assert_eq!(out.ok().split_whitespace().nth(1), Some("Ready"));
}

const TOKEN_SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: ops}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: requester, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-configmaps, namespace: ops}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}
subjects: [{kind: ServiceAccount, name: reader, namespace: ops}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-serviceaccounts, namespace: ops}
rules:
- {apiGroups: [""], resources: [serviceaccounts], verbs: [get, list, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: requester, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-serviceaccounts}
subjects: [{kind: ServiceAccount, name: requester, namespace: ops}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_request_round_trip_with_rbac_and_binding() {
    let sim = start(1).await;
    let cluster = sim.cluster("cluster1").clone();
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], TOKEN_SETUP)
        .await
        .ok();

    let out = kubectl(
        &sim,
        "cluster1",
        &["create", "token", "reader", "-n", "ops", "--duration=20m"],
    )
    .await;
    let token = out.ok().trim().to_string();
    assert!(!token.is_empty());
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &token).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the token authenticates as reader:\n{answer}"
    );
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/secrets", &token).await;
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "and has reader's permissions only:\n{answer}"
    );
    assert!(
        answer.contains("system:serviceaccount:ops:reader"),
        "{answer}"
    );

    // The API server's limits and audiences.
    let out = kubectl(
        &sim,
        "cluster1",
        &["create", "token", "reader", "-n", "ops", "--duration=5m"],
    )
    .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("may not specify a duration less than 10 minutes"),
        "{}",
        out.stderr
    );
    let out = kubectl(
        &sim,
        "cluster1",
        &["create", "token", "reader", "-n", "ops", "--audience=vault"],
    )
    .await;
    let vault = out.ok().trim().to_string();
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &vault).await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "another audience's token is not for this server:\n{answer}"
    );
    let out = kubectl(
        &sim,
        "cluster1",
        &["create", "token", "nobody", "-n", "ops"],
    )
    .await;
    assert!(
        out.stderr.contains("serviceaccounts \"nobody\" not found"),
        "{}",
        out.stderr
    );

    // create on serviceaccounts/token is what RBAC decides.
    let requester = kubectl(
        &sim,
        "cluster1",
        &["create", "token", "requester", "-n", "ops"],
    )
    .await;
    let requester = requester.ok().trim().to_string();
    let as_requester = |args: &'static [&'static str]| {
        let mut all = vec!["--token", requester.as_str()];
        all.extend_from_slice(args);
        let sim = &sim;
        async move { kubectl(sim, "cluster1", &all).await }
    };
    let out = as_requester(&["create", "token", "reader", "-n", "ops"]).await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("cannot create resource \"serviceaccounts/token\""),
        "{}",
        out.stderr
    );
    let grant = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-serviceaccounts, namespace: ops}
rules:
- {apiGroups: [""], resources: [serviceaccounts], verbs: [get, list, create]}
- {apiGroups: [""], resources: [serviceaccounts/token], verbs: [create]}
"#;
    kubectl_in(&sim, "cluster1", &["apply", "-f", "-"], grant)
        .await
        .ok();
    let out = as_requester(&["create", "token", "reader", "-n", "ops"]).await;
    assert!(!out.ok().trim().is_empty());

    // A token bound to a secret stops working when the secret goes.
    kubectl(
        &sim,
        "cluster1",
        &[
            "create",
            "secret",
            "generic",
            "anchor",
            "-n",
            "ops",
            "--from-literal=a=b",
        ],
    )
    .await
    .ok();
    let out = kubectl(
        &sim,
        "cluster1",
        &[
            "create",
            "token",
            "reader",
            "-n",
            "ops",
            "--bound-object-kind=Secret",
            "--bound-object-name=anchor",
        ],
    )
    .await;
    let bound = out.ok().trim().to_string();
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &bound).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    kubectl(
        &sim,
        "cluster1",
        &["delete", "secret", "anchor", "-n", "ops"],
    )
    .await
    .ok();
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &bound).await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the bound secret is gone:\n{answer}"
    );
    // The unbound token is unaffected; deleting its account ends it too.
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &token).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    kubectl(
        &sim,
        "cluster1",
        &["delete", "serviceaccount", "reader", "-n", "ops"],
    )
    .await
    .ok();
    let answer = raw_get(&cluster, "/api/v1/namespaces/ops/configmaps", &token).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
