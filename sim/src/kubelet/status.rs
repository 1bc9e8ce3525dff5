//! The pod status the kubelet reports, kept as a small model and rendered to the API's JSON:
//! phase, conditions (in the order they became true, each with its transition time),
//! addresses, and one status per container.

use crate::store::now_rfc3339;
use serde_json::{Value, json};

/// One container's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

impl Terminated {
    pub fn new(exit_code: i32, started_at: &str) -> Self {
        Terminated {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: started_at.to_string(),
            finished_at: now_rfc3339(),
        }
    }

    fn render(&self) -> Value {
        let mut t = json!({"exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at});
        if let Some(m) = &self.message {
            t["message"] = json!(m);
        }
        t
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last: Option<Terminated>,
    pub ready: bool,
    pub restart_count: u32,
}

impl Container {
    pub fn new(spec: &Value) -> Self {
        let s = |k: &str| {
            spec.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Container {
            name: s("name"),
            image: s("image"),
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last: None,
            ready: false,
            restart_count: 0,
        }
    }

    pub fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn render(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": t.render()}),
        };
        let mut c = json!({"name": self.name, "image": self.image, "imageID": "",
            "containerID": format!("containerd://{}", short_hash(&self.name, self.restart_count)),
            "ready": self.ready, "started": self.running(), "restartCount": self.restart_count,
            "state": state});
        if matches!(self.state, State::Waiting { .. }) && self.restart_count == 0 {
            c.as_object_mut().map(|m| m.remove("containerID"));
        }
        if let Some(l) = &self.last {
            c["lastState"] = json!({"terminated": l.render()});
        }
        c
    }
}

fn short_hash(name: &str, n: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{name}/{n}/{}", fastrand::u64(..))))
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    kind: &'static str,
    status: bool,
    reason: Option<String>,
    message: Option<String>,
    since: String,
}

/// A pod's status as the kubelet tracks it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodStatus {
    pub phase: &'static str,
    conditions: Vec<Condition>,
    pub host_ip: Option<String>,
    pub pod_ip: Option<String>,
    pub start_time: Option<String>,
    pub containers: Vec<Container>,
    /// Init containers, in the order they run.
    pub init_containers: Vec<Container>,
    pub message: Option<String>,
    pub reason: Option<String>,
}

impl PodStatus {
    pub fn pending() -> Self {
        PodStatus {
            phase: "Pending",
            conditions: Vec::new(),
            host_ip: None,
            pod_ip: None,
            start_time: None,
            containers: Vec::new(),
            init_containers: Vec::new(),
            message: None,
            reason: None,
        }
    }

    /// Sets a condition; its transition time moves only when its status changes.
    pub fn set(
        &mut self,
        kind: &'static str,
        status: bool,
        reason: Option<&str>,
        message: Option<String>,
    ) {
        let reason = reason.map(str::to_string);
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != status {
                    c.since = now_rfc3339();
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
            }
            None => self.conditions.push(Condition {
                kind,
                status,
                reason,
                message,
                since: now_rfc3339(),
            }),
        }
    }

    /// Ready and ContainersReady from the containers (the kubelet's own rule).
    pub fn derive_readiness(&mut self) {
        let unready: Vec<String> = self
            .containers
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.clone())
            .collect();
        let done = matches!(self.phase, "Succeeded" | "Failed");
        let (reason, message) = if done {
            (Some("PodCompleted"), None)
        } else if unready.is_empty() {
            (None, None)
        } else {
            (
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        };
        let ok = unready.is_empty() && !done;
        self.set("ContainersReady", ok, reason, message.clone());
        self.set("Ready", ok, reason, message);
        if done {
            self.set("PodReadyToStartContainers", false, None, None);
        }
    }

    pub fn render(&self) -> Value {
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                let mut v = json!({"type": c.kind, "status": if c.status { "True" } else { "False" },
                    "lastProbeTime": null, "lastTransitionTime": c.since});
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(m) = &c.message {
                    v["message"] = json!(m);
                }
                v
            })
            .collect();
        let mut s =
            json!({"phase": self.phase, "conditions": conditions, "qosClass": "BestEffort"});
        if let Some(ip) = &self.host_ip {
            s["hostIP"] = json!(ip);
            s["hostIPs"] = json!([{"ip": ip}]);
        }
        if let Some(ip) = &self.pod_ip {
            s["podIP"] = json!(ip);
            s["podIPs"] = json!([{"ip": ip}]);
        }
        if let Some(t) = &self.start_time {
            s["startTime"] = json!(t);
        }
        if !self.containers.is_empty() {
            s["containerStatuses"] = json!(
                self.containers
                    .iter()
                    .map(Container::render)
                    .collect::<Vec<_>>()
            );
        }
        if !self.init_containers.is_empty() {
            s["initContainerStatuses"] = json!(
                self.init_containers
                    .iter()
                    .map(Container::render)
                    .collect::<Vec<_>>()
            );
        }
        if let Some(m) = &self.message {
            s["message"] = json!(m);
        }
        if let Some(r) = &self.reason {
            s["reason"] = json!(r);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_order_and_times() {
        let mut s = PodStatus::pending();
        s.set("PodScheduled", true, None, None);
        s.set("Initialized", true, None, None);
        s.containers
            .push(Container::new(&json!({"name": "c", "image": "i"})));
        s.derive_readiness();
        let v = s.render();
        let kinds: Vec<&str> = v["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
        );
        assert_eq!(v["conditions"][3]["status"], "False");
        assert_eq!(
            v["conditions"][3]["message"],
            "containers with unready status: [c]"
        );
        assert_eq!(
            v["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
    }
}
