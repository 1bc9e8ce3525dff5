//! meshsim: simulated Kubernetes clusters that the real kubectl and kube-rs
//! accept, served over real HTTPS.

pub mod merge;
pub mod mesh;
pub mod schema;
pub mod selector;
