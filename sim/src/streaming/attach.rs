//! `pods/{name}/attach` over a websocket: joins the running program of a container the kubelet
//! runs: what it writes from now on goes to the client, and the client's input to its stdin
//! when the container has one (`kubectl run -it ... -- sh`: the shell reads it). The session
//! ends with the program (status Success: attach does not report the exit code, the pod's
//! status does), or when the client detaches; with `stdinOnce` the first detach closes the
//! program's stdin for good.

use super::channel::Framing;
use super::remotecommand::{self, End, PROTOCOLS, Process, Streams, Version, session};
use super::upgrade::accept;
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response};
use crate::status::ApiError;
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

/// Answers `GET|POST .../pods/{name}/attach` (authorized already): the 101 answer, the
/// session running on its own task.
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
    let streams = Streams::of(req)?;
    let spec = remotecommand::container(&pod, req.param("container"), "attach to")?;
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    remotecommand::running(&pod, &name)?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(io) = cluster.stdio.container(uid, &name) else {
        let image = spec.get("image").and_then(Value::as_str).unwrap_or("?");
        return Err(ApiError::internal(format!(
            "meshsim: attaching to container {name:?} is not modelled: it runs the image's own \
             process ({image}), whose output the model does not know; only shell programs \
             (curl, sleep, sh) can be attached to"
        )));
    };
    if io.exited().borrow().is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("container not found ({name:?})"),
        ));
    }
    let (response, pending) = accept(req, upgrade, &PROTOCOLS)?;
    let framing = Framing::of(pending.protocol);
    let version = Version::of(pending.protocol);
    let streams = Streams {
        tty: streams.tty && io.tty,
        ..streams
    };
    tokio::spawn(async move {
        let Some(socket) = pending.socket().await else {
            return;
        };
        let mut from_program = io.subscribe();
        let mut exited = io.exited();
        let (out_tx, output) = mpsc::unbounded_channel();
        let (end_tx, end) = oneshot::channel();
        // The program's output and end, forwarded until the session is over.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    chunk = from_program.recv() => match chunk {
                        Ok(c) => {
                            if out_tx.send(c).is_err() {
                                return;
                            }
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    },
                    _ = exited.wait_for(Option::is_some) => {
                        while let Ok(c) = from_program.try_recv() {
                            let _ = out_tx.send(c);
                        }
                        break;
                    }
                    _ = out_tx.closed() => return,
                }
            }
            let _ = end_tx.send(End::Exit(0));
        });
        let stdin = if streams.stdin { io.stdin() } else { None };
        let detach = io.clone();
        let process = Process {
            on_stdin_close: stdin
                .is_some()
                .then(|| Box::new(move || detach.detach_stdin()) as Box<dyn FnOnce() + Send>),
            stdin,
            output,
            end,
            command: String::new(),
        };
        session(socket, framing, version, streams, process).await;
    });
    Ok(response)
}
