//! Shared informers, as upstream's `SharedInformerFactory`: one watch and one cache per
//! resource type for every controller of the manager, instead of one per controller.
//!
//! [`SharedInformers::get`] returns the type's cache and a stream of its watch events, in the
//! shape [`crate::driver::reflect`] gives, so a controller can use either. The first `get` of a
//! type starts its reflector (kube-runtime's `reflector` over a `watcher`, all namespaces);
//! later ones subscribe to the same events. A subscriber that arrives after the initial list,
//! or falls so far behind that events were dropped for it, first gets the cache's content
//! replayed as an initial list (`Init`, `InitApply`..., `InitDone`): controllers are
//! level-triggered, so a repeated object is harmless and a missed one is not. When the watch
//! relists, objects the relist no longer finds are sent as deletes (as upstream's
//! `DeletedFinalStateUnknown`); a subscriber that lagged can still miss a delete made during
//! its lag, which the replay cannot show.
//!
//! kube-runtime's own shared stores (`unstable-runtime-subscribe`) hand subscribers objects
//! without delete events; controllers need the deletes (a deleted pod wakes its owner), hence
//! this small fan-out of whole watch events.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use crate::driver::Events;

/// Events buffered per subscriber before a slow one is resynced from the cache.
const BUFFER: usize = 16_384;

/// One watch and cache per resource type, shared by every controller that asks for it.
pub struct SharedInformers {
    client: kube::Client,
    informers: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Debug for SharedInformers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.informers.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("SharedInformers")
            .field("informers", &n)
            .finish()
    }
}

