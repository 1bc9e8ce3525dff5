//! Integration tests: the real kubectl and the kube client against meshsim
//! over HTTPS. One test binary (modules) to keep link time down.

mod client;
mod common;
mod exec;
mod faults;
mod kubectl;
mod pods;
mod portforward;
mod rules;
mod v132;
