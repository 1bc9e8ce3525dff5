//! `pods/{name}/portforward` over a websocket, as the API server proxies it
//! to the kubelet (`pkg/kubelet/cri/streaming/portforward/websocket.go`):
//! per requested port i a data channel 2i and an error channel 2i+1, each
//! opened by a frame carrying the port as two bytes little-endian. What
//! listens behind a port is the pod's business (istiod's 15014, say); a
//! port nothing listens on, or a pod that is not running, gets the
//! kubelet's error text on the error channel, then the socket closes.

use super::channel::{Frame, Framing, V4_BASE64, V4_BINARY};
use super::upgrade::{Socket, accept};
use crate::cluster::ClusterInner;
use crate::http::{Body, Req, error_response};
use crate::status::ApiError;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The subprotocols the kubelet's websocket port-forward speaks; the empty
/// one (no `Sec-WebSocket-Protocol`) is binary.
const PROTOCOLS: [&str; 3] = ["", V4_BINARY, V4_BASE64];

/// Answers `GET /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=...`
/// (authorized already): the 101 answer, the session running on its own task.
pub(crate) fn serve(
    cluster: &Arc<ClusterInner>,
    req: &Req,
    upgrade: Option<OnUpgrade>,
    pod: Value,
) -> Response<Body> {
    let ports = match ports(req) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let (response, pending) = match accept(req, upgrade, &PROTOCOLS) {
        Ok(a) => a,
        Err(e) => return error_response(&e),
    };
    let framing = Framing::of(pending.protocol);
    let cluster = cluster.clone();
    tokio::spawn(async move {
        if let Some(socket) = pending.socket().await {
            cluster.streams.count_port_forward();
            session(&cluster, socket, framing, &pod, &ports).await;
        }
    });
    response
}

/// The `ports` parameter: repeated, or comma separated, each 1..=65535.
fn ports(req: &Req) -> Result<Vec<u16>, ApiError> {
    let mut out = Vec::new();
    for (_, value) in req.query.iter().filter(|(k, _)| k == "ports") {
        for p in value.split(',') {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => out.push(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unable to parse {value:?} as a port"
                    )));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required",
        ));
    }
    Ok(out)
}

/// From a port's connection to the websocket.
enum Out {
    Data(u8, Bytes),
    /// The pod side of port i closed its connection.
    Eof(usize),
}

async fn session(
    cluster: &Arc<ClusterInner>,
    socket: Socket,
    framing: Framing,
    pod: &Value,
    ports: &[u16],
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(16);
    let mut writers: Vec<Option<WriteHalf<DuplexStream>>> = Vec::with_capacity(ports.len());
    let mut open = 0;
    for (i, &port) in ports.iter().enumerate() {
        let data = (2 * i) as u8;
        let prefix = port.to_le_bytes();
        if sink.send(framing.encode(data, &prefix)).await.is_err()
            || sink.send(framing.encode(data + 1, &prefix)).await.is_err()
        {
            return;
        }
        match connect(cluster, pod, port) {
            Ok(conn) => {
                let (mut read, write) = tokio::io::split(conn);
                writers.push(Some(write));
                open += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let chunk = Bytes::copy_from_slice(&buf[..n]);
                                if tx.send(Out::Data(data, chunk)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = tx.send(Out::Eof(i)).await;
                });
            }
            Err(text) => {
                writers.push(None);
                if sink
                    .send(framing.encode(data + 1, text.as_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    drop(tx);
    // Until every port's connection is done or the client closes.
    while open > 0 {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { break };
                match framing.decode(message) {
                    Ok(Frame::Data(ch, bytes)) if ch % 2 == 0 => {
                        let i = usize::from(ch / 2);
                        if let Some(Some(w)) = writers.get_mut(i)
                            && w.write_all(&bytes).await.is_err()
                        {
                            writers[i] = None;
                        }
                    }
                    Ok(Frame::Close) | Err(_) => break,
                    // Writes to an error channel, pings: nothing to do.
                    Ok(_) => {}
                }
            }
            Some(out) = rx.recv() => match out {
                Out::Data(ch, bytes) => {
                    if sink.send(framing.encode(ch, &bytes)).await.is_err() {
                        break;
                    }
                }
                Out::Eof(i) => {
                    writers[i] = None;
                    open -= 1;
                }
            },
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}

/// A connection to `port` inside the pod, or the kubelet's error text.
fn connect(cluster: &Arc<ClusterInner>, pod: &Value, port: u16) -> Result<DuplexStream, String> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prefix = format!("error forwarding port {port} to pod {name}_{ns}, uid {uid}");
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    if phase != "Running" || pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(format!(
            "{prefix}: sandbox container of pod {name} is not running (phase {phase})"
        ));
    }
    crate::istio::monitoring::listener(cluster, pod, port).ok_or_else(|| {
        format!(
            "{prefix}: failed to connect to localhost:{port} inside namespace \"{uid}\", \
             IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused \
             IPv6 dial tcp6 [::1]:{port}: connect: connection refused "
        )
    })
}