/// A started informer of `K`: its cache and the sender its reflector publishes to.
struct Informer<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    tx: broadcast::Sender<watcher::Event<K>>,
    /// True once the cache has had its first full list.
    ready: watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            store: self.store.clone(),
            tx: self.tx.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl SharedInformers {
    /// Informers that watch with `client` (upstream: the controller manager's own identity).
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(SharedInformers {
            client,
            informers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// The shared cache of `K` (all namespaces), once it has had its first full list (as
    /// upstream's controllers wait for their caches to sync), and a new subscription to its
    /// events. The first call for a type starts its watch, so it must run inside a tokio
    /// runtime. The watches run while the factory or any subscription lives.
    ///
    /// Nothing may wait on kube-runtime's `Store::wait_until_ready` before the cache is
    /// ready: it wakes only the last of several waiters, and the cache is shared, so the wait
    /// here uses a readiness signal of its own.
    pub async fn get<K>(self: &Arc<Self>) -> (Store<K>, Events<K>)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let informer = self.informer::<K>();
        let mut ready = informer.ready.clone();
        // An error means the watch task ended (the factory is going away): nothing to wait for.
        let _ = ready.wait_for(|r| *r).await;
        let rx = informer.tx.subscribe();
        let keep_alive = self.clone();
        let events = subscribe(informer.store.clone(), rx)
            .map(move |ev| {
                let _ = &keep_alive;
                ev
            })
            .boxed();
        (informer.store, events)
    }

    fn informer<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut informers = self.informers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = informers
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return found.clone();
        }
        let (store, writer) = reflector::store();
        let (tx, _) = broadcast::channel(BUFFER);
        let (ready_tx, ready) = watch::channel(false);
        let informer = Informer {
            store,
            tx: tx.clone(),
            ready,
        };
        informers.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let api = Api::<K>::all(self.client.clone());
        let kind = K::kind(&());
        let cache = informer.store.clone();
        let task = tokio::spawn(async move {
            let mut events = reflector::reflector(
                writer,
                watcher(api, watcher::Config::default()).default_backoff(),
            )
            .boxed();
            let mut relist = Relist::default();
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(err) => {
                        tracing::warn!(%kind, error = %err, "shared informer watch failed, retrying");
                        continue;
                    }
                };
                let gone = relist.observe(&ev, &cache);
                let listed = matches!(ev, watcher::Event::InitDone);
                // No subscriber yet is fine: the cache fills regardless.
                drop(tx.send(ev));
                for o in gone {
                    drop(tx.send(watcher::Event::Delete(o)));
                }
                if listed {
                    ready_tx.send_replace(true);
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
        informer
    }
}

/// The objects cached before a relist that the relist has not listed again: gone while the
/// watch was down. A relist alone says nothing of them, so subscribers get a Delete for each
/// once it is done (upstream's `DeletedFinalStateUnknown`).
struct Relist<K: Resource<DynamicType = ()> + 'static> {
    unlisted: HashMap<ObjectRef<K>, Arc<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Default for Relist<K> {
    fn default() -> Self {
        Relist {
            unlisted: HashMap::new(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Relist<K> {
    /// Follows one applied event; at the end of a list, returns the objects it did not list.
    fn observe(&mut self, ev: &watcher::Event<K>, cache: &Store<K>) -> Vec<K> {
        match ev {
            // The reflector's cache keeps its old content until the list is done, so at Init
            // it still holds what was there before.
            watcher::Event::Init => {
                self.unlisted = cache
                    .state()
                    .into_iter()
                    .map(|o| (ObjectRef::from_obj(&*o), o))
                    .collect();
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                self.unlisted.remove(&ObjectRef::from_obj(o));
                Vec::new()
            }
            watcher::Event::InitDone => self.unlisted.drain().map(|(_, o)| (*o).clone()).collect(),
            _ => Vec::new(),
        }
    }
}

impl Drop for SharedInformers {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            t.abort();
        }
    }
}

/// The cache's content as an initial list (the cache has had its first list).
fn replay<K>(store: &Store<K>) -> Vec<watcher::Event<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut out = vec![watcher::Event::Init];
    out.extend(
        store
            .state()
            .into_iter()
            .map(|o| watcher::Event::InitApply((*o).clone())),
    );
    out.push(watcher::Event::InitDone);
    out
}

/// The subscriber's stream: the cache replayed, then live events; after a lag, the cache
/// replayed again.
fn subscribe<K>(store: Store<K>, rx: broadcast::Receiver<watcher::Event<K>>) -> Events<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    enum State<K: Resource<DynamicType = ()> + 'static> {
        Replay(Store<K>, broadcast::Receiver<watcher::Event<K>>),
        Live(Store<K>, broadcast::Receiver<watcher::Event<K>>),
    }
    stream::unfold(State::Replay(store, rx), |state| async move {
        match state {
            State::Replay(store, rx) => {
                let events = replay(&store);
                Some((events, State::Live(store, rx)))
            }
            State::Live(store, mut rx) => match rx.recv().await {
                Ok(ev) => Some((vec![ev], State::Live(store, rx))),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        "informer subscriber lagged; replaying the cache"
                    );
                    let events = replay(&store);
                    Some((events, State::Live(store, rx)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(evs: &[watcher::Event<ConfigMap>]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                watcher::Event::Init => "init".to_string(),
                watcher::Event::InitDone => "done".to_string(),
                watcher::Event::InitApply(o) => {
                    format!("list {}", o.metadata.name.clone().unwrap_or_default())
                }
                watcher::Event::Apply(o) => {
                    format!("apply {}", o.metadata.name.clone().unwrap_or_default())
                }
                watcher::Event::Delete(o) => {
                    format!("delete {}", o.metadata.name.clone().unwrap_or_default())
                }
            })
            .collect()
    }

    #[test]
    fn a_relist_reports_what_it_no_longer_lists_as_deleted() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let mut relist = Relist::default();
        let mut apply = |ev: watcher::Event<ConfigMap>| {
            writer.apply_watcher_event(&ev);
            let mut gone: Vec<String> = relist
                .observe(&ev, &store)
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect();
            gone.sort();
            gone
        };
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(cm("a")));
        apply(watcher::Event::InitApply(cm("b")));
        assert!(
            apply(watcher::Event::InitDone).is_empty(),
            "a first list deletes nothing"
        );
        apply(watcher::Event::Apply(cm("c")));
        // The watch broke; the relist finds only b.
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(cm("b")));
        assert_eq!(apply(watcher::Event::InitDone), ["a", "c"]);
    }

    #[tokio::test]
    async fn a_late_or_lagging_subscriber_gets_the_cache_replayed_then_live_events() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(cm("a")));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let (tx, rx) = broadcast::channel(2);
        let mut events = subscribe(store, rx);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(events.next().await);
        }
        assert_eq!(names(&got), ["init", "list a", "done"]);

        tx.send(watcher::Event::Delete(cm("a"))).ok();
        assert_eq!(
            names(&events.next().await.into_iter().collect::<Vec<_>>()),
            ["delete a"]
        );

        // Three events into a buffer of two: the subscriber lost one and is replayed the cache.
        writer.apply_watcher_event(&watcher::Event::Apply(cm("b")));
        for n in ["x", "y", "z"] {
            tx.send(watcher::Event::Apply(cm(n))).ok();
        }
        let mut got = Vec::new();
        for _ in 0..5 {
            got.extend(events.next().await);
        }
        let mut got = names(&got);
        got[1..3].sort();
        assert_eq!(got, ["init", "list a", "list b", "done", "apply y"]);
        drop(tx);
        let rest: Vec<_> = events.collect().await;
        assert_eq!(names(&rest), ["apply z"]);
    }
}
