//! The timeline of a run as data: one row per step, each attempt a bar
//! (forward or rollback) with its outcome, the critical path, and the time
//! spent per phase. Built from the plan's steps and the journal's step
//! status events; no drawing here.

use crate::plan::{Phase, Step};
use crate::state::{Event, EventKind, RunInfo, StepStatus};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Which way an attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `apply`: the step's forward actions.
    Forward,
    /// `rollback`: the step's rollback actions.
    Rollback,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Done (forward) or rolled back (rollback).
    Done,
    /// Failed, with the error the journal recorded (already scrubbed).
    Failed(String),
    /// Cut short: the process stopped or died, or the step was reset.
    Interrupted,
    /// Still running when the journal was read.
    Running,
}

/// One attempt of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The attempt's number in the run (1 for the first).
    pub attempt: u32,
    /// Forward or rollback.
    pub direction: Direction,
    /// Seconds from the timeline's origin to the attempt's start.
    pub start: f64,
    /// Seconds from the origin to its end (the last journal entry for an
    /// interrupted or running one).
    pub end: f64,
    /// How it ended.
    pub ended: Ended,
    /// A retry: the step's attempt before it went the same way (not a
    /// forward run again after a rollback).
    pub retry: bool,
}

impl Bar {
    /// The attempt's length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// One step's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The step's id.
    pub step: String,
    /// Its phase.
    pub phase: Phase,
    /// Its clusters, joined (`cluster1`, `cluster1,cluster2`; `local`).
    pub clusters: String,
    /// Every attempt, in the order they started.
    pub bars: Vec<Bar>,
    /// On the critical path.
    pub critical: bool,
}

/// The time a phase took: from its first forward start to its last
/// forward end.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    /// The phase.
    pub phase: Phase,
    /// Seconds from the origin.
    pub start: f64,
    /// Seconds from the origin.
    pub end: f64,
}

/// A run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `run #1 (demo): succeeded`.
    pub title: String,
    /// The run's start, the origin of every offset.
    pub origin: OffsetDateTime,
    /// Seconds from the origin to the last bar's end.
    pub end: f64,
    /// Rows by phase, then clusters, then plan order.
    pub rows: Vec<Row>,
    /// Per phase that ran forward.
    pub phases: Vec<PhaseSpan>,
    /// The critical path's steps, first to last.
    pub critical: Vec<String>,
    /// The forward run's time: first forward start to last forward end.
    pub forward_seconds: f64,
    /// The rollback's time, when steps were rolled back.
    pub rollback_seconds: Option<f64>,
}

/// A bar being built: started, not yet ended.
struct Open {
    attempt: u32,
    direction: Direction,
    start: f64,
}

