//! The scheduler's watches: every resource it reads is watched with kube-runtime's watcher and
//! forwarded, in order, to the scheduling loop as [`Msg`]s. A relist (after a lost watch) is
//! bracketed by `Init` and `InitDone`, so the loop can drop objects deleted meanwhile.

use std::fmt::Debug;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// One watch event of one resource.
#[derive(Debug)]
pub enum WatchEvent<K> {
    /// A (re)list starts.
    Init,
    /// An object of the (re)list.
    InitApply(Arc<K>),
    /// The (re)list is complete.
    InitDone,
    /// An object was added or changed.
    Apply(Arc<K>),
    /// An object was deleted.
    Delete(Arc<K>),
}

/// What the scheduling loop receives.
#[derive(Debug)]
pub enum Msg {
    /// Pods.
    Pod(WatchEvent<Pod>),
    /// Nodes.
    Node(WatchEvent<Node>),
    /// Namespaces.
    Namespace(WatchEvent<Namespace>),
    /// PodDisruptionBudgets.
    Pdb(WatchEvent<PodDisruptionBudget>),
    /// Services.
    Service(WatchEvent<Service>),
    /// ReplicationControllers.
    Rc(WatchEvent<ReplicationController>),
    /// ReplicaSets.
    Rs(WatchEvent<ReplicaSet>),
    /// StatefulSets.
    Sts(WatchEvent<StatefulSet>),
    /// A binding cycle ended.
    BindDone(Box<crate::scheduler::BindDone>),
    /// Stop.
    Shutdown,
}

/// The resources watched, for the initial-sync bookkeeping.
pub const WATCHED: usize = 8;

fn forward<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: Sender<Msg>,
    wrap: fn(WatchEvent<K>) -> Msg,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(Event::Init) => WatchEvent::Init,
                Ok(Event::InitApply(o)) => WatchEvent::InitApply(Arc::new(o)),
                Ok(Event::InitDone) => WatchEvent::InitDone,
                Ok(Event::Apply(o)) => WatchEvent::Apply(Arc::new(o)),
                Ok(Event::Delete(o)) => WatchEvent::Delete(Arc::new(o)),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler watch failed, retrying");
                    continue;
                }
            };
            if tx.send(wrap(ev)).is_err() {
                return;
            }
        }
    })
}

/// Starts every watch; the tasks end when the loop's receiver is dropped (or are aborted).
pub fn start(client: &kube::Client, tx: &Sender<Msg>) -> Vec<tokio::task::JoinHandle<()>> {
    let all = watcher::Config::default();
    // finished pods hold no resources: upstream's informer leaves them out too
    let pods = watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    vec![
        forward(Api::<Pod>::all(client.clone()), pods, tx.clone(), Msg::Pod),
        forward(
            Api::<Node>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Node,
        ),
        forward(
            Api::<Namespace>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Namespace,
        ),
        forward(
            Api::<PodDisruptionBudget>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Pdb,
        ),
        forward(
            Api::<Service>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Service,
        ),
        forward(
            Api::<ReplicationController>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Rc,
        ),
        forward(
            Api::<ReplicaSet>::all(client.clone()),
            all.clone(),
            tx.clone(),
            Msg::Rs,
        ),
        forward(
            Api::<StatefulSet>::all(client.clone()),
            all,
            tx.clone(),
            Msg::Sts,
        ),
    ]
}
