//! Istio stand-ins: what istioctl installs, and (later) what a running
//! istiod does with the objects in its cluster.

pub mod crds;
pub mod install;
