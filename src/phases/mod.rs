//! One module per phase, each turning a validated spec into steps (plain
//! data); [`plan`] runs them in order and builds the DAG.
//!
//! Step ids: `<phase>/<cluster>` for per-cluster work,
//! `<phase>/<cluster>/<part>` for a second step on one cluster, and
//! `discovery/<a><-<b>` for cluster `b`'s remote secret placed in `a`.
//!
//! Where edges go, and why:
//! - every install step needs every preflight step: nothing changes before
//!   every check passed;
//! - a remote's install needs its primary's `install/<p>/expose-istiod`
//!   (primary-remote): the remote IOP carries the primary's east-west
//!   gateway address. Exposing istiod is part of phase 1 so that every edge
//!   points to the same or an earlier phase, and rolling back phases in
//!   reverse order never removes what an earlier phase relies on;
//! - discovery between two clusters needs both to trust the shared root
//!   first: endpoints of a peer are useless, and fail TLS, before that;
//! - a remote's east-west gateway (primary-remote, multi-network) is
//!   installed in phase 3 after its remote secret, because its proxy is
//!   served by the primary's istiod, which only knows the remote from then on.
//!
//! - after trust, discovery and routing a gate (`gate/<phase>`, see
//!   [`gates`]) needs every step of its phase, and the next phase's steps
//!   need the gate: the checks that phase is responsible for pass before
//!   anything builds on it.
//!
//! Steps of independent clusters never need each other.

// Every public item of a phase is documented: the compiler keeps it so.
#![deny(missing_docs)]

pub mod discovery;
pub mod failover;
pub mod gates;
pub mod install;
pub mod observability;
pub mod preflight;
pub mod probe_job;
pub mod routing;
mod spec_answers;
pub mod trust;

pub use spec_answers::Ctx;

use crate::plan::{
    Action, Check, ClusterInfo, Condition, FileContent, GeneratedFile, ObjectRef, Phase, Plan,
    PlanError, PlanHeader, Step, Substitution,
};
use crate::spec::{MeshMigration, Topology};
use serde_json::{Map, Value, json};

/// The whole plan for a validated spec.
pub fn plan(spec: &MeshMigration) -> Result<Plan, PlanError> {
    Plan::new(header(spec), steps(spec))
}

/// Every step of every phase, phase by phase (not yet ordered).
pub fn steps(spec: &MeshMigration) -> Vec<Step> {
    let ctx = Ctx::new(spec);
    let mut out = Vec::new();
    for phase in Phase::ALL {
        out.extend(phase_steps(&ctx, phase));
    }
    gates::add(&ctx, &mut out);
    fill_permissions(spec, &mut out);
    out
}

/// Puts into each cluster's preflight permissions check what every step of
/// the plan (forward, finally and rollback) needs there: they depend on all
/// steps, so they are known only once all are built.
fn fill_permissions(spec: &MeshMigration, steps: &mut [Step]) {
    let clusters: Vec<String> = spec.spec.clusters.iter().map(|c| c.name.clone()).collect();
    let mut needs = crate::plan::permissions::needs(steps, &clusters);
    for step in steps.iter_mut().filter(|s| s.phase == Phase::Preflight) {
        for action in &mut step.forward {
            if let Action::Check {
                cluster: Some(cluster),
                check: Check::Permissions { needs: slot },
            } = action
            {
                *slot = needs.remove(cluster.as_str()).unwrap_or_default();
            }
        }
    }
}

/// The steps of one phase.
pub fn phase_steps(ctx: &Ctx<'_>, phase: Phase) -> Vec<Step> {
    let steps = match phase {
        Phase::Preflight => preflight::steps(ctx),
        Phase::Install => install::steps(ctx),
        Phase::Trust => trust::steps(ctx),
        Phase::Discovery => discovery::steps(ctx),
        Phase::Routing => routing::steps(ctx),
        Phase::Observability => observability::steps(ctx),
        Phase::Failover => failover::steps(ctx),
    };
    steps.into_iter().map(Step::finish).collect()
}

fn header(spec: &MeshMigration) -> PlanHeader {
    let ctx = Ctx::new(spec);
    PlanHeader {
        name: spec.metadata.name.clone(),
        topology: match spec.spec.topology {
            Topology::MultiPrimary => "multi-primary",
            Topology::PrimaryRemote => "primary-remote",
        }
        .into(),
        clusters: spec
            .spec
            .clusters
            .iter()
            .map(|c| ClusterInfo {
                name: c.name.clone(),
                context: c.context.clone(),
                network: c.network.clone(),
                role: if ctx.is_remote(c) {
                    "remote"
                } else {
                    "primary"
                }
                .into(),
                source: c.source,
            })
            .collect(),
    }
}

