//! A bounded, parallel walk of a DAG: a node starts only when every node it
//! needs has succeeded; at most `parallelism` nodes run at once, and at most
//! `per_cluster` of them touch any one cluster. After a failure or a stop
//! request nothing new starts, and the nodes in flight are allowed to finish.
//!
//! It knows nothing of steps or clusters beyond names: the engine passes the
//! work to do for node `i` as a closure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinSet;

/// One task of the walk: a node of the DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// Ids of nodes that must succeed first. Ids not in the walk are taken as
    /// already satisfied (done in an earlier run).
    pub needs: Vec<String>,
    /// Clusters the node touches, for the per-cluster limit.
    pub clusters: Vec<String>,
}

/// How many tasks run at once, in all and against one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub parallelism: usize,
    pub per_cluster: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            parallelism: 8,
            per_cluster: 4,
        }
    }
}

/// Ask a running walk to stop starting nodes (Ctrl-C). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Asks the walk to stop starting tasks.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// A stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How the walk ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkResult<E> {
    /// Nodes that succeeded, in completion order.
    pub succeeded: Vec<String>,
    /// Nodes that failed, with their error.
    pub failed: Vec<(String, E)>,
    /// Nodes never started (blocked by a failure, or a stop).
    pub not_started: Vec<String>,
    /// The walk ended because of a stop request.
    pub stopped: bool,
}

impl<E> WalkResult<E> {
    /// Every task succeeded and nothing stopped the walk.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty() && !self.stopped
    }
}

