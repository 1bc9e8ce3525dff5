//! Telling whether a process recorded earlier (an installer started by a
//! `migrate` that crashed) still runs, and waiting for it to end.
//!
//! A pid alone can be reused; a process is identified by its pid, its start
//! time (`/proc/PID/stat`, clock ticks since boot) and its program name
//! (`/proc/PID/cmdline`, the first argument's file name).

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// A started process, as recorded in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Its pid.
    pub pid: u32,
    /// When it started, in clock ticks since boot; None where unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// The file name of the program it runs (`istioctl`).
    pub program: String,
}

impl ProcessIdentity {
    /// The identity of `pid`, started as `program`, read now.
    pub fn of(pid: u32, program: &str) -> ProcessIdentity {
        ProcessIdentity {
            pid,
            start_time: start_time(pid),
            program: file_name(program),
        }
    }

    /// This very process still runs: the pid exists, is not a zombie, started
    /// at the recorded time and runs the recorded program.
    pub fn is_running(&self) -> bool {
        let Some((state, started)) = stat(self.pid) else {
            return false;
        };
        if state == 'Z' || self.start_time.is_some_and(|t| t != started) {
            return false;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", self.pid)) else {
            return false;
        };
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        file_name(&String::from_utf8_lossy(argv0)) == self.program
    }

    /// Waits until the process no longer runs, or `limit` passes; true when
    /// it ended. Checks every 100 ms: it is not our child, so there is no
    /// exit status to wait on.
    pub async fn wait_until_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_running() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn file_name(program: &str) -> String {
    Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string())
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// (state, start time) from `/proc/PID/stat`. The command name in field 2
/// may hold spaces and parentheses: fields are counted after the last ')'.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, field 22 (starttime) index 19.
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_changed_identity_does_not() {
        let me = std::process::id();
        let argv0 = std::env::args().next().unwrap_or_default();
        let identity = ProcessIdentity::of(me, &argv0);
        assert!(identity.start_time.is_some(), "{identity:?}");
        assert!(identity.is_running(), "{identity:?}");
        let reused = ProcessIdentity {
            start_time: identity.start_time.map(|t| t + 1),
            ..identity.clone()
        };
        assert!(
            !reused.is_running(),
            "another start time is another process"
        );
        let other = ProcessIdentity {
            program: "istioctl".into(),
            ..identity
        };
        assert!(!other.is_running(), "another program is another process");
    }

    #[tokio::test]
    async fn waits_for_an_unrelated_process_to_end() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let identity = ProcessIdentity::of(child.id(), "sleep");
        // Until it has exec'd, the child still shows this test binary's name.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !identity.is_running() {
            assert!(Instant::now() < deadline, "sleep never showed up");
            tokio::task::yield_now().await;
        }
        assert!(!identity.wait_until_gone(Duration::from_millis(200)).await);
        // Killed and reaped on another thread, as init reaps an orphan.
        let reaper = std::thread::spawn(move || child.kill().and_then(|()| child.wait()));
        assert!(identity.wait_until_gone(Duration::from_secs(10)).await);
        assert!(reaper.join().is_ok_and(|r| r.is_ok()));
        let gone = ProcessIdentity::of(u32::MAX / 2, "sleep");
        assert!(!gone.is_running());
    }
}
