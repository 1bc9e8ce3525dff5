//! The interpreter: expands words, runs builtins and `curl`, loops with real (tokio) time.

use super::curl::{self, CurlError};
use super::lex::{Part, Word};
use super::parse::{Cmd, Redirect, Target, parse};
use super::{EXIT_NOT_FOUND, EXIT_UNMODELLED, Host, HttpReply, Output, Stream, quote_argv};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Programs that exist in the images runbooks use but that the model does not run.
const KNOWN_UNMODELLED: &[&str] = &[
    "wget",
    "nslookup",
    "dig",
    "host",
    "nc",
    "ping",
    "grep",
    "awk",
    "sed",
    "cat",
    "ls",
    "head",
    "tail",
    "wc",
    "cut",
    "sort",
    "tr",
    "date",
    "env",
    "printenv",
    "openssl",
    "ip",
    "ss",
    "netstat",
    "pilot-agent",
    "bash",
    "python",
    "python3",
];

/// How a command ended: normally, or by `exit` (which ends the whole script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Status(i32),
    Exit(i32),
}

impl Flow {
    fn code(self) -> i32 {
        match self {
            Flow::Status(c) | Flow::Exit(c) => c,
        }
    }
}

/// Runs a container argv: `sh -c SCRIPT`, or one command.
pub(crate) async fn run_argv(
    argv: &[String],
    env: &BTreeMap<String, String>,
    host: &dyn Host,
    out: &mut dyn Output,
) -> i32 {
    let mut shell = Shell {
        host,
        vars: env.clone(),
        last: 0,
        requests: 0,
    };
    shell.vars.insert("HOSTNAME".into(), host.hostname());
    shell.exec_argv(argv, out, true).await.code()
}

/// A shell reading its commands one line at a time (stdin): variables and `$?` carry over
/// from line to line, `exit [N]` ends it.
pub(crate) struct Session<'h> {
    shell: Shell<'h>,
}

impl<'h> Session<'h> {
    pub(crate) fn new(env: &BTreeMap<String, String>, host: &'h dyn Host) -> Self {
        let mut shell = Shell {
            host,
            vars: env.clone(),
            last: 0,
            requests: 0,
        };
        shell.vars.insert("HOSTNAME".into(), host.hostname());
        Session { shell }
    }

    /// Runs one line; `Some(code)` when it ran `exit`.
    pub(crate) async fn line(&mut self, line: &str, out: &mut dyn Output) -> Option<i32> {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        let flow = match parse(text) {
            Ok(cmd) => self.shell.exec(&cmd, out).await,
            Err(why) => self.shell.unmodelled(text, &why, out),
        };
        self.shell.last = flow.code();
        match flow {
            Flow::Exit(code) => Some(code),
            Flow::Status(_) => None,
        }
    }

    /// `$?`: what the shell exits with at the end of its input.
    pub(crate) fn last(&self) -> i32 {
        self.shell.last
    }
}

/// Whether the program never ends on its own.
pub(crate) fn long_running(argv: &[String]) -> bool {
    fn cmd(c: &Cmd) -> bool {
        match c {
            Cmd::While { cond, .. } => is_true(cond),
            Cmd::Seq(cs) => cs.iter().any(cmd),
            Cmd::And(a, b) | Cmd::Or(a, b) => cmd(a) || cmd(b),
            Cmd::For { body, .. } => cmd(body),
            Cmd::Simple { words, .. } => {
                let lits: Vec<String> = words.iter().filter_map(Word::literal).collect();
                argv_long(&lits)
            }
        }
    }
    fn argv_long(argv: &[String]) -> bool {
        match argv.first().map(|a| base(a)) {
            Some("sleep") => argv.get(1).is_some_and(|a| a == "infinity"),
            Some("sh") => match argv.get(1).map(String::as_str) {
                Some("-c") => argv
                    .get(2)
                    .and_then(|s| parse(s).ok())
                    .is_some_and(|c| cmd(&c)),
                _ => false,
            },
            _ => false,
        }
    }
    argv_long(argv)
}

