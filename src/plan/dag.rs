//! The DAG: validation (duplicates, dangling needs, cycles), the
//! deterministic order and the critical paths.

use super::{Phase, Step};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Why steps do not form a plan: duplicates, unknown needs, cycles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("step `{id}` is defined more than once")]
    DuplicateStep { id: String },
    #[error("step `{step}` needs `{need}`, which is not a step of this plan")]
    DanglingNeed { step: String, need: String },
    #[error("steps depend on each other in a cycle: {}", steps.join(", "))]
    Cycle { steps: Vec<String> },
}

/// Checks the steps form a DAG and returns them in run order: a topological
/// order in which ties go to the earlier phase, then the smaller id. The
/// same steps in any input order give the same output.
pub fn order(steps: Vec<Step>) -> Result<Vec<Step>, PlanError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(PlanError::DuplicateStep { id: s.id.clone() });
        }
    }
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(steps.len(), steps.len() * 2);
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    for (i, s) in steps.iter().enumerate() {
        for need in &s.needs {
            let Some(&j) = index.get(need.as_str()) else {
                return Err(PlanError::DanglingNeed {
                    step: s.id.clone(),
                    need: need.clone(),
                });
            };
            graph.add_edge(nodes[j], nodes[i], ());
        }
    }
    // Kahn's algorithm; the heap hands out the ready step with the smallest (phase, id).
    let mut indegree: Vec<usize> = nodes
        .iter()
        .map(|&n| graph.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    let key = |i: usize| -> (Phase, &str, usize) { (steps[i].phase, steps[i].id.as_str(), i) };
    let mut ready: BinaryHeap<Reverse<(Phase, &str, usize)>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(key(i)))
        .collect();
    let mut out: Vec<usize> = Vec::with_capacity(steps.len());
    while let Some(Reverse((_, _, i))) = ready.pop() {
        out.push(i);
        for next in graph.neighbors_directed(nodes[i], petgraph::Outgoing) {
            let j = graph[next];
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(Reverse(key(j)));
            }
        }
    }
    if out.len() < steps.len() {
        return Err(PlanError::Cycle {
            steps: cycle_members(&graph, &steps),
        });
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    Ok(out.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// The steps of the first cycle (by smallest id), sorted.
fn cycle_members(graph: &DiGraph<usize, ()>, steps: &[Step]) -> Vec<String> {
    let mut cycles: Vec<Vec<String>> = tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
        .map(|scc| {
            let mut ids: Vec<String> = scc.iter().map(|&n| steps[graph[n]].id.clone()).collect();
            ids.sort();
            ids
        })
        .collect();
    cycles.sort();
    cycles.into_iter().next().unwrap_or_default()
}

/// The longest chain of steps in `ordered` (a topological order), each step
/// weighing `weight(step)`: the ids from first to last and the total weight.
/// Ties go to the chain met first in the order.
pub fn longest_chain(ordered: &[Step], weight: impl Fn(&Step) -> u64) -> (Vec<String>, u64) {
    let position: HashMap<&str, usize> = ordered
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut best: Vec<u64> = Vec::with_capacity(ordered.len());
    let mut previous: Vec<Option<usize>> = Vec::with_capacity(ordered.len());
    for step in ordered {
        let mut from: Option<usize> = None;
        for need in &step.needs {
            if let Some(&p) = position.get(need.as_str()) {
                let better = match from {
                    None => true,
                    Some(f) => best[p] > best[f] || (best[p] == best[f] && p < f),
                };
                if better {
                    from = Some(p);
                }
            }
        }
        best.push(from.map_or(0, |f| best[f]) + weight(step));
        previous.push(from);
    }
    let mut end: Option<usize> = None;
    for (i, total) in best.iter().enumerate() {
        if end.is_none_or(|e| *total > best[e]) {
            end = Some(i);
        }
    }
    let Some(end) = end else {
        return (Vec::new(), 0);
    };
    let mut chain = vec![end];
    while let Some(p) = previous[*chain.last().unwrap_or(&end)] {
        chain.push(p);
    }
    chain.reverse();
    (
        chain.iter().map(|&i| ordered[i].id.clone()).collect(),
        best[end],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(phase: Phase, id: &str, needs: &[&str]) -> Step {
        let mut s = Step::new(phase, id, "test");
        s.needs_all(needs.iter().copied());
        s
    }

    fn ids(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn ties_break_by_phase_then_id_and_needs_come_first() {
        let steps = vec![
            step(Phase::Trust, "trust/b", &["install/b"]),
            step(Phase::Install, "install/b", &[]),
            step(Phase::Install, "install/a", &[]),
            step(Phase::Preflight, "preflight/z", &[]),
            step(Phase::Trust, "trust/a", &["install/a"]),
        ];
        let mut reversed = steps.clone();
        reversed.reverse();
        let a = order(steps).unwrap();
        let b = order(reversed).unwrap();
        assert_eq!(
            ids(&a),
            [
                "preflight/z",
                "install/a",
                "install/b",
                "trust/a",
                "trust/b"
            ]
        );
        assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn cycles_are_named() {
        let steps = vec![
            step(Phase::Install, "a", &["c"]),
            step(Phase::Install, "b", &["a"]),
            step(Phase::Install, "c", &["b"]),
            step(Phase::Install, "d", &[]),
        ];
        let err = order(steps).unwrap_err();
        assert_eq!(
            err,
            PlanError::Cycle {
                steps: vec!["a".into(), "b".into(), "c".into()]
            }
        );
        assert!(err.to_string().contains("a, b, c"));
        let self_loop = order(vec![step(Phase::Install, "x", &["x"])]).unwrap_err();
        assert_eq!(
            self_loop,
            PlanError::Cycle {
                steps: vec!["x".into()]
            }
        );
    }

    #[test]
    fn dangling_needs_and_duplicates_are_rejected() {
        let err = order(vec![step(Phase::Install, "a", &["nope"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step `a` needs `nope`, which is not a step of this plan"
        );
        let err = order(vec![
            step(Phase::Install, "a", &[]),
            step(Phase::Trust, "a", &[]),
        ])
        .unwrap_err();
        assert_eq!(err, PlanError::DuplicateStep { id: "a".into() });
    }

    #[test]
    fn longest_chain_by_count_and_weight() {
        let steps = order(vec![
            step(Phase::Install, "a", &[]),
            step(Phase::Install, "b", &["a"]),
            step(Phase::Install, "c", &["b"]),
            step(Phase::Install, "heavy", &[]),
            step(Phase::Trust, "d", &["c", "heavy"]),
        ])
        .unwrap();
        let (chain, len) = longest_chain(&steps, |_| 1);
        assert_eq!(chain, ["a", "b", "c", "d"]);
        assert_eq!(len, 4);
        let (chain, total) = longest_chain(&steps, |s| if s.id == "heavy" { 100 } else { 1 });
        assert_eq!(chain, ["heavy", "d"]);
        assert_eq!(total, 101);
    }
}
