//! What the streaming endpoints served, for tests that must tell how a
//! client reached istiod (a port-forward, or the API server's proxy).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one cluster's streaming sessions and proxied debug requests.
#[derive(Debug, Default)]
pub struct StreamStats {
    port_forwards: AtomicU64,
    proxied_debug: AtomicU64,
}

impl StreamStats {
    /// Port-forward sessions upgraded to a websocket (refused ones not counted).
    pub fn port_forwards(&self) -> u64 {
        self.port_forwards.load(Ordering::Relaxed)
    }

    /// Requests for istiod's debug endpoints through the API server's service proxy.
    pub fn proxied_debug(&self) -> u64 {
        self.proxied_debug.load(Ordering::Relaxed)
    }

    pub(crate) fn count_port_forward(&self) {
        self.port_forwards.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_proxied_debug(&self) {
        self.proxied_debug.fetch_add(1, Ordering::Relaxed);
    }
}
