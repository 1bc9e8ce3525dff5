//! Requests of the store sent again when they failed for a passing reason (429, 5xx, a connection that did not
//! happen): the cluster a team keeps its state in throttles and restarts like any other, and one lost request
//! must not stop a run.
//!
//! Only a request is repeated, never a decision: every write of the store is create-only or carries the
//! resourceVersion it read, so a repeat whose first attempt landed after all answers 409, which its caller
//! judges as any other conflict (the log's head compares checksums; a Lease is read again).

use std::future::Future;
use std::time::Duration;

/// How often and how long to try.
#[derive(Debug, Clone, Copy)]
struct Policy {
    /// Attempts in all, the first included.
    attempts: u32,
    /// The first delay's ceiling; each next one doubles it, up to `cap`.
    base: Duration,
    cap: Duration,
}

/// 8 attempts, waiting in all at most about 3.5 s: well inside the margin a Lease keeps (and a write is fenced
/// by its create-only name anyway).
const POLICY: Policy = Policy {
    attempts: 8,
    base: Duration::from_millis(50),
    cap: Duration::from_secs(1),
};

/// Whether sending the request again may succeed: throttled, a server error that passes, or no answer at all.
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

impl Policy {
    /// The delay before attempt `attempt + 1`: a random point below `min(cap, base * 2^(attempt-1))`, so the
    /// writers of one store spread out.
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Runs `op` until it succeeds, fails for good, or the attempts are spent; `what` names it in the log.
pub async fn retrying<T, F, Fut>(what: &str, op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retrying_with(POLICY, what, op).await
}

async fn retrying_with<T, F, Fut>(policy: Policy, what: &str, mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if transient(&e) && attempt < policy.attempts => {
                tracing::debug!(attempt, "state store: {what}: {e}; retrying");
                tokio::time::sleep(policy.delay(attempt)).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("injected", "X").with_code(code),
        ))
    }

    #[test]
    fn throttling_and_server_errors_pass_conflicts_and_refusals_do_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(transient(&api(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!transient(&api(code)), "{code}");
        }
    }

    #[test]
    fn delays_grow_to_the_cap() {
        let mut ceilings = Duration::ZERO;
        for attempt in 1..20 {
            let d = POLICY.delay(attempt);
            assert!(d <= POLICY.cap, "{attempt}: {d:?}");
            assert!(
                d <= POLICY.base * 2u32.pow(attempt.min(16) - 1),
                "{attempt}: {d:?}"
            );
            if attempt < POLICY.attempts {
                ceilings += (POLICY.base * 2u32.pow(attempt - 1)).min(POLICY.cap);
            }
        }
        assert!(ceilings <= Duration::from_secs(4), "{ceilings:?} in all");
    }

    /// `POLICY`'s attempts, without the waits.
    const QUICK: Policy = Policy {
        attempts: POLICY.attempts,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(1),
    };

    #[tokio::test]
    async fn a_passing_failure_is_retried_a_lasting_one_is_given_up() {
        let calls = AtomicU32::new(0);
        let got = retrying_with(QUICK, "probe", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(api(500)),
                1 => Err(api(429)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(got.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let got: Result<(), _> = retrying_with(QUICK, "probe", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(503))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), POLICY.attempts);

        let calls = AtomicU32::new(0);
        let got: Result<(), _> = retrying_with(QUICK, "probe", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(409))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a conflict is its caller's to judge"
        );
    }
}
