//! Output for machines and shells, with the real binary: `apply -o json` and
//! `rollback -o json` print one JSON event per line on stdout (run started
//! first, one step event per step, run finished last); `--log-format json`
//! leaves nothing but JSON on stderr; a failing run's last event names the
//! step and its error; completion scripts for bash, zsh and fish;
//! `migrate version` names the Istio releases it supports.

use crate::crash::{demo_spec, world};
use crate::sim_support::Run;
use crate::support::{migrate, repo_root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// Every stdout line as a JSON event with `type`, `time` and `run`.
fn events(run: &Run) -> Vec<Value> {
    assert!(
        !run.stdout.trim().is_empty(),
        "{}",
        run.describe("no events")
    );
    run.stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "{e}: stdout line is not JSON: {line:?}\n{}",
                    run.describe("")
                )
            });
            for field in ["type", "time", "run"] {
                assert!(event.get(field).is_some(), "{field} missing in {line}");
            }
            let time = event["time"].as_str().expect("time is a string");
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{e}: time {time:?} is not RFC 3339"));
            event
        })
        .collect()
}

/// Every stderr line parses as JSON.
fn all_json(stderr: &str) {
    assert!(!stderr.trim().is_empty(), "nothing on stderr");
    for line in stderr.lines() {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{e}: stderr line is not JSON: {line:?}\n{stderr}"));
        assert!(record.get("level").is_some(), "no level in {line}");
    }
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn steps_of(events: &[Value], kind: &str) -> Vec<String> {
    of_type(events, kind)
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

/// The demo's steps, in plan order, with their phase numbers.
fn plan_steps(env: &crate::sim_support::SimEnv, spec: &str) -> Vec<(String, u64)> {
    let run = env
        .migrate(&["plan", "--offline", "-o", "json", "-f", spec])
        .expect_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let phases = [
        "preflight",
        "install",
        "trust",
        "discovery",
        "routing",
        "observability",
        "failover",
    ];
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let phase = s["phase"].as_str().unwrap();
            let number = phases
                .iter()
                .position(|p| phase.contains(p))
                .or_else(|| phase.trim_start_matches("phase").parse().ok())
                .unwrap_or_else(|| panic!("phase {phase}")) as u64;
            (s["id"].as_str().unwrap().to_string(), number)
        })
        .collect()
}

