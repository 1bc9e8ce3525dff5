//! `migrate demo`, as the README promises: simulated clusters, today's mesh,
//! plan, apply with the failover table, rollback to phase3, status, exit 0.

use crate::support::migrate;

#[test]
fn the_demo_runs_the_whole_story_and_exits_zero() {
    let out = migrate(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for banner in [
        "==> Today's mesh: one cluster",
        "==> Plan",
        "==> Apply",
        "==> Roll back to phase3",
        "==> Status",
    ] {
        assert!(stdout.contains(banner), "no {banner:?} in\n{stdout}");
    }
    // The failover table: every answer local first, every answer from
    // cluster2 once cluster1's helloworld is drained.
    assert!(
        stderr.contains("probe failover/baseline from cluster1: 20 requests PASSED"),
        "{stderr}"
    );
    let drained = stderr
        .split("probe failover/drain from cluster1: 20 requests PASSED")
        .nth(1)
        .unwrap_or_else(|| panic!("no drain table in\n{stderr}"));
    let answers = |cluster: &str| {
        drained
            .lines()
            .find(|l| l.trim_start().starts_with(cluster))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    };
    assert_eq!(answers("cluster1").as_deref(), Some("0"), "{drained}");
    assert_eq!(answers("cluster2").as_deref(), Some("20"), "{drained}");
    assert!(
        stdout.contains("rolled back to phase3 discovery"),
        "{stdout}"
    );
    assert!(stdout.contains("rolled back (started"), "{stdout}");
    for line in [
        "done         discovery/cluster1<-cluster2",
        "rolled-back  routing/cluster1",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
}

/// `demo --keep` serves until stopped: SIGTERM (what `kill PID` and service
/// managers send) stops it as Ctrl-C does, although the demo's run watched
/// SIGTERM before.
#[test]
fn the_kept_demo_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["demo", "--keep"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate runs");
    // Read on another thread to the end, so the demo never writes to a closed pipe.
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, seen_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    while !seen.contains("stay up until Ctrl-C") {
        match seen_lines.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no 'stay up' banner ({e})\n{seen}");
            }
        }
    }
    // SAFETY: kill has no memory effects; the pid is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("demo --keep still running 60s after SIGTERM\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{seen}");
}

/// `demo --source helm`: the same story from a Helm-installed, revisioned
/// Istio 1.26.4 (plans/helm-revision.yaml), through the `helm` stand-in.
#[test]
fn the_demo_from_a_helm_installed_revisioned_mesh() {
    let out = migrate(&["demo", "--source", "helm"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The status itself, not only its code: a signal is named (it once died of one under load).
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(
        stdout.contains("installed with Helm") && stdout.contains("revision 1-26-4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("installer helm (release istiod in istio-system)"),
        "{stdout}"
    );
    for probe in ["failover/baseline", "failover/drain"] {
        let line = format!("probe {probe} from cluster1: 20 requests PASSED");
        assert!(stderr.contains(&line), "no {line:?} in\n{stderr}");
    }
    assert!(stdout.contains("==> Roll back to phase3"), "{stdout}");
}
