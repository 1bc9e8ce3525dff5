//! Phase 3: what `istioctl create-remote-secret` does, natively (FACTS 1):
//! in the cluster to be read, the reader ServiceAccount, its ClusterRole and
//! ClusterRoleBinding and a legacy token Secret; in the reading cluster, the
//! Secret `istio-remote-secret-<name>` with a kubeconfig built from that
//! token. Always in the explicit namespace `istio-system` (FACTS 1.4).

use super::{
    Ctx, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, WORKLOADS_TIMEOUT, install, istiod, restore, trust, wait,
};
use crate::plan::{
    Action, Condition, ObjectRef, Phase, RemoteKubeconfig, Risk, SecretSource, Step,
};
use crate::spec::ClusterSpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The ServiceAccount remote secrets read a cluster as.
pub const READER_SA: &str = "istio-reader-service-account";
/// The ClusterRole (and ClusterRoleBinding) of the reader.
pub const READER_ROLE: &str = "istio-reader-clusterrole-istio-system";
/// The legacy token Secret of the reader, whose token remote secrets embed.
pub const TOKEN_SECRET: &str = "istio-reader-service-account-istio-remote-secret-token";
/// A remote secret is `istio-remote-secret-<cluster read>`.
pub const REMOTE_SECRET_PREFIX: &str = "istio-remote-secret-";
/// The label by which istiod finds remote secrets.
pub const MULTICLUSTER_LABEL: &str = "istio/multiCluster";
/// The annotation naming the cluster a remote secret reads.
pub const CLUSTER_ANNOTATION: &str = "networking.istio.io/cluster";
const TOKEN_TIMEOUT: u64 = 60;
const SYNC_TIMEOUT: u64 = 120;

/// `discovery/<cluster>/reader`: the reader identity on a cluster.
pub fn reader_id(cluster: &str) -> String {
    format!("discovery/{cluster}/reader")
}
/// `discovery/<into><-<read>`: the secret for reading `read`, placed in `into`.
pub fn pair_id(into: &str, read: &str) -> String {
    format!("discovery/{into}<-{read}")
}
/// `discovery/<cluster>/eastwest`: a remote's east-west gateway.
pub fn eastwest_id(cluster: &str) -> String {
    format!("discovery/{cluster}/eastwest")
}

/// The reader's token Secret in `istio-system`.
pub fn token_secret() -> ObjectRef {
    ObjectRef::secret(ISTIO_SYSTEM, TOKEN_SECRET)
}

/// The remote secret for reading the cluster `read`.
pub fn remote_secret(read: &str) -> ObjectRef {
    ObjectRef::secret(ISTIO_SYSTEM, &format!("{REMOTE_SECRET_PREFIX}{read}"))
}

/// Ordered pairs (into, read). Multi-primary: every ordered pair. Primary-
/// remote: every ordered pair of primaries, and each remote read by its primary.
pub fn pairs<'a>(ctx: &Ctx<'a>) -> Vec<(&'a ClusterSpec, &'a ClusterSpec)> {
    let mut out = Vec::new();
    let primaries: Vec<&ClusterSpec> = ctx.primaries().collect();
    for a in &primaries {
        for b in &primaries {
            if a.name != b.name {
                out.push((*a, *b));
            }
        }
    }
    for r in ctx.remotes() {
        if let Some(p) = ctx.primary_of(r) {
            out.push((p, r));
        }
    }
    out
}