/// Walks `nodes` (in their given order for ties: pass them in plan order),
/// calling `work(index)` for each. `work` must not panic; a panicking task
/// is reported as a failure with `on_panic`'s error.
pub async fn walk<E, F, Fut>(
    nodes: &[Task],
    limits: Limits,
    stop: &StopFlag,
    work: F,
    on_panic: impl Fn(&str) -> E,
) -> WalkResult<E>
where
    E: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let parallelism = limits.parallelism.max(1);
    let per_cluster = limits.per_cluster.max(1);
    let ids: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    // Needs restricted to nodes of this walk; the rest are satisfied.
    let needs: Vec<Vec<usize>> = {
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        nodes
            .iter()
            .map(|n| {
                n.needs
                    .iter()
                    .filter(|d| ids.contains(d.as_str()))
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect()
    };
    let mut state = vec![State::Waiting; nodes.len()];
    let mut busy: BTreeMap<&str, usize> = BTreeMap::new();
    let mut running = JoinSet::new();
    let mut task_node: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut outcome = WalkResult {
        succeeded: Vec::new(),
        failed: Vec::new(),
        not_started: Vec::new(),
        stopped: false,
    };
    let mut halted = false;

    loop {
        if stop.is_stopped() && !halted {
            halted = true;
            outcome.stopped = true;
        }
        if !halted {
            for i in 0..nodes.len() {
                if running.len() >= parallelism {
                    break;
                }
                if state[i] != State::Waiting
                    || !needs[i].iter().all(|&d| state[d] == State::Succeeded)
                {
                    continue;
                }
                let clusters = &nodes[i].clusters;
                if clusters
                    .iter()
                    .any(|c| busy.get(c.as_str()).copied().unwrap_or(0) >= per_cluster)
                {
                    continue;
                }
                for c in clusters {
                    *busy.entry(c.as_str()).or_default() += 1;
                }
                state[i] = State::Running;
                let handle = running.spawn(work(i));
                task_node.insert(handle.id(), i);
            }
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, result) = match joined {
            Ok((id, result)) => (task_node.remove(&id), result),
            Err(join_err) => {
                let i = task_node.remove(&join_err.id());
                let id = i.map(|i| nodes[i].id.as_str()).unwrap_or("?");
                (i, Err(on_panic(id)))
            }
        };
        let Some(i) = i else { continue };
        for c in &nodes[i].clusters {
            if let Some(n) = busy.get_mut(c.as_str()) {
                *n = n.saturating_sub(1);
            }
        }
        match result {
            Ok(()) => {
                state[i] = State::Succeeded;
                outcome.succeeded.push(nodes[i].id.clone());
            }
            Err(e) => {
                state[i] = State::Failed;
                outcome.failed.push((nodes[i].id.clone(), e));
                halted = true;
            }
        }
    }
    outcome.not_started = nodes
        .iter()
        .zip(&state)
        .filter(|(_, s)| **s == State::Waiting)
        .map(|(n, _)| n.id.clone())
        .collect();
    outcome
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Succeeded,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::Notify;

    fn node(id: &str, needs: &[&str], clusters: &[&str]) -> Task {
        Task {
            id: id.into(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            clusters: clusters.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Records start/finish events; every node yields once so others can interleave.
    async fn run(
        nodes: Vec<Task>,
        limits: Limits,
        fail: Option<&'static str>,
    ) -> (WalkResult<String>, Vec<String>, usize) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        let stop = StopFlag::default();
        let outcome = walk(
            &nodes,
            limits,
            &stop,
            |i| {
                let (log, live, peak, id) =
                    (log.clone(), live.clone(), peak.clone(), ids[i].clone());
                async move {
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    log.lock().unwrap().push(format!("start {id}"));
                    tokio::task::yield_now().await;
                    log.lock().unwrap().push(format!("end {id}"));
                    live.fetch_sub(1, Ordering::SeqCst);
                    if Some(id.as_str()) == fail {
                        Err(format!("{id} broke"))
                    } else {
                        Ok(())
                    }
                }
            },
            |id| format!("{id} panicked"),
        )
        .await;
        let log = log.lock().unwrap().clone();
        (outcome, log, peak.load(Ordering::SeqCst))
    }

    fn pos(log: &[String], what: &str) -> usize {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("{what} not in {log:?}"))
    }

    #[tokio::test]
    async fn needs_are_respected() {
        let nodes = vec![
            node("a", &[], &["c1"]),
            node("b", &[], &["c2"]),
            node("c", &["a", "b"], &["c1", "c2"]),
            node("d", &["c"], &["c1"]),
        ];
        let (outcome, log, _) = run(nodes, Limits::default(), None).await;
        assert!(outcome.is_success(), "{outcome:?}");
        assert!(pos(&log, "end a") < pos(&log, "start c"));
        assert!(pos(&log, "end b") < pos(&log, "start c"));
        assert!(pos(&log, "end c") < pos(&log, "start d"));
    }

    #[tokio::test]
    async fn independent_nodes_run_together_within_limits() {
        let nodes: Vec<Task> = (0..6)
            .map(|i| {
                node(
                    &format!("n{i}"),
                    &[],
                    &[if i % 2 == 0 { "c1" } else { "c2" }],
                )
            })
            .collect();
        let (_, _, peak) = run(
            nodes.clone(),
            Limits {
                parallelism: 8,
                per_cluster: 8,
            },
            None,
        )
        .await;
        assert!(peak >= 2, "peak {peak}");
        let (_, _, peak) = run(
            nodes.clone(),
            Limits {
                parallelism: 2,
                per_cluster: 8,
            },
            None,
        )
        .await;
        assert!(peak <= 2, "peak {peak}");
        let (_, _, peak) = run(
            nodes,
            Limits {
                parallelism: 8,
                per_cluster: 1,
            },
            None,
        )
        .await;
        assert!(peak <= 2, "one per cluster, two clusters: peak {peak}");
    }

    #[tokio::test]
    async fn a_failure_stops_new_work_and_lists_what_never_started() {
        let nodes = vec![
            node("a", &[], &["c1"]),
            node("b", &["a"], &["c1"]),
            node("x", &[], &["c2"]),
        ];
        let (outcome, _, _) = run(
            nodes,
            Limits {
                parallelism: 1,
                per_cluster: 1,
            },
            Some("a"),
        )
        .await;
        assert_eq!(
            outcome.failed,
            vec![("a".to_string(), "a broke".to_string())]
        );
        assert_eq!(outcome.not_started, vec!["b".to_string(), "x".to_string()]);
        assert!(!outcome.is_success());
    }

    #[tokio::test]
    async fn needs_outside_the_walk_count_as_done() {
        let nodes = vec![node("b", &["a"], &["c1"])];
        let (outcome, _, _) = run(nodes, Limits::default(), None).await;
        assert_eq!(outcome.succeeded, vec!["b".to_string()]);
    }

    #[tokio::test]
    async fn a_stop_lets_running_nodes_finish_and_starts_nothing_new() {
        let nodes = vec![node("a", &[], &["c1"]), node("b", &["a"], &["c1"])];
        let stop = StopFlag::default();
        let release = Arc::new(Notify::new());
        let started = Arc::new(Notify::new());
        let outcome = {
            let (stop2, release2, started2) = (stop.clone(), release.clone(), started.clone());
            let walking = walk(
                &nodes,
                Limits::default(),
                &stop,
                move |i| {
                    let (release, started) = (release2.clone(), started2.clone());
                    async move {
                        if i == 0 {
                            started.notify_one();
                            release.notified().await;
                        }
                        Ok::<(), String>(())
                    }
                },
                |id| id.to_string(),
            );
            let driver = async move {
                started.notified().await;
                stop2.stop();
                release.notify_one();
            };
            tokio::join!(walking, driver).0
        };
        assert!(outcome.stopped);
        assert_eq!(outcome.succeeded, vec!["a".to_string()]);
        assert_eq!(outcome.not_started, vec!["b".to_string()]);
    }

    #[tokio::test]
    async fn a_panicking_node_is_a_failure() {
        let nodes = vec![node("a", &[], &["c1"])];
        let outcome = walk(
            &nodes,
            Limits::default(),
            &StopFlag::default(),
            |_| async { panic!("boom") },
            |id| format!("{id} panicked"),
        )
        .await;
        let outcome: WalkResult<String> = outcome;
        assert_eq!(
            outcome.failed,
            vec![("a".to_string(), "a panicked".to_string())]
        );
    }
}
