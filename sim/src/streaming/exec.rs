//! `pods/{name}/exec` over a websocket: the command (`command`, repeated) runs in the named
//! container through the shell model, with the container's environment and the pod's network
//! (from `istio-proxy`, the proxy's own view: past the sidecar). With `stdin`, a bare `sh`
//! reads its commands from the client (`kubectl exec -i[t] POD -- sh`); the error channel
//! carries the exit status at the end.

use super::channel::Framing;
use super::remotecommand::{self, End, PROTOCOLS, Process, Streams, Version, session};
use super::upgrade::accept;
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response};
use crate::shell::{Output, Stream, Terminal, quote_argv};
use crate::status::ApiError;
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Answers `GET|POST .../pods/{name}/exec?command=...` (authorized already): the 101 answer,
/// the session running on its own task.
pub(crate) fn serve(
    cluster: &Arc<ClusterInner>,
    req: &Req,
    upgrade: Option<OnUpgrade>,
    pod: Value,
) -> Response<Body> {
    match start(cluster, req, upgrade, pod) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn start(
    cluster: &Arc<ClusterInner>,
    req: &Req,
    upgrade: Option<OnUpgrade>,
    pod: Value,
) -> Result<Response<Body>, ApiError> {
    let argv: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let streams = Streams::of(req)?;
    let spec = remotecommand::container(&pod, req.param("container"), "exec into")?;
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    remotecommand::running(&pod, &name)?;
    let (response, pending) = accept(req, upgrade, &PROTOCOLS)?;
    let framing = Framing::of(pending.protocol);
    let version = Version::of(pending.protocol);
    let (program, net, prompt) = crate::kubelet::exec_program(cluster, &pod, &spec, argv);
    tokio::spawn(async move {
        let Some(socket) = pending.socket().await else {
            return;
        };
        let (out_tx, output) = mpsc::unbounded_channel();
        let (end_tx, end) = oneshot::channel();
        let (stdin_tx, mut stdin_rx) = mpsc::unbounded_channel();
        let command = quote_argv(program.argv());
        let interactive = streams.stdin && program.reads_stdin();
        let task = tokio::spawn(async move {
            let mut out = ToClient {
                tx: out_tx,
                // A terminal turns \n into \r\n (the interactive shell does so itself).
                crlf: streams.tty && !interactive,
            };
            let code = if streams.stdin {
                let term = Terminal {
                    tty: streams.tty,
                    prompt: prompt.to_string(),
                };
                program
                    .run_with_stdin(net.as_ref(), &mut stdin_rx, &term, &mut out)
                    .await
            } else {
                program.run(net.as_ref(), &mut out).await
            };
            let _ = end_tx.send(End::Exit(code));
        });
        let process = Process {
            stdin: streams.stdin.then_some(stdin_tx),
            on_stdin_close: None,
            output,
            end,
            command,
        };
        if session(socket, framing, version, streams, process).await == remotecommand::Outcome::Gone
        {
            // The client went away: the exec'd process is killed with its session.
            task.abort();
        }
    });
    Ok(response)
}

/// A program's output on its way to the client.
struct ToClient {
    tx: mpsc::UnboundedSender<(Stream, String)>,
    crlf: bool,
}

impl Output for ToClient {
    fn write(&mut self, stream: Stream, text: &str) {
        let text = if self.crlf {
            text.replace('\n', "\r\n")
        } else {
            text.to_string()
        };
        // A client gone: the output has nowhere to go.
        let _ = self.tx.send((stream, text));
    }
}
