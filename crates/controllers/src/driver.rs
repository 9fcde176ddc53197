//! The thin driver every controller shares, built on kube-runtime's reflectors and `applier`
//! (the engine under `Controller`, which lets triggers come from any stream).
//!
//! A controller watches its resources into reflector caches ([`reflect`]), turns watch events
//! into keys of its main resource ([`on_objects`], [`on_any_change`]), and hands them to
//! [`drive`]: keys are deduplicated while queued, each is reconciled from the cache (never from
//! the event), and a failed key is retried with per-key exponential backoff ([`RetryBackoff`],
//! upstream's default controller rate limiter: 5 ms doubling up to 1000 s).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{ready, Future};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{applier, watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::{ControllerContext, Error};

/// Watch events of one resource, already applied to its cache. Watch failures are logged and
/// retried with backoff inside, so the stream carries events only.
pub type Events<K> = BoxStream<'static, watcher::Event<K>>;

/// Keys of a controller's main resource to reconcile.
pub type Triggers<K> = BoxStream<'static, ObjectRef<K>>;

/// Watches `api` into a new cache. The cache is only filled while the returned stream is
/// polled, which [`drive`] does once the stream is part of a trigger.
pub fn reflect<K>(
    controller: &'static str,
    api: Api<K>,
    wc: watcher::Config,
) -> (Store<K>, Events<K>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher(api, wc).default_backoff())
        .filter_map(move |ev| {
            ready(match ev {
                Ok(ev) => Some(ev),
                Err(err) => {
                    tracing::warn!(controller, error = %err, "watch failed, retrying");
                    None
                }
            })
        })
        .boxed();
    (reader, events)
}

/// Keys from the objects events carry: every applied object (also during an initial list),
/// and deleted ones too when `deletes`, each mapped to the keys it concerns.
pub fn on_objects<K, T, I>(
    events: Events<K>,
    deletes: bool,
    map: impl Fn(&K) -> I + Send + 'static,
) -> Triggers<T>
where
    K: Send + 'static,
    T: Resource + Send + 'static,
    I: IntoIterator<Item = ObjectRef<T>>,
{
    events
        .flat_map(move |ev| {
            let keys: Vec<ObjectRef<T>> = match &ev {
                watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                    map(obj).into_iter().collect()
                }
                watcher::Event::Delete(obj) if deletes => map(obj).into_iter().collect(),
                _ => Vec::new(),
            };
            stream::iter(keys)
        })
        .boxed()
}

