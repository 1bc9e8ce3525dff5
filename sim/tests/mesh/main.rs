//! Integration tests of the simulated mesh: istiod, sidecar injection and the probe kubelet,
//! through the real kubectl against meshsim. One test binary (modules) to keep link time down.

mod harness;
mod inject;
mod istiod;
mod probe;
