//! What actions run with: the clusters, the store, the run, the options.

use super::observer::Observer;
use crate::cluster::{Backoff, Cluster, ClusterError, retry};
use crate::object::ObjectRef;
use crate::plan::{Action, Phase};
use crate::state::{RunId, SnapshotKey, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the engine runs a plan: parallelism, dry run, retries, timeouts.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Steps running at once.
    pub parallelism: usize,
    /// Steps running at once against one cluster.
    pub per_cluster: usize,
    /// Applies as server-side dry runs; nothing else changes anything.
    pub dry_run: bool,
    /// Retries of transient API errors, per action.
    pub backoff: Backoff,
    /// Multiplies every wait timeout of the plan (tests shorten them).
    pub timeout_scale: f64,
    /// Go on when a cluster's identity cannot be decided (its kube-system uid unknown).
    pub accept_unknown_identity: bool,
    /// `apply --until`: run no step of a later phase; pause the run after this one (rollback ignores it).
    pub until: Option<Phase>,
    /// Claim the mesh with a Lease in each cluster (`mesh_lease`) while the run changes it, naming the store
    /// by this location; `None`: no claim (`--no-mesh-lease`).
    pub mesh_lease: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            parallelism: 8,
            per_cluster: 4,
            dry_run: false,
            backoff: Backoff::default(),
            timeout_scale: 1.0,
            accept_unknown_identity: false,
            until: None,
            mesh_lease: None,
        }
    }
}

/// Everything the engine reaches: clusters by name, where their kubeconfig
/// is (the installer gets the same one), and the checkpoint.
pub struct Environment {
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// Kubeconfig file per cluster, handed to the installer as `KUBECONFIG`.
    pub kubeconfigs: BTreeMap<String, PathBuf>,
    pub store: Arc<dyn Store>,
    pub observer: Arc<dyn Observer>,
}

/// One step's view while it runs.
#[derive(Clone)]
pub(crate) struct StepCtx {
    pub env: Arc<Environment>,
    pub opts: Arc<EngineOptions>,
    pub run: RunId,
    pub step: String,
    /// Every cluster of the plan, in plan order (probe reports list them all).
    pub plan_clusters: Arc<Vec<String>>,
    /// How many times this step was completed or rolled back before in this
    /// run: a restart's value depends on it (see `restart_stamp::restart_value`).
    pub cycle: u32,
    /// The step puts back what it scales (`RestoreScale`): its scales write a
    /// restore-pending record first.
    pub restores_scale: bool,
}

/// Errors of one action, already worded for the user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActionError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Failed(String),
    #[error("state store: {0}")]
    State(#[from] crate::state::StateError),
}

impl StepCtx {
    pub fn cluster(&self, name: &str) -> Result<&Arc<Cluster>, ActionError> {
        self.env.clusters.get(name).ok_or_else(|| {
            ActionError::Failed(format!(
                "cluster {name} is not connected (not in the plan's clusters)"
            ))
        })
    }

    pub fn timeout(&self, seconds: u64) -> Duration {
        Duration::from_secs_f64((seconds as f64 * self.opts.timeout_scale).max(0.05))
    }

    /// Runs a cluster operation with the retry policy, telling the observer
    /// about each transient failure.
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T, ActionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let observer = self.env.observer.clone();
        let step = self.step.clone();
        let (value, _) = retry(self.opts.backoff, op, |attempt, err| {
            // The observer shows it; the log keeps it at debug level; both redacted.
            let text = crate::state::redact_text(&err.to_string());
            tracing::debug!(step = %step, attempt, "transient error: {text}");
            observer.retrying(&step, attempt, &text);
        })
        .await?;
        Ok(value)
    }

    /// Records the live object (or its absence) as this step's snapshot of
    /// it, unless the step has one already: the state before the step first
    /// changed it, never overwritten by a resumed attempt.
    pub async fn ensure_snapshot(
        &self,
        cluster: &str,
        object: &ObjectRef,
    ) -> Result<(), ActionError> {
        if self.opts.dry_run {
            return Ok(());
        }
        let key = SnapshotKey::of(cluster, object);
        if self
            .env
            .store
            .snapshot(self.run, &self.step, &key)?
            .is_some()
        {
            return Ok(());
        }
        let c = self.cluster(cluster)?;
        let live = self.retry(|| c.get(object)).await?;
        self.env
            .store
            .put_snapshot_if_absent(self.run, &self.step, &key, live)?;
        Ok(())
    }
}

impl StepCtx {
    /// Reads, before the step starts, the snapshots its actions would take
    /// one by one anyway: the live objects read in parallel, to be recorded
    /// with the step's start in one durable write. Objects the step already
    /// has a snapshot of (a resumed step) are left out.
    pub async fn read_snapshots(
        &self,
        actions: &[Action],
    ) -> Result<Vec<(SnapshotKey, Option<Value>)>, ActionError> {
        let mut wanted: Vec<(&str, &ObjectRef)> = Vec::new();
        for action in actions {
            let target = match action {
                Action::Apply {
                    cluster, object, ..
                }
                | Action::Delete { cluster, object }
                | Action::Patch {
                    cluster, object, ..
                }
                | Action::EditConfig {
                    cluster, object, ..
                }
                | Action::Snapshot { cluster, object } => (cluster.as_str(), object),
                Action::Probe { cluster, job, .. } => (cluster.as_str(), job),
                _ => continue,
            };
            if !wanted.contains(&target) {
                wanted.push(target);
            }
        }
        let mut reads = tokio::task::JoinSet::new();
        for (cluster, object) in wanted {
            let key = SnapshotKey::of(cluster, object);
            if self
                .env
                .store
                .snapshot(self.run, &self.step, &key)?
                .is_some()
            {
                continue;
            }
            let c = self.cluster(cluster)?.clone();
            let ctx = self.clone();
            let object_key = object.clone();
            reads.spawn(async move {
                let live = ctx.retry(|| c.get(&object_key)).await?;
                Ok::<_, ActionError>((key, live))
            });
        }
        let mut taken = Vec::new();
        while let Some(joined) = reads.join_next().await {
            let read =
                joined.map_err(|e| ActionError::Failed(format!("reading a snapshot: {e}")))?;
            taken.push(read?);
        }
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(taken)
    }
}
