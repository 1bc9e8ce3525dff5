//! Where a resource request points: `/api/v1/...` and `/apis/<group>/<version>/...` paths
//! taken apart. Below both the request plumbing (`http`) and the handlers.

/// Where a resource request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths.
pub(crate) fn parse_path(path: &str) -> Option<ResourcePath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, more @ ..]
            if !matches!(*r, "status" | "finalize") || !more.is_empty() =>
        {
            (Some(ns.to_string()), [&[*r][..], more].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    if resource.is_empty() || name.as_deref() == Some("") {
        return None;
    }
    Some(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
        namespace,
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn t(path: &str) -> Option<Parsed> {
        parse_path(path).map(|t| {
            (
                t.group,
                t.version,
                t.resource,
                t.namespace,
                t.name,
                t.subresource,
            )
        })
    }

    #[test]
    fn paths() {
        assert_eq!(
            t("/api/v1/namespaces"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                None,
                None
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                Some("foo".into()),
                None
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo/status"),
            Some((
                "".into(),
                "v1".into(),
                "namespaces".into(),
                None,
                Some("foo".into()),
                Some("status".into())
            ))
        );
        assert_eq!(
            t("/api/v1/namespaces/foo/pods"),
            Some((
                "".into(),
                "v1".into(),
                "pods".into(),
                Some("foo".into()),
                None,
                None
            ))
        );
        assert_eq!(
            t("/apis/apps/v1/namespaces/ns/deployments/web/scale"),
            Some((
                "apps".into(),
                "v1".into(),
                "deployments".into(),
                Some("ns".into()),
                Some("web".into()),
                Some("scale".into())
            ))
        );
        assert_eq!(
            t("/apis/apps/v1/deployments"),
            Some((
                "apps".into(),
                "v1".into(),
                "deployments".into(),
                None,
                None,
                None
            ))
        );
        assert_eq!(t("/apis/apps"), None);
        assert_eq!(t("/version"), None);
        assert_eq!(t("/api/v1/a/b/c/d"), None);
    }
}
