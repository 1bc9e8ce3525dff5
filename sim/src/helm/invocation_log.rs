//! A test hook that lets tests count what the stand-in changed:
//! `MESHSIM_HELM_LOG=PATH` makes every changing invocation (`upgrade`,
//! `rollback`, `uninstall`) append one line to PATH when it starts and one
//! when it ends (not when it is killed):
//! `start pid=PID command=COMMAND release=RELEASE context=CONTEXT` and
//! `end pid=PID command=COMMAND release=RELEASE context=CONTEXT code=CODE`,
//! CONTEXT being `--kube-context` (`-` when not given). Read-only commands
//! (`list`, `status`, `get values`, `version`) are not logged. Each line is
//! one append, so concurrent invocations never interleave within a line.
//!
//! `MESHSIM_HELM_DELAY_MS=N`: an install, upgrade or rollback waits N ms
//! once it has applied its objects, before its record leaves `pending-*`,
//! so that a test can kill a helm whose objects are in the cluster and whose
//! record says it never finished.

use super::args::{self, Command};
use std::io::Write;

/// Where changing invocations are logged.
pub const LOG_ENV: &str = "MESHSIM_HELM_LOG";
/// How long a deploy waits between applying and marking its record deployed.
pub const DELAY_ENV: &str = "MESHSIM_HELM_DELAY_MS";

/// The delay [`DELAY_ENV`] asks for, if any.
pub(crate) fn deploy_delay() -> Option<std::time::Duration> {
    std::env::var(DELAY_ENV)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}

/// One changing invocation, as it is logged.
pub(crate) struct Invocation {
    log: String,
    line: String,
}

impl Invocation {
    /// Logs the start of `args` when the hook is set and the command changes
    /// something; `None` otherwise.
    pub(crate) fn start(args: &[String]) -> Option<Invocation> {
        let log = std::env::var(LOG_ENV).ok().filter(|p| !p.is_empty())?;
        Self::start_logging_to(args, log)
    }

    fn start_logging_to(args: &[String], log: String) -> Option<Invocation> {
        let (global, command) = args::parse(args).ok()?;
        let (name, release) = match command {
            Command::Upgrade(a) => ("upgrade", a.release),
            Command::Rollback { release, .. } => ("rollback", release),
            Command::Uninstall { release, .. } => ("uninstall", release),
            _ => return None,
        };
        let invocation = Invocation {
            log,
            line: format!(
                "pid={} command={name} release={release} context={}",
                std::process::id(),
                global.context.as_deref().unwrap_or("-")
            ),
        };
        invocation.append(&format!("start {}", invocation.line));
        Some(invocation)
    }

    /// Logs the end with the exit code.
    pub(crate) fn end(&self, code: i32) {
        self.append(&format!("end {} code={code}", self.line));
    }

    fn append(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// The `(command, release, context)` of every ended invocation in a log's text.
pub fn ended(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("end "))
        .map(|l| {
            let field = |k: &str| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            (field("command"), field("release"), field("context"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_commands_log_a_start_and_an_end_and_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("helm.log");
        let log_s = log.to_string_lossy().into_owned();
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let up = Invocation::start_logging_to(
            &args("upgrade --install istiod istio/istiod -n istio-system --kube-context k2"),
            log_s.clone(),
        )
        .unwrap();
        up.end(0);
        assert!(
            Invocation::start_logging_to(&args("list -n istio-system"), log_s.clone()).is_none()
        );
        assert!(Invocation::start_logging_to(&args("status istiod"), log_s).is_none());
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("start pid="));
        assert_eq!(
            ended(&text),
            [("upgrade".into(), "istiod".into(), "k2".into())]
        );
    }
}
