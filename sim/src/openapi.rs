//! Just enough OpenAPI v3 for kubectl: per group-version documents whose
//! PATCH operations carry the GVK extension and the `fieldValidation`
//! parameter, so kubectl leaves validation to the server (it is enforced
//! there for CRDs) instead of validating client-side.

use crate::cluster::ClusterInner;
use crate::http::{Body, Req, json_response};
use crate::resources::ResourceType;
use hyper::{Method, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const PARAMS: &[&str] = &[
    "dryRun",
    "fieldManager",
    "fieldValidation",
    "force",
    "pretty",
];

pub(crate) fn serve(cluster: &Arc<ClusterInner>, req: &Req) -> Option<Response<Body>> {
    if req.method != Method::GET {
        return None;
    }
    let rest = req.path.trim_end_matches('/').strip_prefix("/openapi/v3")?;
    let types = cluster.store.types();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for t in &types {
        let gv = (t.group.clone(), t.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    if rest.is_empty() {
        let mut paths = Map::new();
        for (g, v) in &gvs {
            let key = gv_path(g, v);
            let hash = doc_hash(&types, g, v);
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
        return Some(json_response(200, &json!({"paths": paths})));
    }
    let key = rest.trim_start_matches('/');
    let (g, v) = gvs.iter().find(|(g, v)| gv_path(g, v) == key)?;
    Some(json_response(200, &document(&types, g, v)))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn doc_hash(types: &[ResourceType], group: &str, version: &str) -> String {
    let mut h = Sha256::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        h.update(t.kind.as_bytes());
        h.update(t.resource.as_bytes());
        h.update([u8::from(t.namespaced)]);
    }
    hex::encode(&h.finalize()[..16])
}

fn document(types: &[ResourceType], group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let params: Vec<Value> = PARAMS
        .iter()
        .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let base = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.resource)
        } else {
            format!("{base}/{}/{{name}}", t.resource)
        };
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", t.kind),
                    "parameters": params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                },
                "put": {
                    "operationId": format!("replace{}", t.kind),
                    "parameters": params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                },
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    })
}
