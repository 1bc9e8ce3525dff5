//! A small shell for the commands runbooks run in a pod to verify a mesh: `curl` (once or in
//! a `for`/`while` loop), `sleep`, `echo`, and `sh -c` scripts made of those joined by `;`,
//! `&&` and `||`. Requests go to a [`Host`] (the kubelet answers them from the mesh model);
//! output goes to an [`Output`] as it is produced, so a `while true` loop's log grows with time.
//!
//! Input: a container's argv (`command` + `args`) and the pod's environment; output: what the
//! program writes to stdout and stderr, and its exit code. What the model cannot run is a
//! clear `meshsim: cannot run '...': why` line on stderr with exit code [`EXIT_UNMODELLED`],
//! never a fake success; a command sh would not find gets `sh: X: not found` and 127.
//!
//! A bare `sh` given a stdin (`kubectl exec -i`, a container with `stdin: true`) reads its
//! commands from it, line by line, as an interactive shell on a terminal ([`Terminal`]).

mod curl;
mod interactive;
mod lex;
mod parse;
mod run;

use std::collections::BTreeMap;

pub use interactive::{Stdin, Terminal};

/// The exit code of a command the model cannot run (sh's "cannot execute").
pub const EXIT_UNMODELLED: i32 = 126;
/// sh's exit code for a command it cannot find.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The stream a program writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

/// Where a running program's output goes, as it is produced.
pub trait Output: Send {
    /// Takes a chunk the program wrote (not necessarily whole lines).
    fn write(&mut self, stream: Stream, text: &str);
}

/// Collects output in memory (tests, one-shot runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// What went to stdout.
    pub stdout: String,
    /// What went to stderr.
    pub stderr: String,
    /// Both streams interleaved, as a container log has them.
    pub combined: String,
}

impl Output for Captured {
    fn write(&mut self, stream: Stream, text: &str) {
        match stream {
            Stream::Stdout => self.stdout.push_str(text),
            Stream::Stderr => self.stderr.push_str(text),
        }
        self.combined.push_str(text);
    }
}

/// One HTTP request `curl` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// With its scheme (`http://` added when the command gave none).
    pub url: String,
    /// `GET` unless `-X` (or `-I`: `HEAD`) says otherwise.
    pub method: String,
    /// `-k`: do not verify the server's certificate.
    pub insecure: bool,
    /// `--max-time`, when given.
    pub max_time_secs: Option<u32>,
}

/// What a request met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpReply {
    /// An HTTP response.
    Response {
        /// The HTTP status code.
        status: u16,
        /// The body, exactly as sent (no newline added).
        body: String,
    },
    /// curl failed: its exit code and its error line (`curl: (6) Could not resolve host: x`).
    Failed {
        /// curl's exit code.
        code: i32,
        /// curl's error line(s).
        line: String,
    },
    /// The model cannot say what would happen: why.
    Unmodelled(String),
}

/// The world a program runs in: the network (answered by the mesh model) and the pod.
pub trait Host: Send + Sync {
    /// Answers one request.
    fn http(&self, req: &HttpRequest) -> HttpReply;
    /// The pod's name (`hostname`, `$HOSTNAME`).
    fn hostname(&self) -> String;
}

/// A parsed container program.
#[derive(Debug, Clone)]
pub struct Program {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Program {
    /// The program a container runs: its argv (command and args, after the image's entrypoint)
    /// and its literal environment.
    pub fn new(argv: Vec<String>, env: BTreeMap<String, String>) -> Self {
        Program { argv, env }
    }

    /// The argv as written.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Whether the program runs until stopped (a `while true` loop, `sleep infinity`): it never
    /// ends on its own.
    pub fn long_running(&self) -> bool {
        run::long_running(&self.argv)
    }

    /// Runs the program to its end (or until the future is dropped: the container is killed),
    /// writing to `out`; returns the exit code.
    pub async fn run(&self, host: &dyn Host, out: &mut dyn Output) -> i32 {
        run::run_argv(&self.argv, &self.env, host, out).await
    }

    /// Whether the program is a shell that reads its commands from stdin (`sh` with no script).
    pub fn reads_stdin(&self) -> bool {
        let name = self.argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        matches!(name, Some("sh" | "ash" | "dash"))
            && self.argv[1..]
                .iter()
                .all(|a| matches!(a.as_str(), "-i" | "-l" | "-s"))
    }

    /// Runs the program with `stdin` connected: a shell that reads stdin (see
    /// [`Program::reads_stdin`]) runs each line it gets until `exit` or the end of input; any
    /// other program runs as [`Program::run`] does, leaving stdin unread.
    pub async fn run_with_stdin(
        &self,
        host: &dyn Host,
        stdin: &mut Stdin,
        term: &Terminal,
        out: &mut dyn Output,
    ) -> i32 {
        if self.reads_stdin() {
            interactive::run(&self.env, host, stdin, term, out).await
        } else {
            self.run(host, out).await
        }
    }
}

/// Shell quoting for messages: the argv as one would type it.
pub fn quote_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
