//! meshsim's Istio stand-ins (istioctl, istiod, sidecar injection, the probe
//! kubelet, the seeded starting point), checked over HTTPS with the real
//! kubectl, as the Istio docs check a mesh. One test binary (modules) to keep
//! link time down.

mod fresh;
mod harness;
mod helm;
mod inject;
mod istioctl;
mod istiod;
mod probe;
mod seed;
mod versions;
