//! istioctl's command line, parsed the way cobra does: flags before or after
//! the command, `--flag value`, `--flag=value`, `-f value`, `-f=value`,
//! booleans as `--flag` or `--flag=false`.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command {0:?} for \"istioctl\"")]
    UnknownCommand(String),
    #[error("unknown flag: --{0}")]
    UnknownFlag(String),
    #[error("unknown shorthand flag: '{0}' in -{0}")]
    UnknownShorthand(String),
    #[error("flag needs an argument: --{0}")]
    MissingValue(String),
    #[error("invalid argument {value:?} for \"--{flag}\" flag: {reason}")]
    BadValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("istioctl {0} does not take arguments")]
    UnexpectedArgument(String),
    #[error(
        "at least one of the --revision (or --set revision=<revision>), --filename or --purge flags must be set"
    )]
    NothingToUninstall,
}

/// Flags every command accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `--kubeconfig` / `-c`; otherwise `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`; otherwise the kubeconfig's current context.
    pub context: Option<String>,
    /// `--istioNamespace` / `-i`.
    pub istio_namespace: String,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            kubeconfig: None,
            context: None,
            istio_namespace: crate::istio::install::ISTIO_NAMESPACE.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallArgs {
    /// `-f` files in order (`-` is stdin); later ones overlay earlier ones.
    pub files: Vec<String>,
    /// `--set path=value`, relative to the IstioOperator's `spec`.
    pub sets: Vec<String>,
    pub skip_confirmation: bool,
    pub readiness_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallArgs {
    pub file: Option<String>,
    pub purge: bool,
    pub revision: Option<String>,
    pub skip_confirmation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionArgs {
    pub remote: bool,
    pub short: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Install(InstallArgs),
    Uninstall(UninstallArgs),
    Version(VersionArgs),
    RemoteClusters,
    Help,
}

pub const USAGE: &str = "\
Istio configuration command line utility (meshsim stand-in for istioctl 1.30.3).

Usage:
  istioctl [command]

Available Commands:
  install          Applies an Istio manifest, installing or reconfiguring Istio on a cluster.
  uninstall        Uninstall Istio from a cluster
  version          Prints out build version information
  remote-clusters  Lists the remote clusters each istiod instance is connected to.

Flags:
  -c, --kubeconfig string       Kubernetes configuration file
      --context string          Kubernetes configuration context
  -i, --istioNamespace string   Istio system namespace (default \"istio-system\")
  -h, --help                    help for istioctl

install flags:     -f/--filename (repeatable, - for stdin), -s/--set path=value, -y/--skip-confirmation,
                   --readiness-timeout duration (default 5m0s)
uninstall flags:   -f/--filename, --purge, -r/--revision, -y/--skip-confirmation
version flags:     --remote (default true), --short (default true)
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Bool,
}

/// (long name, shorthand, kind, commands that accept it; empty: all).
const FLAGS: &[(&str, Option<char>, Kind, &[&str])] = &[
    ("kubeconfig", Some('c'), Kind::Value, &[]),
    ("context", None, Kind::Value, &[]),
    ("istioNamespace", Some('i'), Kind::Value, &[]),
    ("help", Some('h'), Kind::Bool, &[]),
    (
        "filename",
        Some('f'),
        Kind::Value,
        &["install", "uninstall"],
    ),
    ("set", Some('s'), Kind::Value, &["install"]),
    (
        "skip-confirmation",
        Some('y'),
        Kind::Bool,
        &["install", "uninstall"],
    ),
    ("readiness-timeout", None, Kind::Value, &["install"]),
    ("purge", None, Kind::Bool, &["uninstall"]),
    ("revision", Some('r'), Kind::Value, &["uninstall"]),
    ("remote", None, Kind::Bool, &["version"]),
    ("short", None, Kind::Bool, &["version"]),
];

const COMMANDS: &[&str] = &["install", "uninstall", "version", "remote-clusters", "help"];

struct Flag {
    name: &'static str,
    value: String,
}

/// Parses argv (without the program name).
pub fn parse(args: &[String]) -> Result<(Global, Command), ParseError> {
    // The command is the first word that is neither a flag nor a flag's value.
    let mut positional = Vec::new();
    let mut raw = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let tok = &args[i];
        i += 1;
        if tok == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        let (spec, inline) = if let Some(long) = tok.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = FLAGS
                .iter()
                .find(|f| f.0 == name)
                .ok_or_else(|| ParseError::UnknownFlag(name.to_string()))?;
            (spec, inline)
        } else if tok.len() > 1 && tok.starts_with('-') && tok != "-" {
            let mut chars = tok[1..].chars();
            let short = chars.next().unwrap_or_default();
            let rest: String = chars.collect();
            let spec = FLAGS
                .iter()
                .find(|f| f.1 == Some(short))
                .ok_or_else(|| ParseError::UnknownShorthand(short.to_string()))?;
            let inline = match rest.strip_prefix('=') {
                Some(v) => Some(v.to_string()),
                None if rest.is_empty() => None,
                None => Some(rest),
            };
            (spec, inline)
        } else {
            positional.push(tok.clone());
            continue;
        };
        let value = match (spec.2, inline) {
            (Kind::Value, Some(v)) => v,
            (Kind::Value, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => return Err(ParseError::MissingValue(spec.0.to_string())),
            },
            (Kind::Bool, Some(v)) => v,
            (Kind::Bool, None) => "true".into(),
        };
        raw.push((
            spec,
            Flag {
                name: spec.0,
                value,
            },
        ));
    }

    let command = match positional.first() {
        // As cobra's root command: no command prints the usage.
        None => return Ok((Global::default(), Command::Help)),
        Some(c) if COMMANDS.contains(&c.as_str()) => c.clone(),
        Some(c) => return Err(ParseError::UnknownCommand(c.clone())),
    };
    if positional.len() > 1 {
        if command == "help" {
            return Ok((Global::default(), Command::Help));
        }
        return Err(ParseError::UnexpectedArgument(command));
    }
    let mut global = Global::default();
    let mut flags = Vec::new();
    for (spec, flag) in raw {
        if !spec.3.is_empty() && !spec.3.contains(&command.as_str()) {
            return Err(ParseError::UnknownFlag(flag.name.to_string()));
        }
        match flag.name {
            "kubeconfig" => global.kubeconfig = Some(PathBuf::from(flag.value)),
            "context" => global.context = Some(flag.value),
            "istioNamespace" => global.istio_namespace = flag.value,
            _ => flags.push(flag),
        }
    }
    if command == "help" || flags.iter().any(|f| f.name == "help" && f.value == "true") {
        return Ok((global, Command::Help));
    }
    let bool_of = |flag: &Flag| -> Result<bool, ParseError> {
        match flag.value.as_str() {
            "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
            "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
            v => Err(ParseError::BadValue {
                flag: flag.name.into(),
                value: v.into(),
                reason: "strconv.ParseBool: parsing: invalid syntax".into(),
            }),
        }
    };
    let command = match command.as_str() {
        "install" => {
            let mut a = InstallArgs {
                files: Vec::new(),
                sets: Vec::new(),
                skip_confirmation: false,
                readiness_timeout: Duration::from_secs(300),
            };
            for f in &flags {
                match f.name {
                    "filename" => a.files.push(f.value.clone()),
                    "set" => a.sets.push(f.value.clone()),
                    "skip-confirmation" => a.skip_confirmation = bool_of(f)?,
                    "readiness-timeout" => {
                        a.readiness_timeout =
                            parse_duration(&f.value).ok_or_else(|| ParseError::BadValue {
                                flag: f.name.into(),
                                value: f.value.clone(),
                                reason: "expected a duration such as 300s or 5m".into(),
                            })?
                    }
                    _ => {}
                }
            }
            Command::Install(a)
        }
        "uninstall" => {
            let mut a = UninstallArgs {
                file: None,
                purge: false,
                revision: None,
                skip_confirmation: false,
            };
            for f in &flags {
                match f.name {
                    "filename" => a.file = Some(f.value.clone()),
                    "purge" => a.purge = bool_of(f)?,
                    "revision" => a.revision = Some(f.value.clone()),
                    "skip-confirmation" => a.skip_confirmation = bool_of(f)?,
                    _ => {}
                }
            }
            if a.file.is_none() && a.revision.is_none() && !a.purge {
                return Err(ParseError::NothingToUninstall);
            }
            Command::Uninstall(a)
        }
        "version" => {
            let mut a = VersionArgs {
                remote: true,
                short: true,
            };
            for f in &flags {
                match f.name {
                    "remote" => a.remote = bool_of(f)?,
                    "short" => a.short = bool_of(f)?,
                    _ => {}
                }
            }
            Command::Version(a)
        }
        _ => Command::RemoteClusters,
    };
    Ok((global, command))
}

