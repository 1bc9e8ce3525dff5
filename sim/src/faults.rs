//! Per-cluster fault injection (latency, error responses, the listener
//! going down) and request counters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// What a cluster does wrong on purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Added before every answer.
    pub latency: Duration,
    /// Share of requests (0.0..=1.0) answered with one of `error_codes` instead.
    pub error_rate: f64,
    /// Codes picked at random for injected errors: 500, 503 and/or 429.
    pub error_codes: Vec<u16>,
    /// `Retry-After` seconds sent with an injected 429.
    pub retry_after_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency: Duration::ZERO,
            error_rate: 0.0,
            error_codes: vec![500, 503, 429],
            retry_after_secs: 1,
        }
    }
}

/// How many requests a cluster answered, by verb and by status code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u64,
    pub by_verb: BTreeMap<String, u64>,
    pub by_code: BTreeMap<u16, u64>,
}

impl Counters {
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).copied().unwrap_or(0)
    }
    pub fn code(&self, code: u16) -> u64 {
        self.by_code.get(&code).copied().unwrap_or(0)
    }
}

/// A cluster's fault settings and counters; shared with its server.
#[derive(Debug)]
pub struct Faults {
    config: Mutex<FaultConfig>,
    counters: Mutex<Counters>,
    down: watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            config: Mutex::new(FaultConfig::default()),
            counters: Mutex::new(Counters::default()),
            down: watch::channel(false).0,
        }
    }
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let f = Faults::default();
        f.set(config);
        f
    }

    pub fn set(&self, config: FaultConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub fn get(&self) -> FaultConfig {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Clears latency and errors (not "down").
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    /// Down: the listener closes (connections refused, open ones cut); up:
    /// it listens on the same port again. Returns once the change is ordered;
    /// [`ClusterHandle::wait_listening`](crate::ClusterHandle::wait_listening) waits for "up"
    /// to take effect.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    pub(crate) fn down_watch(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    pub fn counters(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_counters(&self) {
        *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = Counters::default();
    }

    pub(crate) fn count(&self, verb: &str, code: u16) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.total += 1;
        match c.by_verb.get_mut(verb) {
            Some(n) => *n += 1,
            None => {
                c.by_verb.insert(verb.to_string(), 1);
            }
        }
        *c.by_code.entry(code).or_default() += 1;
    }

    /// The injected error code for this request, if any.
    pub(crate) fn pick_error(&self) -> Option<(u16, u64)> {
        let cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if cfg.error_rate <= 0.0 || cfg.error_codes.is_empty() || fastrand::f64() >= cfg.error_rate
        {
            return None;
        }
        let code = cfg.error_codes[fastrand::usize(..cfg.error_codes.len())];
        Some((code, cfg.retry_after_secs))
    }

    pub(crate) fn latency(&self) -> Duration {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latency
    }
}
