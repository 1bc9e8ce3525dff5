//! Running an installer (istioctl) with a generated file, as a child that
//! dies with `migrate` (see [`spawner`]): started first, so its pid can be
//! recorded before it is waited on, then waited on with a timeout.

mod process;
mod spawner;

pub use process::ProcessIdentity;
pub use spawner::kill_children;

use super::ClusterError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A file the command reads, written to a private temporary directory; the
/// argument `{file}` is replaced by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The file's name (only its last component is used).
    pub name: String,
    /// What the file holds.
    pub content: String,
}

/// What a command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// A command that has started and not been waited on yet. Dropping it kills
/// the command's whole process group.
pub struct RunningCommand {
    program: String,
    child: tokio::process::Child,
    pid: u32,
    reaped: bool,
    /// Holds the input file until the command ends.
    _dir: tempfile::TempDir,
}

/// Runs `program args...` (the file placeholder substituted), with a timeout.
/// A non-zero exit is an error carrying the end of stderr.
pub async fn run_command(
    program: &str,
    args: &[String],
    file: Option<&InputFile>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<ExecOutput, ClusterError> {
    start_command(program, args, file, env)
        .await?
        .finish(timeout)
        .await
}

/// Starts `program args...` (the file placeholder substituted) in its own
/// process group, killed when `migrate` dies.
pub async fn start_command(
    program: &str,
    args: &[String],
    file: Option<&InputFile>,
    env: &[(String, String)],
) -> Result<RunningCommand, ClusterError> {
    let fail = |message: String| exec_error(program, None, message);
    let dir = tempfile::Builder::new()
        .prefix("migrate-exec-")
        .tempdir()
        .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
    let mut args = args.to_vec();
    if let Some(file) = file {
        let path = dir.path().join(safe_name(&file.name));
        std::fs::write(&path, &file.content)
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
        for arg in &mut args {
            *arg = arg.replace("{file}", &path.to_string_lossy());
        }
    }
    let mut command = tokio::process::Command::new(program);
    command
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = spawner::spawn(command)
        .await
        .map_err(|e| fail(format!("cannot run it: {e} (is it installed and on PATH?)")))?;
    let Some(pid) = child.id() else {
        return Err(fail("it ended before it could be watched".into()));
    };
    Ok(RunningCommand {
        program: program.to_string(),
        child,
        pid,
        reaped: false,
        _dir: dir,
    })
}

impl RunningCommand {
    /// Who it is, as [`ProcessIdentity::is_running`] recognises it later.
    pub fn identity(&self) -> ProcessIdentity {
        ProcessIdentity::of(self.pid, &self.program)
    }

    /// Waits for the command to end; after `timeout` kills its process group.
    /// A non-zero exit is an error carrying the end of stderr.
    pub async fn finish(mut self, timeout: Duration) -> Result<ExecOutput, ClusterError> {
        let mut stdout = self.child.stdout.take();
        let mut stderr = self.child.stderr.take();
        let ended = {
            let pid = self.pid;
            let child = &mut self.child;
            let leader = async move {
                // The leader, exited but not yet reaped, keeps its pid and so
                // its group id from being reused: grandchildren left in the
                // group (they must not outlive the command, nor keep its
                // pipes open) are killed before it is reaped.
                spawner::exited(pid).await;
                spawner::kill_group(pid);
                spawner::reaped(pid);
                child.wait().await
            };
            let all = async {
                tokio::join!(leader, read_all(stdout.as_mut()), read_all(stderr.as_mut()))
            };
            tokio::time::timeout(timeout, all).await
        };
        let (status, out, err) = match ended {
            Ok(ended) => ended,
            Err(_) => {
                spawner::kill_group(self.pid);
                self.mark_reaped();
                let _ = self.child.wait().await;
                return Err(exec_error(
                    &self.program,
                    None,
                    format!("no answer after {}s", timeout.as_secs()),
                ));
            }
        };
        self.mark_reaped();
        let status =
            status.map_err(|e| exec_error(&self.program, None, format!("waiting for it: {e}")))?;
        let stdout = String::from_utf8_lossy(&out).into_owned();
        let stderr = String::from_utf8_lossy(&err).into_owned();
        if !status.success() {
            return Err(exec_error(&self.program, status.code(), tail(&stderr, 20)));
        }
        Ok(ExecOutput { stdout, stderr })
    }

    /// Called before the reap: once reaped, the pid may be another's.
    fn mark_reaped(&mut self) {
        self.reaped = true;
        spawner::reaped(self.pid);
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        if !self.reaped {
            // Abandoned (its step was cancelled): it must not run on unseen.
            spawner::kill_group(self.pid);
            spawner::reaped(self.pid);
        }
    }
}

/// Everything `pipe` yields until it closes (nothing when absent).
async fn read_all(pipe: Option<&mut (impl AsyncReadExt + Unpin)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        // A read error ends the output early; the exit status still tells.
        let _ = pipe.read_to_end(&mut bytes).await;
    }
    bytes
}

