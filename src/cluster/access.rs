//! Asking the API server what the credentials may do: a
//! SelfSubjectAccessReview (authorization.k8s.io/v1), as `kubectl auth
//! can-i` does.

use super::{Cluster, ClusterError};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

/// What a review asks: RBAC's resource attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessQuery<'a> {
    pub verb: &'a str,
    /// Empty for the core group.
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    /// None: cluster-scoped, or every namespace.
    pub namespace: Option<&'a str>,
}

impl Cluster {
    /// Whether this cluster's credentials allow `query`. A server that does
    /// not serve the review API, or an error, is an error: never "allowed".
    pub async fn can_i(&self, query: &AccessQuery<'_>) -> Result<bool, ClusterError> {
        let what = "SelfSubjectAccessReview (authorization.k8s.io/v1)";
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(query.verb.to_string()),
                    group: Some(query.group.to_string()),
                    resource: Some(query.resource.to_string()),
                    subresource: query.subresource.map(str::to_string),
                    namespace: query.namespace.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => ClusterError::Invalid {
                    cluster: self.name.clone(),
                    object: what.into(),
                    message: "the API server does not serve it (404)".into(),
                },
                other => ClusterError::from_kube(&self.name, what, other),
            })?;
        let status = answer.status.ok_or_else(|| ClusterError::Invalid {
            cluster: self.name.clone(),
            object: what.into(),
            message: "the answer has no status".into(),
        })?;
        Ok(status.allowed && status.denied != Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A cluster whose API server answers every request with `status` and `body`.
    async fn answering(status: &'static str, body: &'static str) -> Cluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the whole request (headers, then content-length bytes)
                    // first: closing on unread bytes resets the connection.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request_complete(&seen) {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        let url: http::Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        let mut config = kube::Config::new(url);
        config.default_retry = false;
        let client = kube::Client::try_from(config).unwrap();
        Cluster::new("c1", "ctx", format!("http://127.0.0.1:{port}"), client)
    }

    fn request_complete(bytes: &[u8]) -> bool {
        let text = String::from_utf8_lossy(bytes);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        body.len() >= length
    }

    const QUERY: AccessQuery<'static> = AccessQuery {
        verb: "create",
        group: "",
        resource: "secrets",
        subresource: None,
        namespace: Some("istio-system"),
    };

    #[tokio::test]
    async fn the_answer_is_read_from_the_review_status() {
        let review = |allowed: bool| {
            if allowed {
                r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{},"status":{"allowed":true}}"#
            } else {
                r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{},"status":{"allowed":false}}"#
            }
        };
        assert!(
            answering("201 Created", review(true))
                .await
                .can_i(&QUERY)
                .await
                .unwrap()
        );
        assert!(
            !answering("201 Created", review(false))
                .await
                .can_i(&QUERY)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_server_without_the_review_api_is_an_error_never_an_answer() {
        let not_found = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;
        let err = answering("404 Not Found", not_found)
            .await
            .can_i(&QUERY)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cluster c1")
                && err.contains("SelfSubjectAccessReview")
                && err.contains("404"),
            "{err}"
        );
        let forbidden = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#;
        let err = answering("403 Forbidden", forbidden)
            .await
            .can_i(&QUERY)
            .await;
        assert!(err.is_err(), "{err:?}");
        let empty = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{}}"#;
        let err = answering("201 Created", empty).await.can_i(&QUERY).await;
        assert!(err.unwrap_err().to_string().contains("no status"));
    }
}
