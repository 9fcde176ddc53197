//! `watch`: a stream of `{"type": ..., "object": ...}` lines served from the watch cache,
//! with bookmarks, `sendInitialEvents` (watch-list) and timeouts.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, StatusCode};
use rkube_api::ResourceInfo;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::Ctx;
use crate::codec::{negotiate, Output};
use crate::filter::Filter;
use crate::object;
use crate::request::Query;
use crate::status::{ApiError, ApiResult};
use crate::tables;
use crate::watch_cache::{CacheEvent, CachedObject, EventType};

struct Watcher {
    res: &'static ResourceInfo,
    filter: Filter,
    output: Output,
    query: Query,
    bookmarks: bool,
    /// The last revision sent; later events only.
    sent_rv: i64,
    first_table: bool,
    tx: mpsc::Sender<Bytes>,
}

pub(crate) async fn watch(ctx: Ctx) -> ApiResult<Response> {
    let res = ctx.req.resource;
    let output = match negotiate(&ctx.headers)? {
        Output::Table => Output::Table,
        // Watch events carry single objects: PartialObjectMetadata, as upstream.
        Output::Metadata(p) if p.list => return Err(crate::codec::wrong_partial_shape(p)),
        Output::Metadata(p) => Output::Metadata(p),
        _ => Output::Json,
    };
    let mut filter = Filter::from_query(res, ctx.req.namespace.as_deref(), &ctx.query)?;
    if let Some(name) = &ctx.req.name {
        // `GET .../pods/web?watch=true` watches one object.
        filter = filter.with_name(name);
    }
    let bookmarks = ctx.query.flag("allowWatchBookmarks")?;
    let send_initial = match ctx.query.get("sendInitialEvents") {
        None => None,
        Some(_) => Some(ctx.query.flag("sendInitialEvents")?),
    };
    let rv = ctx.query.get("resourceVersion");
    if send_initial.is_some() {
        if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::invalid_watch(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(ApiError::invalid_watch(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    } else if let Some(m) = ctx.query.get("resourceVersionMatch") {
        return Err(ApiError::invalid_watch(
            "resourceVersionMatch",
            &format!("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided (got {m:?})"),
        ));
    }
    let timeout = match ctx.query.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        _ => {
            let min = ctx.server.config.min_request_timeout;
            min + min.mul_f64(rand::random::<f64>())
        }
    };

    let cache = ctx.server.cache(res).clone();
    let parsed_rv = match rv {
        None | Some("0") => None,
        Some(v) => Some(object::parse_resource_version(v)?),
    };
    // Where to start: the current state (sent as ADDED first), or after a revision.
    let from = match (send_initial, parsed_rv) {
        (Some(true), _) | (None, None) => None,
        (Some(false), None) => Some(cache.revision()),
        (_, Some(r)) => Some(r),
    };
    if from.is_none() && rv.is_none() {
        let current = ctx.server.store.current_revision().await?;
        cache.wait_for(current).await?;
    } else if let (Some(true), Some(r)) = (send_initial, parsed_rv) {
        cache.wait_for(r).await?;
    }
    let prefix = object::prefix(res, ctx.req.namespace.as_deref());
    let start = cache.watch(from, &prefix)?;

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut w = Watcher {
        res,
        filter,
        output,
        query: ctx.query.clone(),
        bookmarks,
        sent_rv: start.revision,
        first_table: true,
        tx,
    };
    let interval = ctx.server.config.bookmark_interval;
    let guard = ctx.server.metrics.watcher(crate::metrics::WatchLabels {
        group: res.group.to_string(),
        version: res.version.to_string(),
        kind: res.kind.to_string(),
    });
    tokio::spawn(async move {
        let _guard = guard;
        let _ = run(&mut w, start, send_initial == Some(true), timeout, interval).await;
    });
    let lines = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = Body::from_stream(futures::StreamExt::map(lines, Ok::<Bytes, std::io::Error>));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        body,
    )
        .into_response())
}

