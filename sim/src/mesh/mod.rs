//! The mesh model: who answers a request, as a real Istio mesh would.
//!
//! Pure and deterministic, no I/O. Input is a [`MeshView`] of every simulated cluster (built from
//! the object store by the istiod stand-in); output is what each of N requests from a client pod
//! gets back, and which cluster answered. Every behaviour cites `shared/istio/FACTS.md`.
//!
//! - [`route`]: the decision, the endpoints a client can reach and what one attempt to each meets.
//! - [`answer`]: N requests over that decision (round robin, locality priorities, retries,
//!   outlier ejection).
//! - [`probe`]: the probe Job contract the sim's kubelet runs, and its log format.
//!
//! Decisions the model makes where Istio leaves a choice (each cited where it is made):
//! - Istio's default retry policy (2 retries, connect failures, another host first) is on, so a
//!   failing remote endpoint next to a healthy local one shows in `Answer::attempts`, not in the
//!   log; with no healthy alternative Envoy's 503 text reaches the log.
//! - A proxy baked with a cluster ID its istiod does not know (FACTS 9 items 7, 8) has no
//!   locality for istiod and its cross-cluster attempts fail with 503 `connection failure`.
//! - A peer cluster with another meshID is ignored (only local answers).
//! - Time: Envoy's connect timeout is 10 s, everything else instant; curl's `--max-time` cuts a
//!   request short; outlier ejections last for the whole probe.
//! - Not modelled: VirtualServices, ServiceEntries, DNS capture, DestinationRule `exportTo` and
//!   subsets, port-level traffic policies, workload-scoped PeerAuthentications, Service
//!   `trafficDistribution`, ambient.

mod balance;
mod locality;
pub mod probe;
mod respond;
mod route;
mod target;
pub mod view;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use balance::{Answer, Attempt, Options, ServedBy, answer, run};
pub use respond::{AppReply, CONNECT_TIMEOUT_MS, Failure, NO_HEALTHY_UPSTREAM};
pub use route::{Endpoint, Hop, LbPolicy, MeshError, Request, Route, configured_by, leads, route};
pub use target::Target;
pub use view::*;
