//! What a container runs: its `command`/`args` over its image's entrypoint, as the container
//! runtime composes them, and whether the shell model runs it or it is the image's own server.

use crate::shell::Program;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the kubelet does with one container.
#[derive(Debug, Clone)]
pub(crate) enum Process {
    /// A program the shell model runs (its output is the container's log).
    Shell(Program),
    /// The image's own long-running server (an app, the sidecar): runs until stopped, stops
    /// at once on SIGTERM, writes nothing the model knows.
    Server,
}

/// Images whose programs are the shell's (no server of their own).
fn tool_image(image: &str) -> Option<&'static str> {
    let name = image.split('@').next().unwrap_or(image);
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    match repo {
        "curlimages/curl" => Some("curl"),
        "busybox" | "alpine" | "ubuntu" | "debian" => Some("sh"),
        _ => None,
    }
}

/// Names the shell runs (or knows it cannot); anything else in args after curl's entrypoint is
/// an argument to curl.
fn is_command(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    matches!(
        base,
        "sh" | "ash"
            | "bash"
            | "curl"
            | "sleep"
            | "echo"
            | "true"
            | "false"
            | "seq"
            | "hostname"
            | "wget"
            | "nslookup"
            | "cat"
            | "env"
            | "ls"
            | "grep"
    )
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

/// The prompt of an interactive `sh` in the container, as busybox ash shows it (`\w \$ `):
/// curlimages/curl runs as `curl_user` in its home, the other tool images as root in `/`.
pub(crate) fn prompt(container: &Value) -> &'static str {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match tool_image(image) {
        Some("curl") => "~ $ ",
        _ => "/ # ",
    }
}

/// The container's literal environment (`env` entries with a `value`).
pub(crate) fn literal_env(container: &Value) -> BTreeMap<String, String> {
    container
        .get("env")
        .and_then(Value::as_array)
        .map(|es| {
            es.iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The container's process.
pub(crate) fn process(container: &Value) -> Process {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let command = strings(container.get("command")).filter(|c| !c.is_empty());
    let args = strings(container.get("args")).unwrap_or_default();
    let env = literal_env(container);
    let tool = tool_image(image);
    let argv = match (command, tool) {
        (Some(mut c), _) => {
            c.extend(args);
            c
        }
        // curlimages/curl's entrypoint: `curl "$@"` unless the first argument is a command.
        (None, Some("curl")) => {
            if args
                .first()
                .is_some_and(|a| !a.starts_with('-') && is_command(a))
            {
                args
            } else {
                std::iter::once("curl".to_string()).chain(args).collect()
            }
        }
        (None, Some(default)) if args.is_empty() => vec![default.to_string()],
        (None, Some(_)) => args,
        (None, None) => return Process::Server,
    };
    // An app image given a command of its own (nginx -g ...) runs its server.
    if tool.is_none() && !argv.first().is_some_and(|a| is_command(a)) {
        return Process::Server;
    }
    Process::Shell(Program::new(argv, env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(c: Value) -> Option<Vec<String>> {
        match process(&c) {
            Process::Shell(p) => Some(p.argv().to_vec()),
            Process::Server => None,
        }
    }

    #[test]
    fn kubectl_run_shapes() {
        // kubectl run client --image=curlimages/curl -- curl -s URL
        assert_eq!(
            argv(json!({"image": "curlimages/curl", "args": ["curl", "-s", "h:5000/hello"]}))
                .unwrap(),
            ["curl", "-s", "h:5000/hello"]
        );
        // ... -- -sk https://x  (entrypoint prepends curl)
        assert_eq!(
            argv(json!({"image": "curlimages/curl:8.16.0", "args": ["-sk", "https://x"]})).unwrap(),
            ["curl", "-sk", "https://x"]
        );
        assert_eq!(argv(json!({"image": "curlimages/curl"})).unwrap(), ["curl"]);
        assert_eq!(argv(json!({"image": "busybox"})).unwrap(), ["sh"]);
        assert_eq!(
            argv(json!({"image": "busybox", "command": ["sh", "-c"], "args": ["sleep 1"]}))
                .unwrap(),
            ["sh", "-c", "sleep 1"]
        );
        assert!(argv(json!({"image": "docker.io/istio/examples-helloworld-v1"})).is_none());
        assert!(
            argv(json!({"image": "nginx", "command": ["nginx", "-g", "daemon off;"]})).is_none()
        );
    }
}
