//! What exec and attach share, as the kubelet's remote command server speaks it over a
//! websocket (`pkg/kubelet/cri/streaming/remotecommand/websocket.go`): the subprotocols,
//! the channels (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds 255, the client's
//! close of a channel), the request's stream options, the container it names and the status
//! that ends a session.

use super::channel::{Frame, Framing, V4_BASE64, V4_BINARY};
use super::upgrade::Socket;
use crate::http::Req;
use crate::shell::Stream;
use crate::status::ApiError;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// `v5.channel.k8s.io`: v4 and the close signal (channel 255).
const V5_BINARY: &str = "v5.channel.k8s.io";
/// Before v4: the error channel carries plain text.
const V1_BINARY: &str = "channel.k8s.io";
const V1_BASE64: &str = "base64.channel.k8s.io";

/// The subprotocols offered, as the kubelet lists them; the empty one (no
/// `Sec-WebSocket-Protocol`) is the oldest, binary.
pub(crate) const PROTOCOLS: [&str; 6] = ["", V1_BINARY, V1_BASE64, V4_BINARY, V4_BASE64, V5_BINARY];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
/// v5: the client closes the channel named in the data (stdin: its end of input).
const CLOSE: u8 = 255;

/// The remote command protocol generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `channel.k8s.io` and the empty protocol: errors as text.
    V1,
    /// `v4.*`: errors as a metav1.Status.
    V4,
    /// `v5.channel.k8s.io`: v4 with the close signal.
    V5,
}

impl Version {
    pub(crate) fn of(protocol: &str) -> Version {
        if protocol.starts_with("v5.") {
            Version::V5
        } else if protocol.starts_with("v4.") {
            Version::V4
        } else {
            Version::V1
        }
    }
}

/// The streams a request asks for (`stdin`, `stdout`, `stderr`, `tty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Streams {
    /// From the query, checked as the API server checks `PodExecOptions`/`PodAttachOptions`.
    pub(crate) fn of(req: &Req) -> Result<Streams, ApiError> {
        let flag = |k: &str| matches!(req.param(k), Some("true" | "1"));
        let s = Streams {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        };
        if !(s.stdin || s.stdout || s.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(s)
    }
}

/// The container a request names (`container`, or the pod's only one) and its spec: app
/// containers, then init containers (a native sidecar), as the API server looks them up.
/// `action` is how the refusal of a completed pod says it ("exec into", "attach to").
pub(crate) fn container(
    pod: &Value,
    wanted: Option<&str>,
    action: &str,
) -> Result<Value, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed") {
        return Err(ApiError::bad_request(format!(
            "cannot {action} a container in a completed pod; current phase is {phase}"
        )));
    }
    let list = |key: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let containers = list("containers");
    let all: Vec<Value> = containers
        .iter()
        .chain(list("initContainers").iter())
        .cloned()
        .collect();
    let name_of = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) => all.into_iter().find(|c| name_of(c) == w).ok_or_else(|| {
            ApiError::bad_request(format!("container {w} is not valid for pod {name}"))
        }),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            containers.iter().map(name_of).collect::<Vec<_>>().join(" ")
        ))),
    }
}

