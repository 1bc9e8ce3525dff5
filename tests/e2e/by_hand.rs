//! The README's "Verify by hand, as the runbook does", run as written: the real `migrate sim
//! serve --seed` in the background, then the section's second block, line for line, through
//! bash with the real kubectl on PATH (the interactive client's input piped). The answers must
//! show both clusters: v1 from cluster1 before the drain, v2 from cluster2 after it.

use crate::support::repo_root;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The README section's shell blocks, in order.
fn section_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find("### Verify by hand, as the runbook does")
        .expect("the README has the by-hand section");
    let rest = &readme[start..];
    // Up to the next heading (a `#` at a line start inside a block is a comment).
    let end = ["\n## ", "\n### "]
        .iter()
        .filter_map(|h| rest[4..].find(h))
        .min()
        .map_or(rest.len(), |i| i + 4);
    let section = &rest[..end];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// Kills the server this test started (by its own handle) however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child with a deadline; its exit code and output.
fn run_with_deadline(mut child: Child, input: &str, limit: Duration) -> (i32, String, String) {
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        let _ = tx.send((1, s));
    });
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        let _ = tx2.send((2, s));
    });
    let (mut out, mut err) = (String::new(), String::new());
    for _ in 0..2 {
        match rx.recv_timeout(limit) {
            Ok((1, s)) => out = s,
            Ok((_, s)) => err = s,
            Err(_) => {
                let _ = child.kill();
                panic!("the by-hand commands did not finish within {limit:?}");
            }
        }
    }
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    (code, out, err)
}

#[test]
fn the_runbooks_commands_show_both_clusters() {
    let blocks = section_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "the section has the serve block and the commands"
    );
    let serve_line = blocks[0].trim();
    assert_eq!(
        serve_line,
        "migrate sim serve --seed --kubeconfig ./sim.kubeconfig"
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    // A copy of plans/: the demo's certDir (./migrate-certs) is beside the spec, never in the repo.
    let plans = dir.path().join("plans");
    std::fs::create_dir(&plans).expect("plans/");
    for entry in std::fs::read_dir(repo_root().join("plans")).expect("read plans/") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            std::fs::copy(&path, plans.join(path.file_name().expect("a name"))).expect("copy");
        }
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_migrate"));
    let bin_dir = bin.parent().expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The first block, as written (migrate from PATH), until it says it serves.
    let args: Vec<&str> = serve_line.split_whitespace().collect();
    let mut server = Server(
        Command::new("bash")
            .arg("-c")
            .arg(format!("exec {}", args.join(" ")))
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("migrate sim serve starts"),
    );
    let stdout = server.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("Press Ctrl-C to stop.") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("sim serve is ready within 60s");

    // The second block, line for line, with the interactive client's input on stdin.
    // No pipefail: `grep -m1` may end kubectl's output early, as at a terminal.
    let script = format!("set -eu\n{}", blocks[1]);
    let child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", &path)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let (code, out, err) = run_with_deadline(
        child,
        "curl -s helloworld:5000/hello\nexit\n",
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "the by-hand commands failed:\n{out}\n{err}");

    // Ten answers from v1 (the loop) and the proxy's own one, then ten from v2 after the drain,
    // then the interactive client's one.
    let hellos: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start_matches("~ $ ").strip_prefix("Hello version: "))
        .collect();
    assert!(hellos.len() >= 22, "{out}\n{err}");
    assert!(
        hellos[..11]
            .iter()
            .all(|h| h.starts_with("v1, instance: helloworld-v1-")),
        "{out}"
    );
    assert!(
        hellos[11..21]
            .iter()
            .all(|h| h.starts_with("v2, instance: helloworld-v2-")),
        "{out}"
    );
    // v2's instances are cluster2's pods.
    let cluster2 = Command::new("kubectl")
        .args([
            "--context",
            "sim-cluster2",
            "get",
            "pods",
            "-n",
            "sample",
            "-o",
            "name",
        ])
        .env("KUBECONFIG", dir.path().join("sim.kubeconfig"))
        .output()
        .expect("kubectl runs");
    let cluster2 = String::from_utf8_lossy(&cluster2.stdout).into_owned();
    for h in &hellos[11..21] {
        let instance = h.trim_start_matches("v2, instance: ").trim();
        assert!(
            cluster2.contains(&format!("pod/{instance}")),
            "{instance} is not a cluster2 pod: {cluster2}"
        );
    }
    // The interactive client ran its curl, and --rm deleted it.
    assert!(out.contains("pod \"client\" deleted"), "{out}");
    // What cluster2's API server tells an anonymous caller at /version, from a pod.
    assert!(out.contains("\"gitVersion\": \"v1.32.3\""), "{out}\n{err}");
    assert!(out.contains("pod \"tmp\" deleted"), "{out}");
    assert!(
        out.contains("Content-Type: application/json;g=apidiscovery.k8s.io;v=v2"),
        "{out}"
    );
    // No secret in what the commands printed.
    let kubeconfig =
        std::fs::read_to_string(dir.path().join("sim.kubeconfig")).expect("the kubeconfig");
    for token in kubeconfig
        .lines()
        .filter_map(|l| l.trim().strip_prefix("token: "))
    {
        assert!(
            !out.contains(token) && !err.contains(token),
            "a token was printed"
        );
    }
}
