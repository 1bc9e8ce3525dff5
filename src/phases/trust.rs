//! Phase 2: one root for the whole mesh (FACTS 3, 9 items 1-6).
//!
//! - adopt: the source's live self-signed root (`istio-ca-secret`) signs one
//!   intermediate per primary; running workloads keep trusting everything.
//! - generate / files, multi-root: trust old+new on the source, switch every
//!   signer to an intermediate of the new root, then drop the old root.
//! - generate, restart-all: switch at once and restart every workload.
//!
//! Every `cacerts` is the four-key Istio format; istiod is restarted after
//! each change (a self-signed istiod never notices a new `cacerts`), and the
//! step waits until `istio-ca-root-cert` carries the expected roots before
//! restarting workloads. Remotes have no CA of their own: their namespaces
//! get the root from the primary once it can read them (phase 3).

use super::{
    Ctx, ISTIO_SYSTEM, ROLLOUT_TIMEOUT, WORKLOADS_TIMEOUT, install, istiod, preflight, restore,
    wait,
};
use crate::plan::{Action, Condition, LocalOp, ObjectRef, Phase, Risk, SecretSource, Step};
use crate::spec::{ClusterSpec, RootTransition, TrustRoot};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The step that adopts, generates or imports the mesh root.
pub const ROOT_ID: &str = "trust/root";
/// The four keys of Istio's `cacerts` Secret (plugged-in CA).
pub const CACERTS_KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "root-cert.pem",
    "cert-chain.pem",
];
/// How long istiod may take to write a new root into a namespace.
const ROOT_CONFIGMAP_TIMEOUT: u64 = 180;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Adopt,
    MultiRoot,
    RestartAll,
}

fn mode(ctx: &Ctx<'_>) -> Mode {
    match &ctx.spec.trust.root {
        TrustRoot::Adopt(_) => Mode::Adopt,
        TrustRoot::Generate(g) if g.transition == RootTransition::RestartAll => Mode::RestartAll,
        TrustRoot::Generate(_) | TrustRoot::Files(_) => Mode::MultiRoot,
    }
}

/// `trust/<cluster>`: the one switch of adopt and restart-all.
pub fn id(cluster: &str) -> String {
    format!("trust/{cluster}")
}
fn trust_both_id(cluster: &str) -> String {
    format!("trust/{cluster}/trust-both")
}
fn new_signer_id(cluster: &str) -> String {
    format!("trust/{cluster}/new-signer")
}
fn drop_old_id(cluster: &str) -> String {
    format!("trust/{cluster}/drop-old-root")
}

/// The step after which `c` trusts (and signs with) the mesh root: what
/// discovery waits for. Remotes follow their primary.
pub fn done_id(ctx: &Ctx<'_>, c: &ClusterSpec) -> String {
    let c = ctx.config_cluster(c);
    match mode(ctx) {
        Mode::Adopt | Mode::RestartAll => id(&c.name),
        Mode::MultiRoot => drop_old_id(&c.name),
    }
}

/// The `cacerts` Secret istiod signs with when it is present.
pub fn cacerts() -> ObjectRef {
    ObjectRef::secret(ISTIO_SYSTEM, "cacerts")
}

fn root_cert(dir: &str, ctx: &Ctx<'_>) -> PathBuf {
    ctx.cert_path(&[dir, "root-cert.pem"])
}

/// Apply `cacerts` whose four values are the files in `dir`.
fn apply_cacerts(cluster: &str, dir: PathBuf) -> Action {
    let object = cacerts();
    let secret_data: BTreeMap<String, SecretSource> = CACERTS_KEYS
        .iter()
        .map(|k| (k.to_string(), SecretSource::File(dir.join(k))))
        .collect();
    Action::Apply {
        cluster: cluster.into(),
        object: object.clone(),
        manifest: super::manifest(&object, json!({}), json!({ "type": "Opaque" })),
        secret_data,
    }
}

