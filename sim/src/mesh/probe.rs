//! The probe program contract: the one kind of program the sim's kubelet runs.
//!
//! A batch/v1 Job that works unchanged on a real cluster: image `curlimages/curl`, env
//! `PROBE_URL`, `PROBE_COUNT` and optional `PROBE_TIMEOUT_SECONDS`, and [`PROBE_SCRIPT`], which
//! prints one line per response and then asks the sidecar to exit so the Job can complete.
//!
//! # The contract
//!
//! This is the one place that says what meshsim runs. The product builds its probe Job
//! itself; [`probe_job`] is the shape meshsim recognises, kept for meshsim's own tests.
//! [`recognise`] (on the Job) and [`recognise_pod`] (on its pod, after injection) accept an
//! object when, and only when:
//!
//! - the Job is `apiVersion: batch/v1`, `kind: Job`, with a `spec.template`;
//! - the pod spec has `restartPolicy: Never`;
//! - it has exactly one container besides an injected `istio-proxy` (init containers are not
//!   looked at);
//! - that container's image is `curlimages/curl` or `docker.io/curlimages/curl`, with any tag
//!   and/or digest;
//! - its `command` is `["/bin/sh", "-c", PROBE_SCRIPT]` (`sh` also accepted), the script byte
//!   for byte, and `args` is absent or empty;
//! - its env has `PROBE_URL` (non-empty) and `PROBE_COUNT` (1 to 10000), and may have
//!   `PROBE_TIMEOUT_SECONDS` (1 to 3600, default [`DEFAULT_TIMEOUT_SECS`]); these three must
//!   be literal `value`s (no `valueFrom`). Other env entries are ignored.
//!
//! Names, labels, annotations and every other field (e.g. `backoffLimit`) are free. Anything
//! else is refused with a message that says what is wrong and where, which the kubelet puts
//! in the pod's status and log.

pub use super::balance::DEFAULT_TIMEOUT_SECS;
use super::balance::{Answer, Options, answer};
use super::route::{MeshError, Request};
use super::view::{MeshView, Pod};
use serde_json::{Value, json};

/// The container's script (`/bin/sh -c`). `$(...)` captures the body or curl's error line and
/// drops trailing newlines, so every response is exactly one line (single-line bodies).
pub const PROBE_SCRIPT: &str = r#"i=0
while [ "$i" -lt "$PROBE_COUNT" ]; do
  i=$((i+1))
  out=$(curl -sS --max-time "${PROBE_TIMEOUT_SECONDS:-10}" "$PROBE_URL" 2>&1)
  printf '%s\n' "$out"
done
curl -fsS -X POST http://127.0.0.1:15020/quitquitquit >/dev/null 2>&1 || true
"#;

/// The image `probe_job` uses (the curl sample's, FACTS 5).
pub const PROBE_IMAGE: &str = "docker.io/curlimages/curl:8.16.0";
/// Container name in the probe pod.
pub const PROBE_CONTAINER: &str = "probe";
const MAX_COUNT: u32 = 10_000;
const MAX_TIMEOUT_SECS: u32 = 3_600;

/// What the kubelet runs for a recognised probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub url: String,
    pub count: u32,
    pub timeout_secs: u32,
    pub image: String,
}

/// The shape of the Job meshsim recognises (see [the contract](self#the-contract)), for
/// meshsim's own tests: the product builds its probe Job itself.
pub fn probe_job(name: &str, namespace: &str, url: &str, count: u32, timeout_secs: u32) -> Value {
    let labels = json!({
        "app.kubernetes.io/managed-by": "migrate",
        "migrate.meshops.dev/probe": "true",
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": { "sidecar.istio.io/inject": "true" },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": PROBE_CONTAINER,
                        "image": PROBE_IMAGE,
                        "command": ["/bin/sh", "-c", PROBE_SCRIPT],
                        "env": [
                            { "name": "PROBE_URL", "value": url },
                            { "name": "PROBE_COUNT", "value": count.to_string() },
                            { "name": "PROBE_TIMEOUT_SECONDS", "value": timeout_secs.to_string() },
                        ],
                    }],
                },
            },
        },
    })
}

