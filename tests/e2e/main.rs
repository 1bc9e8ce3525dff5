//! Integration tests: one binary, one module per area, so the suite links once.

mod crds;
mod istioctl;
mod plan;
mod support;
mod validate;
