//! The hook that decides how a Job ends and what its pod logs.

use crate::cluster::ClusterSet;
use serde_json::Value;

/// What a Job's pod did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOutcome {
    pub succeeded: bool,
    /// The pod's log (`kubectl logs`, pods/log).
    pub log: String,
    /// Why the pod failed (pod `status.message` and the container's termination message);
    /// empty when it succeeded.
    pub message: String,
}

/// The Job being run and the state of every cluster.
pub struct JobContext<'a> {
    /// The cluster the Job runs in.
    pub cluster: &'a str,
    /// The Job object as stored.
    pub job: &'a Value,
    /// The Job's pod as created (after admission, e.g. sidecar injection).
    pub pod: &'a Value,
    pub clusters: &'a ClusterSet,
}

/// Decides a Job's outcome. Called once per Job, on the cluster's controller
/// task: keep it quick and non-blocking.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, ctx: &JobContext<'_>) -> JobOutcome;
}

/// Completes every Job successfully with an empty log.
#[derive(Debug, Clone, Copy, Default)]
pub struct SucceedingJobRunner;

impl JobRunner for SucceedingJobRunner {
    fn run(&self, _ctx: &JobContext<'_>) -> JobOutcome {
        JobOutcome {
            succeeded: true,
            ..Default::default()
        }
    }
}

impl<F> JobRunner for F
where
    F: Fn(&JobContext<'_>) -> JobOutcome + Send + Sync + 'static,
{
    fn run(&self, ctx: &JobContext<'_>) -> JobOutcome {
        self(ctx)
    }
}
