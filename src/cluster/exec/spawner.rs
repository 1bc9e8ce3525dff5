//! Starting children that cannot outlive `migrate`.
//!
//! Each child gets its own process group (so the whole group can be killed,
//! and a terminal's Ctrl-C, which goes to the foreground group, does not cut a
//! running installer short: the first Ctrl-C lets running steps finish) and a
//! parent-death signal (`PR_SET_PDEATHSIG`, SIGKILL).
//!
//! Linux sends the parent-death signal when the *thread* that forked the child
//! exits, not the process; tokio's blocking-pool threads come and go. So every
//! child is forked by one dedicated thread that lives as long as the process,
//! and the signal fires only when the process dies (SIGKILL included).
//!
//! Every live child's group is registered until it is reaped, so that
//! [`kill_children`] can end them all when `migrate` stops at once.

use std::collections::BTreeSet;
use std::io;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A spawn request for the spawner thread.
struct Request {
    command: tokio::process::Command,
    runtime: tokio::runtime::Handle,
    reply: tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>,
}

/// Process groups of children not reaped yet.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// The spawner thread's queue, started on first use.
static SPAWNER: OnceLock<Result<mpsc::Sender<Request>, String>> = OnceLock::new();

fn spawner() -> io::Result<&'static mpsc::Sender<Request>> {
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("migrate-spawner".into())
                .spawn(move || {
                    // Lives until the process ends: the statics keep `tx` alive.
                    for req in rx {
                        let _entered = req.runtime.enter();
                        let mut command = req.command;
                        let _ = req.reply.send(command.spawn());
                    }
                })
                .map(|_| tx)
                .map_err(|e| format!("cannot start the spawner thread: {e}"))
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Spawns `command` from the spawner thread, in a new process group, with
/// SIGKILL as its parent-death signal; registers its group until
/// [`reaped`] is called. Must be called inside a tokio runtime.
pub(super) async fn spawn(
    mut command: tokio::process::Command,
) -> io::Result<tokio::process::Child> {
    command.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == -1
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // The parent died before the signal was armed: nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    spawner()?
        .send(Request {
            command,
            runtime: tokio::runtime::Handle::current(),
            reply,
        })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    let child = answer
        .await
        .map_err(|_| io::Error::other("the spawner thread dropped the request"))??;
    if let Some(pid) = child.id() {
        live_groups().insert(pid as i32);
    }
    Ok(child)
}

/// Returns once the child `pid` has exited, without reaping it (`WNOWAIT`):
/// until it is reaped its pid, and so its group id, cannot be reused.
pub(super) async fn exited(pid: u32) {
    let waited = tokio::task::spawn_blocking(move || {
        loop {
            // SAFETY: `info` is a plain C struct the call fills in.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            // EINTR: ask again; any other error (ECHILD: already reaped)
            // means there is nothing left to wait for.
            if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    });
    let _ = waited.await;
}

/// The child whose group is `pid` is about to be reaped: its group is no
/// longer ours to kill.
pub(super) fn reaped(pid: u32) {
    live_groups().remove(&(pid as i32));
}

/// Sends SIGKILL to the process group of `pid` (a child spawned here).
pub(super) fn kill_group(pid: u32) {
    // SAFETY: killpg has no memory effects; a group that is gone gives ESRCH.
    unsafe {
        libc::killpg(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Kills every child still running, with its whole process group: what a
/// second signal does before `migrate` exits at once. Returns how many groups
/// were signalled.
pub fn kill_children() -> usize {
    let groups = live_groups().clone();
    for &group in &groups {
        kill_group(group as u32);
    }
    groups.len()
}

fn live_groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    // A panic while holding the lock leaves a plain set: still usable.
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::exited;

    #[tokio::test]
    async fn an_exited_child_is_seen_but_left_unreaped() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        exited(child.id()).await;
        // Still a zombie: its pid (and group id) cannot have been reused.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .expect("the exited child is not reaped yet");
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.trim().chars().next());
        assert_eq!(state, Some('Z'), "{stat}");
        assert!(child.wait().expect("reaped now").success());
    }
}