/// The rules of `reader-clusterrole.yaml` (FACTS 1.5); `remote` adds those
/// rendered with `istiodRemote.enabled`.
pub fn reader_rules(remote: bool) -> Value {
    let read = json!(["get", "list", "watch"]);
    let mut rules = vec![
        json!({ "apiGroups": ["config.istio.io", "security.istio.io", "networking.istio.io",
                              "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io",
                              "extensions.istio.io"],
                "resources": ["*"], "verbs": read }),
        json!({ "apiGroups": [""],
                "resources": ["endpoints", "pods", "services", "nodes", "replicationcontrollers",
                              "namespaces", "secrets", "configmaps"],
                "verbs": read }),
        json!({ "apiGroups": ["networking.istio.io"], "resources": ["workloadentries"],
                "verbs": ["get", "watch", "list"] }),
        json!({ "apiGroups": ["networking.x-k8s.io", "gateway.networking.k8s.io"],
                "resources": ["gateways"], "verbs": ["get", "watch", "list"] }),
        json!({ "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                "verbs": read }),
        json!({ "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read }),
        json!({ "apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"],
                "verbs": ["get", "list", "watch", "create", "delete"] }),
        json!({ "apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports"],
                "verbs": read }),
        json!({ "apiGroups": ["apps"], "resources": ["replicasets"], "verbs": read }),
        json!({ "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
                "verbs": ["create"] }),
        json!({ "apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
                "verbs": ["create"] }),
    ];
    if remote {
        rules.push(json!({ "apiGroups": [""], "resources": ["configmaps"],
                           "verbs": ["create", "get", "list", "watch", "update"] }));
        rules.push(json!({ "apiGroups": ["admissionregistration.k8s.io"],
                           "resources": ["mutatingwebhookconfigurations"],
                           "verbs": ["get", "list", "watch", "update", "patch"] }));
        rules.push(json!({ "apiGroups": ["admissionregistration.k8s.io"],
                           "resources": ["validatingwebhookconfigurations"],
                           "verbs": ["get", "list", "watch", "update"] }));
    }
    Value::Array(rules)
}

/// The reader objects of one cluster, in apply order.
pub fn reader_objects(remote: bool) -> Vec<(ObjectRef, Value, Value)> {
    let sa = ObjectRef::namespaced("v1", "ServiceAccount", ISTIO_SYSTEM, READER_SA);
    let role =
        ObjectRef::cluster_scoped("rbac.authorization.k8s.io/v1", "ClusterRole", READER_ROLE);
    let binding = ObjectRef::cluster_scoped(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        READER_ROLE,
    );
    vec![
        (
            sa,
            json!({ "labels": { "app": "istio-reader", "app.kubernetes.io/name": "istio-reader" } }),
            json!({}),
        ),
        (role, json!({}), json!({ "rules": reader_rules(remote) })),
        (
            binding,
            json!({}),
            json!({
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": READER_ROLE },
                "subjects": [{ "kind": "ServiceAccount", "name": READER_SA,
                               "namespace": ISTIO_SYSTEM }],
            }),
        ),
        (
            token_secret(),
            json!({ "annotations": { "kubernetes.io/service-account.name": READER_SA } }),
            json!({ "type": "kubernetes.io/service-account-token" }),
        ),
    ]
}

/// The kubeconfig `istioctl create-remote-secret` embeds (FACTS 1.2):
/// cluster, context and user all named `cluster`. The engine calls this with
/// the token Secret's `ca.crt` (base64) and `token` when it applies.
pub fn remote_kubeconfig(cluster: &str, server: &str, ca_data_base64: &str, token: &str) -> String {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": cluster, "cluster": {
            "certificate-authority-data": ca_data_base64,
            "server": server,
        }}],
        "contexts": [{ "name": cluster, "context": { "cluster": cluster, "user": cluster } }],
        "current-context": cluster,
        "users": [{ "name": cluster, "user": { "token": token } }],
    });
    super::to_yaml(&config)
}

/// Every discovery step: a reader identity on each cluster that is read,
/// then per pair the remote secret, and a remote's east-west gateway once
/// its primary reads it (multi-network).
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let pairs = pairs(ctx);
    let mut read: Vec<&ClusterSpec> = pairs.iter().map(|(_, b)| *b).collect();
    read.sort_by(|a, b| a.name.cmp(&b.name));
    read.dedup_by(|a, b| a.name == b.name);
    let mut out: Vec<Step> = read.into_iter().map(|b| reader_step(ctx, b)).collect();
    for (a, b) in &pairs {
        out.push(remote_secret_step(ctx, a, b));
        if ctx.is_remote(b) && ctx.multi_network {
            out.push(remote_eastwest_step(ctx, a, b));
        }
    }
    out
}