/// Accepts a Job that keeps [the contract](self#the-contract); the error says what is wrong
/// and where, for the pod status.
pub fn recognise(job: &Value) -> Result<ProbeSpec, String> {
    if job.get("apiVersion").and_then(Value::as_str) != Some("batch/v1")
        || job.get("kind").and_then(Value::as_str) != Some("Job")
    {
        return Err("not a batch/v1 Job".into());
    }
    let template = job
        .pointer("/spec/template")
        .ok_or("spec.template is missing")?;
    recognise_pod_template(template, "spec.template")
}

/// The same check ([the contract](self#the-contract)) on a Pod (or pod template) object, as the
/// kubelet sees it after sidecar injection: the `istio-proxy` container and init containers
/// are ignored.
pub fn recognise_pod(pod: &Value) -> Result<ProbeSpec, String> {
    recognise_pod_template(pod, "pod")
}

fn recognise_pod_template(template: &Value, at: &str) -> Result<ProbeSpec, String> {
    let spec = template
        .get("spec")
        .ok_or_else(|| format!("{at}.spec is missing"))?;
    match spec.get("restartPolicy").and_then(Value::as_str) {
        Some("Never") => {}
        other => {
            return Err(format!(
                "{at}.spec.restartPolicy must be \"Never\", found {}",
                other.map_or("nothing".to_string(), |s| format!("{s:?}"))
            ));
        }
    }
    let containers: Vec<&Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{at}.spec.containers is missing"))?
        .iter()
        .filter(|c| c.get("name").and_then(Value::as_str) != Some("istio-proxy"))
        .collect();
    let [c] = containers.as_slice() else {
        return Err(format!(
            "{at}.spec.containers: a probe has exactly one container, found {}",
            containers.len()
        ));
    };
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.spec.containers[0].image is missing"))?;
    if !is_curl_image(image) {
        return Err(format!(
            "{at}.spec.containers[0].image {image:?} is not curlimages/curl; the sim runs only the probe program"
        ));
    }
    let command: Option<Vec<&str>> = c
        .get("command")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    match command.as_deref() {
        Some(["/bin/sh" | "sh", "-c", script]) if *script == PROBE_SCRIPT => {}
        Some(["/bin/sh" | "sh", "-c", _]) => {
            return Err(format!(
                "{at}.spec.containers[0].command: the script differs from the documented probe script"
            ));
        }
        _ => {
            return Err(format!(
                "{at}.spec.containers[0].command must be [\"/bin/sh\", \"-c\", <probe script>]"
            ));
        }
    }
    if c.get("args")
        .is_some_and(|a| a.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(format!("{at}.spec.containers[0].args must be empty"));
    }
    let env = |name: &str| -> Result<Option<String>, String> {
        let Some(list) = c.get("env").and_then(Value::as_array) else {
            return Ok(None);
        };
        match list
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        {
            None => Ok(None),
            Some(e) => e
                .get("value")
                .and_then(Value::as_str)
                .map(|v| Some(v.to_string()))
                .ok_or_else(|| {
                    format!("{at}.spec.containers[0].env {name} must have a literal value")
                }),
        }
    };
    let url = env("PROBE_URL")?
        .ok_or_else(|| format!("{at}.spec.containers[0].env PROBE_URL is missing"))?;
    if url.is_empty() {
        return Err(format!("{at}.spec.containers[0].env PROBE_URL is empty"));
    }
    let count = number(env("PROBE_COUNT")?, "PROBE_COUNT", at, MAX_COUNT)?
        .ok_or_else(|| format!("{at}.spec.containers[0].env PROBE_COUNT is missing"))?;
    let timeout_secs = number(
        env("PROBE_TIMEOUT_SECONDS")?,
        "PROBE_TIMEOUT_SECONDS",
        at,
        MAX_TIMEOUT_SECS,
    )?
    .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Ok(ProbeSpec {
        url,
        count,
        timeout_secs,
        image: image.to_string(),
    })
}

fn number(value: Option<String>, name: &str, at: &str, max: u32) -> Result<Option<u32>, String> {
    let Some(v) = value else { return Ok(None) };
    match v.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{at}.spec.containers[0].env {name} must be a whole number from 1 to {max}, found {v:?}"
        )),
    }
}

