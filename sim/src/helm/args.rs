//! Helm's command line, as its cobra commands take it: flags before or after
//! the words, `--flag value` or `--flag=value`, `-n value`.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command {0:?} for \"helm\"")]
    UnknownCommand(String),
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("flag needs an argument: {0}")]
    MissingValue(String),
    #[error("\"helm {command}\" requires {expected}")]
    Arguments {
        command: String,
        expected: &'static str,
    },
    #[error("invalid argument {value:?} for \"{flag}\": {reason}")]
    BadValue {
        flag: String,
        value: String,
        reason: String,
    },
}

/// Flags every command accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Global {
    /// `--kubeconfig`; otherwise `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context`; otherwise the kubeconfig's current context.
    pub context: Option<String>,
    /// `-n` / `--namespace`; Helm's default is `default`.
    pub namespace: String,
}

/// `helm upgrade --install` (and `helm install`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeArgs {
    pub release: String,
    pub chart: String,
    /// `--install`: install when the release does not exist (`helm install` sets it).
    pub install: bool,
    /// `helm install`: refuse a release that exists.
    pub fresh: bool,
    pub create_namespace: bool,
    /// `-f` / `--values` files in order (`-` is stdin); later ones win.
    pub values_files: Vec<String>,
    /// `--set path=value`, applied after the files.
    pub sets: Vec<String>,
    pub version: Option<String>,
    pub wait: bool,
    pub timeout: Duration,
}

/// Output formats of `list`, `get values` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Upgrade(UpgradeArgs),
    Rollback {
        release: String,
        revision: Option<u32>,
        wait: bool,
        timeout: Duration,
    },
    Uninstall {
        release: String,
        wait: bool,
    },
    List {
        output: Output,
    },
    GetValues {
        release: String,
        output: Output,
        all: bool,
    },
    Status {
        release: String,
        output: Output,
    },
    Version {
        short: bool,
    },
    Help,
}

/// (long name, shorthand, takes a value).
const FLAGS: &[(&str, Option<char>, bool)] = &[
    ("kubeconfig", None, true),
    ("kube-context", None, true),
    ("namespace", Some('n'), true),
    ("values", Some('f'), true),
    ("set", None, true),
    ("set-string", None, true),
    ("repo", None, true),
    ("version", None, true),
    ("output", Some('o'), true),
    ("timeout", None, true),
    ("install", Some('i'), false),
    ("create-namespace", None, false),
    ("wait", None, false),
    ("all", Some('a'), false),
    ("short", None, false),
    ("help", Some('h'), false),
];

pub const USAGE: &str = "\
The Kubernetes package manager (meshsim stand-in for Helm 3, with Istio's charts base, istiod, gateway).

Usage:
  helm [command]

Available Commands:
  upgrade    upgrade a release (--install: install it if absent)
  install    install a chart
  rollback   roll back a release to a previous revision
  uninstall  uninstall a release
  list       list releases
  get values download the values file for a named release
  status     display the status of the named release
  version    print the client version information

Flags:
      --kubeconfig string     path to the kubeconfig file
      --kube-context string   name of the kubeconfig context to use
  -n, --namespace string      namespace scope for this request
";