/// The demo applied with `-o json`, then rolled back to phase3 with
/// `-o json --log-format json`: each stream starts with run_started, has one
/// step_finished per step it ran and ends with a succeeded run_finished;
/// the failover drill's answers come per cluster and version; human progress
/// stays on stderr (JSON records in the second case); no secret anywhere.
#[test]
fn apply_and_rollback_print_one_event_per_line() {
    let env = world();
    let spec = demo_spec(&env);
    let spec = spec.to_string_lossy();
    let plan = plan_steps(&env, &spec);

    let run = env
        .migrate(&["apply", "-f", &spec, "-o", "json"])
        .expect_ok();
    let applied = events(&run);
    let first = &applied[0];
    assert_eq!(first["type"], "run_started", "{first}");
    assert_eq!(first["kind"], "apply");
    assert_eq!(first["schema"], 1);
    assert!(first["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    let run_id = first["run"].as_u64().expect("run_started names the run");
    let listed: Vec<String> = serde_json::from_value(first["steps"].clone()).unwrap();
    let ids: Vec<String> = plan.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(listed, ids, "run_started lists the plan's steps");
    assert_eq!(first["steps_total"], plan.len());
    let last = applied.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last}");
    assert_eq!(last["outcome"], "succeeded", "{last}");
    assert_eq!(last["run"], run_id);
    assert_eq!(last["succeeded"], plan.len());
    assert!(last["duration_ms"].as_u64().is_some(), "{last}");
    assert!(last["phases_ms"]["trust"].as_u64().is_some(), "{last}");
    assert!(
        applied.iter().all(|e| e["run"] == run_id),
        "every event names run {run_id}"
    );
    let finished = steps_of(&applied, "step_finished");
    assert_eq!(
        finished.len(),
        plan.len(),
        "one step_finished per step: {finished:?}"
    );
    assert_eq!(
        finished.iter().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(steps_of(&applied, "step_started").len(), plan.len());
    assert!(of_type(&applied, "step_failed").is_empty());
    // One gate event per gate step, before that step's step_finished.
    let gates: Vec<(&str, &str, bool)> = of_type(&applied, "gate")
        .iter()
        .map(|g| {
            assert!(g["findings"].is_array() && g["errors"] == 0, "{g}");
            (
                g["step"].as_str().unwrap(),
                g["phase"].as_str().unwrap(),
                g["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        gates,
        [
            ("gate/trust", "trust", true),
            ("gate/discovery", "discovery", true),
            ("gate/routing", "routing", true),
        ]
    );
    for (step, _, _) in &gates {
        let at = |kind: &str| {
            applied
                .iter()
                .position(|e| e["type"] == kind && e["step"] == *step)
                .unwrap_or_else(|| panic!("no {kind} for {step}"))
        };
        assert!(at("gate") < at("step_finished"), "{step}");
    }
    // The drill: the baseline answered by v1 in cluster1, the failover by v2 in cluster2.
    let answers: Vec<(String, String)> = of_type(&applied, "probe")
        .iter()
        .flat_map(|p| p["answers"].as_array().unwrap().iter())
        .map(|a| {
            assert!(a["count"].as_u64().unwrap() > 0, "{a}");
            (
                a["cluster"].as_str().unwrap().to_string(),
                a["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        answers.contains(&("cluster1".into(), "v1".into())),
        "{answers:?}"
    );
    assert!(
        answers.contains(&("cluster2".into(), "v2".into())),
        "{answers:?}"
    );
    // People still see the progress and the verdict, on stderr.
    assert!(run.stderr.contains("start  "), "{}", run.stderr);
    assert!(run.stderr.contains("succeeded"), "{}", run.stderr);

    let back = env
        .migrate(&[
            "rollback",
            "--to",
            "phase3",
            "-o",
            "json",
            "--log-format",
            "json",
        ])
        .expect_ok();
    let undone = events(&back);
    assert_eq!(undone[0]["type"], "run_started", "{}", undone[0]);
    assert_eq!(undone[0]["kind"], "rollback");
    assert_eq!(undone[0]["to"], "phase3");
    let later: BTreeSet<&String> = plan
        .iter()
        .filter(|(_, p)| *p > 3)
        .map(|(id, _)| id)
        .collect();
    let finished = steps_of(&undone, "step_finished");
    assert_eq!(
        finished.len(),
        later.len(),
        "one step_finished per step undone: {finished:?}"
    );
    assert_eq!(finished.iter().collect::<BTreeSet<_>>(), later);
    let last = undone.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last}");
    assert_eq!(last["outcome"], "succeeded", "{last}");
    all_json(&back.stderr);
    assert!(back.stderr.contains("rolled back to"), "{}", back.stderr);
    env.assert_no_secrets_in_outputs();
}

/// A run that fails (the installer is not there): its last event says
/// failed, with the step and the error; a step_failed event came before; the
/// exit code is 1 as without `-o json`; with `--log-format json -v` stderr
/// holds JSON only.
#[test]
fn a_failing_run_ends_with_the_step_and_its_error() {
    let env = world();
    let spec = demo_spec(&env);
    let text = std::fs::read_to_string(&spec).unwrap();
    let istioctl = env.istioctl().to_string_lossy().into_owned();
    assert!(
        text.contains(&istioctl),
        "the spec names the istioctl stand-in"
    );
    let broken = env.write_spec(
        "broken.yaml",
        &text.replace(&istioctl, &env.path("no-such-istioctl").to_string_lossy()),
    );
    let broken = broken.to_string_lossy();
    let run = env.migrate(&[
        "apply",
        "-f",
        &broken,
        "-o",
        "json",
        "--log-format",
        "json",
        "-v",
    ]);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("expected a failed run")
    );
    let events = events(&run);
    assert_eq!(events[0]["type"], "run_started");
    let failed = of_type(&events, "step_failed");
    assert!(!failed.is_empty(), "{}", run.describe("no step_failed"));
    let step = failed[0]["step"].as_str().unwrap();
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("no-such-istioctl"), "{error}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last}");
    assert_eq!(last["outcome"], "failed", "{last}");
    assert_eq!(last["failed"][0]["step"], step, "{last}");
    assert!(
        last["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no-such-istioctl"),
        "{last}"
    );
    let next = last["next"][0].as_str().unwrap();
    assert!(
        next.starts_with("migrate") && next.contains("--resume"),
        "{next}"
    );
    all_json(&run.stderr);
    assert!(
        run.stderr.contains("FAILED"),
        "the human verdict is there, as records"
    );
    env.assert_no_secrets_in_outputs();
}

/// Events start only once the run can: a run that is refused still ends
/// its stream with run_finished, exit code as without `-o json`.
#[test]
fn a_refused_run_still_ends_with_run_finished() {
    let spec = repo_root().join("plans/demo.yaml");
    let state = tempdir();
    let out = migrate(&[
        "apply",
        "-f",
        &spec.to_string_lossy(),
        "--resume",
        "-o",
        "json",
        "--state-dir",
        &state.join("none").to_string_lossy(),
        "--until",
        "nowhere",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["type"], "run_finished");
    assert_eq!(lines[0]["outcome"], "refused");
    assert_eq!(lines[0]["run"], Value::Null);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("migrate-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `migrate completion SHELL` for bash, zsh and fish: a script that
/// completes the subcommands; bash's is valid bash.
#[test]
fn completion_scripts_for_three_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = migrate(&["completion", shell]);
        assert!(out.status.success(), "completion {shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["migrate", "apply", "rollback", "completion"] {
            assert!(script.contains(word), "{shell}'s script lacks {word}");
        }
        let file = tempdir().join(format!("migrate.{shell}"));
        std::fs::write(&file, &script).unwrap();
        if shell == "bash" {
            let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
            assert!(check.status.success(), "bash -n: {check:?}");
        }
    }
    let out = migrate(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is refused");
}

/// `migrate version`: its version and the Istio releases 1.24 to 1.31, as
/// text and as JSON.
#[test]
fn version_names_the_istio_range() {
    let out = migrate(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(text.contains("1.24") && text.contains("1.31"), "{text}");
    let out = migrate(&["version", "-o", "json"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["istio"]["min"], "1.24");
    assert_eq!(doc["istio"]["max"], "1.31");
}

/// `apply --until trust -o json` ends paused, naming the phase and the
/// command that goes on; the resumed run's run_started counts the steps
/// already done and its stream ends succeeded.
#[test]
fn a_paused_run_says_where_it_stopped_and_how_to_go_on() {
    let env = world();
    let spec = demo_spec(&env);
    let spec = spec.to_string_lossy();
    let run = env
        .migrate(&["apply", "-f", &spec, "--until", "trust", "-o", "json"])
        .expect_ok();
    let paused = events(&run);
    let last = paused.last().unwrap();
    assert_eq!(last["outcome"], "paused", "{last}");
    assert_eq!(last["paused_after"], "trust", "{last}");
    assert_eq!(last["next_phase"], "discovery", "{last}");
    let next = last["next"][0].as_str().unwrap();
    assert!(
        next.starts_with("migrate") && next.ends_with("--resume"),
        "{next}"
    );
    let done = steps_of(&paused, "step_finished").len();
    assert!(done > 0);

    let run = env
        .migrate(&["apply", "-f", &spec, "--resume", "-o", "json"])
        .expect_ok();
    let resumed = events(&run);
    assert_eq!(resumed[0]["type"], "run_started");
    assert_eq!(resumed[0]["steps_done"], done, "{}", resumed[0]);
    assert_eq!(resumed[0]["run"], last["run"], "the same run goes on");
    let finished = steps_of(&resumed, "step_finished").len();
    assert_eq!(resumed[0]["steps_total"], done + finished);
    assert_eq!(resumed.last().unwrap()["outcome"], "succeeded");
}
