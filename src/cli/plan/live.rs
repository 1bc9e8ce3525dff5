//! The live part of `migrate plan`: reach the spec's clusters, dry-run
//! every applied object, and attach the result to the chosen output.

use crate::cli::{GlobalArgs, PlanFormat, session};
use crate::cluster::{ClusterTarget, connect};
use crate::engine::{ObjectDiff, live_diff, render_live_diff};
use crate::plan::{Phase, Plan};
use crate::spec::Loaded;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a cluster may take to answer before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The live diff against every reachable cluster, or None (with a note on
/// stderr) when none can be reached.
pub fn diff(
    global: &GlobalArgs,
    loaded: &Loaded,
    plan: &Plan,
    phase: Option<Phase>,
) -> Option<Vec<ObjectDiff>> {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "note: no live diff (cannot start an async runtime: {e}); this plan comes from the spec alone"
            );
            return None;
        }
    };
    runtime.block_on(async {
        let default = session::default_kubeconfig(global);
        let mut reachable = BTreeMap::new();
        let mut unreachable = Vec::new();
        for c in &loaded.spec.spec.clusters {
            let target = ClusterTarget {
                name: c.name.clone(),
                context: c.context.clone(),
                kubeconfig: c.kubeconfig.clone(),
            };
            let cluster = match connect(&target, default.as_deref()).await {
                Ok(cluster) => cluster,
                Err(e) => {
                    unreachable.push(format!("{}: {e}", c.name));
                    continue;
                }
            };
            match tokio::time::timeout(REACH_TIMEOUT, cluster.server_version()).await {
                Ok(Ok(_)) => {
                    reachable.insert(c.name.clone(), Arc::new(cluster));
                }
                Ok(Err(e)) => unreachable.push(format!("{}: {e}", c.name)),
                Err(_) => unreachable.push(format!(
                    "{}: no answer within {}s",
                    c.name,
                    REACH_TIMEOUT.as_secs()
                )),
            }
        }
        for why in &unreachable {
            eprintln!("note: cluster unreachable, no live diff for it: {}", crate::state::redact_text(why));
        }
        if reachable.is_empty() {
            eprintln!(
                "note: no cluster reachable: this plan comes from the spec alone (`--offline` skips the attempt)"
            );
            return None;
        }
        Some(live_diff(plan, phase, &reachable).await)
    })
}

/// `text` (the plan in `format`) with the diff added: a section for text,
/// a `liveDiff` member for JSON and YAML; the graph formats stay pure and
/// the diff goes to stderr.
pub fn attach(text: String, format: PlanFormat, diff: &[ObjectDiff]) -> anyhow::Result<String> {
    const TITLE: &str = "live diff (server-side dry run against the clusters as they are now)";
    Ok(match format {
        PlanFormat::Text => format!("{text}\n{TITLE}:\n{}", render_live_diff(diff)),
        PlanFormat::Json => {
            let mut doc: serde_json::Value = serde_json::from_str(&text)?;
            doc["liveDiff"] = serde_json::to_value(diff)?;
            let mut out = serde_json::to_string_pretty(&doc)?;
            out.push('\n');
            out
        }
        PlanFormat::Yaml => {
            let mut doc: serde_json::Value = serde_yaml::from_str(&text)?;
            doc["liveDiff"] = serde_json::to_value(diff)?;
            serde_yaml::to_string(&doc)?
        }
        PlanFormat::Dot | PlanFormat::Mermaid => {
            eprint!("{TITLE}:\n{}", render_live_diff(diff));
            text
        }
    })
}
