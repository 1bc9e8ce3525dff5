//! Every example plan's preflight asks for what its actions need.

use crate::plan::permissions::action_needs;
use crate::plan::{Action, Check, LocalOp, Phase};
use std::path::Path;

/// Actions that reach no cluster need nothing: work on this machine, and
/// checks answered by paths open to every authenticated user.
fn reaches_no_cluster(action: &Action) -> bool {
    match action {
        Action::Local { op } => !matches!(op, LocalOp::FetchLiveRoot { .. }),
        Action::Check { cluster, check } => {
            cluster.is_none()
                || matches!(
                    check,
                    Check::Reachable
                        | Check::KubernetesVersion { .. }
                        | Check::InstallerVersion { .. }
                        | Check::Permissions { .. }
                )
        }
        _ => false,
    }
}

#[test]
fn every_action_of_every_example_plan_maps_to_needs_that_preflight_asks_for() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "example plans in {}", dir.display());
    for file in files {
        let loaded = crate::spec::load_file(&file).unwrap();
        let plan = super::plan(&loaded.spec).unwrap();
        let clusters: Vec<String> = plan
            .header
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect();
        // What each cluster's preflight check will ask.
        let asked = |cluster: &str| {
            let step = plan
                .step(&format!("preflight/{cluster}"))
                .unwrap_or_else(|| panic!("{}: no preflight/{cluster}", file.display()));
            step.forward
                .iter()
                .find_map(|a| match a {
                    Action::Check {
                        check: Check::Permissions { needs },
                        ..
                    } => Some(needs.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{}: preflight/{cluster} has no permissions check",
                        file.display()
                    )
                })
        };
        for step in &plan.steps {
            for action in step
                .forward
                .iter()
                .chain(&step.finally)
                .chain(&step.rollback)
            {
                let needs = action_needs(action, &clusters);
                if reaches_no_cluster(action) {
                    continue;
                }
                assert!(
                    !needs.is_empty(),
                    "{}: {} needs nothing: {action}",
                    file.display(),
                    step.id
                );
                for (cluster, access) in needs {
                    let held = asked(&cluster);
                    let need = held.iter().find(|n| n.access == access).unwrap_or_else(|| {
                        panic!(
                            "{}: preflight/{cluster} does not ask for {access:?} ({action})",
                            file.display()
                        )
                    });
                    assert!(
                        need.steps.contains(&step.id),
                        "{}: {} not named for {access:?}",
                        file.display(),
                        step.id
                    );
                }
            }
        }
        // Preflight itself changes nothing: it needs no write.
        for step in plan.steps.iter().filter(|s| s.phase == Phase::Preflight) {
            for action in &step.forward {
                for (_, access) in action_needs(action, &clusters) {
                    assert!(
                        matches!(access.verb.as_str(), "get" | "list" | "watch"),
                        "{}: preflight needs {access:?}",
                        file.display()
                    );
                }
            }
        }
    }
}
