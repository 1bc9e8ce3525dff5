//! Progress for long commands: indicatif bars on a terminal (one for the
//! run, one line per running step, logs printed above them), plain
//! timestamped lines otherwise.
//!
//! Also where the views' lines go: stdout and stderr as usual; stderr as
//! JSON log records with `--log-format json` (nothing but JSON there, no
//! bars); stdout's lines to stderr too when stdout carries `-o json` events.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static JSON_STDERR: AtomicBool = AtomicBool::new(false);
static EVENTS_ON_STDOUT: AtomicBool = AtomicBool::new(false);

/// `--log-format json`: every line for stderr becomes a JSON log record
/// (through tracing, target [`OUTPUT_TARGET`]), and no bar is drawn. Set
/// before anything is shown.
pub fn set_json_stderr() {
    JSON_STDERR.store(true, Ordering::Relaxed);
}

/// Whether stderr takes JSON only.
pub fn json_stderr() -> bool {
    JSON_STDERR.load(Ordering::Relaxed)
}

/// `-o json`: stdout carries events only; the lines views would print
/// there go to stderr.
pub fn stdout_for_events() {
    EVENTS_ON_STDOUT.store(true, Ordering::Relaxed);
}

/// The tracing target of the command's own lines when stderr is JSON.
pub const OUTPUT_TARGET: &str = "migrate::output";

/// One line for stderr (`say!`): as is, or as a JSON log record whose
/// level follows the line's `error:` or `warning:` prefix. Never panics: after
/// SIGHUP the terminal may be gone, and running steps must still finish.
pub fn err_line(args: fmt::Arguments<'_>) {
    if !json_stderr() {
        let _ = writeln!(std::io::stderr(), "{args}");
        return;
    }
    let line = args.to_string();
    for line in line.lines().filter(|l| !l.trim().is_empty()) {
        let trimmed = line.trim_start();
        if trimmed.starts_with("error:") || trimmed.starts_with("FAILED") {
            tracing::error!(target: OUTPUT_TARGET, "{line}");
        } else if trimmed.starts_with("warning:") {
            tracing::warn!(target: OUTPUT_TARGET, "{line}");
        } else {
            tracing::info!(target: OUTPUT_TARGET, "{line}");
        }
    }
}

/// One line for stdout (`tell!`), or for stderr when stdout carries events.
pub fn out_line(args: fmt::Arguments<'_>) {
    if EVENTS_ON_STDOUT.load(Ordering::Relaxed) {
        err_line(args);
    } else {
        let _ = writeln!(std::io::stdout(), "{args}");
    }
}

/// The one MultiProgress of the process; logs are written through it so a
/// log line never tears a bar.
pub fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        if interactive() {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    })
}

/// Bars only when stderr is a terminal and the user did not ask for plain output (or JSON).
pub fn interactive() -> bool {
    !json_stderr()
        && std::io::stderr().is_terminal()
        && std::env::var_os("MIGRATE_PLAIN").is_none()
        && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
}

/// Progress of one run (apply or rollback).
pub struct Progress {
    bars: bool,
    overall: ProgressBar,
    steps: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    /// `total` steps in all, `done` of them already finished (a resumed run).
    pub fn new(title: &str, total: usize, done: usize) -> Progress {
        let bars = interactive();
        let overall = if bars {
            let bar = multi().add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} steps {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(title.to_string());
            bar.set_position(done as u64);
            bar
        } else {
            plain(&format!("{title}: {total} steps, {done} already done"));
            ProgressBar::hidden()
        };
        Progress {
            bars,
            overall,
            steps: Mutex::new(HashMap::new()),
        }
    }

    /// A step began: a spinner line, or a `start` line.
    pub fn step_started(&self, step: &str, description: &str) {
        if self.bars {
            let bar = multi().insert_after(&self.overall, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix} {wide_msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(step.to_string());
            bar.set_message(description.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut steps) = self.steps.lock() {
                steps.insert(step.to_string(), bar);
            }
        } else {
            plain(&format!("start  {step}: {description}"));
        }
    }

    /// What a running step is doing now (one action).
    pub fn step_action(&self, step: &str, action: &str) {
        if self.bars {
            if let Some(bar) = self.steps.lock().ok().and_then(|s| s.get(step).cloned()) {
                bar.set_message(action.to_string());
            }
        } else {
            plain(&format!("       {step}: {action}"));
        }
    }

    /// An attempt of a step failed and will be retried.
    pub fn step_retrying(&self, step: &str, attempt: u32, error: &str) {
        let line = format!("retry  {step}: attempt {attempt} failed: {error}");
        if self.bars {
            multi().suspend(|| say!("{line}"));
        } else {
            plain(&line);
        }
    }

    /// A step ended, well or not, after `elapsed`.
    pub fn step_finished(&self, step: &str, ok: bool, elapsed: Duration) {
        let bar = self.steps.lock().ok().and_then(|mut s| s.remove(step));
        let verdict = if ok { "done  " } else { "FAILED" };
        let line = format!("{verdict} {step} ({:.1}s)", elapsed.as_secs_f64());
        if let Some(bar) = bar {
            bar.finish_and_clear();
            multi().remove(&bar);
            multi().suspend(|| say!("{line}"));
        } else if !self.bars {
            plain(&line);
        }
        if ok {
            self.overall.inc(1);
        }
    }

    /// Clears every bar; the terminal is left clean for the summary.
    pub fn finish(&self) {
        if let Ok(mut steps) = self.steps.lock() {
            for (_, bar) in steps.drain() {
                bar.finish_and_clear();
            }
        }
        self.overall.finish_and_clear();
        if self.bars {
            multi().remove(&self.overall);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn plain(line: &str) {
    if json_stderr() {
        // The record carries its own timestamp.
        return say!("{line}");
    }
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    say!("{stamp} {line}");
}
