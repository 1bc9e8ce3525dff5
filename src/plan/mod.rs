//! Steps and actions, the DAG, deterministic ordering, the critical path and
//! the plan fingerprint.
//!
//! The plan knows steps, not Kubernetes: phases (`crate::phases`) turn a spec
//! into [`Step`]s; [`Plan::new`] checks they form a DAG, orders them and
//! fingerprints them. The engine executes the actions and the state store
//! records them, so the serialised form below is a contract.
//!
//! # Schema (`migrate plan -o json`, `schemaVersion` 1)
//!
//! ```text
//! { "schemaVersion": 1, "kind": "MigrationPlan", "name", "topology",
//!   "clusters": [{ "name", "context", "network"?, "role": "primary"|"remote", "source" }],
//!   "fingerprint": "sha256:<hex>",
//!   "phase"?: "discovery"                      (only with --phase)
//!   "criticalPath": { "steps": [id], "estimatedSeconds", "byDuration": [id] },
//!   "summary": { "steps", "stepsPerPhase": {phase: n}, "actionsPerCluster": {cluster|"local": n},
//!                "riskySteps": [{ "id", "risks": [risk] }] },
//!   "steps": [ Step ] }                        (in run order)
//! Step   = { "id", "phase": "preflight"|"install"|"trust"|"discovery"|"routing"|"observability"|"failover",
//!            "clusters": [name], "needs": [id], "description", "risks"?: [risk],
//!            "estimatedSeconds", "forward": [Action], "finally"?: [Action], "rollback": [Action] }
//! risk   = "source-reconfigure" | "workload-restart" | "ca-switch-on-source" | "downtime"
//!          | "traffic-shift" | "mesh-wide-policy"
//! Object = { "apiVersion", "kind", "namespace"?, "name" }
//! Action = { "type": ..., ... } one of
//!   apply           cluster, object, manifest (the object as JSON), secretData?: {key: SecretSource}
//!   delete          cluster, object
//!   delete-everywhere cluster, apiVersion, kind, name   (that name in every namespace)
//!   patch           cluster, object, patch (JSON merge patch)
//!   scale           cluster, target: {"object": Object} | {"serviceBackends": Object}, replicas
//!   restart         cluster, object                       (rollout restart)
//!   restart-workloads cluster, namespace, timeoutSeconds  (every Deployment/StatefulSet/DaemonSet)
//!   wait            cluster, object, condition: {"condition": kind, ...}, timeoutSeconds
//!                   kinds: deployment-available, load-balancer-address, present, absent,
//!                   secret-has-keys{keys}, config-map-has-roots{key, contains, lacks?},
//!                   remote-cluster-synced{remote}, label{key, value}, job-complete,
//!                   backends-drained, backends-available
//!   exec            cluster, program, args ("{file}" = path of file; --context always
//!                   explicit), file?: {name, content}, timeoutSeconds
//!                   content: {"inline": {text, substitutions?}}
//!                          | {"istioOperatorFromSnapshot": {object, key}}
//!   edit-config     cluster, object (ConfigMap), key, edits: [{"op": "set", path, value}
//!                   | {"op": "upsert", path, matchKey, item}], substitutions?
//!   local           op: {"op": "fetch-live-root", cluster, secret, fallback, dir}
//!                     | {"op": "generate-root", algorithm, org, validityDays, dir}
//!                     | {"op": "import-root", cert, key, dir}
//!                     | {"op": "sign-intermediate", cluster, rootDir, dir, org, validityDays, trustedRoots}
//!                     | {"op": "bundle-cacerts", cluster, signerDir, dir, trustedRoots}
//!                   (certDir layout: root/{root-cert,root-key}.pem, root-old/ during a
//!                   transition, <cluster>/{ca-cert,ca-key,root-cert,cert-chain}.pem)
//!   probe           cluster, job, manifest (a batch/v1 Job), requests,
//!                   expect: {allAnswered, minClusters, notFrom?}, timeoutSeconds
//!   check           cluster?, check: {"check": kind, ...}   (read-only; no cluster = this machine)
//!                   kinds: reachable, kubernetes-version{atLeast}, installer-version{program, expected},
//!                   mesh-present{istiod}, istio-version{istiod, expected},
//!                   ca-mode{expected: self-signed|plugged-in|any, caSecret, cacerts},
//!                   cluster-name{istiod, env, default, planned}, trust-domain{configMap, expected},
//!                   no-mesh{istiod}, node-locality{region, zone?},
//!                   permissions{needs: [{verb, group?, resource, subresource?, namespace?, steps}]}
//!   snapshot        cluster, object    (record the live object once, before an installer changes it)
//!   restore         cluster, object    (put back the first snapshot, or delete what did not exist)
//!   restore-scale   cluster, target    (put back the replicas recorded before the first scale)
//! SecretSource = {"file": path} | {"remoteKubeconfig": {cluster, context, tokenSecret: Object}}
//! Substitution = {placeholder, value: {"from": "load-balancer-address", cluster, service: Object}}
//! ```
//!
//! Steps run `forward` in order; `finally` runs after it whatever happened
//! (the failover drill restores replicas there); `rollback` undoes the step
//! and runs in reverse step order. Rollback of a restart is "restart again
//! after the restore", so it sits with the restore (for the source's
//! workloads: in `install/<source>`'s rollback).
//!
//! Secret material is never part of a plan: `cacerts` values are file
//! references under certDir and the remote secret's kubeconfig is a
//! reference to a token Secret, resolved by the engine when it applies.
//!
//! # Fingerprint
//!
//! `sha256:` + hex sha256 of the compact JSON (as serde_json writes it, see
//! [`CanonicalHasher`]; one value per line) of
//! `schemaVersion`, `name`, `topology`, `clusters`, then for every step in
//! run order its `id`, `phase`, `clusters`, `needs`, `risks`, `forward`,
//! `finally` and `rollback`. Descriptions, duration estimates and the
//! critical path are left out: rewording a description is not a changed plan.