/// What the step's description adds about `cacerts`, per version (the 1.27 row).
fn cacerts_reason(ctx: &Ctx<'_>) -> &'static str {
    if ctx.spec.mesh.version().incomplete_cacerts_is_fatal() {
        " Istio 1.27 and later refuse to start on an incomplete cacerts (PR #55696, FACTS 3.1): its four keys are checked before istiod restarts."
    } else {
        " Istio before 1.27 silently falls back to self-signed on a cacerts without ca-key.pem (FACTS 3.1): the wait for istio-ca-root-cert is what proves the switch."
    }
}

/// Restart istiod, wait for it, wait for the roots in every namespace that
/// matters, and restart the workloads there. From 1.27 an incomplete
/// `cacerts` keeps the new istiod from starting: check it first.
fn switch_actions(
    ctx: &Ctx<'_>,
    c: &ClusterSpec,
    contains: &[PathBuf],
    lacks: &[PathBuf],
    out: &mut Vec<Action>,
) {
    if ctx.spec.mesh.version().incomplete_cacerts_is_fatal() {
        out.push(wait(
            &c.name,
            cacerts(),
            Condition::SecretHasKeys {
                keys: CACERTS_KEYS.iter().map(|k| k.to_string()).collect(),
            },
            ROLLOUT_TIMEOUT,
        ));
    }
    out.push(Action::Restart {
        cluster: c.name.clone(),
        object: istiod(ctx),
        only_if_changed: None,
    });
    out.push(wait(
        &c.name,
        istiod(ctx),
        Condition::DeploymentAvailable,
        ROLLOUT_TIMEOUT,
    ));
    let root_cm = |ns: &str| {
        wait(
            &c.name,
            ObjectRef::config_map(ns, "istio-ca-root-cert"),
            Condition::ConfigMapHasRoots {
                key: "root-cert.pem".into(),
                contains: contains.to_vec(),
                lacks: lacks.to_vec(),
            },
            ROOT_CONFIGMAP_TIMEOUT,
        )
    };
    out.push(root_cm(ISTIO_SYSTEM));
    for ns in ctx.workload_namespaces(c) {
        out.push(root_cm(ns));
        out.push(Action::RestartWorkloads {
            cluster: c.name.clone(),
            namespace: ns.clone(),
            timeout_seconds: WORKLOADS_TIMEOUT,
        });
    }
}

/// Rollback: put `cacerts` back as the step found it (its snapshot: the
/// previous stage's `cacerts`, or what was there before the migration),
/// restart istiod and the workloads. Never from certDir files: a rollback
/// must work from another directory or machine, and the state holds the
/// same Secret.
fn undo_actions(ctx: &Ctx<'_>, c: &ClusterSpec, out: &mut Vec<Action>) {
    out.push(restore(&c.name, &cacerts()));
    out.push(Action::Restart {
        cluster: c.name.clone(),
        object: istiod(ctx),
        only_if_changed: None,
    });
    out.push(wait(
        &c.name,
        istiod(ctx),
        Condition::DeploymentAvailable,
        ROLLOUT_TIMEOUT,
    ));
    for ns in ctx.workload_namespaces(c) {
        out.push(Action::RestartWorkloads {
            cluster: c.name.clone(),
            namespace: ns.clone(),
            timeout_seconds: WORKLOADS_TIMEOUT,
        });
    }
}

/// Needs of the first trust step of `c`: the root, its install, and on the
/// source the end of the install-time workload restart.
fn first_needs(ctx: &Ctx<'_>, c: &ClusterSpec, s: &mut Step) {
    s.need(ROOT_ID);
    s.need(install::id(&c.name));
    if ctx.keeps_existing_mesh(c) && !ctx.workload_namespaces(c).is_empty() {
        s.need(install::restart_id(&c.name));
    }
}

/// Every trust step: the root first, then per primary either one switch
/// (adopt, restart-all) or the three multi-root stages.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let Some(source) = ctx.source() else {
        return Vec::new();
    };
    let mut out = vec![root_step(ctx, source)];
    let primaries: Vec<&ClusterSpec> = ctx.primaries().collect();
    for c in &primaries {
        match mode(ctx) {
            Mode::Adopt | Mode::RestartAll => out.push(switch_step(ctx, c)),
            Mode::MultiRoot => {
                if ctx.is_source(c) {
                    out.push(trust_both_step(ctx, c));
                }
                out.push(new_signer_step(ctx, c));
                out.push(drop_old_step(ctx, c, &primaries));
            }
        }
    }
    out
}