/// The timeline of `run` from its plan's `steps` and its journal `events`.
pub fn build(run: &RunInfo, steps: &[Step], events: &[Event]) -> Timeline {
    let origin = run.started.0;
    let at = |e: &Event| (e.at.0 - origin).as_seconds_f64().max(0.0);
    let mut bars: HashMap<&str, Vec<Bar>> = HashMap::new();
    let mut open: HashMap<&str, Open> = HashMap::new();
    // The latest journal entry per step: where an attempt cut short ends.
    let mut last_seen: HashMap<&str, f64> = HashMap::new();
    for e in events {
        let Some(step) = e.step.as_deref() else {
            continue;
        };
        let now = at(e);
        if e.kind == EventKind::StepStatus
            && let Some(to) = status_to(e)
        {
            let attempt = e
                .details
                .as_ref()
                .and_then(|d| d.get("attempt"))
                .and_then(Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(1);
            let close = |open: Open, end: f64, ended: Ended| Bar {
                attempt: open.attempt,
                direction: open.direction,
                start: open.start,
                end: end.max(open.start),
                ended,
                retry: false,
            };
            let started = match to {
                StepStatus::Running => Some(Direction::Forward),
                StepStatus::RollingBack => Some(Direction::Rollback),
                _ => None,
            };
            if let Some(direction) = started {
                // An attempt already open was cut short (a crash, a kill):
                // it ended with its last journal entry.
                if let Some(prev) = open.remove(step) {
                    let end = last_seen.get(step).copied().unwrap_or(prev.start);
                    bars.entry(step)
                        .or_default()
                        .push(close(prev, end, Ended::Interrupted));
                }
                open.insert(
                    step,
                    Open {
                        attempt,
                        direction,
                        start: now,
                    },
                );
            } else if let Some(prev) = open.remove(step) {
                let ended = match to {
                    StepStatus::Done | StepStatus::RolledBack => Ended::Done,
                    StepStatus::Failed => Ended::Failed(error_of(&e.message)),
                    _ => Ended::Interrupted,
                };
                bars.entry(step).or_default().push(close(prev, now, ended));
            }
        }
        last_seen.insert(step, now);
    }
    let running = run.outcome == crate::state::Outcome::Running;
    for (step, prev) in open {
        let end = last_seen.get(step).copied().unwrap_or(prev.start);
        let ended = if running {
            Ended::Running
        } else {
            Ended::Interrupted
        };
        bars.entry(step).or_default().push(Bar {
            attempt: prev.attempt,
            direction: prev.direction,
            start: prev.start,
            end: end.max(prev.start),
            ended,
            retry: false,
        });
    }
    for list in bars.values_mut() {
        list.sort_by(|a, b| a.start.total_cmp(&b.start));
        for i in 1..list.len() {
            list[i].retry = list[i - 1].direction == list[i].direction;
        }
    }
    let critical = critical_path(steps, &bars);
    let mut rows: Vec<(usize, Row)> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let clusters = if s.clusters.is_empty() {
                "local".to_string()
            } else {
                s.clusters.join(",")
            };
            let row = Row {
                step: s.id.clone(),
                phase: s.phase,
                clusters,
                bars: bars.remove(s.id.as_str()).unwrap_or_default(),
                critical: critical.contains(&s.id),
            };
            (i, row)
        })
        .collect();
    rows.sort_by(|(i, a), (j, b)| (a.phase, &a.clusters, i).cmp(&(b.phase, &b.clusters, j)));
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let phases = phase_spans(&rows);
    let span = |direction: Direction| {
        let mut found = rows
            .iter()
            .flat_map(|r| &r.bars)
            .filter(|b| b.direction == direction)
            .peekable();
        found.peek()?;
        let (lo, hi) = found.fold((f64::MAX, 0.0f64), |(lo, hi), b| {
            (lo.min(b.start), hi.max(b.end))
        });
        Some(hi - lo)
    };
    let end = rows
        .iter()
        .flat_map(|r| &r.bars)
        .fold(0.0f64, |hi, b| hi.max(b.end));
    Timeline {
        title: format!("run {} ({}): {}", run.id, run.spec_name, run.standing()),
        origin,
        end,
        forward_seconds: span(Direction::Forward).unwrap_or(0.0),
        rollback_seconds: span(Direction::Rollback),
        rows,
        phases,
        critical,
    }
}

/// The status a step status event moved to.
fn status_to(e: &Event) -> Option<StepStatus> {
    let to = e.details.as_ref()?.get("to")?.clone();
    serde_json::from_value(to).ok()
}

/// The error of a `step: running -> failed: ERROR` message.
fn error_of(message: &str) -> String {
    match message.split_once("-> failed: ") {
        Some((_, error)) => error.to_string(),
        None => "failed".to_string(),
    }
}