mod action;
mod dag;
mod fingerprint;
pub mod gateway_hostnames;
pub mod permissions;
mod phase;
mod step;
mod wording;

pub use crate::object::ObjectRef;
pub use action::*;
pub use dag::{PlanError, longest_chain, order};
pub use fingerprint::CanonicalHasher;
pub use phase::{Phase, UnknownPhase};
pub use step::{Risk, Step};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the serialised plan; bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A cluster as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: String,
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `primary` or `remote`.
    pub role: String,
    pub source: bool,
}

/// What the plan is about, besides its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanHeader {
    pub name: String,
    pub topology: String,
    pub clusters: Vec<ClusterInfo>,
}

/// The longest chains of the DAG, by steps and by estimated duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalPath {
    /// The longest chain of steps by count.
    pub steps: Vec<String>,
    /// The longest chain by estimated duration, and that duration.
    pub by_duration: Vec<String>,
    pub estimated_seconds: u64,
}

/// A checked, ordered, fingerprinted plan. Serialisable as is, for the
/// state store: [`Plan::verify_fingerprint`] tells whether a stored plan
/// still matches its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub header: PlanHeader,
    /// In run order: every step after the steps it needs.
    pub steps: Vec<Step>,
    pub critical_path: CriticalPath,
    pub fingerprint: String,
}

impl Plan {
    /// Orders `steps` (checking they form a DAG), computes the critical path and fingerprints the plan.
    pub fn new(header: PlanHeader, steps: Vec<Step>) -> Result<Plan, PlanError> {
        let steps = order(steps)?;
        let (by_count, _) = longest_chain(&steps, |_| 1);
        let (by_duration, seconds) = longest_chain(&steps, Step::estimated_seconds);
        let fingerprint = fingerprint(&header, &steps);
        Ok(Plan {
            header,
            steps,
            critical_path: CriticalPath {
                steps: by_count,
                by_duration,
                estimated_seconds: seconds,
            },
            fingerprint,
        })
    }

