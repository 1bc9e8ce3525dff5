//! Integration tests: one binary, one module per area, so the suite links once.

mod adopt;
mod apply;
mod architecture;
mod crash;
mod crds;
mod demo;
mod effects;
mod faults;
mod helm;
mod identity;
mod istioctl;
mod journey;
mod keys;
mod lineage;
mod live_plan;
mod permissions;
mod plan;
mod probe_contract;
mod rollback;
mod signals;
mod sim_support;
mod specs;
mod state;
mod state_format;
mod support;
mod validate;
