//! Pipes: `migrate ... | head` ends quietly when the reader goes away, and a
//! closed connection never kills a running `migrate` (SIGPIPE stays ignored;
//! TLS writes use writev, which raises it on a socket the peer closed).

use crate::support::repo_root;
use std::process::{Command, Stdio};

/// Each printing command, its stdout a pipe whose reader is already gone:
/// exit 0, no panic, no error line.
#[test]
fn printing_to_a_closed_pipe_ends_quietly() {
    let commands: [&[&str]; 5] = [
        &["plan", "-f", "plans/demo.yaml", "--offline"],
        &["plan", "-f", "plans/demo.yaml", "--offline", "-o", "json"],
        &["validate", "-f", "plans/demo.yaml", "-o", "json"],
        &["completion", "bash"],
        &["version"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        // Closed before the command starts: its first write meets EPIPE.
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_migrate"))
            .args(args)
            .current_dir(repo_root())
            .env_remove("KUBECONFIG")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("migrate runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "migrate {args:?} into a closed pipe: {:?}\n{stderr}",
            out.status
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "migrate {args:?} into a closed pipe:\n{stderr}"
        );
    }
}

/// The process's SIGPIPE disposition, read from /proc while `sim serve`
/// serves (in-process API servers, as in `demo`): ignored. With the default disposition a write to a connection
/// the peer closed killed the demo (signal 13) about once in 80 runs.
#[test]
fn sigpipe_is_ignored_while_migrate_runs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["sim", "serve", "--clusters", "2"])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate sim serve runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Its banner says it is serving: the runtime and its handlers are set up.
    let serving = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Press Ctrl-C to stop"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    assert!(serving, "sim serve printed no banner");
    let status = status.expect("/proc/PID/status is readable");
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .expect("a SigIgn line");
    assert_ne!(
        ignored & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE is not ignored (SigIgn {ignored:#x})"
    );
}
