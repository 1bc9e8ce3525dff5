//! One pod's life on its node: scheduled, started (conditions in order), containers run, ended
//! by their exit codes and restart policy, or stopped by a graceful deletion and removed.

use super::entrypoint::{Process, process, prompt};
use super::logs::PodLog;
use super::network::PodNetwork;
use super::scheduler;
use super::status::{Container, PodStatus, State, Terminated};
use super::stdio::{ContainerIo, Tee};
use crate::cluster::ClusterInner;
use crate::resources::ResourceType;
use crate::shell::Program;
use crate::shell::Terminal;
use crate::store::{WriteOptions, meta_str, now_rfc3339};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// The kubelet's crash-loop back-off: 10s doubling to 5 minutes.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// SIGKILL's exit code.
const KILLED: i32 = 137;

/// Something that happened to the pod's containers.
enum Event {
    Exited {
        index: usize,
        code: i32,
    },
    /// The back-off ended: start the container again.
    Restart {
        index: usize,
    },
    /// The sidecar was asked to quit.
    SidecarQuit,
}

struct PodRun {
    cluster: Arc<ClusterInner>,
    rt: ResourceType,
    namespace: String,
    name: String,
    uid: String,
    /// The status last written (the kubelet gives up a pod whose status someone else writes).
    written: Option<Value>,
    status: PodStatus,
    processes: Vec<Process>,
    /// `spec.initContainers`, run in order before the containers.
    init_specs: Vec<Value>,
    /// Per container: the running program's task.
    tasks: Vec<Option<JoinHandle<()>>>,
    restart_policy: String,
    /// `spec.containers` (stdin and tty for attach).
    specs: Vec<Value>,
    log: PodLog,
    net: Arc<PodNetwork>,
    events: mpsc::UnboundedSender<Event>,
}

/// Why the kubelet stopped looking after a pod.
enum Gone {
    /// Deleted, or another writer took its status over.
    Lost,
}