fn is_true(c: &Cmd) -> bool {
    matches!(c, Cmd::Simple { words, .. } if words.len() == 1
        && matches!(words[0].literal().as_deref(), Some("true" | ":")))
}

fn base(cmd: &str) -> &str {
    cmd.rsplit('/').next().unwrap_or(cmd)
}

/// An output that applies a command's redirections.
struct Redirected<'a> {
    inner: &'a mut dyn Output,
    /// Where fd 1 and fd 2 go: `None` discards.
    stdout: Option<Stream>,
    stderr: Option<Stream>,
}

impl Output for Redirected<'_> {
    fn write(&mut self, stream: Stream, text: &str) {
        let to = match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if let Some(s) = to {
            self.inner.write(s, text);
        }
    }
}

struct Shell<'h> {
    host: &'h dyn Host,
    vars: BTreeMap<String, String>,
    /// `$?`.
    last: i32,
    /// Requests made so far (a seed for the model's balancing).
    requests: u64,
}

type Fut<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

impl<'h> Shell<'h> {
    fn unmodelled(&self, what: &str, why: &str, out: &mut dyn Output) -> Flow {
        out.write(
            Stream::Stderr,
            &format!("meshsim: cannot run '{what}': {why}\n"),
        );
        Flow::Status(EXIT_UNMODELLED)
    }

