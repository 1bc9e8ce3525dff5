//! migrate: plan and carry out the migration of an Istio mesh from one
//! Kubernetes cluster to a multi-cluster mesh.
//!
//! Dependencies point one way: spec -> phases -> plan -> engine -> cluster/state.

pub mod ca;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod object;
pub mod phases;
pub mod plan;
pub mod spec;
pub mod state;
