//! meshsim's Istio stand-ins (istioctl, the seeded starting point), checked
//! over HTTPS with the real kubectl, as the Istio docs check a mesh.

mod istioctl;
mod seed;
