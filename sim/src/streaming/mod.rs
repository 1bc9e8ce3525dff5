//! The API server's streaming subresources over websockets: the upgrade
//! ([`upgrade`]), the Kubernetes channel protocol that exec, attach and
//! port-forward share ([`channel`]), and port-forward itself
//! ([`portforward`]). Exec and attach can be added on the first two.

pub(crate) mod channel;
pub(crate) mod portforward;
mod stats;
pub(crate) mod upgrade;

pub use stats::StreamStats;
