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
