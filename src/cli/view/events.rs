//! `apply -o json` and `rollback -o json`: the run as events for programs,
//! one JSON object per line on stdout (every other output of the command
//! goes to stderr then, see [`super::progress`]).
//!
//! Every event has `type`, `time` (RFC 3339, UTC) and `run` (the run's
//! number, null until the engine has one), then the fields of its type. The
//! schema is stable: fields and event types may be added, none is renamed or
//! removed without a new [`SCHEMA`]; README lists them. Error texts are
//! redacted as everywhere else. The last event of a command is always one
//! `run_finished` (unless the process is killed).

use super::hints::Hints;
use crate::check::{Finding, Severity};
use crate::cli::results::{Applied, completed};
use crate::engine::{EngineError, GateRecord, ProbeReport, RunStart, RunSummary};
use crate::plan::Phase;
use crate::state::{Outcome, RunKind, redact_text};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The version of the event schema, in `run_started`.
pub const SCHEMA: u32 = 1;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Turns the event stream on for this process (`-o json`): stdout carries
/// events only from now on. `dry_run` is told in `run_started`.
pub fn enable(dry_run: bool) -> &'static Sink {
    super::progress::stdout_for_events();
    SINK.get_or_init(|| Sink {
        started: Instant::now(),
        dry_run,
        state: Mutex::new(State::default()),
    })
}

/// The event stream, when `-o json` turned it on.
pub fn sink() -> Option<&'static Sink> {
    SINK.get()
}

/// Where the stream stands: the current run, each step's phase, each
/// phase's first start and last end, the errors of failing steps.
#[derive(Default)]
struct State {
    run: Option<u64>,
    phases: HashMap<String, Phase>,
    spans: BTreeMap<Phase, (Instant, Instant)>,
    errors: HashMap<String, String>,
    finished: bool,
}

/// The event stream of one command.
pub struct Sink {
    started: Instant,
    dry_run: bool,
    state: Mutex<State>,
}

/// One finding of a phase's gate, as the `gate` event carries it.
#[derive(Debug, Clone, Serialize)]
pub struct GateFinding<'a> {
    /// The check's stable code (`MC601`).
    pub code: &'a str,
    /// `error` (fails the gate), `warning` or `info`.
    pub severity: Severity,
    /// The cluster it concerns (`-` for none).
    pub cluster: &'a str,
    /// The object it concerns (`Kind namespace/name`, `-` for the cluster as a whole).
    pub object: &'a str,
    /// What is wrong (redacted, as in the journal).
    pub message: &'a str,
    /// What to do about it.
    pub fix: &'a str,
}

impl<'a> From<&'a Finding> for GateFinding<'a> {
    fn from(f: &'a Finding) -> Self {
        GateFinding {
            code: &f.code,
            severity: f.severity,
            cluster: &f.cluster,
            object: &f.object,
            message: &f.message,
            fix: &f.fix,
        }
    }
}

/// How a command ended, as `run_finished` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every step done (apply) or undone (rollback), or nothing was left to do.
    Succeeded,
    /// A step failed.
    Failed,
    /// Stopped by a signal; running steps finished and were checkpointed.
    Interrupted,
    /// `apply --until` stopped after its phase, as asked.
    Paused,
    /// Nothing ran: the input or the state directory's runs do not allow it.
    Refused,
    /// The command failed before or around the run (a cluster unreachable, the state unreadable).
    Error,
}

