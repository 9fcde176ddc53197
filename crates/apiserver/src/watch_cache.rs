//! The watch cache: one per store prefix, fed by a single store watch, serving lists and
//! watches from memory (upstream's `Cacher`).
//!
//! The cache holds every object of its resource and a bounded window of recent events. It is
//! current up to `rv`: every store event at or below `rv` is applied. A consistent read asks
//! the store for its current revision and waits until the cache reaches it (upstream's
//! consistent reads from cache); the wait is short because the cache asks the store for a
//! progress notification.
//!
//! Watchers get the window's events after their start revision, then live events through a
//! broadcast channel. A watcher that falls a whole channel behind is ended, and its client
//! re-watches from the last revision it saw, as with upstream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use rkube_store::{
    EventKind, KeyRange, RangeRequest, Store, StoreError, WatchRequest, WatchResponse,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, warn};

use crate::object;
use crate::status::{ApiError, ApiResult};

/// How many recent events a cache keeps for watches that start in the past.
const EVENT_WINDOW: usize = 100_000;
/// How many live events a watcher may fall behind before it is ended.
const BROADCAST_CAPACITY: usize = 16_384;
/// How long a read waits for the cache to catch up with the store.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(3);

/// An object as the cache holds it: decoded, with its resourceVersion, and its JSON ready to
/// send.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub value: Value,
    pub json: Bytes,
    pub mod_revision: i64,
}

impl CachedObject {
    fn new(key: String, value: Value, mod_revision: i64) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        CachedObject {
            key,
            value,
            json,
            mod_revision,
        }
    }

    pub fn namespace(&self) -> &str {
        object::namespace(&self.value)
    }

    pub fn name(&self) -> &str {
        object::name(&self.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, with the object before it for filter transitions.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub revision: i64,
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

#[derive(Debug)]
struct State {
    /// Every store event at or below `rv` is applied.
    rv: i64,
    /// The window holds every event after `window_start`.
    window_start: i64,
    objects: BTreeMap<String, Arc<CachedObject>>,
    events: VecDeque<Arc<CacheEvent>>,
    /// Incremented when the cache is rebuilt from a fresh list, which ends all watchers.
    generation: u64,
}

/// A snapshot for a list: the matching objects and the revision they are current at.
#[derive(Debug)]
pub struct Snapshot {
    pub revision: i64,
    pub objects: Vec<Arc<CachedObject>>,
}

/// The start of a watch: the events to replay, and the live feed after them.
#[derive(Debug)]
pub struct WatchStart {
    pub revision: i64,
    /// Objects to send as ADDED first (for watches that start from "now").
    pub initial: Vec<Arc<CachedObject>>,
    pub backlog: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

/// One resource's cache.
#[derive(Debug)]
pub struct WatchCache {
    prefix: String,
    codec: Arc<crate::at_rest::StorageCodec>,
    /// How many changes the cache has applied (events and relists), for derived indexes
    /// that rebuild only when their inputs changed.
    changes: std::sync::atomic::AtomicU64,
    state: RwLock<State>,
    feed: RwLock<broadcast::Sender<Arc<CacheEvent>>>,
    rv_tx: watch::Sender<i64>,
    progress_tx: mpsc::Sender<()>,
}

impl WatchCache {
    /// Lists `prefix` from the store, starts following it, and returns the cache once it holds
    /// the listed state.
    pub async fn start(
        store: Arc<dyn Store>,
        prefix: String,
        codec: Arc<crate::at_rest::StorageCodec>,
    ) -> Result<Arc<Self>, StoreError> {
        let (feed, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (rv_tx, _) = watch::channel(0);
        let (progress_tx, progress_rx) = mpsc::channel(1);
        let cache = Arc::new(WatchCache {
            prefix: prefix.clone(),
            codec,
            changes: std::sync::atomic::AtomicU64::new(1),
            state: RwLock::new(State {
                rv: 0,
                window_start: 0,
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                generation: 0,
            }),
            feed: RwLock::new(feed),
            rv_tx,
            progress_tx,
        });
        let rev = cache.relist(store.as_ref()).await?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(follow(weak, store, prefix, rev, progress_rx));
        Ok(cache)
    }

    /// Replaces the state with a fresh list of the store; returns its revision.
    async fn relist(&self, store: &dyn Store) -> Result<i64, StoreError> {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        let resp = store
            .range(RangeRequest::new(KeyRange::prefix(self.prefix.as_bytes())))
            .await?;
        let mut objects = BTreeMap::new();
        for kv in resp.kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            match self.codec.decode(&key, &kv.value, kv.mod_revision) {
                Ok(v) => {
                    objects.insert(
                        key.clone(),
                        Arc::new(CachedObject::new(key, v, kv.mod_revision)),
                    );
                }
                Err(e) => warn!(key, error = ?e, "skipping an object that does not decode"),
            }
        }
        let rev = resp.header_revision;
        {
            let mut st = self.state.write();
            st.objects = objects;
            st.events.clear();
            st.rv = rev;
            st.window_start = rev;
            st.generation += 1;
            // A new feed ends every current watcher: their history is gone.
            *self.feed.write() = broadcast::channel(BROADCAST_CAPACITY).0;
        }
        self.rv_tx.send_replace(rev);
        Ok(rev)
    }

    fn apply(&self, resp: WatchResponse) {
        if !resp.events.is_empty() {
            self.changes
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        let mut st = self.state.write();
        let feed = self.feed.read();
        for ev in resp.events {
            let key = String::from_utf8_lossy(&ev.kv.key).into_owned();
            let rev = ev.kv.mod_revision;
            let prev = st.objects.get(&key).cloned();
            let event = match ev.kind {
                EventKind::Put => {
                    let value = match self.codec.decode(&key, &ev.kv.value, rev) {
                        Ok(v) => v,
                        Err(e) => {
                            warn!(key, error = ?e, "skipping an object that does not decode");
                            continue;
                        }
                    };
                    let obj = Arc::new(CachedObject::new(key.clone(), value, rev));
                    st.objects.insert(key, obj.clone());
                    let kind = if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    };
                    CacheEvent {
                        kind,
                        revision: rev,
                        object: obj,
                        prev,
                    }
                }
                EventKind::Delete => {
                    let Some(old) = st.objects.remove(&key) else {
                        continue;
                    };
                    // A deleted object is reported at the revision of its deletion.
                    let mut value = old.value.clone();
                    object::set_resource_version(&mut value, rev);
                    let obj = Arc::new(CachedObject::new(key, value, rev));
                    CacheEvent {
                        kind: EventType::Deleted,
                        revision: rev,
                        object: obj,
                        prev: Some(old),
                    }
                }
            };
            let event = Arc::new(event);
            st.events.push_back(event.clone());
            if st.events.len() > EVENT_WINDOW {
                if let Some(old) = st.events.pop_front() {
                    st.window_start = old.revision;
                }
            }
            let _ = feed.send(event);
        }
        if resp.header_revision > st.rv {
            st.rv = resp.header_revision;
        }
        let rv = st.rv;
        drop(feed);
        drop(st);
        self.rv_tx.send_replace(rv);
    }

    /// A counter that moves whenever the cache's contents change.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The revision the cache is current at.
    pub fn revision(&self) -> i64 {
        self.state.read().rv
    }

    /// Waits until the cache is current at `rev` or later.
    pub async fn wait_for(&self, rev: i64) -> ApiResult<()> {
        let mut rx = self.rv_tx.subscribe();
        if *rx.borrow() >= rev {
            return Ok(());
        }
        let _ = self.progress_tx.try_send(());
        let reached = {
            let wait = rx.wait_for(|cur| *cur >= rev);
            matches!(
                tokio::time::timeout(CATCH_UP_TIMEOUT, wait).await,
                Ok(Ok(_))
            )
        };
        match reached {
            true => Ok(()),
            false => Err(ApiError::timeout(format!(
                "Too large resource version: {rev}, current: {}",
                self.revision()
            ))),
        }
    }

    /// The objects under `prefix` (a key prefix within this cache) that `keep` accepts.
    pub fn snapshot(&self, prefix: &str, keep: &dyn Fn(&CachedObject) -> bool) -> Snapshot {
        let st = self.state.read();
        let objects = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, o)| keep(o))
            .map(|(_, o)| o.clone())
            .collect();
        Snapshot {
            revision: st.rv,
            objects,
        }
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state.read().objects.get(key).cloned()
    }

    /// Starts a watch. `from == None` starts at the current state, returning it as initial
    /// objects; `Some(rv)` replays the events after `rv`, or fails with 410 if they have left
    /// the window.
    pub fn watch(&self, from: Option<i64>, prefix: &str) -> ApiResult<WatchStart> {
        let st = self.state.read();
        let live = self.feed.read().subscribe();
        match from {
            None => {
                let initial = st
                    .objects
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(_, o)| o.clone())
                    .collect();
                Ok(WatchStart {
                    revision: st.rv,
                    initial,
                    backlog: Vec::new(),
                    live,
                })
            }
            Some(rv) if rv < st.window_start => Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                st.window_start
            ))),
            Some(rv) => {
                let backlog = st
                    .events
                    .iter()
                    .filter(|e| e.revision > rv && e.object.key.starts_with(prefix))
                    .cloned()
                    .collect();
                Ok(WatchStart {
                    revision: st.rv.max(rv),
                    initial: Vec::new(),
                    backlog,
                    live,
                })
            }
        }
    }
}