fn exec_error(program: &str, status: Option<i32>, message: String) -> ClusterError {
    ClusterError::Exec {
        program: program.to_string(),
        status,
        message,
    }
}

fn safe_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input.yaml".into())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn substitutes_the_generated_file() {
        let file = InputFile {
            name: "../../iop.yaml".into(),
            content: "spec: {}\n".into(),
        };
        let out = run_command(
            "cat",
            &["{file}".into()],
            Some(&file),
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, "spec: {}\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_outlives_the_thread_that_asked_for_it() {
        // PR_SET_PDEATHSIG fires when the forking thread exits: the spawner
        // thread forks, so a short-lived caller thread must not matter.
        let runtime = tokio::runtime::Handle::current();
        let (running, tid) = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let running = runtime.block_on(start_command("sleep", &["30".into()], None, &[]));
            (running, tid)
        })
        .join()
        .expect("the caller thread ends");
        let running = running.expect("sleep starts");
        let task = format!("/proc/self/task/{tid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Path::new(&task).exists() {
            assert!(std::time::Instant::now() < deadline, "{task} lingers");
            tokio::task::yield_now().await;
        }
        let identity = running.identity();
        // The parent-death signal, had it been sent, was sent before the
        // thread's /proc entry went: it is pending or already delivered.
        assert!(
            identity.is_running() && !kill_pending(identity.pid),
            "the child died with its caller thread"
        );
        drop(running);
        assert!(identity.wait_until_gone(Duration::from_secs(10)).await);
    }

    /// A SIGKILL is pending for `pid` (thread or process-wide).
    fn kill_pending(pid: u32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("SigPnd:")
                    .or_else(|| l.strip_prefix("ShdPnd:"))
            })
            .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .any(|mask| mask & (1 << (libc::SIGKILL - 1)) != 0)
    }

    #[tokio::test]
    async fn what_the_command_leaves_behind_ends_with_it() {
        // The background sleep keeps stdout open: without killing the group
        // when sh exits, reading the output would wait the whole 60 s.
        let out = run_command(
            "sh",
            &["-c".into(), "sleep 60 & echo started".into()],
            None,
            &[],
            Duration::from_secs(30),
        )
        .await
        .expect("sh ends at once; its leftover is killed");
        assert_eq!(out.stdout, "started\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let running = start_command("sh", &["-c".into(), script], None, &[])
            .await
            .unwrap();
        let err = running.finish(Duration::from_secs(1)).await.unwrap_err();
        assert!(err.to_string().contains("no answer"), "{err}");
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .expect("the grandchild started before the timeout")
            .trim()
            .parse()
            .unwrap();
        let grandchild = ProcessIdentity {
            pid,
            start_time: None,
            program: "sleep".into(),
        };
        assert!(grandchild.wait_until_gone(Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn failures_carry_status_and_stderr() {
        let err = run_command(
            "sh",
            &["-c".into(), "echo boom >&2; exit 3".into()],
            None,
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exited with 3") && text.contains("boom"),
            "{text}"
        );
        let err = run_command(
            "/nonexistent/istioctl",
            &[],
            None,
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("PATH"), "{err}");
    }
}
