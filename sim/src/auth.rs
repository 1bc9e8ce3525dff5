//! Bearer-token authentication (the cluster admin token and service-account
//! tokens meshsim mints) and RBAC authorization from the stored
//! Roles/ClusterRoles and their bindings.

use crate::resources::ResourceType;
use crate::store::Store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const SA_PREFIX: &str = "msim-sa.";

/// The audience the API server accepts (its issuer, as `--api-audiences`
/// defaults): a token requested for another audience does not authenticate here.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The object a requested token is bound to: the token stops
/// authenticating once that object (by uid) is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundObject {
    /// `Pod`, `Secret` or `Node`.
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// What a TokenRequest token carries, signed: whose it is, until when, for
/// whom, and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub namespace: String,
    pub service_account: String,
    /// The account's uid: a recreated account does not inherit old tokens.
    pub service_account_uid: String,
    /// Unix seconds after which the token is refused.
    pub expires: i64,
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<BoundObject>,
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// The cluster admin: every verb on everything.
    pub admin: bool,
}

/// What a request wants to do, in RBAC terms.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// A cluster's token material. Never printed.
pub struct Authenticator {
    admin_token: String,
    key: hmac::Key,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { .. }")
    }
}

impl Authenticator {
    pub fn generate() -> Self {
        Authenticator {
            admin_token: format!("msim-admin.{}", random_hex(24)),
            key: hmac::Key::new(hmac::HMAC_SHA256, random_hex(32).as_bytes()),
        }
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A token that authenticates as `system:serviceaccount:<ns>:<name>`.
    pub fn mint_sa_token(&self, namespace: &str, name: &str) -> String {
        self.mint(&format!("{namespace}/{name}"))
    }

    /// A token bound to a token Secret too: valid while the account and
    /// that Secret (still holding this token) exist, as legacy tokens are.
    pub fn mint_secret_token(&self, namespace: &str, name: &str, secret: &str) -> String {
        self.mint(&format!("{namespace}/{name}/{secret}"))
    }

    /// A TokenRequest token: valid until `claims.expires`, for its audiences,
    /// while the account (same uid) and the bound object exist.
    pub fn mint_requested_token(&self, claims: &TokenClaims) -> String {
        // Serializing plain strings and numbers cannot fail.
        self.mint(&serde_json::to_string(claims).unwrap_or_default())
    }

    fn mint(&self, subject: &str) -> String {
        let subject = URL_SAFE_NO_PAD.encode(subject);
        let nonce = random_hex(8);
        let sig = self.sign(&format!("{subject}.{nonce}"));
        format!("{SA_PREFIX}{subject}.{nonce}.{sig}")
    }

    fn sign(&self, msg: &str) -> String {
        hex::encode(hmac::sign(&self.key, msg.as_bytes()).as_ref())
    }

    /// The identity behind an `Authorization` header value, if the token is
    /// ours and (for service accounts) the account still exists.
    pub fn authenticate(&self, header: Option<&str>, store: &Store) -> Option<Identity> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Some(Identity {
                user: "kubernetes-admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                admin: true,
            });
        }
        let rest = token.strip_prefix(SA_PREFIX)?;
        let mut parts = rest.splitn(3, '.');
        let (subject, nonce, sig) = (parts.next()?, parts.next()?, parts.next()?);
        let expected = self.sign(&format!("{subject}.{nonce}"));
        if !constant_time_eq(sig.as_bytes(), expected.as_bytes()) {
            return None;
        }
        let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(subject).ok()?).ok()?;
        if decoded.starts_with('{') {
            let claims: TokenClaims = serde_json::from_str(&decoded).ok()?;
            return requested_token_valid(&claims, store, time::OffsetDateTime::now_utc())
                .then(|| sa_identity(&claims.namespace, &claims.service_account));
        }
        let mut subject = decoded.split('/');
        let (ns, name, secret) = (subject.next()?, subject.next()?, subject.next());
        let sa_type = store.resolve("", "v1", "serviceaccounts")?;
        store.get_arc(&sa_type, Some(ns), name).ok()?;
        if let Some(secret) = secret {
            let secret_type = store.resolve("", "v1", "secrets")?;
            let stored = store.get_arc(&secret_type, Some(ns), secret).ok()?;
            let held = stored
                .pointer("/data/token")
                .and_then(serde_json::Value::as_str)?;
            let held = base64::engine::general_purpose::STANDARD
                .decode(held)
                .ok()?;
            if !constant_time_eq(&held, token.as_bytes()) {
                return None;
            }
        }
        Some(sa_identity(ns, name))
    }
}

