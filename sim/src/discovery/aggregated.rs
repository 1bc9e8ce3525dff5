//! The aggregated discovery document (`apidiscovery.k8s.io/v2`
//! APIGroupDiscoveryList): every group, version and resource in one answer,
//! with an ETag as the API server computes it (SHA-512 of the document).

use super::negotiate::{GROUP, KIND, Media};
use super::{Group, groups as named_groups, subresource, verbs};
use crate::http::{Body, full};
use crate::resources::ResourceType;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, VARY};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn resource(t: &ResourceType) -> Value {
    let mut r = json!({
        "resource": t.resource,
        "responseKind": gvk(&t.group, &t.version, &t.kind),
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": verbs(t),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    let mut subs: Vec<&str> = t.subresources.to_vec();
    subs.sort_unstable();
    if !subs.is_empty() {
        let subs: Vec<Value> = subs
            .iter()
            .map(|sub| {
                let ((g, v, k), verbs) = subresource(t, sub);
                json!({"subresource": sub, "responseKind": gvk(&g, &v, &k), "verbs": verbs})
            })
            .collect();
        r["subresources"] = json!(subs);
    }
    r
}

fn version(types: &[ResourceType], group: &str, version: &str) -> Value {
    let mut served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    served.sort_by(|a, b| a.resource.cmp(&b.resource));
    let resources: Vec<Value> = served.into_iter().map(resource).collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn list(items: Vec<Value>) -> Value {
    json!({"kind": KIND, "apiVersion": format!("{GROUP}/v2"), "metadata": {}, "items": items})
}

/// `/api`: the core group (no name) and its one version.
pub(super) fn core(types: &[ResourceType]) -> Value {
    list(vec![json!({
        "metadata": {"creationTimestamp": null},
        "versions": [version(types, "", "v1")],
    })])
}

/// `/apis`: every named group, in the aggregator's order.
pub(super) fn groups(types: &[ResourceType]) -> Value {
    let items = named_groups(types)
        .iter()
        .map(|Group { name, versions }| {
            let versions: Vec<Value> = versions.iter().map(|v| version(types, name, v)).collect();
            json!({"metadata": {"name": name, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    list(items)
}

/// The answer: the document in the negotiated encoding with its ETag, or
/// 304 when the client already holds it. The ETag is the v2 document's
/// (whatever the encoding, as on the API server: `Vary: Accept` keeps caches apart).
pub(super) fn respond(doc: &Value, media: Media, if_none_match: Option<&str>) -> Response<Body> {
    let v2 = serde_json::to_vec(doc).unwrap_or_default();
    let etag = format!("\"{}\"", hex::encode_upper(Sha512::digest(&v2)));
    let (status, body) = if if_none_match == Some(etag.as_str()) {
        (StatusCode::NOT_MODIFIED, Vec::new())
    } else {
        let mut doc = doc.clone();
        doc["apiVersion"] = json!(format!("{GROUP}/{}", media.version));
        let bytes = if media.mime == "application/yaml" {
            serde_yaml::to_string(&doc).unwrap_or_default().into_bytes()
        } else if media.version == "v2" {
            v2
        } else {
            serde_json::to_vec(&doc).unwrap_or_default()
        };
        (StatusCode::OK, bytes)
    };
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if status == StatusCode::OK
        && let Ok(ct) = HeaderValue::from_str(&media.content_type())
    {
        headers.insert(CONTENT_TYPE, ct);
    }
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, tag);
    }
    headers.insert(VARY, HeaderValue::from_static("Accept"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public"));
    resp
}
