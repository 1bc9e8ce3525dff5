//! What the client sees: helloworld's bodies, Envoy's local replies and curl's
//! error lines, byte for byte where we know them.

use super::view::App;

/// Envoy's default upstream connect timeout in Istio (`connectTimeout`, 10s).
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Why one upstream attempt failed, as Envoy classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No route to the pod IP (another flat network): the connect timer fires.
    ConnectTimeout,
    /// Nothing listens (no gateway listener, no app on the port): TCP RST, errno 111.
    Refused,
    /// The client rejects the server's certificate: unknown root or SAN outside its trust domains.
    CertificateVerifyFailed,
    /// The server rejects the client's certificate: it does not trust the client's root.
    UnknownCa,
    /// The peer (a gateway without a matching SNI route) closes during the handshake.
    HandshakeReset,
    /// istiod does not know the proxy on one side under its cluster ID (FACTS 9 items 7, 8).
    IdentityUnknown,
}

impl Failure {
    /// `reset reason: ...` as Envoy writes it in its 503 body.
    pub fn reset_reason(self) -> &'static str {
        match self {
            Self::ConnectTimeout => "connection timeout",
            Self::Refused => {
                "remote connection failure, transport failure reason: delayed connect error: 111"
            }
            Self::CertificateVerifyFailed => {
                "connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
            }
            Self::UnknownCa => {
                "connection failure, transport failure reason: TLS_error:|268436502:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA:TLS_error_end"
            }
            Self::HandshakeReset => {
                "connection failure, transport failure reason: TLS_error:|33554536:system library:OPENSSL_internal:Connection reset by peer:TLS_error_end"
            }
            Self::IdentityUnknown => "connection failure",
        }
    }

    /// Time the attempt takes before Envoy gives up on it.
    pub fn elapsed_ms(self) -> u64 {
        match self {
            Self::ConnectTimeout => CONNECT_TIMEOUT_MS,
            _ => 1,
        }
    }
}

/// Envoy's 503 body after its last attempt failed. With more than one attempt Envoy says so.
pub fn upstream_error(last: Failure, attempts: usize) -> String {
    if attempts > 1 {
        format!(
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: {}",
            last.reset_reason()
        )
    } else {
        format!(
            "upstream connect error or disconnect/reset before headers. reset reason: {}",
            last.reset_reason()
        )
    }
}

/// Envoy's 503 body when the cluster has no healthy host.
pub const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";

/// An HTTP answer from the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppReply {
    pub status: u16,
    pub body: String,
}

/// What the application in `pod` answers for `path`, or `None` when nothing listens.
/// helloworld (`samples/helloworld/src/app.py`): `/hello` and `/health`; Flask's 404 otherwise.
pub fn app_reply(app: &App, pod: &str, path: &str) -> Option<AppReply> {
    let App::HelloWorld { version } = app else {
        return None;
    };
    let route = path.split('?').next().unwrap_or("/");
    Some(match route {
        "/hello" => AppReply {
            status: 200,
            body: format!("Hello version: {version}, instance: {pod}\n"),
        },
        "/health" => AppReply {
            status: 200,
            body: "Helloworld is healthy".into(),
        },
        _ => AppReply {
            status: 404,
            body: FLASK_404.into(),
        },
    })
}

const FLASK_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";

/// curl's line when DNS has no answer.
pub fn curl_unresolved(host: &str) -> String {
    format!("curl: (6) Could not resolve host: {host}")
}

/// curl's line when the connection is refused (no endpoint behind a ClusterIP, or a sidecar
/// without listeners).
pub fn curl_refused(host: &str, port: u16) -> String {
    format!(
        "curl: (7) Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
    )
}

/// curl's line when the peer resets a plaintext request (a STRICT sidecar refusing plaintext).
pub const CURL_RESET: &str = "curl: (56) Recv failure: Connection reset by peer";

/// curl's line when `--max-time` expires first.
pub fn curl_timeout(timeout_secs: u32) -> String {
    format!(
        "curl: (28) Operation timed out after {} milliseconds with 0 bytes received",
        u64::from(timeout_secs) * 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helloworld_answers_like_the_sample() {
        let app = App::HelloWorld {
            version: "v2".into(),
        };
        let r = app_reply(&app, "helloworld-v2-7f9d-abcde", "/hello").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            "Hello version: v2, instance: helloworld-v2-7f9d-abcde\n"
        );
        assert_eq!(app_reply(&app, "p", "/nope").unwrap().status, 404);
        assert!(app_reply(&App::Other, "p", "/hello").is_none());
    }

    #[test]
    fn envoy_mentions_retries_only_when_it_retried() {
        let one = upstream_error(Failure::CertificateVerifyFailed, 1);
        assert!(one.starts_with("upstream connect error or disconnect/reset before headers. reset reason: connection failure"));
        assert!(one.contains("CERTIFICATE_VERIFY_FAILED"));
        let three = upstream_error(Failure::Refused, 3);
        assert!(three.contains("retried and the latest reset reason: remote connection failure"));
    }
}