fn sa_identity(ns: &str, name: &str) -> Identity {
    Identity {
        user: format!("system:serviceaccount:{ns}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
        admin: false,
    }
}

/// A requested token's checks at `now`, as the API server's service-account
/// authenticator makes them: not expired, meant for this server, its account
/// and bound object still the ones it was issued against.
fn requested_token_valid(claims: &TokenClaims, store: &Store, now: time::OffsetDateTime) -> bool {
    if now.unix_timestamp() >= claims.expires || !claims.audiences.iter().any(|a| a == API_AUDIENCE)
    {
        return false;
    }
    let uid_of = |resource: &str, ns: Option<&str>, name: &str| -> Option<String> {
        let rt = store.resolve("", "v1", resource)?;
        let obj = store.get_arc(&rt, ns, name).ok()?;
        // An object being deleted no longer vouches for the token.
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return None;
        }
        crate::store::meta_str(&obj, "uid").map(str::to_string)
    };
    let ns = Some(claims.namespace.as_str());
    if uid_of("serviceaccounts", ns, &claims.service_account).as_deref()
        != Some(claims.service_account_uid.as_str())
    {
        return false;
    }
    match &claims.bound {
        None => true,
        Some(b) => {
            let found = match b.kind.as_str() {
                "Pod" => uid_of("pods", ns, &b.name),
                "Secret" => uid_of("secrets", ns, &b.name),
                "Node" => uid_of("nodes", None, &b.name),
                _ => None,
            };
            found.as_deref() == Some(b.uid.as_str())
        }
    }
}

/// Whether RBAC objects in `store` allow `who` to do `what`.
pub fn authorize(store: &Store, who: &Identity, what: &Attributes<'_>) -> bool {
    if who.admin || who.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    let Some(crb) = store.resolve("rbac.authorization.k8s.io", "v1", "clusterrolebindings") else {
        return false;
    };
    let Some(rb) = store.resolve("rbac.authorization.k8s.io", "v1", "rolebindings") else {
        return false;
    };
    let (cluster_bindings, _) = store.list(&crb, None);
    for binding in &cluster_bindings {
        if binds(binding, who, None) && role_allows(store, binding, None, what) {
            return true;
        }
    }
    if let Some(ns) = what.namespace {
        let (bindings, _) = store.list(&rb, Some(ns));
        for binding in &bindings {
            if binds(binding, who, Some(ns)) && role_allows(store, binding, Some(ns), what) {
                return true;
            }
        }
    }
    false
}

fn binds(binding: &Value, who: &Identity, binding_ns: Option<&str>) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "ServiceAccount" => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .or(binding_ns)
                    .unwrap_or_default();
                who.user == format!("system:serviceaccount:{ns}:{name}")
            }
            "User" => who.user == name,
            "Group" => who.groups.iter().any(|g| g == name),
            _ => false,
        }
    })
}