/// Istio's namespace, always named explicitly (FACTS 1.4).
pub(crate) const ISTIO_SYSTEM: &str = "istio-system";
/// How long an installer run may take.
pub(crate) const INSTALL_TIMEOUT: u64 = 900;
/// How long a Deployment may take to roll out.
pub(crate) const ROLLOUT_TIMEOUT: u64 = 300;
/// How long the workloads of one namespace may take to roll out.
pub(crate) const WORKLOADS_TIMEOUT: u64 = 600;

/// `name` as the spec's revision names it: `istiod` -> `istiod-<rev>`; the
/// default revision (none, or `default`) keeps the bare name, as Istio does.
pub(crate) fn revisioned(name: &str, revision: &str) -> String {
    if revision.is_empty() || revision == "default" {
        name.to_string()
    } else {
        format!("{name}-{revision}")
    }
}

/// istiod's Deployment (`istiod-<rev>` for a revisioned control plane).
pub(crate) fn istiod(ctx: &Ctx<'_>) -> ObjectRef {
    ObjectRef::deployment(ISTIO_SYSTEM, &revisioned("istiod", ctx.revision()))
}

/// The installation's values ConfigMap (`values-<rev>`), whose
/// `original-values` re-installs what was there.
pub(crate) fn values_config_map(ctx: &Ctx<'_>) -> ObjectRef {
    ObjectRef::config_map(ISTIO_SYSTEM, &revisioned("values", ctx.revision()))
}

/// The sidecar injector's ConfigMap (`istio-sidecar-injector-<rev>`).
pub(crate) fn injector_config_map(ctx: &Ctx<'_>) -> ObjectRef {
    ObjectRef::config_map(
        ISTIO_SYSTEM,
        &revisioned("istio-sidecar-injector", ctx.revision()),
    )
}

/// The mesh config ConfigMap (`istio-<rev>` for a revisioned control plane).
pub(crate) fn mesh_config_map(ctx: &Ctx<'_>) -> ObjectRef {
    ObjectRef::config_map(ISTIO_SYSTEM, &revisioned("istio", ctx.revision()))
}

/// A manifest for `object`: apiVersion, kind, metadata (name, namespace and
/// the entries of `metadata`), then the fields of `body`.
pub(crate) fn manifest(object: &ObjectRef, metadata: Value, body: Value) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(object.name));
    if let Some(ns) = &object.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    if let Value::Object(extra) = metadata {
        meta.extend(extra);
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(object.api_version));
    out.insert("kind".into(), json!(object.kind));
    out.insert("metadata".into(), Value::Object(meta));
    if let Value::Object(fields) = body {
        out.extend(fields);
    }
    Value::Object(out)
}

/// Apply a [`manifest`] for `object` to `cluster`.
pub(crate) fn apply(cluster: &str, object: &ObjectRef, metadata: Value, body: Value) -> Action {
    Action::Apply {
        cluster: cluster.into(),
        object: object.clone(),
        manifest: manifest(object, metadata, body),
        secret_data: Default::default(),
    }
}

/// Put back the first snapshot of `object` (deleting it if it was absent then).
pub(crate) fn restore(cluster: &str, object: &ObjectRef) -> Action {
    Action::Restore {
        cluster: cluster.into(),
        object: object.clone(),
    }
}

/// Wait up to `timeout` seconds for `condition` on `object`.
pub(crate) fn wait(cluster: &str, object: ObjectRef, condition: Condition, timeout: u64) -> Action {
    Action::Wait {
        cluster: cluster.into(),
        object,
        condition,
        timeout_seconds: timeout,
    }
}

/// An installer run against one cluster: `--context` always explicit. The
/// kubeconfig file is the engine's choice at run time (`KUBECONFIG`): a
/// resume or rollback may be told to reach the cluster by another file, and
/// the plan (its fingerprint) must not change with it.
pub(crate) fn exec(
    ctx: &Ctx<'_>,
    cluster: &str,
    args: &[&str],
    file: Option<GeneratedFile>,
) -> Action {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(c) = ctx.cluster(cluster) {
        all.push("--context".into());
        all.push(c.context.clone());
    }
    Action::Exec {
        cluster: cluster.into(),
        program: ctx.spec.installer.path.clone(),
        args: all,
        file,
        timeout_seconds: INSTALL_TIMEOUT,
    }
}

/// A generated YAML file.
pub(crate) fn yaml_file(
    name: String,
    value: &Value,
    substitutions: Vec<Substitution>,
) -> GeneratedFile {
    GeneratedFile {
        name,
        content: FileContent::Inline {
            text: to_yaml(value),
            substitutions,
        },
    }
}

/// `value` as YAML text.
pub(crate) fn to_yaml(value: &Value) -> String {
    // A serde_json::Value always has a YAML form; JSON is YAML should that change.
    serde_yaml::to_string(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod permission_tests;
#[cfg(test)]
mod tests;