/// Keys from `all` whenever anything changes, and when an initial list is complete (the
/// cache holds the listed objects only then): for controllers whose objects depend on any
/// other object of the kind, as upstream's ClusterRole aggregation.
pub fn on_any_change<K, T>(
    events: Events<K>,
    all: impl Fn() -> Vec<ObjectRef<T>> + Send + 'static,
) -> Triggers<T>
where
    K: Send + 'static,
    T: Resource + Send + 'static,
{
    events
        .flat_map(move |ev| {
            let keys = match ev {
                watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone => {
                    all()
                }
                watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
            };
            stream::iter(keys)
        })
        .boxed()
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, Error>> + Send>>;

/// Default reconciles of one controller at a time, as upstream's `--concurrent-*-syncs`
/// defaults (most are 5).
pub const DEFAULT_WORKERS: u16 = 5;

/// Reconciles the keys `triggers` yield with `reconcile`, reading each object from `store`,
/// until every trigger stream ends. A failed reconcile is logged and retried with backoff.
/// `ctx` gives the controller's worker count (`ControllerContext::workers`, else
/// [`DEFAULT_WORKERS`]) and the metrics its queue reports to.
pub async fn drive<K, C, F, Fut>(
    controller: &'static str,
    ctx: &ControllerContext,
    store: Store<K>,
    triggers: Vec<Triggers<K>>,
    state: Arc<C>,
    reconcile: F,
) -> Result<(), Error>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Debug + Eq + Hash + Clone + Unpin + Send + Sync,
    C: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let workers = ctx
        .workers
        .get(controller)
        .copied()
        .unwrap_or(DEFAULT_WORKERS);
    tracing::info!(controller, workers, "starting controller");
    let metrics = ctx.metrics.clone();
    let backoff = Arc::new(RetryBackoff::default());
    let on_success = backoff.clone();
    let on_gone = (backoff.clone(), metrics.clone());
    let queued = metrics.clone();
    let queue = stream::select_all(triggers)
        .map(move |r| {
            queued.queued(controller, ref_key(r.namespace.as_deref(), &r.name));
            r
        })
        .map(Ok::<_, Infallible>);
    let results = applier(
        move |obj: Arc<K>, state: Arc<C>| -> ReconcileFuture {
            let key = key_of(&*obj);
            metrics.started(controller, key.clone());
            let backoff = on_success.clone();
            let metrics = metrics.clone();
            let fut = reconcile(obj, state);
            Box::pin(async move {
                let began = std::time::Instant::now();
                let res = fut.await;
                metrics.finished(controller, began.elapsed(), res.is_err());
                if res.is_ok() {
                    backoff.succeeded(&key);
                }
                res
            })
        },
        move |obj: Arc<K>, _err: &Error, _state: Arc<C>| {
            Action::requeue(backoff.failed(&key_of(&*obj)))
        },
        state,
        store,
        queue,
        controller::Config::default().concurrency(workers),
    );
    results
        .for_each(|res| {
            match res {
                Ok((obj, _)) => tracing::debug!(controller, object = %obj, "reconciled"),
                Err(controller::Error::ReconcilerFailed(err, obj)) if err.is_ignorable() => {
                    tracing::debug!(controller, object = %obj, error = %err, "not yet, will retry")
                }
                Err(controller::Error::ReconcilerFailed(err, obj)) => {
                    tracing::warn!(controller, object = %obj, error = %err, "reconcile failed, will retry")
                }
                // A key whose object left the cache before its turn: nothing to do but forget
                // it, so that neither its backoff nor the queue depth keeps it.
                Err(controller::Error::ObjectNotFound(obj)) => {
                    let key = ref_key(obj.namespace.as_deref(), &obj.name);
                    on_gone.0.succeeded(&key);
                    on_gone.1.started(controller, key);
                    tracing::debug!(controller, object = %obj, "object gone before reconcile")
                }
                Err(err) => tracing::warn!(controller, error = %err, "controller queue failed"),
            }
            ready(())
        })
        .await;
    tracing::info!(controller, "controller stopped");
    Ok(())
}

/// Attempts [`spawn_cleanup`] makes before it gives up.
const CLEANUP_ATTEMPTS: u32 = 10;

/// Runs `cleanup` (work for an object that has left the cache, so no key of the controller can
/// reconcile it, e.g. the Endpoints of a deleted Service) in a task of its own, retrying a
/// failure with [`RetryBackoff`]'s doubling delays (from 100 ms) as upstream's requeue of the
/// key would, up to [`CLEANUP_ATTEMPTS`] times. NotFound counts as done.
pub fn spawn_cleanup<F, Fut>(controller: &'static str, what: String, cleanup: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), kube::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=CLEANUP_ATTEMPTS {
            match cleanup().await {
                Ok(()) => return,
                Err(e) if crate::error::is_not_found(&e) => return,
                Err(e) if attempt == CLEANUP_ATTEMPTS => {
                    tracing::warn!(controller, %what, error = %e, "cleanup failed, giving up");
                }
                Err(e) => {
                    tracing::debug!(controller, %what, error = %e, "cleanup failed, will retry");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RetryBackoff::MAX);
                }
            }
        }
    });
}

/// The key an object is queued under, for backoff and queue-depth bookkeeping.
fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    ref_key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// `namespace/name`, with an empty namespace for cluster-scoped objects.
fn ref_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{}", namespace.unwrap_or_default(), name)
}