/// Whether the pod's status says the container runs; if not, the kubelet's answer.
pub(crate) fn running(pod: &Value, container: &str) -> Result<(), ApiError> {
    let runs = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| {
            pod.pointer(&format!("/status/{k}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .any(|s| s["name"] == container && s.pointer("/state/running").is_some());
    if runs && pod.pointer("/metadata/deletionTimestamp").is_none() {
        Ok(())
    } else {
        Err(ApiError::new(
            404,
            "NotFound",
            format!("container not found ({container:?})"),
        ))
    }
}

/// How a session's process ended.
pub(crate) enum End {
    /// It exited with this code.
    Exit(i32),
    /// It could not run (or the stream failed): the error's text.
    Error(String),
}

/// A running process, as a session sees it.
pub(crate) struct Process {
    /// Its stdin, while open (dropped on the client's close of stdin).
    pub stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Called once when the client closes its stdin (or goes away).
    pub on_stdin_close: Option<Box<dyn FnOnce() + Send>>,
    /// What it writes, in order; everything written before `end` resolves is here by then.
    pub output: mpsc::UnboundedReceiver<(Stream, String)>,
    pub end: oneshot::Receiver<End>,
    /// The command, for the status message of a non-zero exit.
    pub command: String,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The process ended; its status was sent.
    Ended,
    /// The client went away first.
    Gone,
}

impl Process {
    fn close_stdin(&mut self) {
        self.stdin = None;
        if let Some(hook) = self.on_stdin_close.take() {
            hook();
        }
    }
}

/// Runs a session: stdin from the client to the process, its output to the client, then the
/// status on the error channel and the close.
pub(crate) async fn session(
    socket: Socket,
    framing: Framing,
    version: Version,
    streams: Streams,
    mut process: Process,
) -> Outcome {
    let (mut sink, mut stream) = socket.split();
    let send_output = |(s, text): (Stream, String)| -> Option<Message> {
        let channel = match s {
            _ if streams.tty => STDOUT,
            Stream::Stdout => STDOUT,
            Stream::Stderr => STDERR,
        };
        let wanted = if channel == STDOUT {
            streams.stdout
        } else {
            streams.stderr
        };
        wanted.then(|| framing.encode(channel, text.as_bytes()))
    };
    let end = loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else {
                    process.close_stdin();
                    break None;
                };
                match framing.decode(message) {
                    Ok(Frame::Data(STDIN, bytes)) => {
                        if let Some(tx) = &process.stdin
                            && !bytes.is_empty()
                        {
                            let _ = tx.send(bytes.to_vec());
                        }
                    }
                    Ok(Frame::Data(CLOSE, bytes)) if version == Version::V5 => {
                        if bytes.first() == Some(&STDIN) {
                            process.close_stdin();
                        }
                    }
                    Ok(Frame::Close) | Err(_) => {
                        process.close_stdin();
                        break None;
                    }
                    // Resize (4) and anything else: a terminal's size changes nothing here.
                    Ok(_) => {}
                }
            }
            Some(chunk) = process.output.recv() => {
                if let Some(m) = send_output(chunk)
                    && sink.send(m).await.is_err()
                {
                    break None;
                }
            }
            end = &mut process.end => {
                break Some(end.unwrap_or_else(|_| End::Error("the process was lost".into())));
            }
        }
    };
    let Some(end) = end else {
        return Outcome::Gone;
    };
    process.close_stdin();
    // What the process wrote before it ended goes first.
    while let Ok(chunk) = process.output.try_recv() {
        if let Some(m) = send_output(chunk)
            && sink.send(m).await.is_err()
        {
            return Outcome::Gone;
        }
    }
    let status = status_bytes(version, &end, &process.command);
    let _ = sink.send(framing.encode(ERROR, &status)).await;
    // A normal closure (1000), as the API server's websocket ends: kubectl takes a close
    // without a status code (1005) for an error.
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(normal))).await;
    let _ = sink.close().await;
    Outcome::Ended
}

/// The error channel's message: nothing for success before v4, a metav1.Status from v4 (the
/// kubelet's `NonZeroExitCode` with the `ExitCode` cause for a non-zero exit).
fn status_bytes(version: Version, end: &End, command: &str) -> Vec<u8> {
    let message = match end {
        End::Exit(0) => None,
        End::Exit(code) => Some(format!(
            "command terminated with non-zero exit code: command '{command}' exited with {code}: "
        )),
        End::Error(text) => Some(text.clone()),
    };
    if version == Version::V1 {
        return message.unwrap_or_default().into_bytes();
    }
    let status = match (end, message) {
        (_, None) => json!({"metadata": {}, "status": "Success"}),
        (End::Exit(code), Some(message)) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        (End::Error(_), Some(message)) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
        }),
    };
    serde_json::to_vec(&status).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_by_version() {
        let ok = status_bytes(Version::V5, &End::Exit(0), "true");
        assert_eq!(ok, br#"{"metadata":{},"status":"Success"}"#);
        let v: Value =
            serde_json::from_slice(&status_bytes(Version::V4, &End::Exit(3), "sh -c exit 3"))
                .unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        assert!(status_bytes(Version::V1, &End::Exit(0), "x").is_empty());
        let text = String::from_utf8(status_bytes(Version::V1, &End::Exit(2), "x")).unwrap();
        assert!(text.starts_with("command terminated with non-zero exit code"));
        assert_eq!(Version::of("v5.channel.k8s.io"), Version::V5);
        assert_eq!(Version::of("v4.base64.channel.k8s.io"), Version::V4);
        assert_eq!(Version::of(""), Version::V1);
    }

    #[test]
    fn the_container_a_request_names() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}],
                     "initContainers": [{"name": "istio-init"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "state": {"running": {}}},
                {"name": "istio-proxy", "state": {"waiting": {}}}]},
        });
        assert_eq!(
            container(&pod, Some("app"), "exec into").unwrap()["name"],
            "app"
        );
        assert_eq!(
            container(&pod, Some("istio-init"), "exec into").unwrap()["name"],
            "istio-init"
        );
        let e = container(&pod, None, "exec into").unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [app istio-proxy]"
        );
        let e = container(&pod, Some("x"), "exec into").unwrap_err();
        assert_eq!(e.message, "container x is not valid for pod p");
        assert!(running(&pod, "app").is_ok());
        let e = running(&pod, "istio-proxy").unwrap_err();
        assert_eq!(e.message, "container not found (\"istio-proxy\")");
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        let e = container(&done, Some("app"), "attach to").unwrap_err();
        assert_eq!(
            e.message,
            "cannot attach to a container in a completed pod; current phase is Succeeded"
        );
    }
}
