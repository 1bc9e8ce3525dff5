//! `?watch=true`: newline-delimited watch events from a resourceVersion,
//! filtered by type, namespace and selectors, until `timeoutSeconds`.

use super::body::for_version;
use super::request::{Ctx, Selectors};
use super::table;
use crate::http::Body;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::{EventType, WatchEvent};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The API server's default watch length when the client sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

pub(super) fn serve(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let req = ctx.req;
    let selectors = Selectors::from_req(req)?;
    let timeout = match req.param("timeoutSeconds") {
        None => DEFAULT_TIMEOUT,
        Some(t) => Duration::from_secs(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "timeoutSeconds must be a non-negative integer, got {t:?}"
            ))
        })?),
    };
    let bookmarks = matches!(req.param("allowWatchBookmarks"), Some("true" | "1"));
    let store = &ctx.cluster.store;
    let rt = ctx.rt.clone();
    let namespace = ctx.target.namespace.clone();
    // `kubectl get -w` asks for Table rows; the columns go with the first event only.
    let table = table::wants_table(req).then(|| {
        req.param("includeObject")
            .unwrap_or("PartialObjectMetadata")
            .to_string()
    });
    let mut columns_sent = false;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut first: Vec<Bytes> = Vec::new();
    let mut backlog: Vec<Arc<WatchEvent>> = Vec::new();
    let mut live = None;
    match req
        .param("resourceVersion")
        .filter(|r| !r.is_empty() && *r != "0")
    {
        None => {
            let (items, rv) = store.list(&rt, namespace.as_deref());
            let (events, rx) = store.subscribe(rv)?;
            for obj in items.iter().filter(|o| selectors.matches(o)) {
                first.push(line(
                    "ADDED",
                    &render(&rt, obj, table.as_ref(), &mut columns_sent),
                ));
            }
            backlog = events;
            live = Some(rx);
        }
        Some(rv) => {
            let rv: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
            match store.subscribe(rv) {
                Ok((events, rx)) => {
                    backlog = events;
                    live = Some(rx);
                }
                Err(e) => first.push(line("ERROR", &e.to_status())),
            }
        }
    }
    let mut filter = Filter {
        rt,
        namespace,
        selectors,
        table,
        columns_sent,
    };
    let current_rv = store.resource_version();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        for e in backlog {
            if let Some(b) = filter.render(&e)
                && tx.send(b).await.is_err()
            {
                return;
            }
        }
        let Some(mut live) = live else { return };
        if bookmarks {
            let bookmark = json!({"kind": filter.rt.kind, "apiVersion": filter.rt.api_version(),
                "metadata": {"resourceVersion": current_rv.to_string()}});
            if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                got = live.recv() => match got {
                    Ok(e) => {
                        if let Some(b) = filter.render(&e)
                            && tx.send(b).await.is_err()
                        {
                            return;
                        }
                    }
                    // Fell behind: end the watch; the client re-lists.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    selectors: Selectors,
    /// `includeObject` when the client wants Table rows.
    table: Option<String>,
    columns_sent: bool,
}

fn render(
    rt: &ResourceType,
    obj: &Arc<Value>,
    table: Option<&String>,
    columns_sent: &mut bool,
) -> Value {
    match table {
        None => for_version(rt, obj),
        Some(include) => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("0");
            let t = table::table_for(rt, std::slice::from_ref(obj), rv, include, !*columns_sent);
            *columns_sent = true;
            t
        }
    }
}

impl Filter {
    fn render(&mut self, e: &WatchEvent) -> Option<Bytes> {
        if e.gr.group != self.rt.group || e.gr.resource != self.rt.resource {
            return None;
        }
        if let Some(ns) = &self.namespace
            && &e.namespace != ns
        {
            return None;
        }
        let now = self.selectors.matches(&e.object);
        let kind = match e.kind {
            EventType::Added if now => "ADDED",
            EventType::Deleted if now => "DELETED",
            EventType::Modified => {
                let before = e
                    .previous
                    .as_ref()
                    .is_none_or(|p| self.selectors.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        let object = render(
            &self.rt,
            &e.object,
            self.table.as_ref(),
            &mut self.columns_sent,
        );
        Some(line(kind, &object))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}
