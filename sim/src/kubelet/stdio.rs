//! The live stdio of the containers the kubelet runs, so that `pods/attach` can join a running
//! program: what it writes from now on, its stdin when the container has one (`stdin: true`),
//! and its end. A container with `stdinOnce` gets its stdin closed when the first attached
//! client lets go of it, as the container runtime does; the shell reading it then ends.
//! Also where each running pod's sidecar is told to quit, so that a `quitquitquit` from
//! `pods/exec` reaches the kubelet. (No cluster or network types here: the cluster holds the
//! registry.)

use crate::shell::{Output, Stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};

/// One running container's stdio.
pub(crate) struct ContainerIo {
    /// The container has a terminal (`tty: true`).
    pub tty: bool,
    /// `stdinOnce`: stdin closes when the first attached client detaches.
    pub stdin_once: bool,
    /// The program's stdin while it is open (`None`: the container has none, or it closed).
    stdin: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    output: broadcast::Sender<(Stream, String)>,
    /// The exit code once the program ended (137 when killed).
    exited: watch::Sender<Option<i32>>,
}

impl ContainerIo {
    /// A container's stdio, and the stdin its program reads (when it has one).
    pub fn new(spec: &serde_json::Value) -> (Arc<ContainerIo>, Option<crate::shell::Stdin>) {
        let flag = |k: &str| spec.get(k).and_then(serde_json::Value::as_bool) == Some(true);
        let (tx, rx) = if flag("stdin") {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let io = ContainerIo {
            tty: flag("tty"),
            stdin_once: flag("stdinOnce"),
            stdin: Mutex::new(tx),
            output: broadcast::channel(1024).0,
            exited: watch::channel(None).0,
        };
        (Arc::new(io), rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::UnboundedSender<Vec<u8>>>> {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The program's stdin, if it is still open.
    pub fn stdin(&self) -> Option<mpsc::UnboundedSender<Vec<u8>>> {
        self.lock().clone()
    }

    /// An attached client let go of stdin: with `stdinOnce` it closes for good.
    pub fn detach_stdin(&self) {
        if self.stdin_once {
            self.lock().take();
        }
    }

    /// What the program writes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<(Stream, String)> {
        self.output.subscribe()
    }

    /// The program's end.
    pub fn exited(&self) -> watch::Receiver<Option<i32>> {
        self.exited.subscribe()
    }

    /// Records the end of the program (the first end counts).
    pub fn end(&self, code: i32) {
        self.exited.send_if_modified(|e| {
            let first = e.is_none();
            if first {
                *e = Some(code);
            }
            first
        });
        self.lock().take();
    }
}

/// A program's output to its log and to whoever is attached.
pub(crate) struct Tee<O> {
    pub log: O,
    pub io: Arc<ContainerIo>,
}

impl<O: Output> Output for Tee<O> {
    fn write(&mut self, stream: Stream, text: &str) {
        self.log.write(stream, text);
        // Nobody attached is no error.
        let _ = self.io.output.send((stream, text.to_string()));
    }
}

/// One cluster's running containers (by pod uid and container name) and, per running pod,
/// where its sidecar's `quitquitquit` goes.
#[derive(Default)]
pub(crate) struct Registry {
    containers: Mutex<HashMap<(String, String), Arc<ContainerIo>>>,
    quits: Mutex<HashMap<String, mpsc::UnboundedSender<()>>>,
}

impl Registry {
    /// The running program of container `name` of pod `uid`.
    pub fn container(&self, uid: &str, name: &str) -> Option<Arc<ContainerIo>> {
        let map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(uid.to_string(), name.to_string())).cloned()
    }

    pub(super) fn add_container(&self, uid: &str, name: &str, io: &Arc<ContainerIo>) {
        let mut map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((uid.to_string(), name.to_string()), io.clone());
    }

    /// Forgets a container's program (not a newer one started in its place).
    pub(super) fn remove_container(&self, uid: &str, name: &str, io: &Arc<ContainerIo>) {
        let mut map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        let key = (uid.to_string(), name.to_string());
        if map.get(&key).is_some_and(|cur| Arc::ptr_eq(cur, io)) {
            map.remove(&key);
        }
    }

    /// Where the sidecar of a pod the kubelet runs is told to quit.
    pub fn quit(&self, uid: &str) -> Option<mpsc::UnboundedSender<()>> {
        let map = self.quits.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uid).cloned()
    }

    pub(super) fn add_quit(&self, uid: &str, quit: &mpsc::UnboundedSender<()>) {
        let mut map = self.quits.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(uid.to_string(), quit.clone());
    }

    pub(super) fn remove_quit(&self, uid: &str) {
        let mut map = self.quits.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(uid);
    }
}