/// The root step: adopt the live root, generate one or import one; a
/// multi-root transition also keeps the source's live root (`root-old`).
fn root_step(ctx: &Ctx<'_>, source: &ClusterSpec) -> Step {
    // The root is adopted from the cluster the spec names (the source, as
    // validation requires), fetched for a transition from the source.
    let adopted = match &ctx.spec.trust.root {
        TrustRoot::Adopt(name) => ctx.cluster(name).unwrap_or(source),
        _ => source,
    };
    let mut root = Step::new(Phase::Trust, ROOT_ID, "");
    root.need(preflight::id(&adopted.name));
    let fetch = |dir: &str| Action::Local {
        op: LocalOp::FetchLiveRoot {
            cluster: adopted.name.clone(),
            secret: ObjectRef::secret(ISTIO_SYSTEM, "istio-ca-secret"),
            fallback: cacerts(),
            dir: ctx.cert_path(&[dir]),
        },
    };
    match &ctx.spec.trust.root {
        TrustRoot::Adopt(_) => {
            root.description = format!(
                "Adopt the live root of {} (istio-ca-secret) into {}: workloads there keep trusting everything.",
                adopted.name,
                ctx.cert_path(&["root"]).display()
            );
            root.forward(fetch("root"));
        }
        TrustRoot::Generate(g) => {
            let multi_root = mode(ctx) == Mode::MultiRoot;
            root.description = format!(
                "Generate a new root (ecdsa-p256, O={}){}.",
                g.org,
                if multi_root {
                    format!(
                        " and keep the live root of {} for the transition",
                        source.name
                    )
                } else {
                    String::new()
                }
            );
            root.forward(Action::Local {
                op: LocalOp::GenerateRoot {
                    algorithm: "ecdsa-p256".into(),
                    org: g.org.clone(),
                    validity_days: g.validity_days,
                    dir: ctx.cert_path(&["root"]),
                },
            });
            if multi_root {
                root.forward(fetch("root-old"));
            }
        }
        TrustRoot::Files(f) => {
            root.description = format!(
                "Import the root {} and keep the live root of {} for the transition.",
                f.cert.display(),
                source.name
            );
            root.forward(Action::Local {
                op: LocalOp::ImportRoot {
                    cert: f.cert.clone(),
                    key: f.key.clone(),
                    dir: ctx.cert_path(&["root"]),
                },
            });
            root.forward(fetch("root-old"));
        }
    }
    root
}

/// Adopt and restart-all: one step per primary plugs an intermediate of the
/// mesh root into `cacerts` and switches istiod and the workloads to it.
fn switch_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let restart_all = mode(ctx) == Mode::RestartAll;
    let new_root = root_cert("root", ctx);
    let dir = ctx.cert_path(&[&c.name]);
    let mut s = Step::new(
        Phase::Trust,
        id(&c.name),
        format!(
            "Plug an intermediate of the mesh root into {} (cacerts), restart istiod, wait for istio-ca-root-cert, restart workloads{}.{}",
            c.name,
            if restart_all {
                ": workloads on the old root cannot talk to new ones until restarted"
            } else {
                ""
            },
            cacerts_reason(ctx)
        ),
    );
    first_needs(ctx, c, &mut s);
    s.forward(sign_intermediate(
        ctx,
        c,
        dir.clone(),
        vec![new_root.clone()],
    ));
    s.forward(apply_cacerts(&c.name, dir));
    switch_actions(ctx, c, std::slice::from_ref(&new_root), &[], &mut s.forward);
    undo_actions(ctx, c, &mut s.rollback);
    if ctx.is_source(c) {
        s.risk(Risk::CaSwitchOnSource);
    }
    if !ctx.workload_namespaces(c).is_empty() {
        s.risk(Risk::WorkloadRestart);
    }
    if restart_all {
        s.risk(Risk::Downtime);
    }
    s
}

/// Multi-root stage 1, on the source only: keep the old root as signer and
/// trust old + new, so workloads accept certificates from either.
fn trust_both_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let both = both_roots(ctx);
    let dir = ctx.cert_path(&[&c.name, "trust-both"]);
    let mut s = Step::new(
        Phase::Trust,
        trust_both_id(&c.name),
        format!(
            "Multi-root step 1 on {}: keep the old root as signer, trust old + new (sail-operator plugin-ca procedure).{}",
            c.name,
            cacerts_reason(ctx)
        ),
    );
    first_needs(ctx, c, &mut s);
    s.forward(Action::Local {
        op: LocalOp::BundleCacerts {
            cluster: c.name.clone(),
            signer_dir: ctx.cert_path(&["root-old"]),
            dir: dir.clone(),
            trusted_roots: both.clone(),
        },
    });
    s.forward(apply_cacerts(&c.name, dir));
    switch_actions(ctx, c, &both, &[], &mut s.forward);
    undo_actions(ctx, c, &mut s.rollback);
    s.risk(Risk::CaSwitchOnSource);
    s.risk(Risk::WorkloadRestart);
    s
}

