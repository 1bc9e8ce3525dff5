//! The API server's streaming subresources over websockets: the upgrade
//! ([`upgrade`]), the Kubernetes channel protocol that exec, attach and
//! port-forward share ([`channel`]), and port-forward itself
//! ([`portforward`]), exec ([`exec`]) and attach ([`attach`]) with what they share
//! ([`remotecommand`]).

pub(crate) mod attach;
pub(crate) mod channel;
pub(crate) mod exec;
pub(crate) mod portforward;
pub(crate) mod remotecommand;
mod stats;
pub(crate) mod upgrade;

pub use stats::StreamStats;