    fn exec_argv<'a>(
        &'a mut self,
        argv: &'a [String],
        out: &'a mut dyn Output,
        top: bool,
    ) -> Fut<'a> {
        Box::pin(async move {
            let Some(first) = argv.first() else {
                return Flow::Status(0);
            };
            let name = base(first);
            let rest = &argv[1..];
            let flow = match name {
                "sh" | "ash" | "dash" => match rest.first().map(String::as_str) {
                    Some("-c") => match rest.get(1) {
                        Some(script) => match parse(script) {
                            Ok(cmd) => self.exec(&cmd, out).await,
                            Err(why) => self.unmodelled(script, &why, out),
                        },
                        None => {
                            out.write(Stream::Stderr, "sh: -c requires an argument\n");
                            Flow::Status(2)
                        }
                    },
                    // `sh` with no script reads stdin; a container has none: it ends at once.
                    None => Flow::Status(0),
                    Some(_) => {
                        self.unmodelled(&quote_argv(argv), "only `sh -c SCRIPT` is modelled", out)
                    }
                },
                "echo" => {
                    let (newline, words) = match rest.first().map(String::as_str) {
                        Some("-n") => (false, &rest[1..]),
                        _ => (true, rest),
                    };
                    let mut text = words.join(" ");
                    if newline {
                        text.push('\n');
                    }
                    out.write(Stream::Stdout, &text);
                    Flow::Status(0)
                }
                "true" | ":" => Flow::Status(0),
                "false" => Flow::Status(1),
                "hostname" => {
                    out.write(Stream::Stdout, &format!("{}\n", self.host.hostname()));
                    Flow::Status(0)
                }
                "exit" => {
                    let code = match rest.first() {
                        None => self.last,
                        Some(c) => c.parse::<i32>().map(|c| c & 0xff).unwrap_or(2),
                    };
                    Flow::Exit(code)
                }
                "sleep" => self.sleep(argv, out).await,
                "seq" => match seq(rest) {
                    Some(items) => {
                        for i in items {
                            out.write(Stream::Stdout, &format!("{i}\n"));
                        }
                        Flow::Status(0)
                    }
                    None => self.unmodelled(
                        &quote_argv(argv),
                        "only `seq [FIRST] LAST` is modelled",
                        out,
                    ),
                },
                "curl" => self.curl(argv, out),
                _ if KNOWN_UNMODELLED.contains(&name) => self.unmodelled(
                    &quote_argv(argv),
                    "the mesh model runs only curl, sleep, echo and sh -c scripts of those",
                    out,
                ),
                _ if top => {
                    // No shell: the container runtime cannot start it.
                    out.write(
                        Stream::Stderr,
                        &format!("exec: \"{first}\": executable file not found in $PATH\n"),
                    );
                    Flow::Status(EXIT_NOT_FOUND)
                }
                _ => {
                    out.write(Stream::Stderr, &format!("sh: {first}: not found\n"));
                    Flow::Status(EXIT_NOT_FOUND)
                }
            };
            self.last = flow.code();
            flow
        })
    }

    async fn sleep(&mut self, argv: &[String], out: &mut dyn Output) -> Flow {
        let Some(arg) = argv.get(1) else {
            out.write(Stream::Stderr, "sleep: missing operand\n");
            return Flow::Status(1);
        };
        if arg == "infinity" {
            std::future::pending::<()>().await;
        }
        let (num, unit) = match arg.strip_suffix(['s', 'm', 'h', 'd']) {
            Some(n) => (n, arg.chars().last().unwrap_or('s')),
            None => (arg.as_str(), 's'),
        };
        let Ok(secs) = num.parse::<f64>() else {
            out.write(Stream::Stderr, &format!("sleep: invalid number '{arg}'\n"));
            return Flow::Status(1);
        };
        let factor = match unit {
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86_400.0,
            _ => 1.0,
        };
        let secs = (secs * factor).clamp(0.0, 1e9);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        Flow::Status(0)
    }

    fn curl(&mut self, argv: &[String], out: &mut dyn Output) -> Flow {
        let c = match curl::parse(&argv[1..]) {
            Ok(c) => c,
            Err(CurlError::Usage(msg)) => {
                out.write(Stream::Stderr, &msg);
                return Flow::Status(2);
            }
            Err(CurlError::Unmodelled(why)) => {
                return self.unmodelled(&quote_argv(argv), &why, out);
            }
        };
        let mut code = 0;
        for url in &c.urls {
            let req = c.request(url);
            self.requests += 1;
            let reply = self.host.http(&req);
            if let HttpReply::Unmodelled(why) = &reply {
                return self.unmodelled(&quote_argv(argv), why, out);
            }
            let (lines, c_code) = c.render(&req, &reply);
            for (s, text) in lines {
                out.write(s, &text);
            }
            code = c_code;
        }
        Flow::Status(code)
    }

    fn exec<'a>(&'a mut self, cmd: &'a Cmd, out: &'a mut dyn Output) -> Fut<'a> {
        Box::pin(async move {
            match cmd {
                Cmd::Simple { words, redirects } => {
                    let argv = match self.expand_all(words) {
                        Ok(a) => a,
                        Err(why) => {
                            let text: Vec<String> = words.iter().map(Word::display).collect();
                            return self.unmodelled(&text.join(" "), &why, out);
                        }
                    };
                    let mut r = Redirected {
                        inner: out,
                        stdout: Some(Stream::Stdout),
                        stderr: Some(Stream::Stderr),
                    };
                    for Redirect { fd, target } in redirects {
                        let to = match target {
                            Target::Null => None,
                            Target::Fd(1) => r.stdout,
                            Target::Fd(_) => r.stderr,
                            Target::File(f) => {
                                return self.unmodelled(
                                    &argv.join(" "),
                                    &format!("writing to the file {f:?} is not modelled"),
                                    r.inner,
                                );
                            }
                        };
                        if *fd == 1 {
                            r.stdout = to;
                        } else {
                            r.stderr = to;
                        }
                    }
                    self.exec_argv(&argv, &mut r, false).await
                }
                Cmd::Seq(cmds) => {
                    let mut last = Flow::Status(0);
                    for c in cmds {
                        last = self.exec(c, out).await;
                        if matches!(last, Flow::Exit(_)) {
                            return last;
                        }
                    }
                    last
                }
                Cmd::And(a, b) => match self.exec(a, out).await {
                    Flow::Status(0) => self.exec(b, out).await,
                    other => other,
                },
                Cmd::Or(a, b) => match self.exec(a, out).await {
                    Flow::Status(0) => Flow::Status(0),
                    Flow::Exit(c) => Flow::Exit(c),
                    Flow::Status(_) => self.exec(b, out).await,
                },
                Cmd::For { var, items, body } => {
                    let items = match self.expand_all(items) {
                        Ok(i) => i,
                        Err(why) => return self.unmodelled("for", &why, out),
                    };
                    let mut last = Flow::Status(0);
                    for item in items {
                        self.vars.insert(var.clone(), item);
                        last = self.exec(body, out).await;
                        if matches!(last, Flow::Exit(_)) {
                            return last;
                        }
                        // Let the rest of the sim run between iterations.
                        tokio::task::yield_now().await;
                    }
                    last
                }
                Cmd::While { cond, body } => {
                    let mut last = Flow::Status(0);
                    loop {
                        match self.exec(cond, out).await {
                            Flow::Status(0) => {}
                            Flow::Exit(c) => return Flow::Exit(c),
                            Flow::Status(_) => return last,
                        }
                        last = self.exec(body, out).await;
                        if matches!(last, Flow::Exit(_)) {
                            return last;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
    }

    /// Expands words into fields: variables, `$?`, and `$(seq ...)` (split unless quoted).
    fn expand_all(&self, words: &[Word]) -> Result<Vec<String>, String> {
        let mut fields = Vec::new();
        for w in words {
            let mut current = String::new();
            let mut pending: Vec<String> = Vec::new();
            for p in &w.0 {
                match p {
                    Part::Lit(t) => current.push_str(t),
                    Part::Var { name, .. } => current.push_str(&self.var(name)),
                    Part::Subst { text, quoted } => {
                        let value = self.substitute(text)?;
                        if *quoted {
                            current.push_str(&value);
                        } else {
                            let mut split = value.split_whitespace();
                            if let Some(first) = split.next() {
                                current.push_str(first);
                                for rest in split {
                                    pending.push(std::mem::take(&mut current));
                                    current.push_str(rest);
                                }
                            }
                        }
                    }
                }
            }
            let empty_unquoted = current.is_empty()
                && pending.is_empty()
                && !w.0.iter().any(|p| matches!(p, Part::Lit(_)));
            fields.extend(pending);
            if !empty_unquoted {
                fields.push(current);
            }
        }
        Ok(fields)
    }

    fn var(&self, name: &str) -> String {
        match name {
            "?" => self.last.to_string(),
            _ => self.vars.get(name).cloned().unwrap_or_default(),
        }
    }

    /// `$(...)`: only `seq` (what loops count with) and `hostname`.
    fn substitute(&self, text: &str) -> Result<String, String> {
        let cmd = parse(text)?;
        let Cmd::Simple { words, redirects } = &cmd else {
            return Err(format!(
                "the command substitution $({text}) is not modelled"
            ));
        };
        let argv = self.expand_all(words)?;
        match argv.first().map(|a| base(a)) {
            Some("seq") if redirects.is_empty() => seq(&argv[1..])
                .map(|v| v.iter().map(i64::to_string).collect::<Vec<_>>().join("\n"))
                .ok_or_else(|| format!("only `seq [FIRST] LAST` is modelled, found $({text})")),
            Some("hostname") => Ok(self.host.hostname()),
            _ => Err(format!(
                "the command substitution $({text}) is not modelled (only $(seq ...) and $(hostname))"
            )),
        }
    }
}

/// `seq LAST` or `seq FIRST LAST` (at most 100000 numbers).
fn seq(args: &[String]) -> Option<Vec<i64>> {
    let nums: Vec<i64> = args.iter().map(|a| a.parse().ok()).collect::<Option<_>>()?;
    let (first, last) = match nums.as_slice() {
        [last] => (1, *last),
        [first, last] => (*first, *last),
        _ => return None,
    };
    if last - first > 100_000 {
        return None;
    }
    Some((first..=last).collect())
}

#[cfg(test)]
mod tests {
    use super::super::{Captured, HttpRequest, Program};
    use super::*;
    use std::sync::Mutex;

    struct Fake(Mutex<Vec<String>>);

    impl Host for Fake {
        fn http(&self, req: &HttpRequest) -> HttpReply {
            let mut seen = self.0.lock().unwrap();
            seen.push(req.url.clone());
            if req.url.contains("missing") {
                return HttpReply::Failed {
                    code: 6,
                    line: "curl: (6) Could not resolve host: missing".into(),
                };
            }
            HttpReply::Response {
                status: 200,
                body: format!("hello {}\n", seen.len()),
            }
        }
        fn hostname(&self) -> String {
            "client".into()
        }
    }

    async fn run(argv: &[&str]) -> (Captured, i32, usize) {
        let host = Fake(Mutex::new(Vec::new()));
        let p = Program::new(
            argv.iter().map(|s| s.to_string()).collect(),
            BTreeMap::new(),
        );
        let mut out = Captured::default();
        let code = p.run(&host, &mut out).await;
        let n = host.0.lock().unwrap().len();
        (out, code, n)
    }

    #[tokio::test]
    async fn loops_of_curl() {
        let (out, code, n) = run(&[
            "sh",
            "-c",
            "for i in $(seq 1 3); do curl -s helloworld:5000/hello; done",
        ])
        .await;
        assert_eq!((code, n), (0, 3));
        assert_eq!(out.stdout, "hello 1\nhello 2\nhello 3\n");
        let (out, code, _) = run(&["sh", "-c", "curl -sS missing:1/ && echo never; echo $?"]).await;
        assert_eq!(code, 0);
        assert_eq!(
            out.combined,
            "curl: (6) Could not resolve host: missing\n6\n"
        );
        let (out, code, _) =
            run(&["sh", "-c", "echo $(hostname) >/dev/null; exit 3; echo no"]).await;
        assert_eq!((out.combined.as_str(), code), ("", 3));
    }

    #[tokio::test]
    async fn unknown_and_unmodelled() {
        let (out, code, _) = run(&["sh", "-c", "nosuch --flag"]).await;
        assert_eq!(
            (out.stderr.as_str(), code),
            ("sh: nosuch: not found\n", 127)
        );
        let (out, code, _) = run(&["sh", "-c", "curl -s a:1 | grep x"]).await;
        assert_eq!(code, EXIT_UNMODELLED);
        assert!(
            out.stderr
                .starts_with("meshsim: cannot run 'curl -s a:1 | grep x': pipes"),
            "{}",
            out.stderr
        );
        let (out, code, _) = run(&["nslookup", "helloworld"]).await;
        assert_eq!(code, EXIT_UNMODELLED);
        assert!(
            out.stderr
                .contains("meshsim: cannot run 'nslookup helloworld'")
        );
    }

    #[tokio::test]
    async fn while_true_runs_with_time() {
        let argv: Vec<String> = ["sh", "-c", "while true; do curl -s a:1/; sleep 0.05; done"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = Program::new(argv, BTreeMap::new());
        assert!(p.long_running());
        let host = Fake(Mutex::new(Vec::new()));
        let mut out = Captured::default();
        let ended = tokio::time::timeout(Duration::from_millis(500), p.run(&host, &mut out)).await;
        assert!(ended.is_err(), "runs until stopped");
        // One request per 50ms sleep: the loop is paced by time, not run ahead.
        let n = host.0.lock().unwrap().len();
        assert!((3..=11).contains(&n), "{n} requests in 500ms");
        assert!(!Program::new(vec!["sleep".into(), "5".into()], BTreeMap::new()).long_running());
    }
}
