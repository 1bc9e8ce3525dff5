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
                kube::Error::Api(s) if s.code == 404 => ClusterError::UnknownKind {
                    cluster: self.name.clone(),
                    api_version: "authorization.k8s.io/v1".into(),
                    kind: "SelfSubjectAccessReview".into(),
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