/// The chain of needs that decided when the forward run ended: from the
/// step whose last forward attempt ended last, back through the need that
/// ended last each time (the one it waited for), to a step that waited for
/// none. Steps that never ran forward are not on it.
fn critical_path(steps: &[Step], bars: &HashMap<&str, Vec<Bar>>) -> Vec<String> {
    let ended: BTreeMap<&str, f64> = steps
        .iter()
        .filter_map(|s| {
            let end = bars
                .get(s.id.as_str())?
                .iter()
                .filter(|b| b.direction == Direction::Forward)
                .map(|b| b.end)
                .reduce(f64::max)?;
            Some((s.id.as_str(), end))
        })
        .collect();
    let by_id: HashMap<&str, &Step> = steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut chain = Vec::new();
    let mut current = latest(&ended, steps.iter().map(|s| s.id.as_str()));
    while let Some(id) = current {
        chain.push(id.to_string());
        current = by_id
            .get(id)
            .and_then(|s| latest(&ended, s.needs.iter().map(String::as_str)));
    }
    chain.reverse();
    chain
}

/// Of `ids`, the one whose forward run `ended` last; ties go to the first
/// (steps come in run order).
fn latest<'a>(ended: &BTreeMap<&str, f64>, ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for id in ids {
        if let Some(&end) = ended.get(id)
            && best.is_none_or(|(_, b)| end > b)
        {
            best = Some((id, end));
        }
    }
    best.map(|(id, _)| id)
}