impl ApiError {
    fn invalid_watch(field: &str, detail: &str) -> Self {
        ApiError::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
        )
    }
}

/// Sends the start of the watch, then live events, until the client leaves, the timeout
/// passes, or the watcher falls too far behind.
async fn run(
    w: &mut Watcher,
    start: crate::watch_cache::WatchStart,
    initial_bookmark: bool,
    timeout: Duration,
    interval: Duration,
) -> Result<(), ()> {
    let start_rv = start.revision;
    for obj in &start.initial {
        if w.filter.matches(&obj.value) {
            w.send_object(EventType::Added, obj).await?;
        }
    }
    if initial_bookmark {
        w.send_bookmark(start_rv, true).await?;
    }
    for ev in &start.backlog {
        w.send_event(ev).await?;
    }
    w.sent_rv = w.sent_rv.max(start_rv);
    let mut live = start.live;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Ok(ev) => {
                    if ev.revision > w.sent_rv {
                        w.send_event(&ev).await?;
                    }
                }
                // Too far behind, or the cache was rebuilt: end; the client re-watches.
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = ticker.tick(), if w.bookmarks => {
                w.send_bookmark(w.sent_rv, false).await?;
            }
            _ = &mut deadline => return Ok(()),
            _ = w.tx.closed() => return Err(()),
        }
    }
}

impl Watcher {
    async fn send_event(&mut self, ev: &Arc<CacheEvent>) -> Result<(), ()> {
        let now = self.filter.matches(&ev.object.value);
        let before = ev
            .prev
            .as_ref()
            .is_some_and(|p| self.filter.matches(&p.value));
        let kind = match (ev.kind, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (EventType::Deleted, true, _) => EventType::Deleted,
            _ => {
                self.sent_rv = ev.revision;
                return Ok(());
            }
        };
        self.send_object(kind, &ev.object).await?;
        self.sent_rv = ev.revision;
        Ok(())
    }

    async fn send_object(&mut self, kind: EventType, obj: &CachedObject) -> Result<(), ()> {
        let converts = obj
            .value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v != self.res.api_version());
        let line = if let Output::Metadata(p) = self.output {
            // Metadata needs no version conversion.
            let value = p.object(&obj.value);
            let mut v = serde_json::to_vec(&json!({"type": kind.as_str(), "object": value}))
                .map_err(|_| ())?;
            v.push(b'\n');
            Bytes::from(v)
        } else if self.output == Output::Table || converts {
            let value = crate::convert::to_version(self.res, obj.value.clone()).map_err(|_| ())?;
            let value = if self.output == Output::Table {
                let t = tables::watch_table(self.res, &value, &self.query, self.first_table)
                    .map_err(|_| ())?;
                self.first_table = false;
                t
            } else {
                value
            };
            let mut v = serde_json::to_vec(&json!({"type": kind.as_str(), "object": value}))
                .map_err(|_| ())?;
            v.push(b'\n');
            Bytes::from(v)
        } else {
            let mut v = Vec::with_capacity(obj.json.len() + 32);
            v.extend_from_slice(b"{\"type\":\"");
            v.extend_from_slice(kind.as_str().as_bytes());
            v.extend_from_slice(b"\",\"object\":");
            v.extend_from_slice(&obj.json);
            v.extend_from_slice(b"}\n");
            Bytes::from(v)
        };
        self.tx.send(line).await.map_err(|_| ())
    }

    async fn send_bookmark(&mut self, rv: i64, initial_end: bool) -> Result<(), ()> {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match self.output {
            Output::Metadata(p) => p.object(&json!({ "metadata": meta })),
            _ => json!({"kind": self.res.kind, "apiVersion": self.res.api_version(),
                "metadata": meta}),
        };
        let mut v =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).map_err(|_| ())?;
        v.push(b'\n');
        self.tx.send(Bytes::from(v)).await.map_err(|_| ())
    }
}
