//! Istio stand-ins: what istioctl installs, and what a running istiod does with the objects in
//! its cluster.
//!
//! - [`crds`]: Istio's kinds, with structural schemas (the base component's CRDs).
//! - [`install`]: the objects `istioctl install -f IOP` writes (pure).
//! - [`ca`]: istiod's CA choice at start (`cacerts`, `istio-ca-secret`) and certificate helpers.
//! - [`istiod_pod`]: the istiod pod (which one serves) and the annotations the stand-in writes on it.
//! - [`istiod`]: the controller task per cluster (CA choice, `istio-ca-root-cert`, `debug/clusterz`).
//! - [`ignored_keys`]: remote-secret keys an istiod ignored (plain data each cluster holds).
//! - [`remote`]: whether a remote secret's kubeconfig really reaches a simulated cluster.
//! - [`inject`]: sidecar injection at pod creation (the webhook).
//! - [`view`]: the mesh model's input, built from every cluster's store.
//! - [`kubelet`]: the Job runner that runs the probe program against the model.

pub mod ca;
pub mod crds;
mod fields;
pub mod ignored_keys;
pub mod inject;
pub mod install;
pub mod istiod;
pub mod istiod_pod;
pub mod kubelet;
pub mod loaded_secrets;
pub mod monitoring;
pub mod remote;
pub mod versions;
pub mod view;