/// Parses argv (without the program name).
pub fn parse(args: &[String]) -> Result<(Global, Command), ParseError> {
    let mut words = Vec::new();
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let tok = &args[i];
        i += 1;
        let (spec, inline) = if let Some(long) = tok.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = FLAGS
                .iter()
                .find(|f| f.0 == name)
                .ok_or_else(|| ParseError::UnknownFlag(format!("--{name}")))?;
            (spec, inline)
        } else if tok.len() > 1 && tok.starts_with('-') && tok != "-" {
            let short = tok[1..].chars().next().unwrap_or_default();
            let rest = &tok[1 + short.len_utf8()..];
            let spec = FLAGS
                .iter()
                .find(|f| f.1 == Some(short))
                .ok_or_else(|| ParseError::UnknownFlag(format!("-{short}")))?;
            let inline = match rest.strip_prefix('=') {
                Some(v) => Some(v.to_string()),
                None if rest.is_empty() => None,
                None => Some(rest.to_string()),
            };
            (spec, inline)
        } else {
            words.push(tok.clone());
            continue;
        };
        let value = match (spec.2, inline) {
            (_, Some(v)) => v,
            (true, None) => {
                let v = args
                    .get(i)
                    .ok_or_else(|| ParseError::MissingValue(format!("--{}", spec.0)))?;
                i += 1;
                v.clone()
            }
            (false, None) => "true".into(),
        };
        flags.push((spec.0, value));
    }
    let mut global = Global {
        namespace: "default".into(),
        ..Default::default()
    };
    let flag = |name: &str| {
        flags
            .iter()
            .rev()
            .find(|f| f.0 == name)
            .map(|f| f.1.clone())
    };
    let all_of = |names: &[&str]| -> Vec<String> {
        flags
            .iter()
            .filter(|f| names.contains(&f.0))
            .map(|f| f.1.clone())
            .collect()
    };
    let on = |name: &str| flag(name).is_some_and(|v| v == "true");
    global.kubeconfig = flag("kubeconfig").map(PathBuf::from);
    global.context = flag("kube-context");
    if let Some(ns) = flag("namespace") {
        global.namespace = ns;
    }
    if on("help") || words.is_empty() {
        return Ok((global, Command::Help));
    }
    let output = match flag("output").as_deref() {
        None | Some("table") => Output::Table,
        Some("json") => Output::Json,
        Some("yaml") => Output::Yaml,
        Some(other) => {
            return Err(ParseError::BadValue {
                flag: "--output".into(),
                value: other.into(),
                reason: "expected table, json or yaml".into(),
            });
        }
    };
    let timeout = match flag("timeout") {
        None => Duration::from_secs(300),
        Some(t) => parse_duration(&t).ok_or_else(|| ParseError::BadValue {
            flag: "--timeout".into(),
            value: t.clone(),
            reason: "expected a duration such as 5m0s".into(),
        })?,
    };
    let command = words[0].as_str();
    let rest = &words[1..];
    let need = |n: usize, expected: &'static str| -> Result<(), ParseError> {
        if rest.len() == n {
            Ok(())
        } else {
            Err(ParseError::Arguments {
                command: command.to_string(),
                expected,
            })
        }
    };
    let command = match command {
        "upgrade" | "install" => {
            need(2, "exactly 2 arguments: RELEASE CHART")?;
            Command::Upgrade(UpgradeArgs {
                release: rest[0].clone(),
                chart: rest[1].clone(),
                install: command == "install" || on("install"),
                fresh: command == "install",
                create_namespace: on("create-namespace"),
                values_files: all_of(&["values"]),
                sets: all_of(&["set", "set-string"]),
                version: flag("version"),
                wait: on("wait"),
                timeout,
            })
        }
        "rollback" => {
            if rest.is_empty() || rest.len() > 2 {
                return Err(ParseError::Arguments {
                    command: "rollback".into(),
                    expected: "1 or 2 arguments: RELEASE [REVISION]",
                });
            }
            let revision = match rest.get(1) {
                None => None,
                Some(r) => Some(r.parse().map_err(|_| ParseError::BadValue {
                    flag: "REVISION".into(),
                    value: r.clone(),
                    reason: "expected a revision number".into(),
                })?),
            };
            Command::Rollback {
                release: rest[0].clone(),
                revision,
                wait: on("wait"),
                timeout,
            }
        }
        "uninstall" | "delete" | "un" | "del" => {
            need(1, "exactly 1 argument: RELEASE")?;
            Command::Uninstall {
                release: rest[0].clone(),
                wait: on("wait"),
            }
        }
        "list" | "ls" => Command::List { output },
        "get" => {
            if rest.first().map(String::as_str) != Some("values") || rest.len() != 2 {
                return Err(ParseError::Arguments {
                    command: "get".into(),
                    expected: "\"values RELEASE\" (the only get the stand-in knows)",
                });
            }
            Command::GetValues {
                release: rest[1].clone(),
                output,
                all: on("all"),
            }
        }
        "status" => {
            need(1, "exactly 1 argument: RELEASE")?;
            Command::Status {
                release: rest[0].clone(),
                output,
            }
        }
        "version" => Command::Version { short: on("short") },
        "help" => Command::Help,
        other => return Err(ParseError::UnknownCommand(other.to_string())),
    };
    Ok((global, command))
}

/// Go-style durations: `300s`, `5m`, `5m0s`, `1h`.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        total += number
            * match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<(Global, Command), ParseError> {
        parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn upgrade_install_as_the_docs_write_it() {
        let (g, c) = p("upgrade --install istiod istio/istiod -n istio-system --kube-context c1 \
                        -f a.yaml --values=b.yaml --set revision=1-26-4 --version 1.26.4 --wait --timeout 5m0s")
        .unwrap();
        assert_eq!(g.namespace, "istio-system");
        assert_eq!(g.context.as_deref(), Some("c1"));
        let Command::Upgrade(a) = c else {
            panic!("{c:?}")
        };
        assert!(a.install && !a.fresh && a.wait);
        assert_eq!(a.values_files, vec!["a.yaml", "b.yaml"]);
        assert_eq!(a.sets, vec!["revision=1-26-4"]);
        assert_eq!(a.version.as_deref(), Some("1.26.4"));
        assert_eq!(a.timeout, Duration::from_secs(300));
    }

    #[test]
    fn the_other_commands_and_mistakes() {
        assert_eq!(
            p("rollback istiod 1 -n istio-system").unwrap().1,
            Command::Rollback {
                release: "istiod".into(),
                revision: Some(1),
                wait: false,
                timeout: Duration::from_secs(300)
            }
        );
        assert_eq!(
            p("get values istiod -o json --all").unwrap().1,
            Command::GetValues {
                release: "istiod".into(),
                output: Output::Json,
                all: true
            }
        );
        assert_eq!(
            p("ls -o json").unwrap().1,
            Command::List {
                output: Output::Json
            }
        );
        assert_eq!(p("").unwrap().1, Command::Help);
        assert_eq!(
            p("upgrade istiod").unwrap_err().to_string(),
            "\"helm upgrade\" requires exactly 2 arguments: RELEASE CHART"
        );
        assert!(matches!(
            p("frob").unwrap_err(),
            ParseError::UnknownCommand(_)
        ));
        assert!(matches!(
            p("list --bogus").unwrap_err(),
            ParseError::UnknownFlag(_)
        ));
        assert!(matches!(
            p("rollback istiod one").unwrap_err(),
            ParseError::BadValue { .. }
        ));
        assert!(matches!(
            p("list -o xml").unwrap_err(),
            ParseError::BadValue { .. }
        ));
    }
}
