//! Request and response plumbing shared by the handlers.

use crate::status::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::Value;
use std::convert::Infallible;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Request bodies larger than this are refused (the biggest Istio CRD is well below).
const MAX_BODY: usize = 16 << 20;

/// A request with its body read.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The connection, once answered 101, for a request that asks to upgrade it (websockets).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Req {
    pub async fn read(req: hyper::Request<Incoming>) -> Result<Req, ApiError> {
        let (mut parts, body) = req.into_parts();
        let upgrade = parts
            .headers
            .contains_key(hyper::header::UPGRADE)
            .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
            .flatten();
        let body = http_body_util::Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
            .to_bytes();
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let path = percent_encoding::percent_decode_str(parts.uri.path())
            .decode_utf8_lossy()
            .into_owned();
        Ok(Req {
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body,
            upgrade,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A verb for the counters when routing did not happen.
    pub fn verb_hint(&self) -> &'static str {
        match self.method {
            Method::GET if matches!(self.param("watch"), Some("true" | "1")) => "watch",
            Method::GET
                if crate::resource_path::parse_path(&self.path)
                    .is_some_and(|t| t.name.is_none()) =>
            {
                "list"
            }
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "unknown",
        }
    }

    /// The body as JSON (or YAML, which also covers JSON).
    pub fn body_value(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        let content_type = self.header("content-type").unwrap_or("application/json");
        if content_type.starts_with(crate::protobuf::CONTENT_TYPE) {
            crate::protobuf::decode(&self.body)
                .map_err(|m| ApiError::new(415, "UnsupportedMediaType", m))
        } else if content_type.contains("yaml") {
            serde_yaml::from_slice::<Value>(&self.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
            })
        } else {
            serde_json::from_slice::<Value>(&self.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
            })
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub fn text_response(code: u16, text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

/// Adds `Warning: 299 - "<text>"` headers, as the API server does.
pub fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", v);
        }
    }
}
