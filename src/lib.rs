//! migrate: plan and carry out the migration of an Istio mesh from one
//! Kubernetes cluster to a multi-cluster mesh.
//!
//! Data flow: a spec becomes steps (`phases`), the steps a plan (`plan`), and the engine runs the plan through `cluster`, checkpointing in `state`.
//! Imports: `cli` on top; `engine` uses `plan`, `cluster`, `state`, `ca`; `phases` uses `spec` and `plan`; none of the others imports `engine`, `phases` or `cli` (tests/e2e/architecture.rs).

pub mod ca;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod object;
pub mod phases;
pub mod plan;
pub mod spec;
pub mod state;
