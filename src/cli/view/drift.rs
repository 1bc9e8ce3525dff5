//! Drift, worded: what a rollback would do with each object `migrate`
//! changed, and which of them someone changed since (`engine::drift`).

use crate::engine::DriftReport;
use crate::engine::drift::{
    Checked, Class, DriftChange, FieldChange, ObjectDrift, StepDrift, Undo,
};
use crate::state::{redact_object, redact_text};
use serde_json::Value;
use std::fmt::Write as _;

/// Said once in every report: what istioctl changes is checked only where rollback restores it.
const INSTALLER_NOTE: &str = "installer-managed objects are checked for drift only where rollback restores them from snapshots";

/// Longest value shown in a table cell; longer ones end in `...`.
const MAX_VALUE: usize = 72;

/// `rollback --to` refused: one table per drifted object, then how to overwrite.
pub fn refused(report: &DriftReport, force_command: &str) {
    let count = report.drifted().count();
    let mut text = format!(
        "rollback refused: {count} object(s) changed since migrate left them; nothing was changed and the run stays as it was\n"
    );
    for (step, object) in report.drifted() {
        text.push('\n');
        drifted_table(&mut text, step, object);
    }
    let _ = writeln!(text, "\n{INSTALLER_NOTE}");
    let _ = writeln!(
        text,
        "\nto undo anyway, overwriting these changes: {force_command}"
    );
    say!("{}", text.trim_end());
}

/// `rollback --dry-run`: every object each step's undo would touch, classified.
pub fn dry_run(report: &DriftReport) {
    tell!("{}", dry_run_text(report).trim_end());
}

fn dry_run_text(report: &DriftReport) -> String {
    let mut text = String::new();
    let to = report
        .to
        .map(|p| p.to_string())
        .unwrap_or_else(|| "phase0".into());
    let _ = writeln!(text, "objects a rollback to {to} would change:");
    if report.steps.iter().all(|s| s.objects.is_empty()) {
        let _ = writeln!(text, "  (no recorded object)");
    }
    for step in &report.steps {
        step_rows(&mut text, step);
    }
    let drifted = report.drifted().count();
    if drifted > 0 {
        let _ = writeln!(
            text,
            "{drifted} object(s) DRIFTED: the rollback refuses them unless run with --force"
        );
    } else {
        let _ = writeln!(text, "no drift: the rollback would run as listed");
    }
    let _ = writeln!(text, "{INSTALLER_NOTE}");
    text
}

/// `migrate plan` with a state directory: the drift of the run's objects.
pub fn plan_section(report: &DriftReport) -> String {
    let mut text = String::from("\nDrift of the objects the recorded run changed:\n");
    let drifted: Vec<_> = report.drifted().collect();
    if drifted.is_empty() {
        let _ = writeln!(text, "  none: every object is as migrate left it");
    }
    for (step, object) in drifted {
        drifted_table(&mut text, step, object);
    }
    let _ = writeln!(text, "  {INSTALLER_NOTE}");
    text
}

/// `plan_section` on stderr, beside a plan printed for a program.
pub fn plan_note(report: &DriftReport) {
    say!("{}", plan_section(report).trim());
}

/// Drift could not be checked (a cluster unreachable, the state locked).
pub fn not_checked(why: &str) {
    say!("note: drift not checked: {why}");
}

fn step_rows(text: &mut String, step: &StepDrift) {
    let how = match step.checked {
        Checked::Yes => "",
        Checked::NotFinished => " (did not finish: not checked, its snapshots are put back)",
        Checked::NotRecorded => " (not recorded: drift not checked)",
    };
    let how = match (how, step.objects.is_empty(), step.installer) {
        ("", true, true) => {
            " (runs the installer: no object it changes is restored from a snapshot)"
        }
        ("", true, false) => " (no object recorded)",
        _ => how,
    };
    let _ = writeln!(text, "  {} (run {}){how}", step.step, step.run);
    for object in &step.objects {
        let (label, note) = match &object.class {
            Class::Restore => ("restore".to_string(), String::new()),
            Class::Delete => ("delete".to_string(), String::new()),
            Class::Unchanged => ("unchanged".to_string(), String::new()),
            Class::AfterNewer(undo) => {
                (undo_word(*undo).to_string(), " (after a newer step)".into())
            }
            Class::Drifted { undo, .. } => (
                "DRIFTED".to_string(),
                format!(" (would {})", undo_word(*undo)),
            ),
        };
        let _ = writeln!(text, "    {label:<10} {}{note}", object.key);
        if let Class::Drifted { change, .. } = &object.class {
            change_rows(text, change, "        ");
        }
    }
}

