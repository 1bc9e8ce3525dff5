//! Steps: the nodes of the plan.

use super::{Action, Phase};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a step deserves a second look before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Reconfigures the cluster that runs the mesh today.
    SourceReconfigure,
    /// Restarts injected workloads (rolling, but every pod is replaced).
    WorkloadRestart,
    /// Changes the CA that signs the running mesh's certificates.
    CaSwitchOnSource,
    /// Cross-root traffic fails until every workload restarted.
    Downtime,
    /// Moves live traffic (scales a service to zero).
    TrafficShift,
    /// A mesh-wide policy that rejects plaintext traffic.
    MeshWidePolicy,
}

impl Risk {
    /// The risk's name in the plan: `workload-restart`, ...
    pub fn name(self) -> &'static str {
        match self {
            Risk::SourceReconfigure => "source-reconfigure",
            Risk::WorkloadRestart => "workload-restart",
            Risk::CaSwitchOnSource => "ca-switch-on-source",
            Risk::Downtime => "downtime",
            Risk::TrafficShift => "traffic-shift",
            Risk::MeshWidePolicy => "mesh-wide-policy",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One node of the plan: forward actions run in order; `finally` actions run
/// after them whether they succeeded or not; `rollback` actions undo the
/// step, in order, when the step is rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `install/cluster1`, `discovery/cluster1<-cluster2`.
    pub id: String,
    pub phase: Phase,
    /// Clusters the step reads or changes, sorted.
    pub clusters: Vec<String>,
    /// Steps that must have succeeded first.
    pub needs: Vec<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    pub forward: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<Action>,
    pub rollback: Vec<Action>,
}

impl Step {
    /// A step of `phase` with no actions yet.
    pub fn new(phase: Phase, id: impl Into<String>, description: impl Into<String>) -> Step {
        Step {
            id: id.into(),
            phase,
            clusters: Vec::new(),
            needs: Vec::new(),
            description: description.into(),
            risks: Vec::new(),
            forward: Vec::new(),
            finally: Vec::new(),
            rollback: Vec::new(),
        }
    }

    /// Adds a need; duplicates are dropped by `finish`.
    pub fn need(&mut self, id: impl Into<String>) -> &mut Self {
        self.needs.push(id.into());
        self
    }

    /// Adds steps that must be done first.
    pub fn needs_all<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, ids: I) -> &mut Self {
        for id in ids {
            self.need(id);
        }
        self
    }

    /// Marks the step with a risk (once).
    pub fn risk(&mut self, risk: Risk) -> &mut Self {
        if !self.risks.contains(&risk) {
            self.risks.push(risk);
        }
        self
    }

    /// Appends a forward action.
    pub fn forward(&mut self, action: Action) -> &mut Self {
        self.forward.push(action);
        self
    }

    /// Appends an action that runs after the forward ones, whatever happened.
    pub fn finally(&mut self, action: Action) -> &mut Self {
        self.finally.push(action);
        self
    }

    /// Appends a rollback action.
    pub fn rollback(&mut self, action: Action) -> &mut Self {
        self.rollback.push(action);
        self
    }

    /// Fills `clusters` from the actions and sorts `needs` and `risks`, so
    /// the step serialises the same whatever order it was built in.
    pub fn finish(mut self) -> Step {
        let mut clusters: Vec<String> = self
            .forward
            .iter()
            .chain(&self.finally)
            .chain(&self.rollback)
            .flat_map(|a| a.clusters().into_iter().map(str::to_string))
            .collect();
        clusters.sort();
        clusters.dedup();
        self.clusters = clusters;
        self.needs.sort();
        self.needs.dedup();
        self.risks.sort();
        // Plans of 100,000 actions are held whole: no spare capacity.
        self.needs.shrink_to_fit();
        self.forward.shrink_to_fit();
        self.finally.shrink_to_fit();
        self.rollback.shrink_to_fit();
        self
    }

    /// Estimated seconds of the forward and finally actions.
    pub fn estimated_seconds(&self) -> u64 {
        self.forward
            .iter()
            .chain(&self.finally)
            .map(Action::estimated_seconds)
            .sum()
    }
}