fn role_allows(
    store: &Store,
    binding: &Value,
    binding_ns: Option<&str>,
    what: &Attributes<'_>,
) -> bool {
    let Some(role_ref) = binding.get("roleRef") else {
        return false;
    };
    let kind = role_ref
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = role_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let role_type: Option<ResourceType> = match kind {
        "ClusterRole" => store.resolve("rbac.authorization.k8s.io", "v1", "clusterroles"),
        "Role" => store.resolve("rbac.authorization.k8s.io", "v1", "roles"),
        _ => None,
    };
    let Some(role_type) = role_type else {
        return false;
    };
    let ns = if kind == "Role" { binding_ns } else { None };
    let Ok(role) = store.get_arc(&role_type, ns, name) else {
        return false;
    };
    let Some(rules) = role.get("rules").and_then(Value::as_array) else {
        return false;
    };
    rules.iter().any(|r| rule_allows(r, what))
}

fn rule_allows(rule: &Value, what: &Attributes<'_>) -> bool {
    let list = |key: &str| -> Vec<&str> {
        rule.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let verbs = list("verbs");
    let groups = list("apiGroups");
    let resources = list("resources");
    let names = list("resourceNames");
    let full = match what.subresource {
        Some(sub) => format!("{}/{sub}", what.resource),
        None => what.resource.to_string(),
    };
    let verb_ok = verbs.iter().any(|v| *v == "*" || *v == what.verb);
    let group_ok = groups.iter().any(|g| *g == "*" || *g == what.group);
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == full
            || (what.subresource.is_some()
                && *r == format!("*/{}", what.subresource.unwrap_or_default()))
    });
    let name_ok = names.is_empty() || what.name.is_some_and(|n| names.contains(&n));
    verb_ok && group_ok && resource_ok && name_ok
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Tokens and keys come from the OS generator; fastrand is predictable.
fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut b).is_err() {
        // The OS generator failing is not recoverable in a useful way; fall
        // back to a weaker source rather than a fixed value.
        b.iter_mut().for_each(|x| *x = fastrand::u8(..));
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{WriteOptions, meta_str};
    use serde_json::json;

    fn put(store: &Store, resource: &str, obj: Value) {
        let rt = store
            .resolve("rbac.authorization.k8s.io", "v1", resource)
            .unwrap();
        store.create(&rt, obj, &WriteOptions::default()).unwrap();
    }

    fn sa(name: &str) -> Identity {
        Identity {
            user: format!("system:serviceaccount:ops:{name}"),
            groups: vec!["system:serviceaccounts".into()],
            admin: false,
        }
    }

    fn can(
        store: &Store,
        who: &Identity,
        verb: &str,
        group: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
    ) -> bool {
        authorize(
            store,
            who,
            &Attributes {
                verb,
                group,
                resource,
                subresource: sub,
                namespace: ns,
                name: None,
            },
        )
    }

    /// A requested token authenticates until its expiry, only for the API
    /// server's audience, and only while its account (same uid) and bound
    /// object exist.
    #[test]
    fn requested_tokens_expire_and_follow_their_account_and_binding() {
        let store = Store::new("c1");
        let opts = WriteOptions::default();
        let core = |r: &str| store.resolve("", "v1", r).unwrap();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}});
        store.create(&core("namespaces"), ns, &opts).unwrap();
        let sa_obj = json!({"metadata": {"name": "a", "namespace": "ops"}});
        let sa = store
            .create(&core("serviceaccounts"), sa_obj.clone(), &opts)
            .unwrap();
        let pod = json!({"metadata": {"name": "p", "namespace": "ops"},
            "spec": {"serviceAccountName": "a", "containers": [{"name": "c", "image": "i"}]}});
        let pod = store.create(&core("pods"), pod, &opts).unwrap();
        let auth = Authenticator::generate();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = TokenClaims {
            namespace: "ops".into(),
            service_account: "a".into(),
            service_account_uid: meta_str(&sa, "uid").unwrap().into(),
            expires: now + 600,
            audiences: vec![API_AUDIENCE.into()],
            bound: None,
        };
        let check = |c: &TokenClaims| {
            let header = format!("Bearer {}", auth.mint_requested_token(c));
            auth.authenticate(Some(&header), &store)
        };
        let who = check(&claims).expect("a fresh token authenticates");
        assert_eq!(who.user, "system:serviceaccount:ops:a");
        assert!(!who.admin);
        let expired = TokenClaims {
            expires: now - 1,
            ..claims.clone()
        };
        assert_eq!(check(&expired), None, "an expired token is refused");
        let vault = TokenClaims {
            audiences: vec!["vault".into()],
            ..claims.clone()
        };
        assert_eq!(check(&vault), None, "another audience is refused");
        let bound = TokenClaims {
            bound: Some(BoundObject {
                kind: "Pod".into(),
                name: "p".into(),
                uid: meta_str(&pod, "uid").unwrap().into(),
            }),
            ..claims.clone()
        };
        assert!(check(&bound).is_some());
        // A signature over other claims does not verify.
        let token = auth.mint_requested_token(&expired);
        let forged = format!(
            "{SA_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims).unwrap()),
            token.splitn(3, '.').nth(2).unwrap_or_default()
        );
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {forged}")), &store),
            None
        );
        store
            .delete(&core("pods"), Some("ops"), "p", &Default::default())
            .unwrap();
        assert_eq!(check(&bound), None, "the bound pod is gone");
        store
            .delete(
                &core("serviceaccounts"),
                Some("ops"),
                "a",
                &Default::default(),
            )
            .unwrap();
        store
            .create(&core("serviceaccounts"), sa_obj, &opts)
            .unwrap();
        assert_eq!(check(&claims), None, "a recreated account has a new uid");
    }

    /// As the API server's RBAC authorizer answers a review: a RoleBinding
    /// grants in its namespace only (never "every namespace"), a
    /// ClusterRoleBinding everywhere and on cluster-scoped resources, and a
    /// subresource needs a rule naming it (`deployments/scale`, `*/scale`) or `*`.
    #[test]
    fn namespaced_cluster_scoped_and_subresource_reviews() {
        let store = Store::new("c1");
        let ns = store.resolve("", "v1", "namespaces").unwrap();
        let sample =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sample"}});
        store.create(&ns, sample, &WriteOptions::default()).unwrap();
        put(
            &store,
            "clusterroles",
            json!({"metadata": {"name": "apps"}, "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
                {"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]},
            ]}),
        );
        put(
            &store,
            "clusterroles",
            json!({"metadata": {"name": "webhooks"}, "rules": [
                {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"], "verbs": ["*"]},
            ]}),
        );
        put(
            &store,
            "rolebindings",
            json!({"metadata": {"name": "apps", "namespace": "sample"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "apps"},
            "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "ops"}]}),
        );
        put(
            &store,
            "clusterrolebindings",
            json!({"metadata": {"name": "webhooks"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "webhooks"},
            "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "ops"}]}),
        );
        let a = sa("a");
        let mwc = "mutatingwebhookconfigurations";
        assert!(can(
            &store,
            &a,
            "patch",
            "apps",
            "deployments",
            None,
            Some("sample")
        ));
        assert!(!can(
            &store,
            &a,
            "patch",
            "apps",
            "deployments",
            None,
            Some("other")
        ));
        assert!(
            !can(&store, &a, "patch", "apps", "deployments", None, None),
            "every namespace"
        );
        assert!(!can(
            &store,
            &a,
            "patch",
            "apps",
            "deployments",
            Some("scale"),
            Some("sample")
        ));
        assert!(can(
            &store,
            &a,
            "get",
            "",
            "pods",
            Some("log"),
            Some("sample")
        ));
        assert!(!can(&store, &a, "get", "", "pods", None, Some("sample")));
        assert!(can(
            &store,
            &a,
            "create",
            "admissionregistration.k8s.io",
            mwc,
            None,
            None
        ));
        assert!(
            can(
                &store,
                &a,
                "delete",
                "admissionregistration.k8s.io",
                mwc,
                Some("status"),
                None
            ),
            "* covers subresources"
        );
        assert!(!can(
            &store,
            &sa("b"),
            "create",
            "admissionregistration.k8s.io",
            mwc,
            None,
            None
        ));
    }
}