fn drifted_table(text: &mut String, step: &StepDrift, object: &ObjectDrift) {
    let Class::Drifted { undo, change } = &object.class else {
        return;
    };
    let _ = writeln!(
        text,
        "DRIFTED {} (step {}, rollback would {})",
        object.key,
        step.step,
        undo_word(*undo)
    );
    change_rows(text, change, "  ");
}

fn change_rows(text: &mut String, change: &DriftChange, indent: &str) {
    match change {
        DriftChange::Fields(fields) => {
            let width = fields
                .iter()
                .map(|f| f.path.len())
                .chain(["FIELD".len()])
                .max()
                .unwrap_or(5);
            let _ = writeln!(
                text,
                "{indent}{:<width$}  {:<30}  NOW",
                "FIELD", "LEFT BY MIGRATE"
            );
            for FieldChange { path, left, now } in fields {
                let _ = writeln!(
                    text,
                    "{indent}{path:<width$}  {:<30}  {}",
                    shown(path, left.as_ref()),
                    shown(path, now.as_ref())
                );
            }
        }
        DriftChange::SecretContent { left, now } => {
            let keys = if left == now {
                format!("keys {}", left.join(", "))
            } else {
                format!("keys {} -> {}", left.join(", "), now.join(", "))
            };
            let _ = writeln!(text, "{indent}content changed ({keys}; values not shown)");
        }
        DriftChange::Recreated => {
            let _ = writeln!(text, "{indent}migrate deleted it; it exists again");
        }
        DriftChange::Deleted => {
            let _ = writeln!(text, "{indent}migrate left it; it was deleted since");
        }
    }
}

fn undo_word(undo: Undo) -> &'static str {
    match undo {
        Undo::Restore => "restore",
        Undo::Delete => "delete",
    }
}

/// The value of field `path` in one line: `(absent)`, or compact JSON,
/// redacted, cut at [`MAX_VALUE`]. A ConfigMap may hold credentials (a
/// Prometheus `basic_auth` password, a bearer token): the value is redacted
/// under its own key name (`...password`), then as text.
fn shown(path: &str, value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(absent)".into();
    };
    let name = path.rsplit('.').next().unwrap_or(path);
    let keyed = redact_object(&serde_json::json!({ name: value }));
    let value = keyed.get(name).unwrap_or(value);
    let text = redact_text(&value.to_string());
    if text.chars().count() <= MAX_VALUE {
        return text;
    }
    let cut: String = text.chars().take(MAX_VALUE).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::drift::{Checked, DriftReport};
    use crate::state::{RunId, SnapshotKey};
    use serde_json::json;

    fn report(fields: Vec<FieldChange>) -> DriftReport {
        DriftReport {
            to: None,
            steps: vec![StepDrift {
                run: RunId(1),
                step: "observability/cluster1".into(),
                checked: Checked::Yes,
                installer: false,
                objects: vec![ObjectDrift {
                    key: SnapshotKey::new(
                        "cluster1",
                        "v1",
                        "ConfigMap",
                        Some("monitoring"),
                        "prometheus",
                    ),
                    class: Class::Drifted {
                        undo: Undo::Restore,
                        change: DriftChange::Fields(fields),
                    },
                }],
            }],
        }
    }

    #[test]
    fn credentials_in_a_configmap_are_redacted_in_both_columns() {
        let fields = vec![
            // A scrape job added by hand, with basic auth.
            FieldChange {
                path: "data.prometheus.yml.scrape_configs".into(),
                left: Some(json!([{"job_name": "a"}])),
                now: Some(
                    json!([{"job_name": "a", "basic_auth": {"username": "u", "password": "hunter2"}}]),
                ),
            },
            // A password changed in place: the value alone, named by its path.
            FieldChange {
                path: "data.prometheus.yml.remote_write.basic_auth.password".into(),
                left: Some(json!("s3cret-left")),
                now: Some(json!("s3cret-now")),
            },
            FieldChange {
                path: "data.prometheus.yml.remote_write.bearer_token".into(),
                left: None,
                now: Some(json!("tok-abcdef")),
            },
            FieldChange {
                path: "data.notes".into(),
                left: None,
                now: Some(json!("Authorization: Bearer tok-ghijkl")),
            },
        ];
        let drift = report(fields);
        let mut table = String::new();
        let (step, object) = drift.drifted().next().unwrap();
        drifted_table(&mut table, step, object);
        for text in [table, dry_run_text(&drift), plan_section(&drift)] {
            for secret in [
                "hunter2",
                "s3cret-left",
                "s3cret-now",
                "tok-abcdef",
                "tok-ghijkl",
            ] {
                assert!(!text.contains(secret), "{secret} shown:\n{text}");
            }
            assert!(text.contains("job_name"), "the rest is shown:\n{text}");
            assert!(
                text.contains("basic_auth.password"),
                "the field is named:\n{text}"
            );
        }
    }
}
