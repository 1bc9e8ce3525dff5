//! Capped exponential backoff with full jitter, for transient errors only.

use super::ClusterError;
use std::future::Future;
use std::time::Duration;

/// Capped exponential backoff with jitter, for transient API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay before jitter.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The delay before attempt `n + 1` (n >= 1): a random point in
    /// [0, min(cap, base * 2^(n-1))], so concurrent clients spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Runs `op` until it succeeds, fails permanently, or runs out of attempts.
/// `on_retry(attempt, &error)` is told about each transient failure (for logs
/// and the journal). Returns the value and the number of attempts made.
pub async fn retry<T, F, Fut>(
    policy: Backoff,
    mut op: F,
    mut on_retry: impl FnMut(u32, &ClusterError),
) -> Result<(T, u32), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(value) => return Ok((value, attempt)),
            Err(err) if err.is_transient() && attempt < policy.max_attempts => {
                on_retry(attempt, &err);
                tokio::time::sleep(policy.delay(attempt)).await;
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> ClusterError {
        ClusterError::Api {
            cluster: "c".into(),
            object: "o".into(),
            code: 503,
            reason: "ServiceUnavailable".into(),
            message: "m".into(),
        }
    }

    fn fast() -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            max_attempts: 4,
        }
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
            max_attempts: 10,
        };
        for attempt in 1..30 {
            assert!(b.delay(attempt) <= Duration::from_millis(400));
        }
        assert!(b.delay(1) <= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn retries_transient_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let mut seen = Vec::new();
        let (value, attempts) = retry(
            fast(),
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(transient())
                } else {
                    Ok(42)
                }
            },
            |n, _| seen.push(n),
        )
        .await
        .unwrap();
        assert_eq!((value, attempts), (42, 3));
        assert_eq!(seen, vec![1, 2]);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_never_retries_permanent_errors() {
        let calls = AtomicU32::new(0);
        let err = retry(
            fast(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(transient())
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(err.is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let permanent = || ClusterError::Api {
            cluster: "c".into(),
            object: "o".into(),
            code: 403,
            reason: "Forbidden".into(),
            message: "m".into(),
        };
        retry(
            fast(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(permanent())
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