/// Per phase, the span of its forward attempts.
fn phase_spans(rows: &[Row]) -> Vec<PhaseSpan> {
    let mut spans: BTreeMap<Phase, (f64, f64)> = BTreeMap::new();
    for row in rows {
        for bar in row
            .bars
            .iter()
            .filter(|b| b.direction == Direction::Forward)
        {
            let span = spans.entry(row.phase).or_insert((bar.start, bar.end));
            span.0 = span.0.min(bar.start);
            span.1 = span.1.max(bar.end);
        }
    }
    spans
        .into_iter()
        .map(|(phase, (start, end))| PhaseSpan { phase, start, end })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Outcome, RunId, RunKind, Timestamp};
    use serde_json::json;
    use time::Duration;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn run(outcome: Outcome) -> RunInfo {
        RunInfo {
            id: RunId(1),
            fingerprint: "sha256:x".into(),
            spec_name: "demo".into(),
            kind: RunKind::Apply,
            started: Timestamp(t0()),
            finished: None,
            outcome,
            resumed: 0,
            last_event_seq: 0,
            paused_after: None,
        }
    }

    fn step(phase: Phase, id: &str, cluster: &str, needs: &[&str]) -> Step {
        let mut s = Step::new(phase, id, "test");
        s.needs_all(needs.iter().copied());
        if !cluster.is_empty() {
            s.clusters = vec![cluster.to_string()];
        }
        s
    }

    /// A journal built from `(second, step, from, to, attempt)`.
    fn journal(entries: &[(i64, &str, &str, &str, u32)]) -> Vec<Event> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (s, step, from, to, attempt))| Event {
                seq: i as u64 + 1,
                at: Timestamp(t0() + Duration::seconds(*s)),
                step: Some(step.to_string()),
                kind: EventKind::StepStatus,
                message: if *to == "failed" {
                    format!("{step}: {from} -> {to}: connection refused")
                } else {
                    format!("{step}: {from} -> {to}")
                },
                details: Some(json!({"from": from, "to": to, "attempt": attempt})),
            })
            .collect()
    }

    #[test]
    fn the_critical_path_follows_the_need_that_ended_last() {
        // a (0-2) -> c (5-9); b (0-5) -> c; d (1-3) alone.
        let steps = vec![
            step(Phase::Preflight, "a", "c1", &[]),
            step(Phase::Preflight, "b", "c2", &[]),
            step(Phase::Preflight, "d", "c1", &[]),
            step(Phase::Install, "c", "c1", &["a", "b"]),
        ];
        let events = journal(&[
            (0, "a", "pending", "running", 1),
            (0, "b", "pending", "running", 1),
            (1, "d", "pending", "running", 1),
            (2, "a", "running", "done", 1),
            (3, "d", "running", "done", 1),
            (5, "b", "running", "done", 1),
            (5, "c", "pending", "running", 1),
            (9, "c", "running", "done", 1),
        ]);
        let tl = build(&run(Outcome::Succeeded), &steps, &events);
        assert_eq!(tl.critical, ["b", "c"]);
        assert!(tl.rows.iter().find(|r| r.step == "b").unwrap().critical);
        assert!(!tl.rows.iter().find(|r| r.step == "a").unwrap().critical);
        assert_eq!(tl.forward_seconds, 9.0);
        assert_eq!(tl.rollback_seconds, None);
        let install = tl
            .phases
            .iter()
            .find(|p| p.phase == Phase::Install)
            .unwrap();
        assert_eq!((install.start, install.end), (5.0, 9.0));
        // Grouped by phase, then cluster: a and d (c1) before b (c2).
        let order: Vec<&str> = tl.rows.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(order, ["a", "d", "b", "c"]);
    }

    #[test]
    fn retries_failures_and_rollbacks_are_bars_of_their_own() {
        let steps = vec![step(Phase::Trust, "trust/c1", "c1", &[])];
        let events = journal(&[
            (0, "trust/c1", "pending", "running", 1),
            (2, "trust/c1", "running", "failed", 1),
            (10, "trust/c1", "failed", "running", 2),
            (13, "trust/c1", "running", "done", 2),
            (20, "trust/c1", "done", "rolling-back", 3),
            (21, "trust/c1", "rolling-back", "rolled-back", 3),
        ]);
        let tl = build(&run(Outcome::RolledBack), &steps, &events);
        let bars = &tl.rows[0].bars;
        assert_eq!(bars.len(), 3);
        assert_eq!(bars[0].ended, Ended::Failed("connection refused".into()));
        assert!(!bars[0].retry);
        assert_eq!(bars[1].ended, Ended::Done);
        assert!(bars[1].retry);
        assert_eq!((bars[1].start, bars[1].end), (10.0, 13.0));
        assert_eq!(bars[2].direction, Direction::Rollback);
        assert!(!bars[2].retry, "a rollback is no retry");
        assert_eq!(tl.rollback_seconds, Some(1.0));
        assert_eq!(tl.forward_seconds, 13.0);
        assert_eq!(tl.end, 21.0);
    }

    #[test]
    fn an_attempt_a_crash_cut_short_ends_with_its_last_entry() {
        let steps = vec![step(Phase::Install, "install/c1", "c1", &[])];
        let mut events = journal(&[
            (0, "install/c1", "pending", "running", 1),
            (30, "install/c1", "running", "running", 2),
            (35, "install/c1", "running", "done", 2),
        ]);
        // An action journalled at 4 s: the first process died after it.
        events.insert(
            1,
            Event {
                seq: 9,
                at: Timestamp(t0() + Duration::seconds(4)),
                step: Some("install/c1".into()),
                kind: EventKind::Action,
                message: "applied".into(),
                details: None,
            },
        );
        let tl = build(&run(Outcome::Succeeded), &steps, &events);
        let bars = &tl.rows[0].bars;
        assert_eq!(bars[0].ended, Ended::Interrupted);
        assert_eq!((bars[0].start, bars[0].end), (0.0, 4.0));
        assert_eq!(bars[1].ended, Ended::Done);
        // Still running when read: the bar says so.
        let open = journal(&[(0, "install/c1", "pending", "running", 1)]);
        let tl = build(&run(Outcome::Running), &steps, &open);
        assert_eq!(tl.rows[0].bars[0].ended, Ended::Running);
    }

    #[test]
    fn steps_that_never_ran_have_rows_without_bars() {
        let steps = vec![
            step(Phase::Preflight, "a", "", &[]),
            step(Phase::Install, "b", "c1", &["a"]),
        ];
        let events = journal(&[
            (0, "a", "pending", "running", 1),
            (1, "a", "running", "done", 1),
        ]);
        let tl = build(&run(Outcome::Interrupted), &steps, &events);
        assert_eq!(tl.rows.len(), 2);
        assert_eq!(tl.rows[0].clusters, "local");
        assert!(tl.rows[1].bars.is_empty());
        assert_eq!(tl.critical, ["a"]);
    }
}