/// Per-key exponential backoff for failed reconciles, as upstream's
/// `DefaultControllerRateLimiter`: 5 ms after the first failure, doubling to at most 1000 s,
/// forgotten on success.
#[derive(Debug, Default)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryBackoff {
    const BASE: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1000);

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        let exp = *n;
        *n = n.saturating_add(1);
        // 2^31 * 5 ms is far beyond the cap, so the exponent is clamped before it overflows.
        Self::BASE
            .checked_mul(1u32 << exp.min(31))
            .map_or(Self::MAX, |d| d.min(Self::MAX))
    }

    /// Forgets `key`'s failures.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::ObjectMeta;

    #[test]
    fn backoff_doubles_per_key_up_to_the_cap_and_resets_on_success() {
        let b = RetryBackoff::default();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(b.failed("a")), 5);
        assert_eq!(ms(b.failed("a")), 10);
        assert_eq!(ms(b.failed("a")), 20);
        assert_eq!(ms(b.failed("b")), 5, "keys back off independently");
        for _ in 0..40 {
            b.failed("a");
        }
        assert_eq!(b.failed("a"), Duration::from_secs(1000));
        b.succeeded("a");
        assert_eq!(ms(b.failed("a")), 5);
    }

    /// Runs [`spawn_cleanup`] over `outcomes` (one per attempt) and returns the attempts made.
    async fn cleanup_attempts(outcomes: Vec<Option<u16>>) -> usize {
        let calls = Arc::new(Mutex::new(0usize));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let done_tx = Arc::new(Mutex::new(Some(done_tx)));
        let (c, outcomes) = (calls.clone(), Arc::new(outcomes));
        spawn_cleanup("test", "thing".into(), move || {
            let (c, outcomes, done_tx) = (c.clone(), outcomes.clone(), done_tx.clone());
            async move {
                let n = {
                    let mut n = c.lock().unwrap_or_else(|p| p.into_inner());
                    *n += 1;
                    *n
                };
                let outcome = outcomes.get(n - 1).copied().flatten();
                let last = n == outcomes.len() || !matches!(outcome, Some(500));
                if last {
                    if let Some(tx) = done_tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = tx.send(());
                    }
                }
                match outcome {
                    None => Ok(()),
                    Some(code) => Err(kube::Error::Api(Box::new(
                        kube::core::Status::failure(
                            "x",
                            if code == 404 {
                                "NotFound"
                            } else {
                                "InternalError"
                            },
                        )
                        .with_code(code),
                    ))),
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), done_rx)
            .await
            .expect("cleanup finished within 10 s")
            .expect("cleanup task alive");
        let n = *calls.lock().unwrap_or_else(|p| p.into_inner());
        n
    }

    #[tokio::test]
    async fn cleanups_retry_failures_and_stop_on_success_or_not_found() {
        assert_eq!(cleanup_attempts(vec![Some(500), Some(500), None]).await, 3);
        assert_eq!(cleanup_attempts(vec![Some(404)]).await, 1);
        assert_eq!(cleanup_attempts(vec![None]).await, 1);
    }

    fn ns(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    async fn collect(t: Triggers<Namespace>) -> Vec<String> {
        t.map(|r| r.name).collect().await
    }

    #[tokio::test]
    async fn object_triggers_skip_deletes_unless_asked() {
        let events = || -> Events<Namespace> {
            stream::iter(vec![
                watcher::Event::Init,
                watcher::Event::InitApply(ns("a")),
                watcher::Event::InitDone,
                watcher::Event::Apply(ns("b")),
                watcher::Event::Delete(ns("c")),
            ])
            .boxed()
        };
        let map = |n: &Namespace| Some(ObjectRef::from_obj(n));
        assert_eq!(collect(on_objects(events(), false, map)).await, ["a", "b"]);
        assert_eq!(
            collect(on_objects(events(), true, map)).await,
            ["a", "b", "c"]
        );
    }

    #[tokio::test]
    async fn any_change_triggers_fire_after_the_initial_list_and_on_each_change() {
        let events: Events<Namespace> = stream::iter(vec![
            watcher::Event::Init,
            watcher::Event::InitApply(ns("a")),
            watcher::Event::InitApply(ns("b")),
            watcher::Event::InitDone,
            watcher::Event::Delete(ns("a")),
        ])
        .boxed();
        let all = || vec![ObjectRef::<Namespace>::new("x")];
        assert_eq!(collect(on_any_change(events, all)).await, ["x", "x"]);
    }
}