/// Go-style durations as istioctl takes them: `300s`, `5m`, `1m30s`, `1h`.
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
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * factor;
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
    fn the_invocations_migrate_makes() {
        let (g, c) =
            p("install -y -f /tmp/x/istio.yaml --context sim-cluster1 --kubeconfig /k").unwrap();
        assert_eq!(g.context.as_deref(), Some("sim-cluster1"));
        assert_eq!(g.kubeconfig, Some(PathBuf::from("/k")));
        let Command::Install(a) = c else {
            panic!("{c:?}")
        };
        assert_eq!(a.files, vec!["/tmp/x/istio.yaml"]);
        assert!(a.skip_confirmation);
        let (_, c) = p("uninstall -y -f f.yaml --context=c1").unwrap();
        assert!(matches!(
            c,
            Command::Uninstall(UninstallArgs {
                file: Some(_),
                purge: false,
                ..
            })
        ));
    }

    #[test]
    fn flags_anywhere_and_inline_values() {
        let (g, c) = p("--context=a -c=/k version --remote=false --short").unwrap();
        assert_eq!(g.context.as_deref(), Some("a"));
        assert_eq!(g.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(
            c,
            Command::Version(VersionArgs {
                remote: false,
                short: true
            })
        );
        let (_, c) = p(
            "install -f- --set values.global.network=n1 -s profile=demo --readiness-timeout 1m30s",
        )
        .unwrap();
        let Command::Install(a) = c else { panic!() };
        assert_eq!(a.files, vec!["-"]);
        assert_eq!(a.sets, vec!["values.global.network=n1", "profile=demo"]);
        assert_eq!(a.readiness_timeout, Duration::from_secs(90));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            p("install --bogus").unwrap_err(),
            ParseError::UnknownFlag("bogus".into())
        );
        assert_eq!(
            p("install -q").unwrap_err(),
            ParseError::UnknownShorthand("q".into())
        );
        assert_eq!(
            p("frobnicate").unwrap_err(),
            ParseError::UnknownCommand("frobnicate".into())
        );
        assert_eq!(
            p("install -f").unwrap_err(),
            ParseError::MissingValue("filename".into())
        );
        assert_eq!(
            p("version --purge").unwrap_err(),
            ParseError::UnknownFlag("purge".into())
        );
        assert_eq!(
            p("uninstall -y").unwrap_err(),
            ParseError::NothingToUninstall
        );
        assert_eq!(
            p("install extra").unwrap_err(),
            ParseError::UnexpectedArgument("install".into())
        );
        assert!(matches!(
            p("version --remote=maybe").unwrap_err(),
            ParseError::BadValue { .. }
        ));
        assert!(matches!(
            p("install --readiness-timeout soon").unwrap_err(),
            ParseError::BadValue { .. }
        ));
        assert_eq!(p("").unwrap().1, Command::Help);
        assert_eq!(p("--help").unwrap().1, Command::Help);
    }
}
