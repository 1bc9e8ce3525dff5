//! The websocket upgrade as the API server answers it (RFC 6455 handshake,
//! subprotocol negotiation as `k8s.io/apiserver/pkg/util/wsstream` does it);
//! frames are tokio-tungstenite's.

use crate::http::{Body, Req, full};
use crate::status::ApiError;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The server side of an upgraded connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// An accepted websocket handshake whose 101 answer is on its way: the
/// subprotocol chosen (empty when the client offered none).
pub(crate) struct Pending {
    pub protocol: &'static str,
    upgrade: OnUpgrade,
}

impl Pending {
    /// The websocket, once hyper has handed over the connection (after the
    /// 101 is written); `None` if the client went away first.
    pub async fn socket(self) -> Option<Socket> {
        let upgraded = self.upgrade.await.ok()?;
        Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
    }
}

/// Whether the request asks for a websocket (`Connection: Upgrade`, `Upgrade: websocket`).
pub(crate) fn is_websocket(req: &Req) -> bool {
    let has = |name: &str, token: &str| {
        req.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has("connection", "upgrade") && has("upgrade", "websocket")
}

/// Accepts the handshake with the first subprotocol the client offers that
/// `supported` lists (none offered: the empty protocol, if `supported` has it):
/// the 101 answer to send, and the socket to come.
pub(crate) fn accept(
    req: &Req,
    upgrade: Option<OnUpgrade>,
    supported: &[&'static str],
) -> Result<(Response<Body>, Pending), ApiError> {
    if !is_websocket(req) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let (Some(key), Some(upgrade)) = (req.header("sec-websocket-key"), upgrade) else {
        return Err(ApiError::bad_request(
            "websocket handshake without Sec-WebSocket-Key",
        ));
    };
    if req.header("sec-websocket-version") != Some("13") {
        return Err(ApiError::bad_request("unsupported websocket version"));
    }
    let offered: Vec<&str> = req
        .headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = negotiate(&offered, supported).ok_or_else(|| {
        ApiError::bad_request(format!(
            "requested protocol(s) are not supported: {offered:?}; supports {supported:?}"
        ))
    })?;
    let mut response = Response::new(full(Vec::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        "upgrade",
        hyper::header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        "connection",
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    let accept = derive_accept_key(key.as_bytes());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", v);
    }
    if !protocol.is_empty() {
        headers.insert(
            "sec-websocket-protocol",
            hyper::header::HeaderValue::from_static(protocol),
        );
    }
    Ok((response, Pending { protocol, upgrade }))
}

/// The client's first offer the server speaks; with no offer, the empty protocol.
fn negotiate(offered: &[&str], supported: &[&'static str]) -> Option<&'static str> {
    if offered.is_empty() {
        return supported.iter().copied().find(|p| p.is_empty());
    }
    offered
        .iter()
        .find_map(|o| supported.iter().copied().find(|s| !s.is_empty() && s == o))
}

#[cfg(test)]
mod tests {
    use super::negotiate;

    #[test]
    fn the_clients_order_decides_among_what_the_server_speaks() {
        let server = ["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];
        assert_eq!(
            negotiate(&["v5.channel.k8s.io", "v4.channel.k8s.io"], &server),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate(&[], &server), Some(""));
        assert_eq!(negotiate(&["SPDY/3.1+portforward.k8s.io"], &server), None);
        assert_eq!(negotiate(&[], &["v4.channel.k8s.io"]), None);
    }
}