    /// The fingerprint recomputed from the header and steps equals the
    /// stored one (a plan read back from JSON was not altered).
    pub fn verify_fingerprint(&self) -> bool {
        fingerprint(&self.header, &self.steps) == self.fingerprint
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps of one phase, or all of them.
    pub fn select(&self, phase: Option<Phase>) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| phase.is_none_or(|p| s.phase == p))
            .collect()
    }

    /// The serialisable document of `-o json` / `-o yaml`.
    pub fn document(&self, phase: Option<Phase>) -> PlanDocument<'_> {
        let steps = self.select(phase);
        PlanDocument {
            schema_version: SCHEMA_VERSION,
            kind: "MigrationPlan",
            name: &self.header.name,
            topology: &self.header.topology,
            clusters: &self.header.clusters,
            fingerprint: &self.fingerprint,
            phase,
            critical_path: &self.critical_path,
            summary: Summary::of(&steps),
            steps: steps
                .into_iter()
                .map(|step| StepView {
                    estimated_seconds: step.estimated_seconds(),
                    step,
                })
                .collect(),
        }
    }
}

fn fingerprint(header: &PlanHeader, steps: &[Step]) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        id: &'a str,
        phase: Phase,
        clusters: &'a [String],
        needs: &'a [String],
        risks: &'a [Risk],
        forward: &'a [Action],
        finally: &'a [Action],
        rollback: &'a [Action],
    }
    let mut h = CanonicalHasher::default();
    h.add(&SCHEMA_VERSION);
    h.add(&header.name);
    h.add(&header.topology);
    h.add(&header.clusters);
    for s in steps {
        h.add(&Hashed {
            id: &s.id,
            phase: s.phase,
            clusters: &s.clusters,
            needs: &s.needs,
            risks: &s.risks,
            forward: &s.forward,
            finally: &s.finally,
            rollback: &s.rollback,
        });
    }
    h.finish()
}

/// Counts over a set of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub steps: usize,
    pub steps_per_phase: BTreeMap<Phase, usize>,
    /// Forward and finally actions per cluster; `local` for this machine.
    pub actions_per_cluster: BTreeMap<String, usize>,
    pub risky_steps: Vec<RiskyStep>,
}

/// A step that carries risks, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RiskyStep {
    pub id: String,
    pub risks: Vec<Risk>,
}

impl Summary {
    /// The summary of these steps.
    pub fn of(steps: &[&Step]) -> Summary {
        let mut steps_per_phase = BTreeMap::new();
        let mut actions_per_cluster: BTreeMap<String, usize> = BTreeMap::new();
        let mut risky_steps = Vec::new();
        for s in steps {
            *steps_per_phase.entry(s.phase).or_default() += 1;
            for a in s.forward.iter().chain(&s.finally) {
                // A gate reads every cluster it checks: one action on each.
                let clusters = a.clusters();
                let keys = if clusters.is_empty() {
                    vec!["local"]
                } else {
                    clusters
                };
                for key in keys {
                    match actions_per_cluster.get_mut(key) {
                        Some(n) => *n += 1,
                        None => {
                            actions_per_cluster.insert(key.to_string(), 1);
                        }
                    }
                }
            }
            if !s.risks.is_empty() {
                risky_steps.push(RiskyStep {
                    id: s.id.clone(),
                    risks: s.risks.clone(),
                });
            }
        }
        Summary {
            steps: steps.len(),
            steps_per_phase,
            actions_per_cluster,
            risky_steps,
        }
    }
}

/// The plan as `migrate plan -o json` writes it (the schema in the module docs).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument<'a> {
    pub schema_version: u32,
    pub kind: &'static str,
    pub name: &'a str,
    pub topology: &'a str,
    pub clusters: &'a [ClusterInfo],
    pub fingerprint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub critical_path: &'a CriticalPath,
    pub summary: Summary,
    pub steps: Vec<StepView<'a>>,
}

/// A step with its estimate, for output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView<'a> {
    #[serde(flatten)]
    pub step: &'a Step,
    pub estimated_seconds: u64,
}