/// Multi-root stage 2: sign with an intermediate of the new root while
/// still trusting old + new. Rollback on the source returns to stage 1
/// (the snapshot this step took).
fn new_signer_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Step {
    let is_source = ctx.is_source(c);
    let both = both_roots(ctx);
    let dir = ctx.cert_path(&[&c.name, "new-signer"]);
    let mut s = Step::new(
        Phase::Trust,
        new_signer_id(&c.name),
        format!(
            "Multi-root step 2 on {}: sign with an intermediate of the new root, still trusting old + new.{}",
            c.name,
            cacerts_reason(ctx)
        ),
    );
    if is_source {
        s.need(trust_both_id(&c.name));
        s.risk(Risk::CaSwitchOnSource);
    } else {
        first_needs(ctx, c, &mut s);
    }
    if !ctx.workload_namespaces(c).is_empty() {
        s.risk(Risk::WorkloadRestart);
    }
    s.forward(sign_intermediate(ctx, c, dir.clone(), both.clone()));
    s.forward(apply_cacerts(&c.name, dir));
    switch_actions(ctx, c, &both, &[], &mut s.forward);
    undo_actions(ctx, c, &mut s.rollback);
    s
}

/// Multi-root stage 3: once every primary signs with the new root, trust
/// only the new root. Rollback returns to stage 2's `cacerts` (the snapshot).
fn drop_old_step(ctx: &Ctx<'_>, c: &ClusterSpec, primaries: &[&ClusterSpec]) -> Step {
    let new_root = root_cert("root", ctx);
    let old_root = root_cert("root-old", ctx);
    let signer_dir = ctx.cert_path(&[&c.name, "new-signer"]);
    let final_dir = ctx.cert_path(&[&c.name]);
    let mut s = Step::new(
        Phase::Trust,
        drop_old_id(&c.name),
        format!(
            "Multi-root step 3 on {}: drop the old root once every cluster signs with the new one.{}",
            c.name,
            cacerts_reason(ctx)
        ),
    );
    s.needs_all(primaries.iter().map(|p| new_signer_id(&p.name)));
    if ctx.is_source(c) {
        s.risk(Risk::CaSwitchOnSource);
    }
    if !ctx.workload_namespaces(c).is_empty() {
        s.risk(Risk::WorkloadRestart);
    }
    s.forward(Action::Local {
        op: LocalOp::BundleCacerts {
            cluster: c.name.clone(),
            signer_dir: signer_dir.clone(),
            dir: final_dir.clone(),
            trusted_roots: vec![new_root.clone()],
        },
    });
    s.forward(apply_cacerts(&c.name, final_dir));
    switch_actions(
        ctx,
        c,
        std::slice::from_ref(&new_root),
        std::slice::from_ref(&old_root),
        &mut s.forward,
    );
    undo_actions(ctx, c, &mut s.rollback);
    s
}

/// The old and the new root, as a multi-root transition trusts them.
fn both_roots(ctx: &Ctx<'_>) -> Vec<PathBuf> {
    vec![root_cert("root-old", ctx), root_cert("root", ctx)]
}

/// Sign an intermediate for `c` with the mesh root into `dir`, whose bundle
/// trusts `trusted`. The organisation is the generated root's, else Istio's.
fn sign_intermediate(
    ctx: &Ctx<'_>,
    c: &ClusterSpec,
    dir: PathBuf,
    trusted: Vec<PathBuf>,
) -> Action {
    let trust = &ctx.spec.trust;
    let org = match &trust.root {
        TrustRoot::Generate(g) => g.org.clone(),
        _ => "Istio".to_string(),
    };
    Action::Local {
        op: LocalOp::SignIntermediate {
            cluster: c.name.clone(),
            root_dir: ctx.cert_path(&["root"]),
            dir,
            org,
            validity_days: trust.intermediate_validity_days,
            trusted_roots: trusted,
        },
    }
}