/// Runs a pod from creation to its end or removal.
pub(super) async fn run(
    cluster: Arc<ClusterInner>,
    pod: Value,
    mut stop: watch::Receiver<Option<i64>>,
) {
    let Some(rt) = cluster.store.resolve("", "v1", "pods") else {
        return;
    };
    let namespace = meta_str(&pod, "namespace").unwrap_or_default().to_string();
    let name = meta_str(&pod, "name").unwrap_or_default().to_string();
    let uid = meta_str(&pod, "uid").unwrap_or_default().to_string();
    // Scheduling first: a pod with no node waits for one.
    let Some(pod) = schedule(&cluster, &rt, pod, &mut stop).await else {
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (quit_tx, mut quit_rx) = mpsc::unbounded_channel();
    let quit_events = tx.clone();
    tokio::spawn(async move {
        while quit_rx.recv().await.is_some() {
            if quit_events.send(Event::SidecarQuit).is_err() {
                return;
            }
        }
    });
    let specs: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let seed = u64::from_str_radix(uid.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    let mut run = PodRun {
        rt,
        namespace: namespace.clone(),
        name: name.clone(),
        uid,
        written: None,
        status: PodStatus::pending(),
        processes: specs.iter().map(process).collect(),
        init_specs: Vec::new(),
        tasks: specs.iter().map(|_| None).collect(),
        specs: specs.clone(),
        restart_policy: pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string(),
        log: PodLog::new(&cluster.store, &namespace, &name),
        net: Arc::new(PodNetwork {
            cluster: cluster.clone(),
            pod: pod.clone(),
            seed,
            requests: AtomicU64::new(0),
            quit: quit_tx,
            direct: false,
        }),
        events: tx,
        cluster,
    };
    run.status.containers = specs.iter().map(Container::new).collect();
    run.cluster.stdio.add_quit(&run.uid, &run.net.quit);
    let _registered = QuitRegistration {
        cluster: run.cluster.clone(),
        uid: run.uid.clone(),
    };
    run.init_specs = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    run.status.init_containers = run.init_specs.iter().map(Container::new).collect();
    if !run.init_specs.is_empty() {
        for c in &mut run.status.containers {
            c.state = State::Waiting {
                reason: "PodInitializing".into(),
                message: None,
            };
        }
    }
    // The status as written by the scheduler step is ours to continue.
    run.written = pod.get("status").cloned();
    let result = run.life(rx, &mut stop).await;
    run.kill_all();
    let _ = result;
}

/// Binds the pod to a node (or waits, Pending and Unschedulable, until one fits); `None` when
/// the pod went away meanwhile.
async fn schedule(
    cluster: &Arc<ClusterInner>,
    rt: &ResourceType,
    pod: Value,
    stop: &mut watch::Receiver<Option<i64>>,
) -> Option<Value> {
    let store = &cluster.store;
    let ns = meta_str(&pod, "namespace").unwrap_or_default().to_string();
    let name = meta_str(&pod, "name").unwrap_or_default().to_string();
    let uid = meta_str(&pod, "uid").unwrap_or_default().to_string();
    let mut events = store.events();
    loop {
        let mut current = store.get(rt, Some(&ns), &name).ok()?;
        if meta_str(&current, "uid") != Some(uid.as_str()) {
            return None;
        }
        let mut status = PodStatus::pending();
        let bound = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .map(str::to_string);
        let node = match bound {
            Some(n) => Ok(n),
            None => scheduler::pick(store, &current),
        };
        match node {
            Ok(node) => {
                status.set("PodScheduled", true, None, None);
                current["spec"]["nodeName"] = json!(node);
                current["status"] = status.render();
                match store.update(rt, current, &WriteOptions::default()) {
                    Ok(written) => return Some(written),
                    Err(e) if e.code == 409 => continue,
                    Err(_) => return None,
                }
            }
            Err(message) => {
                status.set("PodScheduled", false, Some("Unschedulable"), Some(message));
                let rendered = status.render();
                let same = current.pointer("/status/conditions") == rendered.get("conditions")
                    || current
                        .pointer("/status/conditions/0/message")
                        .zip(rendered.pointer("/conditions/0/message"))
                        .is_some_and(|(a, b)| a == b);
                if !same {
                    current["status"] = rendered;
                    match store.update(rt, current, &WriteOptions::default()) {
                        Err(e) if e.code == 409 => continue,
                        Err(_) => return None,
                        Ok(_) => {}
                    }
                }
                // Wait for a node to change (cordon lifted, node added).
                loop {
                    tokio::select! {
                        e = events.recv() => match e {
                            Ok(e) if super::is_node_event(&e) => break,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                        changed = stop.changed() => {
                            if changed.is_err() {
                                return None;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl PodRun {
    /// Writes the status; `Err` when the pod is gone or someone else now writes its status.
    fn write(&mut self) -> Result<(), Gone> {
        let store = &self.cluster.store;
        let rendered = self.status.render();
        for _ in 0..10 {
            let mut current = store
                .get(&self.rt, Some(&self.namespace), &self.name)
                .map_err(|_| Gone::Lost)?;
            if meta_str(&current, "uid") != Some(self.uid.as_str()) {
                return Err(Gone::Lost);
            }
            if self.written.is_some() && current.get("status") != self.written.as_ref() {
                return Err(Gone::Lost);
            }
            current["status"] = rendered.clone();
            match store.update(&self.rt, current, &WriteOptions::default()) {
                Ok(w) => {
                    self.written = w.get("status").cloned();
                    return Ok(());
                }
                Err(e) if e.code == 409 => continue,
                Err(_) => return Err(Gone::Lost),
            }
        }
        Err(Gone::Lost)
    }

    async fn life(
        &mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        stop: &mut watch::Receiver<Option<i64>>,
    ) -> Result<(), Gone> {
        // Scheduled: addresses, start time, containers being created.
        let index = self.cluster.index;
        self.status.set("PodScheduled", true, None, None);
        self.status.host_ip = Some(format!("172.18.{}.2", index % 256));
        self.status.pod_ip = Some(format!(
            "10.{}.{}.{}",
            240 + index % 10,
            fastrand::u8(0..255),
            fastrand::u8(2..255)
        ));
        self.status.start_time = Some(now_rfc3339());
        self.status
            .set("PodReadyToStartContainers", false, None, None);
        self.set_initialized();
        self.status.derive_readiness();
        self.write()?;
        // Image pulls and sandbox creation take the cluster's start-up delay.
        if !self.cluster.ready_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.cluster.ready_delay) => {}
                _ = stopping(stop) => return self.terminate(&mut events, stop).await,
            }
        }
        self.status
            .set("PodReadyToStartContainers", true, None, None);
        for i in 0..self.init_specs.len() {
            tokio::select! {
                ok = self.init(i) => {
                    if !ok? {
                        return Ok(());
                    }
                }
                _ = stopping(stop) => return self.terminate(&mut events, stop).await,
            }
        }
        self.set_initialized();
        for i in 0..self.processes.len() {
            self.start(i);
        }
        self.status.phase = "Running";
        self.status.derive_readiness();
        self.write()?;
        loop {
            if matches!(self.status.phase, "Succeeded" | "Failed") {
                return Ok(());
            }
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { return Ok(()) };
                    self.on_event(e);
                    self.write()?;
                }
                _ = stopping(stop) => return self.terminate(&mut events, stop).await,
            }
        }
    }

    /// Initialized once every init container completed (or, a native sidecar, started).
    fn set_initialized(&mut self) {
        let pending: Vec<String> = self
            .status
            .init_containers
            .iter()
            .filter(|c| {
                !matches!(&c.state, State::Terminated(t) if t.exit_code == 0) && !c.running()
            })
            .map(|c| c.name.clone())
            .collect();
        if pending.is_empty() {
            self.status.set("Initialized", true, None, None);
        } else {
            let message = format!("containers with incomplete status: [{}]", pending.join(" "));
            self.status.set(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(message),
            );
        }
    }

    /// Runs init container `i` to its end (a native sidecar, `restartPolicy: Always`, is only
    /// started); `Ok(false)` when it failed for good and the pod with it.
    async fn init(&mut self, i: usize) -> Result<bool, Gone> {
        let spec = self.init_specs[i].clone();
        let sidecar = spec.get("restartPolicy").and_then(Value::as_str) == Some("Always");
        loop {
            let started = now_rfc3339();
            let c = &mut self.status.init_containers[i];
            c.state = State::Running {
                started_at: started.clone(),
            };
            if sidecar {
                c.ready = true;
                self.write()?;
                return Ok(true);
            }
            self.write()?;
            let code = match process(&spec) {
                Process::Shell(program) => {
                    let mut log = self.log.clone();
                    program.run(self.net.as_ref(), &mut log).await
                }
                // An image's own program as an init step: it does its work and ends.
                Process::Server => 0,
            };
            let c = &mut self.status.init_containers[i];
            let t = Terminated::new(code, &started);
            if code == 0 {
                c.state = State::Terminated(t);
                self.set_initialized();
                self.write()?;
                return Ok(true);
            }
            if self.restart_policy == "Never" {
                c.state = State::Terminated(t);
                self.status.phase = "Failed";
                self.set_initialized();
                self.status.derive_readiness();
                self.write()?;
                return Ok(false);
            }
            let backoff =
                (BACKOFF_START * 2u32.saturating_pow(c.restart_count.min(5))).min(BACKOFF_MAX);
            c.last = Some(t);
            c.restart_count += 1;
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: None,
            };
            self.write()?;
            tokio::time::sleep(backoff).await;
        }
    }

    /// Starts container `i`: a shell program on its own task, or a server (nothing to run).
    fn start(&mut self, i: usize) {
        let now = now_rfc3339();
        let c = &mut self.status.containers[i];
        c.state = State::Running { started_at: now };
        c.ready = true;
        if let Process::Shell(program) = &self.processes[i] {
            let (io, stdin) = ContainerIo::new(&self.specs[i]);
            let registration = Registration {
                cluster: self.cluster.clone(),
                uid: self.uid.clone(),
                name: self.status.containers[i].name.clone(),
                io,
                code: None,
            };
            self.cluster.stdio.add_container(
                &registration.uid,
                &registration.name,
                &registration.io,
            );
            let term = Terminal {
                tty: registration.io.tty,
                prompt: prompt(&self.specs[i]).to_string(),
            };
            self.tasks[i] = Some(spawn_program(
                program.clone(),
                Stdio {
                    registration,
                    stdin,
                    term,
                },
                self.net.clone(),
                self.log.clone(),
                i,
                self.events.clone(),
            ));
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Exited { index, code } => self.exited(index, code, None),
            Event::SidecarQuit => {
                if let Some(i) = self
                    .status
                    .containers
                    .iter()
                    .position(|c| c.name == "istio-proxy" && c.running())
                {
                    self.exited(i, 0, None);
                }
            }
            Event::Restart { index } => {
                let c = &mut self.status.containers[index];
                c.restart_count += 1;
                self.log.reset();
                self.start(index);
            }
        }
        self.decide_phase();
    }

    fn exited(&mut self, index: usize, code: i32, reason: Option<&str>) {
        self.tasks[index] = None;
        let c = &mut self.status.containers[index];
        let started = match &c.state {
            State::Running { started_at } => started_at.clone(),
            _ => now_rfc3339(),
        };
        let mut t = Terminated::new(code, &started);
        if let Some(r) = reason {
            t.reason = r.to_string();
        }
        c.ready = false;
        let restart = match self.restart_policy.as_str() {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        if restart {
            let backoff =
                (BACKOFF_START * 2u32.saturating_pow(c.restart_count.min(5))).min(BACKOFF_MAX);
            c.last = Some(t);
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={}",
                    backoff.as_secs(),
                    c.name,
                    self.name
                )),
            };
            let tx = self.events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(backoff).await;
                let _ = tx.send(Event::Restart { index });
            });
        } else {
            c.state = State::Terminated(t);
        }
    }

    /// The phase from the containers: all ended for good decides Succeeded or Failed.
    fn decide_phase(&mut self) {
        let all_ended = self
            .status
            .containers
            .iter()
            .all(|c| matches!(c.state, State::Terminated(_)));
        if all_ended {
            let ok = self
                .status
                .containers
                .iter()
                .all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
            self.status.phase = if ok { "Succeeded" } else { "Failed" };
            self.stop_sidecars();
        }
        self.status.derive_readiness();
    }

    /// Native sidecars (init containers with `restartPolicy: Always`) are stopped once the app's
    /// containers have ended for good; the proxy exits 0 on SIGTERM.
    fn stop_sidecars(&mut self) {
        for c in &mut self.status.init_containers {
            if let State::Running { started_at } = &c.state {
                let t = Terminated::new(0, &started_at.clone());
                c.state = State::Terminated(t);
                c.ready = false;
            }
        }
    }

    /// Graceful deletion: SIGTERM, wait for the programs (they ignore it) until the period
    /// ends, kill what is left, and remove the pod.
    async fn terminate(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
        stop: &mut watch::Receiver<Option<i64>>,
    ) -> Result<(), Gone> {
        let mut grace = (*stop.borrow()).unwrap_or(0);
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs(grace.max(0) as u64);
        // Servers (and the sidecar) stop on SIGTERM; waiting containers never start again.
        for i in 0..self.status.containers.len() {
            let c = &mut self.status.containers[i];
            match (&self.processes[i], &c.state) {
                (Process::Server, State::Running { .. }) => self.exited_for_good(i, 0),
                (_, State::Waiting { .. }) => {
                    self.status.containers[i].state =
                        State::Terminated(Terminated::new(0, &now_rfc3339()));
                    self.status.containers[i].ready = false;
                }
                _ => {}
            }
        }
        self.status.derive_readiness();
        self.write()?;
        while self.status.containers.iter().any(Container::running) {
            tokio::select! {
                e = events.recv() => match e {
                    Some(Event::Exited { index, code }) => {
                        self.exited_for_good(index, code);
                        self.write()?;
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    for i in 0..self.status.containers.len() {
                        if self.status.containers[i].running() {
                            if let Some(t) = self.tasks[i].take() {
                                t.abort();
                            }
                            self.exited_for_good(i, KILLED);
                        }
                    }
                    let _ = self.write();
                }
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    // A second delete may shorten the period.
                    let g = (*stop.borrow()).unwrap_or(0);
                    if g < grace {
                        grace = g;
                        deadline = tokio::time::Instant::now() + Duration::from_secs(g.max(0) as u64);
                    }
                }
            }
        }
        let current = self
            .cluster
            .store
            .get(&self.rt, Some(&self.namespace), &self.name)
            .map_err(|_| Gone::Lost)?;
        if meta_str(&current, "uid") == Some(self.uid.as_str()) {
            super::remove_now(&self.cluster, &current);
        }
        Ok(())
    }

    fn exited_for_good(&mut self, index: usize, code: i32) {
        let c = &mut self.status.containers[index];
        let started = match &c.state {
            State::Running { started_at } => started_at.clone(),
            _ => now_rfc3339(),
        };
        let mut t = Terminated::new(code, &started);
        if code == KILLED {
            t.reason = "Error".into();
        }
        c.state = State::Terminated(t);
        c.ready = false;
    }

    fn kill_all(&mut self) {
        for t in self.tasks.iter_mut().filter_map(Option::take) {
            t.abort();
        }
    }
}

/// Resolves once the pod is being deleted.
async fn stopping(stop: &mut watch::Receiver<Option<i64>>) {
    if stop.wait_for(Option::is_some).await.is_err() {
        // The kubelet dropped the pod: it is gone; nothing more to wait for.
        std::future::pending::<()>().await;
    }
}

/// A container program's stdio: its registration for attach, its stdin and terminal.
struct Stdio {
    registration: Registration,
    stdin: Option<crate::shell::Stdin>,
    term: Terminal,
}

fn spawn_program(
    program: Program,
    mut stdio: Stdio,
    net: Arc<PodNetwork>,
    log: PodLog,
    index: usize,
    events: mpsc::UnboundedSender<Event>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut out = Tee {
            log,
            io: stdio.registration.io.clone(),
        };
        let code = match &mut stdio.stdin {
            Some(stdin) => {
                program
                    .run_with_stdin(net.as_ref(), stdin, &stdio.term, &mut out)
                    .await
            }
            None => program.run(net.as_ref(), &mut out).await,
        };
        stdio.registration.code = Some(code);
        drop(stdio);
        let _ = events.send(Event::Exited { index, code });
    })
}

/// Ends a container's registration when its program's task ends, however it ends (an aborted
/// task is a killed program: 137).
struct Registration {
    cluster: Arc<ClusterInner>,
    uid: String,
    name: String,
    io: Arc<ContainerIo>,
    code: Option<i32>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.io.end(self.code.unwrap_or(KILLED));
        self.cluster
            .stdio
            .remove_container(&self.uid, &self.name, &self.io);
    }
}

/// Keeps a pod's sidecar quit channel in the registry while the kubelet runs the pod.
struct QuitRegistration {
    cluster: Arc<ClusterInner>,
    uid: String,
}

impl Drop for QuitRegistration {
    fn drop(&mut self) {
        self.cluster.stdio.remove_quit(&self.uid);
    }
}
