//! The hook that decides how a Job ends and what its pod logs.

use crate::cluster::ClusterSet;
use serde_json::Value;

/// What a Job's pod did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOutcome {
    pub succeeded: bool,
    /// The pod's log (`kubectl logs`, pods/log).
    pub log: String,
}

/// The Job being run and the state of every cluster.
pub struct JobContext<'a> {
    /// The cluster the Job runs in.
    pub cluster: &'a str,
    /// The Job object as stored.
    pub job: &'a Value,
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
            log: String::new(),
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
