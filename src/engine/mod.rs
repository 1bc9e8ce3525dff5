//! The engine: runs a plan's steps against the clusters, checkpointing every
//! transition in the state store, and rolls them back.

pub mod scheduler;