impl Sink {
    /// Writes one event: `type`, `time`, `run`, then `fields`' members.
    fn emit(&self, kind: &str, fields: Value) {
        let run = self.state.lock().ok().and_then(|s| s.run);
        let line = event_line(kind, run, fields);
        // One locked write per line, so concurrent steps never interleave.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// The engine began a walk of a run.
    pub fn run_started(&self, start: &RunStart<'_>) {
        self.with_state(|s| {
            s.run = Some(start.run.0);
            for step in &start.plan.steps {
                s.phases.insert(step.id.clone(), step.phase);
            }
        });
        let (kind, to) = match start.kind {
            RunKind::Apply => ("apply", None),
            RunKind::Rollback { to_phase } => ("rollback", Some(to_phase.as_str())),
        };
        self.emit(
            "run_started",
            json!({
                "schema": SCHEMA,
                "migrate_version": env!("CARGO_PKG_VERSION"),
                "kind": kind,
                "to": to,
                "spec": start.plan.header.name,
                "fingerprint": start.plan.fingerprint,
                "dry_run": self.dry_run,
                "steps_total": start.total,
                "steps_done": start.done,
                "steps": start.steps,
            }),
        );
    }

    /// A step began.
    pub fn step_started(&self, step: &str, description: &str) {
        let phase = self.with_state(|s| {
            let phase = s.phases.get(step).copied();
            if let Some(p) = phase {
                let now = Instant::now();
                s.spans.entry(p).or_insert((now, now));
            }
            phase
        });
        self.emit(
            "step_started",
            json!({"step": step, "phase": phase_name(phase.flatten()), "description": description}),
        );
    }

    /// An attempt failed and is tried again.
    pub fn step_retrying(&self, step: &str, attempt: u32, error: &str) {
        self.emit(
            "step_retrying",
            json!({"step": step, "attempt": attempt, "error": redact_text(error)}),
        );
    }

    /// A warning that does not fail the step.
    pub fn warning(&self, step: &str, message: &str) {
        self.emit(
            "warning",
            json!({"step": step, "message": redact_text(message)}),
        );
    }

    /// A step failed: remembered for its `step_failed` event.
    pub fn step_failed(&self, step: &str, error: &str) {
        self.with_state(|s| s.errors.insert(step.to_string(), redact_text(error)));
    }

    /// A step ended: `step_finished`, or `step_failed` with its error.
    pub fn step_finished(&self, step: &str, ok: bool, elapsed: Duration) {
        let (phase, error) = self
            .with_state(|s| {
                let phase = s.phases.get(step).copied();
                if let Some(span) = phase.and_then(|p| s.spans.get_mut(&p)) {
                    span.1 = span.1.max(Instant::now());
                }
                (phase, s.errors.remove(step))
            })
            .unwrap_or_default();
        let mut fields = json!({
            "step": step,
            "phase": phase_name(phase),
            "duration_ms": millis(elapsed),
        });
        if ok {
            self.emit("step_finished", fields);
        } else {
            fields["error"] = Value::from(error.unwrap_or_else(|| "failed".into()));
            self.emit("step_failed", fields);
        }
    }

    /// A probe's answers, per cluster and per version.
    pub fn probe(&self, r: &ProbeReport) {
        let answers: Vec<Value> = r
            .versions
            .iter()
            .map(|(cluster, version, count)| {
                json!({"cluster": cluster, "version": version, "count": count})
            })
            .collect();
        let by_cluster: Vec<Value> = r
            .answers
            .iter()
            .map(|(cluster, count)| json!({"cluster": cluster, "count": count}))
            .collect();
        let errors: Vec<Value> = r
            .errors
            .iter()
            .map(|(message, count)| json!({"message": redact_text(message), "count": count}))
            .collect();
        self.emit(
            "probe",
            json!({
                "step": r.step,
                "from": r.from,
                "requests": r.requests,
                "passed": r.passed,
                "answers": answers,
                "by_cluster": by_cluster,
                "errors": errors,
                "verdict": (!r.passed).then(|| redact_text(&r.verdict)),
            }),
        );
    }

    /// A phase's gate ran (step `step`): passed or not, with every finding,
    /// errors first.
    pub fn gate(&self, step: &str, record: &GateRecord) {
        let findings: Vec<GateFinding<'_>> =
            record.findings.iter().map(GateFinding::from).collect();
        self.emit(
            "gate",
            json!({
                "step": step,
                "phase": record.phase,
                "groups": record.groups,
                "passed": record.passed(),
                "errors": record.errors,
                "warnings": record.warnings,
                "findings": findings,
            }),
        );
    }

    /// How `apply` ended.
    pub fn apply_finished(&self, applied: &Applied, hints: &Hints) {
        let (summary, dry_run) = match applied {
            Applied::Refused(e) => return self.refused(e, hints),
            Applied::Ran { summary, dry_run } => (summary, *dry_run),
        };
        if let Some(paused) = &summary.paused {
            // A dry run changed nothing: there is nothing to go on with.
            let next = match dry_run {
                true => Vec::new(),
                false => hints
                    .after_pause(paused.next)
                    .map(|l| command_of(&l))
                    .to_vec(),
            };
            let extra =
                json!({"paused_after": paused.after.name(), "next_phase": paused.next.name()});
            return self.finished(Ending::Paused, summary, next, extra);
        }
        let ending = match (summary.outcome, summary.stopped) {
            (Outcome::Succeeded, _) => Ending::Succeeded,
            (_, true) => Ending::Interrupted,
            _ if summary.failed.is_empty() => Ending::Interrupted,
            _ => Ending::Failed,
        };
        let next = match ending {
            Ending::Succeeded => Vec::new(),
            _ if dry_run => Vec::new(),
            _ => after_failed_apply(hints),
        };
        let extra = json!({"nothing_to_do": summary.already_done});
        self.finished(ending, summary, next, extra);
    }

    /// How `rollback --to TO` ended (`to_arg` as given).
    pub fn rollback_finished(&self, summary: &RunSummary, to_arg: &str, hints: &Hints) {
        let ending = if completed(summary) {
            Ending::Succeeded
        } else if summary.outcome == Outcome::Interrupted || summary.stopped {
            Ending::Interrupted
        } else {
            Ending::Failed
        };
        let next = match ending {
            Ending::Succeeded => Vec::new(),
            _ => vec![hints.continue_rollback(to_arg)],
        };
        let extra = json!({"overwritten": summary.overwritten});
        self.finished(ending, summary, next, extra);
    }

    /// The engine refused to run (an unfinished run, a changed spec, a
    /// context reaching another cluster, objects changed since).
    pub fn refused(&self, e: &EngineError, hints: &Hints) {
        let next = match e {
            EngineError::EarlierRunHolds { latest, .. } => hints
                .after_refused_start(*latest)
                .iter()
                .map(|l| command_of(l))
                .collect(),
            _ => Vec::new(),
        };
        let message = super::hints::with_hint(e.to_string(), super::hints::for_engine(e, hints));
        self.ended_without_run(Ending::Refused, &message, next);
    }

    /// The command ends without a `run_finished` so far (an error, invalid
    /// input): says so, once, with the exit code's meaning.
    pub fn ended(&self, invalid_input: bool, error: Option<&anyhow::Error>) {
        if self.with_state(|s| s.finished).unwrap_or(true) {
            return;
        }
        let message = error.map_or_else(
            || "see the messages on stderr".to_string(),
            |e| format!("{e:#}"),
        );
        let ending = if invalid_input {
            Ending::Refused
        } else {
            Ending::Error
        };
        self.ended_without_run(ending, &message, Vec::new());
    }

    fn ended_without_run(&self, ending: Ending, message: &str, next: Vec<String>) {
        self.with_state(|s| s.finished = true);
        self.emit(
            "run_finished",
            json!({
                "outcome": ending,
                "duration_ms": millis(self.started.elapsed()),
                "error": redact_text(message),
                "next": next,
            }),
        );
    }

    fn finished(&self, ending: Ending, summary: &RunSummary, next: Vec<String>, extra: Value) {
        let phases: Map<String, Value> = self
            .with_state(|s| {
                s.finished = true;
                s.run = Some(summary.run.0);
                s.spans
                    .iter()
                    .map(|(p, (from, to))| (p.name().to_string(), Value::from(millis(*to - *from))))
                    .collect()
            })
            .unwrap_or_default();
        let failed: Vec<Value> = summary
            .failed
            .iter()
            .map(|(step, error)| json!({"step": step, "error": redact_text(error)}))
            .collect();
        let mut fields = json!({
            "outcome": ending,
            "duration_ms": millis(self.started.elapsed()),
            "phases_ms": phases,
            "succeeded": summary.succeeded.len(),
            "failed": failed,
            "not_started": summary.not_started.len(),
            "next": next,
        });
        if let (Value::Object(fields), Value::Object(extra)) = (&mut fields, extra) {
            fields.extend(extra);
        }
        self.emit("run_finished", fields);
    }
}

/// `{"type", "time", "run", ...fields}` as one line.
fn event_line(kind: &str, run: Option<u64>, fields: Value) -> String {
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut event = Map::new();
    event.insert("type".into(), Value::from(kind));
    event.insert("time".into(), Value::from(time));
    event.insert("run".into(), run.map_or(Value::Null, Value::from));
    if let Value::Object(fields) = fields {
        event.extend(fields);
    }
    Value::Object(event).to_string()
}

fn phase_name(phase: Option<Phase>) -> Option<&'static str> {
    phase.map(Phase::name)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn after_failed_apply(hints: &Hints) -> Vec<String> {
    hints
        .after_failed_apply()
        .iter()
        .map(|l| command_of(l))
        .collect()
}

/// The command of a hint line (`resume with:   migrate apply ...   (or ...)`).
fn command_of(line: &str) -> String {
    let from = line.find("migrate").unwrap_or(0);
    let command = &line[from..];
    command
        .split_once("   (")
        .map_or(command, |(c, _)| c)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_starts_with_type_time_and_run() {
        let line = event_line("step_started", Some(3), json!({"step": "trust/cluster1"}));
        let v: Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["type", "time", "run", "step"]);
        assert_eq!(v["run"], 3);
        let time = v["time"].as_str().unwrap();
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).unwrap();
        let none = event_line("run_finished", None, json!({}));
        assert!(none.contains("\"run\":null"), "{none}");
    }

    #[test]
    fn hint_lines_give_their_command() {
        assert_eq!(
            command_of("resume with:   migrate apply -f s.yaml --resume"),
            "migrate apply -f s.yaml --resume"
        );
        assert_eq!(
            command_of(
                "or undo with:  migrate rollback --to phase0   (or --to the last good phase)"
            ),
            "migrate rollback --to phase0"
        );
    }
}