/// `curlimages/curl` or `docker.io/curlimages/curl`, with an optional `:tag` and/or `@digest`.
fn is_curl_image(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    matches!(repo, "curlimages/curl" | "docker.io/curlimages/curl")
}

/// What the kubelet needs from one probe run: the answers (with the clusters that served them)
/// and the container log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRun {
    pub answers: Vec<Answer>,
    pub log: String,
}

/// Runs a recognised probe from `client` (the probe's pod, as injected) in `cluster`.
/// `seed` places round robin's start; pass a per-Job value for variety, or 0.
pub fn run_probe(
    view: &MeshView,
    cluster: &str,
    client: &Pod,
    spec: &ProbeSpec,
    seed: u64,
) -> Result<ProbeRun, MeshError> {
    let req = Request {
        cluster,
        client,
        url: &spec.url,
    };
    let opts = Options {
        seed,
        timeout_secs: spec.timeout_secs,
        ..Options::default()
    };
    let answers = answer(view, &req, spec.count, &opts)?;
    let log = render_log(&answers);
    Ok(ProbeRun { answers, log })
}

/// Exactly what the script prints for these responses.
pub fn render_log(answers: &[Answer]) -> String {
    let mut log = String::new();
    for a in answers {
        log.push_str(a.output.trim_end_matches('\n'));
        log.push('\n');
    }
    log
}

/// One line of a probe log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedAnswer {
    /// From `Hello version: <v>, instance: <pod>`.
    pub version: Option<String>,
    pub instance: Option<String>,
    /// The line, when it is not a helloworld greeting (Envoy's 503 body, a curl error...).
    pub error: Option<String>,
}

