//! meshsim: simulated Kubernetes clusters that the real kubectl and kube-rs
//! accept, served over real HTTPS.

pub mod istio;
pub mod merge;
pub mod schema;
pub mod selector;
