//! Test hook: `MIGRATE_FAILPOINT` makes the process kill itself with SIGKILL
//! at a chosen point of a run, so crash tests can stop it at every step
//! boundary and inside a step deterministically. Unset (the normal case) it
//! costs one lookup per step.
//!
//! Values (step ids as `migrate plan` prints them; N and K count from 1):
//! - `before-step:ID`      after ID is checkpointed running (or rolling back), before its first action
//! - `after-step:ID`       after ID is checkpointed done (or rolled back)
//! - `after-step:N`        after the Nth step this process finishes
//! - `inside-step:ID:K`    after the Kth action of ID, before the next one
//!
//! An unreadable value is reported on stderr once and ignored.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that names a failpoint.
pub const ENV: &str = "MIGRATE_FAILPOINT";

/// Where the process is to crash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum Failpoint {
    BeforeStep(String),
    AfterStep(String),
    AfterNthStep(usize),
    InsideStep(String, usize),
}

impl Failpoint {
    pub(crate) fn parse(text: &str) -> Result<Failpoint, String> {
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("{ENV}={text:?}: expected KIND:ARGS"))?;
        match kind {
            "before-step" if !rest.is_empty() => Ok(Failpoint::BeforeStep(rest.to_string())),
            "after-step" if !rest.is_empty() => Ok(match rest.parse::<usize>() {
                Ok(n) if n > 0 => Failpoint::AfterNthStep(n),
                _ => Failpoint::AfterStep(rest.to_string()),
            }),
            "inside-step" => {
                let (id, k) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{ENV}={text:?}: expected inside-step:ID:K"))?;
                match k.parse::<usize>() {
                    Ok(k) if k > 0 && !id.is_empty() => {
                        Ok(Failpoint::InsideStep(id.to_string(), k))
                    }
                    _ => Err(format!("{ENV}={text:?}: K must be a number from 1")),
                }
            }
            _ => Err(format!(
                "{ENV}={text:?}: expected before-step:ID, after-step:ID, after-step:N or inside-step:ID:K"
            )),
        }
    }
}

fn configured() -> Option<&'static Failpoint> {
    static POINT: OnceLock<Option<Failpoint>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let text = std::env::var(ENV).ok()?;
            match Failpoint::parse(&text) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("warning: ignoring test hook: {e}");
                    None
                }
            }
        })
        .as_ref()
}

static FINISHED: AtomicUsize = AtomicUsize::new(0);

fn die(at: &str) -> ! {
    eprintln!("{ENV}: killing this process at {at}");
    // SAFETY: getpid and kill have no preconditions; SIGKILL to ourselves does not return.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL is delivered before kill returns to a single-threaded caller; other threads may race it.
    std::process::abort()
}

/// Crashes here if the failpoint is before this step.
pub(crate) fn before_step(step: &str) {
    if let Some(Failpoint::BeforeStep(id)) = configured()
        && id == step
    {
        die(&format!("before-step:{step}"));
    }
}

/// Crashes here if the failpoint is after this step.
pub(crate) fn after_step(step: &str) {
    match configured() {
        Some(Failpoint::AfterStep(id)) if id == step => die(&format!("after-step:{step}")),
        Some(Failpoint::AfterNthStep(n)) if FINISHED.fetch_add(1, Ordering::SeqCst) + 1 == *n => {
            die(&format!("after-step:{n} ({step})"))
        }
        _ => {}
    }
}

/// Crashes here if the failpoint is after this action of the step.
pub(crate) fn after_action(step: &str, index: usize) {
    if let Some(Failpoint::InsideStep(id, k)) = configured()
        && id == step
        && *k == index
    {
        die(&format!("inside-step:{step}:{index}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_rejects_the_rest() {
        assert_eq!(
            Failpoint::parse("before-step:install/cluster1"),
            Ok(Failpoint::BeforeStep("install/cluster1".into()))
        );
        assert_eq!(
            Failpoint::parse("after-step:discovery/cluster1<-cluster2"),
            Ok(Failpoint::AfterStep("discovery/cluster1<-cluster2".into()))
        );
        assert_eq!(
            Failpoint::parse("after-step:3"),
            Ok(Failpoint::AfterNthStep(3))
        );
        assert_eq!(
            Failpoint::parse("inside-step:trust/cluster1:2"),
            Ok(Failpoint::InsideStep("trust/cluster1".into(), 2))
        );
        for bad in [
            "",
            "after-step",
            "after-step:",
            "inside-step:x",
            "inside-step:x:0",
            "boom:1",
        ] {
            assert!(Failpoint::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