/// Follows the store from `rev`, applying events; re-lists when the store's history is gone.
async fn follow(
    cache: std::sync::Weak<WatchCache>,
    store: Arc<dyn Store>,
    prefix: String,
    mut rev: i64,
    mut progress_rx: mpsc::Receiver<()>,
) {
    loop {
        let req = WatchRequest::new(KeyRange::prefix(prefix.as_bytes()))
            .from_revision(rev + 1)
            .with_progress_notify();
        let mut stream = match store.watch(req).await {
            Ok(s) => s,
            Err(e) => {
                warn!(prefix, error = %e, "watch cache cannot watch the store; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                resp = stream.next() => match resp {
                    Some(Ok(resp)) => {
                        let Some(c) = cache.upgrade() else { return };
                        rev = rev.max(resp.header_revision);
                        if let Some(last) = resp.events.last() {
                            rev = rev.max(last.kv.mod_revision);
                        }
                        c.apply(resp);
                    }
                    Some(Err(StoreError::Compacted { .. })) => {
                        let Some(c) = cache.upgrade() else { return };
                        debug!(prefix, "watch cache fell behind compaction; re-listing");
                        match c.relist(store.as_ref()).await {
                            Ok(r) => rev = r,
                            Err(e) => warn!(prefix, error = %e, "re-list failed"),
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        warn!(prefix, error = %e, "store watch failed; restarting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                    None => {
                        if cache.strong_count() == 0 { return; }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                },
                p = progress_rx.recv() => {
                    if p.is_none() { return; }
                    stream.request_progress();
                }
            }
        }
    }
}