/// The reader identity on `b` and its token, which remote secrets embed.
fn reader_step(ctx: &Ctx<'_>, b: &ClusterSpec) -> Step {
    let mut s = Step::new(
        Phase::Discovery,
        reader_id(&b.name),
        format!(
            "Reader identity on {}: ServiceAccount {READER_SA}, ClusterRole and binding {READER_ROLE}, legacy token Secret; wait for the token. {}",
            b.name,
            reader_rbac_reason(ctx)
        ),
    );
    s.need(install::id(&b.name));
    let objects = reader_objects(ctx.is_remote(b));
    for (object, meta, body) in &objects {
        s.forward(super::apply(&b.name, object, meta.clone(), body.clone()));
    }
    s.forward(wait(
        &b.name,
        token_secret(),
        Condition::SecretHasKeys {
            keys: vec!["token".into(), "ca.crt".into()],
        },
        TOKEN_TIMEOUT,
    ));
    for (object, _, _) in objects.iter().rev() {
        s.rollback(restore(&b.name, object));
    }
    s
}

/// Why the reader step creates the reader's RBAC, per version (the 1.30 row).
fn reader_rbac_reason(ctx: &Ctx<'_>) -> &'static str {
    if ctx.spec.mesh.version().reader_rbac_is_optional() {
        "Istio 1.30 and later render the reader ServiceAccount and ClusterRole only when global.enableReaderRBAC is not false (FACTS 1.5), so they are created here."
    } else {
        "Istio before 1.30 always renders the reader ServiceAccount and ClusterRole with the control plane (global.enableReaderRBAC came in 1.30): applying them again changes nothing."
    }
}

/// `a`'s istiod reads `b`: the remote secret in `a`, then wait until istiod
/// synced it. A remote `b` then gets the root from `a` and its workloads
/// are restarted to be injected. Before Istio 1.31 istiod does not rebuild
/// the client of a remote secret that changed (the apply may replace one a
/// manual attempt or an earlier run left): istiod is restarted after it, and
/// after rollback puts the previous Secret back, but only where the Secret
/// really changed. A new one is picked up on every version, and a needless
/// restart reconnects every proxy of the mesh.
fn remote_secret_step(ctx: &Ctx<'_>, a: &ClusterSpec, b: &ClusterSpec) -> Step {
    let version = ctx.spec.mesh.version();
    let restart = version.needs_istiod_restart_after_remote_secret();
    let mut description = format!(
        "{}'s istiod reads {}: Secret istio-remote-secret-{} in {}/istio-system{}, then wait until it is synced.",
        a.name,
        b.name,
        b.name,
        a.name,
        match (&b.api_server, &b.tls_server_name) {
            (Some(server), Some(tls)) => format!(" (server {server}, TLS server name {tls})"),
            (Some(server), None) => format!(" (server {server})"),
            (None, Some(tls)) => format!(" (TLS server name {tls})"),
            (None, None) => String::new(),
        }
    );
    if restart {
        description.push_str(&format!(
            " Istio before 1.31 keeps a stale view of a remote secret that changes until istiod restarts (issue 13's table, 1.31 release notes): restart istiod in {} if the write replaced a different remote secret, and after rollback if the restore puts back one that differs from what the step left (a new Secret is picked up without a restart).",
            a.name
        ));
    }
    let mut s = Step::new(Phase::Discovery, pair_id(&a.name, &b.name), description);
    s.need(reader_id(&b.name));
    s.need(install::id(&a.name));
    s.need(trust::done_id(ctx, a));
    s.need(trust::done_id(ctx, b));
    let object = remote_secret(&b.name);
    s.forward(apply_remote_secret(a, b));
    if restart {
        restart_istiod(ctx, &a.name, &object, &mut s.forward);
    }
    s.forward(wait(
        &a.name,
        istiod(ctx),
        Condition::RemoteClusterSynced {
            remote: b.name.clone(),
        },
        SYNC_TIMEOUT,
    ));
    if ctx.is_remote(b) {
        // The primary leads the remote only with EXTERNAL_ISTIOD and the
        // controlPlaneClusters annotation: then it writes the root there (FACTS 3.4).
        s.forward(wait(
            &b.name,
            ObjectRef::config_map(ISTIO_SYSTEM, "istio-ca-root-cert"),
            Condition::ConfigMapHasRoots {
                key: "root-cert.pem".into(),
                contains: vec![ctx.cert_path(&["root", "root-cert.pem"])],
                lacks: Vec::new(),
            },
            SYNC_TIMEOUT,
        ));
        // Pods that ran before the remote had a webhook are not injected:
        // now the primary injects and serves them. Rollback of the
        // remote's install restarts them again, uninjected.
        for ns in ctx.workload_namespaces(b) {
            s.forward(Action::RestartWorkloads {
                cluster: b.name.clone(),
                namespace: ns.clone(),
                timeout_seconds: WORKLOADS_TIMEOUT,
            });
            s.risk(Risk::WorkloadRestart);
        }
    }
    s.rollback(restore(&a.name, &object));
    if restart {
        restart_istiod(ctx, &a.name, &object, &mut s.rollback);
    }
    s
}

/// Restart istiod in `cluster` if the step replaced `secret` with different
/// content, and wait until it is available (at once when not restarted).
fn restart_istiod(ctx: &Ctx<'_>, cluster: &str, secret: &ObjectRef, out: &mut Vec<Action>) {
    out.push(Action::Restart {
        cluster: cluster.into(),
        object: istiod(ctx),
        only_if_changed: Some(secret.clone()),
    });
    out.push(wait(
        cluster,
        istiod(ctx),
        Condition::DeploymentAvailable,
        ROLLOUT_TIMEOUT,
    ));
}

/// The Secret `istio-remote-secret-<b>` in `a`; its kubeconfig is built by
/// the engine from `b`'s reader token when it applies.
fn apply_remote_secret(a: &ClusterSpec, b: &ClusterSpec) -> Action {
    let object = remote_secret(&b.name);
    let manifest = super::manifest(
        &object,
        json!({
            "labels": { MULTICLUSTER_LABEL: "true" },
            "annotations": { CLUSTER_ANNOTATION: b.name },
        }),
        json!({}),
    );
    Action::Apply {
        cluster: a.name.clone(),
        object,
        manifest,
        secret_data: BTreeMap::from([(
            b.name.clone(),
            SecretSource::RemoteKubeconfig(Box::new(RemoteKubeconfig {
                cluster: b.name.clone(),
                context: b.context.clone(),
                token_secret: token_secret(),
                server: b.api_server.clone(),
                tls_server_name: b.tls_server_name.clone(),
            })),
        )]),
    }
}

/// A remote's east-west gateway (primary-remote, multi-network): its proxy
/// is served by the primary `a`'s istiod, which knows `b` only from its
/// remote secret on.
fn remote_eastwest_step(ctx: &Ctx<'_>, a: &ClusterSpec, b: &ClusterSpec) -> Step {
    let mut gw = Step::new(
        Phase::Discovery,
        eastwest_id(&b.name),
        format!(
            "East-west gateway on remote {}: its proxy is served by {}'s istiod, which knows {} from now on.",
            b.name, a.name, b.name
        ),
    );
    gw.need(pair_id(&a.name, &b.name));
    install::eastwest_actions(ctx, b, &mut gw);
    gw
}
