//! Test hooks (environment variables) that let tests watch the stand-in run:
//!
//! - `MESHSIM_ISTIOCTL_LOG=PATH`: every invocation appends one line to PATH
//!   when it starts and one when it ends (not when it is killed):
//!   `start pid=PID command=COMMAND context=CONTEXT file=FILE` and
//!   `end pid=PID command=COMMAND context=CONTEXT file=FILE code=CODE`;
//!   COMMAND is `install`, `uninstall`, `version`, `remote-clusters`, `help` or
//!   `invalid`, CONTEXT is `--context` (`-` when not given) and FILE the file name
//!   (no directory) of the first `-f` (`-` when none). Each line is one append,
//!   so concurrent invocations never interleave within a line.
//! - `MESHSIM_ISTIOCTL_DELAY_MS=N`: `install` and `uninstall` wait N ms after
//!   the start line before doing anything, so that a test can act while an
//!   installer is known to be running.

use super::args::{self, Command};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Where invocations are logged.
pub const LOG_ENV: &str = "MESHSIM_ISTIOCTL_LOG";
/// How long `install` and `uninstall` wait before acting.
pub const DELAY_ENV: &str = "MESHSIM_ISTIOCTL_DELAY_MS";

/// One invocation, as it is logged.
pub(crate) struct Invocation {
    log: Option<String>,
    line: String,
    mutating: bool,
}

impl Invocation {
    /// Reads the hooks for `args` from the environment; logs the start line
    /// when asked to.
    pub(crate) fn start(args: &[String]) -> Invocation {
        Self::start_logging_to(args, std::env::var(LOG_ENV).ok().filter(|p| !p.is_empty()))
    }

    fn start_logging_to(args: &[String], log: Option<String>) -> Invocation {
        let (context, command, file) = match args::parse(args) {
            Ok((global, command)) => {
                let (name, file) = match &command {
                    Command::Install(a) => ("install", a.files.first().cloned()),
                    Command::Uninstall(a) => ("uninstall", a.file.clone()),
                    Command::Version(_) => ("version", None),
                    Command::RemoteClusters => ("remote-clusters", None),
                    Command::Help => ("help", None),
                };
                (global.context, name, file)
            }
            Err(_) => (None, "invalid", None),
        };
        let file = file
            .as_deref()
            .and_then(|f| Path::new(f).file_name())
            .map(|f| f.to_string_lossy().into_owned());
        let invocation = Invocation {
            log,
            line: format!(
                "pid={} command={command} context={} file={}",
                std::process::id(),
                context.as_deref().unwrap_or("-"),
                file.as_deref().unwrap_or("-"),
            ),
            mutating: matches!(command, "install" | "uninstall"),
        };
        invocation.append(&format!("start {}", invocation.line));
        invocation
    }

    /// The delay a mutating command waits before acting, if one is asked for.
    pub(crate) fn delay(&self) -> Option<Duration> {
        if !self.mutating {
            return None;
        }
        let ms: u64 = std::env::var(DELAY_ENV).ok()?.parse().ok()?;
        Some(Duration::from_millis(ms))
    }

    /// Logs the end line with the exit code.
    pub(crate) fn end(&self, code: i32) {
        self.append(&format!("end {} code={code}", self.line));
    }

    fn append(&self, line: &str) {
        let Some(path) = &self.log else { return };
        // A hook must not change what the stand-in does: failures to log are ignored.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_a_start_and_an_end_line_per_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("istioctl.log");
        let args: Vec<String> = [
            "install",
            "-y",
            "-f",
            "/tmp/x/istio-c1.yaml",
            "--context",
            "ctx1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let install = Invocation::start_logging_to(&args, Some(log.to_string_lossy().into()));
        assert!(install.mutating);
        let version = Invocation::start_logging_to(
            &["version".to_string()],
            Some(log.to_string_lossy().into()),
        );
        assert!(!version.mutating && version.delay().is_none());
        version.end(0);
        install.end(1);
        let pid = std::process::id();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                format!("start pid={pid} command=install context=ctx1 file=istio-c1.yaml"),
                format!("start pid={pid} command=version context=- file=-"),
                format!("end pid={pid} command=version context=- file=- code=0"),
                format!("end pid={pid} command=install context=ctx1 file=istio-c1.yaml code=1"),
            ]
        );
    }
}
