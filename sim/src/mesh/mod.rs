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