/// Reads a probe log: one answer per line.
pub fn parse_log(log: &str) -> Vec<ParsedAnswer> {
    log.lines()
        .map(|line| {
            let greeting = line
                .strip_prefix("Hello version: ")
                .and_then(|rest| rest.split_once(", instance: "))
                .filter(|(v, i)| !v.is_empty() && !i.is_empty() && !i.contains(' '));
            match greeting {
                Some((v, i)) => ParsedAnswer {
                    version: Some(v.to_string()),
                    instance: Some(i.trim_end().to_string()),
                    error: None,
                },
                None if line.is_empty() => ParsedAnswer {
                    error: Some("empty response".into()),
                    ..Default::default()
                },
                None => ParsedAnswer {
                    error: Some(line.to_string()),
                    ..Default::default()
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_it_builds_is_recognised() {
        let job = probe_job(
            "probe-1",
            "sample",
            "http://helloworld.sample:5000/hello",
            20,
            5,
        );
        assert_eq!(
            job["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "migrate"
        );
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(
            job["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"],
            "true"
        );
        assert_eq!(
            recognise(&job).unwrap(),
            ProbeSpec {
                url: "http://helloworld.sample:5000/hello".into(),
                count: 20,
                timeout_secs: 5,
                image: PROBE_IMAGE.into()
            }
        );
    }

    #[test]
    fn injected_pod_is_still_recognised() {
        let job = probe_job("p", "sample", "http://x.y:1/", 3, 2);
        let mut pod = job["spec"]["template"].clone();
        pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3"}));
        assert_eq!(recognise_pod(&pod).unwrap().count, 3);
    }

    #[test]
    fn refuses_anything_else_with_a_reason() {
        let base = probe_job("p", "sample", "http://x.y:1/", 3, 2);
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/spec/template/spec/containers/0/image",
                json!("nginx:1.27"),
                "not curlimages/curl",
            ),
            (
                "/spec/template/spec/containers/0/command/2",
                json!("curl evil"),
                "script differs",
            ),
            (
                "/spec/template/spec/containers/0/env/1/value",
                json!("many"),
                "PROBE_COUNT must be a whole number",
            ),
            (
                "/spec/template/spec/containers/0/env/1/value",
                json!("0"),
                "from 1 to",
            ),
            (
                "/spec/template/spec/restartPolicy",
                json!("OnFailure"),
                "restartPolicy",
            ),
            ("/kind", json!("Deployment"), "not a batch/v1 Job"),
        ];
        for (path, value, want) in cases {
            let mut job = base.clone();
            *job.pointer_mut(path).unwrap() = value;
            let err = recognise(&job).unwrap_err();
            assert!(err.contains(want), "{path}: {err}");
        }
        let mut job = base.clone();
        job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        assert!(
            recognise(&job)
                .unwrap_err()
                .contains("PROBE_URL is missing")
        );
        let mut job = base;
        job["spec"]["template"]["spec"]["containers"][0]["env"][2] =
            json!({"name": "PROBE_TIMEOUT_SECONDS", "valueFrom": {}});
        assert!(recognise(&job).unwrap_err().contains("literal value"));
    }

    #[test]
    fn image_forms() {
        for ok in [
            "curlimages/curl",
            "curlimages/curl:8.16.0",
            "docker.io/curlimages/curl:latest",
            "curlimages/curl@sha256:abc",
        ] {
            assert!(is_curl_image(ok), "{ok}");
        }
        for bad in [
            "curl",
            "evil/curlimages/curl",
            "curlimages/curl-extra:1",
            "quay.io/curlimages/curl",
        ] {
            assert!(!is_curl_image(bad), "{bad}");
        }
    }

    #[test]
    fn timeout_defaults_when_unset() {
        let mut job = probe_job("p", "sample", "http://x.y:1/", 3, 2);
        job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert_eq!(recognise(&job).unwrap().timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    /// Runs the real script under `sh` with a stand-in `curl` on PATH: what it prints must be
    /// what `render_log` claims, and it must end by asking the sidecar to quit.
    #[test]
    fn the_script_prints_what_render_log_renders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("curl");
        std::fs::write(
            &fake,
            r#"#!/bin/sh
case "$*" in *quitquitquit*) echo "$*" > "$FAKE_DIR/quit"; exit 0;; esac
echo "$*" >> "$FAKE_DIR/args"
n=$(cat "$FAKE_DIR/n" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$FAKE_DIR/n"
case $n in
  1) printf 'Hello version: v1, instance: helloworld-v1-abc\n' ;;
  2) printf 'no healthy upstream' ;;
  *) echo 'curl: (6) Could not resolve host: helloworld.sample' >&2; exit 6 ;;
esac
"#,
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", PROBE_SCRIPT])
            .env("PATH", path)
            .env("FAKE_DIR", dir.path())
            .env("PROBE_URL", "http://helloworld.sample:5000/hello")
            .env("PROBE_COUNT", "3")
            .env("PROBE_TIMEOUT_SECONDS", "7")
            .output()
            .unwrap();
        assert!(out.status.success());
        let a = |s: &str| Answer {
            output: s.into(),
            status: None,
            served_by: None,
            attempts: vec![],
        };
        let want = render_log(&[
            a("Hello version: v1, instance: helloworld-v1-abc\n"),
            a("no healthy upstream"),
            a("curl: (6) Could not resolve host: helloworld.sample\n"),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args.lines().count(), 3);
        assert!(
            args.lines()
                .all(|l| l == "-sS --max-time 7 http://helloworld.sample:5000/hello")
        );
        let quit = std::fs::read_to_string(dir.path().join("quit")).unwrap();
        assert_eq!(
            quit.trim(),
            "-fsS -X POST http://127.0.0.1:15020/quitquitquit"
        );
    }

    #[test]
    fn log_round_trip() {
        let a = |s: &str| Answer {
            output: s.into(),
            status: None,
            served_by: None,
            attempts: vec![],
        };
        let log = render_log(&[
            a("Hello version: v1, instance: helloworld-v1-abc\n"),
            a("no healthy upstream"),
            a("curl: (6) Could not resolve host: helloworld.sample\n"),
        ]);
        assert_eq!(
            log,
            "Hello version: v1, instance: helloworld-v1-abc\nno healthy upstream\ncurl: (6) Could not resolve host: helloworld.sample\n"
        );
        let parsed = parse_log(&log);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].version.as_deref(), Some("v1"));
        assert_eq!(parsed[0].instance.as_deref(), Some("helloworld-v1-abc"));
        assert_eq!(parsed[1].error.as_deref(), Some("no healthy upstream"));
        assert!(parsed[2].error.as_deref().unwrap().starts_with("curl: (6)"));
    }
}
