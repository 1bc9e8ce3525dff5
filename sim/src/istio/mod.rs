//! Istio stand-ins (permissive CRDs live in `bootstrap.rs`): what istioctl installs, and (later) what a running
//! istiod does with the objects in its cluster.

pub mod install;
