//! The HTTPS listener of one cluster: TLS, HTTP/1.1 and h2, the fault
//! layer, authentication, then routing to the handlers.

use crate::cluster::ClusterInner;
use crate::handlers;
use crate::http::{Body, Req, error_response};
use crate::status::ApiError;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Serves the cluster on `listener` until the task is aborted; closes and
/// reopens the port as the "down" fault says.
pub(crate) async fn serve(cluster: Arc<ClusterInner>, mut listener: Option<TcpListener>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], cluster.port));
    let acceptor = TlsAcceptor::from(cluster.tls.server_config.clone());
    let mut down = cluster.faults.down_watch();
    let mut connections = JoinSet::new();
    loop {
        if *down.borrow_and_update() {
            listener = None;
            connections.abort_all();
        } else if listener.is_none() {
            listener = rebind(addr).await;
        }
        let Some(l) = &listener else {
            // Down: wait for "up" (or, if the port is taken, retry shortly).
            if *down.borrow() {
                if down.changed().await.is_err() {
                    return;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let cluster = cluster.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |req| {
                        let cluster = cluster.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(cluster, req).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                });
            }
            changed = down.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    TcpListener::bind(addr).await.ok()
}

async fn handle(
    cluster: Arc<ClusterInner>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Body> {
    let latency = cluster.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let req = match Req::read(req).await {
        Ok(r) => r,
        Err(e) => {
            cluster.faults.count("unknown", e.code);
            return error_response(&e);
        }
    };
    let (verb, resp) = if let Some((code, retry_after)) = cluster.faults.pick_error() {
        (req.verb_hint(), injected(code, retry_after))
    } else {
        handlers::route(&cluster, req).await
    };
    cluster.faults.count(verb, resp.status().as_u16());
    resp
}

fn injected(code: u16, retry_after: u64) -> hyper::Response<Body> {
    let err = match code {
        429 => ApiError::too_many_requests(retry_after),
        503 => ApiError::unavailable("injected fault: service unavailable"),
        _ => ApiError::internal("injected fault: internal error"),
    };
    let mut resp = error_response(&err);
    if code == 429
        && let Ok(v) = hyper::header::HeaderValue::from_str(&retry_after.to_string())
    {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    resp
}
