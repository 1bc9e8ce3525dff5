//! Control-plane revisions (`istiod`, `istiod-<rev>`), revision tags
//! (`istio-revision-tag-<tag>` webhooks), which namespaces use which, and
//! the Istio version each control plane runs.

use super::{label, name};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The revision label on istiod, webhooks and namespaces.
pub const REV_LABEL: &str = "istio.io/rev";
/// The name prefix of a revision tag's webhook.
pub const TAG_WEBHOOK_PREFIX: &str = "istio-revision-tag-";
/// The revision of a control plane installed without one.
pub const DEFAULT_REVISION: &str = "default";

/// One istiod Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    /// The Deployment's name (`istiod`, `istiod-1-26-4`).
    pub deployment: String,
    /// Its revision; `default` without one.
    pub revision: String,
    /// The Istio release it runs (`1.26.4`), when its labels or image say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A revision tag and the revision it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionTag {
    /// The tag (`prod`).
    pub tag: String,
    /// The revision it points to.
    pub revision: String,
}

/// A namespace that joins the mesh and the revision (or tag) it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceUse {
    /// The namespace's name.
    pub namespace: String,
    /// `default` for `istio-injection=enabled`, else the `istio.io/rev` value.
    pub uses: String,
}

/// The istiod Deployments among `deployments`: `app=istiod`, or named
/// `istiod` / `istiod-<rev>`.
pub fn istiods(deployments: &[Value]) -> Vec<&Value> {
    deployments
        .iter()
        .filter(|d| {
            let n = name(d);
            label(d, "app") == Some("istiod") || n == "istiod" || n.starts_with("istiod-")
        })
        .collect()
}

/// An istiod Deployment's revision and version.
pub fn control_plane(istiod: &Value) -> ControlPlane {
    let deployment = name(istiod).to_string();
    let revision = label(istiod, REV_LABEL)
        .map(str::to_string)
        .or_else(|| deployment.strip_prefix("istiod-").map(str::to_string))
        .unwrap_or_else(|| DEFAULT_REVISION.to_string());
    ControlPlane {
        deployment,
        revision,
        version: version(istiod),
    }
}

/// The Istio version of an istiod: istioctl's version label, Helm's
/// `app.kubernetes.io/version`, else the image tag (without a `-distroless`
/// style suffix).
pub fn version(istiod: &Value) -> Option<String> {
    let from_label = label(istiod, "operator.istio.io/version")
        .or_else(|| label(istiod, "app.kubernetes.io/version"));
    let from_image = || {
        let image = istiod
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)?;
        // A digest says nothing of the version; a registry port is no tag.
        let image = image.split('@').next()?;
        let (_, tag) = image.rsplit_once(':').filter(|(_, t)| !t.contains('/'))?;
        Some(tag.split('-').next().unwrap_or(tag))
    };
    from_label
        .or_else(from_image)
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

/// The revision tags: one `istio-revision-tag-<tag>` webhook each, pointing
/// at its `istio.io/rev`.
pub fn tags(webhooks: &[Value]) -> Vec<RevisionTag> {
    let mut out: Vec<RevisionTag> = webhooks
        .iter()
        .filter_map(|w| {
            let tag = name(w).strip_prefix(TAG_WEBHOOK_PREFIX)?;
            Some(RevisionTag {
                tag: label(w, "istio.io/tag").unwrap_or(tag).to_string(),
                revision: label(w, REV_LABEL).unwrap_or(DEFAULT_REVISION).to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.tag.cmp(&b.tag));
    out
}

/// Namespaces labelled for injection, and what each names: `istio.io/rev`
/// wins over `istio-injection=enabled`, as in Istio's webhooks.
pub fn namespace_uses(namespaces: &[Value]) -> Vec<NamespaceUse> {
    let mut out: Vec<NamespaceUse> = namespaces
        .iter()
        .filter_map(|ns| {
            let uses = match (label(ns, REV_LABEL), label(ns, "istio-injection")) {
                (_, Some("disabled")) => return None,
                (Some(rev), _) => rev,
                (None, Some("enabled")) => DEFAULT_REVISION,
                _ => return None,
            };
            Some(NamespaceUse {
                namespace: name(ns).to_string(),
                uses: uses.to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    out
}

/// `major.minor` of a version (`1.26.4` -> (1, 26)).
pub fn minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A sentence when the clusters' versions differ in minor version
/// (`(cluster, version)` pairs); None when they agree or cannot be read.
pub fn minor_skew(versions: &[(String, String)]) -> Option<String> {
    let known: Vec<(&str, &str, (u32, u32))> = versions
        .iter()
        .filter_map(|(c, v)| Some((c.as_str(), v.as_str(), minor(v)?)))
        .collect();
    let first = known.first()?.2;
    if known.iter().all(|(_, _, m)| *m == first) {
        return None;
    }
    let listed: Vec<String> = known
        .iter()
        .map(|(c, v, _)| format!("{c} runs Istio {v}"))
        .collect();
    Some(listed.join(", "))
}
