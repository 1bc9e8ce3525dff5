//! A container's log as the kubelet keeps it: written as the program produces it (both
//! streams, interleaved), capped as log rotation would, readable through `pods/log`.

use crate::shell::{Output, Stream};
use crate::store::Store;
use std::sync::{Arc, Mutex};

/// The most a pod's log keeps (the kubelet rotates at 10 MiB; the sim keeps less in memory).
const MAX_LOG_BYTES: usize = 1 << 20;

/// Writes into one pod's log.
#[derive(Clone)]
pub(crate) struct PodLog {
    store: Store,
    namespace: String,
    pod: String,
    text: Arc<Mutex<String>>,
}

impl PodLog {
    pub fn new(store: &Store, namespace: &str, pod: &str) -> Self {
        PodLog {
            store: store.clone(),
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            text: Arc::default(),
        }
    }

    /// A restarted container starts a new log (`kubectl logs` shows the current instance).
    pub fn reset(&self) {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        text.clear();
        self.store
            .set_log(&self.namespace, &self.pod, String::new());
    }
}

impl Output for PodLog {
    fn write(&mut self, _stream: Stream, chunk: &str) {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        text.push_str(chunk);
        if text.len() > MAX_LOG_BYTES {
            // Drop whole lines from the front.
            let mut cut = text.len() - MAX_LOG_BYTES;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            let at = text[cut..].find('\n').map_or(text.len(), |i| cut + i + 1);
            text.drain(..at);
        }
        self.store.set_log(&self.namespace, &self.pod, text.clone());
    }
}
