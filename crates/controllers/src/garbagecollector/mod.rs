//! `garbage-collector` (upstream's garbage collector controller): deletes objects whose
//! owners are all gone, and carries out the propagation policy an owner was deleted with.
//!
//! As upstream's: discovery finds every resource that supports list, watch and delete (again
//! every 30 s, so new resources are watched and vanished ones dropped); each is watched with
//! dynamic objects, and the graph of owners to dependents is built from ownerReferences by uid
//! ([`graph`]). Changes queue work:
//!
//! - **background** (the default): an owner deleted → each dependent is checked; one whose
//!   owners are all gone is deleted. An owner is gone only if a live GET by kind and name (in
//!   the dependent's namespace for namespaced owners) finds nothing or another uid, so a
//!   reference to a different namespace's object or a bogus uid is dangling; a cluster-scoped
//!   dependent naming a namespaced owner kind is never resolved (upstream's
//!   `namespacedOwnerOfClusterScopedObjectErr`). A dependent with another live owner only
//!   loses its dangling references.
//! - **foreground** (owner with `deletionTimestamp` and the `foregroundDeletion` finalizer):
//!   its dependents are deleted (in the foreground themselves when they have dependents, so
//!   it cascades leaves-first); once no dependent with `blockOwnerDeletion: true` is left,
//!   the finalizer is removed and the API server deletes the owner.
//! - **orphan** (the `orphan` finalizer): the references to the owner are removed from its
//!   dependents, then the finalizer.
//!
//! Work is processed only after the first list of every watched resource is in the graph.
//! Conflicts are retried through the queue's backoff without an error log. Not done: the
//! absent-owner cache (every check GETs each owner), metadata-only watches (the API server does
//! not serve `PartialObjectMetadata`), events.

pub mod graph;
pub mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{
    DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions,
};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::discovery::{preferred_resources, Discovered, Resource};
use crate::driver::RetryBackoff;
use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error};
use graph::{
    decide, precheck, unblocked, without_owners, Decision, Graph, ObjectInfo, OwnerState, Precheck,
    Work, FOREGROUND_FINALIZER, ORPHAN_FINALIZER,
};
use queue::Queue;

pub const NAME: &str = "garbage-collector";

/// How often discovery runs again (upstream's resync period of the monitors).
pub const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);

/// Upstream's `--concurrent-gc-syncs` default.
pub const DEFAULT_WORKERS: u16 = 20;

/// Resources never watched (upstream's default ignored resources).
pub const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// The verbs a resource needs to be garbage collected.
pub const VERBS: &[&str] = &["delete", "list", "watch"];

/// The resources the collector watches: deletable, listable, watchable and not ignored.
pub fn watched(d: &Discovered) -> Vec<Resource> {
    d.supporting(VERBS)
        .filter(|r| {
            !IGNORED
                .iter()
                .any(|(g, p)| r.api.group == *g && r.api.plural == *p)
        })
        .cloned()
        .collect()
}

/// A change the monitors report to the graph builder.
enum Change {
    Upsert(ObjectInfo),
    Delete(String),
    /// A monitor has delivered its first complete list.
    Synced,
}

struct Gc {
    client: Client,
    graph: Mutex<Graph>,
    discovered: RwLock<Discovered>,
    queue: Arc<Queue<Work>>,
    backoff: RetryBackoff,
    ctx: Arc<ControllerContext>,
}

/// Runs the garbage collector until it is stopped.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let watch_client = ctx.informers(&client);
    let (queue, delays) = Queue::new();
    let queue = Arc::new(queue);
    let mut tasks = JoinSet::new();
    tasks.spawn(queue::run_delays(queue.clone(), delays));
    let discovered = discover_until_ok(&client).await;
    let gc = Arc::new(Gc {
        client,
        graph: Mutex::new(Graph::default()),
        discovered: RwLock::new(discovered.clone()),
        queue,
        backoff: RetryBackoff::default(),
        ctx: ctx.clone(),
    });

    let (tx, rx) = mpsc::unbounded_channel();
    let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(0usize);
    tasks.spawn(build_graph(gc.clone(), rx, synced_tx));
    let mut monitors = HashMap::new();
    sync_monitors(
        &mut tasks,
        &mut monitors,
        &watched(&discovered),
        &watch_client,
        &tx,
    );
    let initial = monitors.len();
    // Upstream waits for the graph to be complete before deciding anything.
    while *synced_rx.borrow_and_update() < initial {
        if synced_rx.changed().await.is_err() {
            return Err(Error::CacheStopped("garbage-collector graph"));
        }
    }
    tracing::info!(
        controller = NAME,
        resources = initial,
        "graph synced, collecting"
    );
    let workers = ctx.workers.get(NAME).copied().unwrap_or(DEFAULT_WORKERS);
    for _ in 0..workers {
        tasks.spawn(worker(gc.clone()));
    }
    loop {
        tokio::time::sleep(DISCOVERY_PERIOD).await;
        match preferred_resources(&gc.client).await {
            Ok(d) => {
                sync_monitors(&mut tasks, &mut monitors, &watched(&d), &watch_client, &tx);
                *gc.discovered.write().unwrap_or_else(|p| p.into_inner()) = d;
            }
            Err(e) => tracing::warn!(controller = NAME, error = %e, "discovery failed"),
        }
    }
}

async fn discover_until_ok(client: &Client) -> Discovered {
    let mut delay = Duration::from_millis(100);
    loop {
        match preferred_resources(client).await {
            Ok(d) => return d,
            Err(e) => {
                tracing::warn!(controller = NAME, error = %e, "discovery failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Starts a monitor for each resource not yet watched, stops those no longer discovered.
fn sync_monitors(
    tasks: &mut JoinSet<()>,
    monitors: &mut HashMap<String, tokio::task::AbortHandle>,
    resources: &[Resource],
    client: &Client,
    tx: &mpsc::UnboundedSender<Change>,
) {
    let wanted: HashSet<String> = resources.iter().map(Resource::group_resource).collect();
    monitors.retain(|gr, handle| {
        let keep = wanted.contains(gr);
        if !keep {
            tracing::info!(controller = NAME, resource = %gr, "no longer discovered, unwatched");
            handle.abort();
        }
        keep
    });
    for r in resources {
        let gr = r.group_resource();
        if monitors.contains_key(&gr) {
            continue;
        }
        let handle = tasks.spawn(monitor(r.clone(), client.clone(), tx.clone()));
        monitors.insert(gr, handle);
    }
}

/// Watches one resource into graph changes. A re-list reports the objects that vanished
/// while the watch was down as deletions.
async fn monitor(res: Resource, client: Client, tx: mpsc::UnboundedSender<Change>) {
    let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client, &res.api);
    // Metadata only (upstream's GC uses metadata informers): owner references and deletion
    // state are all it reads, and whole objects would cost decoding every spec.
    let info = |o: &PartialObjectMeta<DynamicObject>| {
        ObjectInfo::from_meta(&res.api.api_version, &res.api.kind, &o.metadata)
    };
    let mut known: HashSet<String> = HashSet::new();
    let mut fresh: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = events.next().await {
        let changes = match ev {
            Err(e) => {
                tracing::warn!(controller = NAME, resource = %res.group_resource(), error = %e, "watch failed, retrying");
                continue;
            }
            Ok(watcher::Event::Init) => {
                fresh.clear();
                vec![]
            }
            Ok(watcher::Event::InitApply(o)) => info(&o)
                .map(|i| {
                    fresh.insert(i.uid.clone());
                    Change::Upsert(i)
                })
                .into_iter()
                .collect(),
            Ok(watcher::Event::InitDone) => {
                let mut out: Vec<Change> = known
                    .difference(&fresh)
                    .map(|uid| Change::Delete(uid.clone()))
                    .collect();
                known = std::mem::take(&mut fresh);
                if !synced {
                    synced = true;
                    out.push(Change::Synced);
                }
                out
            }
            Ok(watcher::Event::Apply(o)) => info(&o)
                .map(|i| {
                    known.insert(i.uid.clone());
                    Change::Upsert(i)
                })
                .into_iter()
                .collect(),
            Ok(watcher::Event::Delete(o)) => o
                .metadata
                .uid
                .map(|uid| {
                    known.remove(&uid);
                    Change::Delete(uid)
                })
                .into_iter()
                .collect(),
        };
        for c in changes {
            if tx.send(c).is_err() {
                return;
            }
        }
    }
}

/// Applies the monitors' changes to the graph and queues the work they cause.
async fn build_graph(
    gc: Arc<Gc>,
    mut rx: mpsc::UnboundedReceiver<Change>,
    synced: tokio::sync::watch::Sender<usize>,
) {
    while let Some(change) = rx.recv().await {
        let work = {
            let mut g = gc.graph.lock().unwrap_or_else(|p| p.into_inner());
            match change {
                Change::Upsert(info) => g.upsert(info),
                Change::Delete(uid) => g.remove(&uid),
                Change::Synced => {
                    synced.send_modify(|n| *n += 1);
                    vec![]
                }
            }
        };
        for w in work {
            enqueue(&gc, w);
        }
    }
}

fn key(w: &Work) -> String {
    match w {
        Work::AttemptToDelete(uid) => format!("delete/{uid}"),
        Work::Orphan(uid) => format!("orphan/{uid}"),
    }
}

fn enqueue(gc: &Gc, w: Work) {
    gc.ctx.metrics.queued(NAME, key(&w));
    gc.queue.add(w);
}

async fn worker(gc: Arc<Gc>) {
    loop {
        let w = gc.queue.next().await;
        let k = key(&w);
        gc.ctx.metrics.started(NAME, k.clone());
        let began = Instant::now();
        let res = match &w {
            Work::AttemptToDelete(uid) => attempt_to_delete(&gc, uid).await,
            Work::Orphan(uid) => orphan(&gc, uid).await,
        };
        gc.ctx.metrics.finished(NAME, began.elapsed(), res.is_err());
        match res {
            Ok(()) => gc.backoff.succeeded(&k),
            Err(e) => {
                match &e {
                    Error::Api(api) if is_conflict(api) => {
                        tracing::debug!(controller = NAME, work = %k, "conflict, will retry")
                    }
                    _ => tracing::warn!(controller = NAME, work = %k, error = %e, "will retry"),
                }
                gc.queue.add_after(w.clone(), gc.backoff.failed(&k));
            }
        }
        gc.queue.done(&w);
    }
}

impl Gc {
    fn resource(&self, api_version: &str, kind: &str) -> Option<Resource> {
        self.discovered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .for_kind(api_version, kind)
            .cloned()
    }

    fn api(&self, r: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match (r.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.api),
            _ => Api::all_with(self.client.clone(), &r.api),
        }
    }

    /// The live object `info` names, if it still exists with the same uid.
    async fn latest(&self, info: &ObjectInfo) -> Result<Option<(Resource, DynamicObject)>, Error> {
        let Some(r) = self.resource(&info.api_version, &info.kind) else {
            return Ok(None);
        };
        let obj = self
            .api(&r, info.namespace.as_deref())
            .get_opt(&info.name)
            .await?;
        Ok(obj
            .filter(|o| o.metadata.uid.as_deref() == Some(info.uid.as_str()))
            .map(|o| (r, o)))
    }

    /// Upstream's `isDangling` and `classifyReferences` for one reference of `dependent`.
    async fn owner_state(
        &self,
        owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
        dependent: &ObjectInfo,
    ) -> Result<OwnerState, Error> {
        let Some(r) = self.resource(&owner.api_version, &owner.kind) else {
            // Unknown kind: it may not be discovered yet; retry with backoff as upstream.
            return Err(Error::Api(kube::Error::Discovery(
                kube::error::DiscoveryError::MissingKind(format!(
                    "{}, Kind={}",
                    owner.api_version, owner.kind
                )),
            )));
        };
        if r.namespaced && dependent.namespace.is_none() {
            return Ok(OwnerState::Invalid);
        }
        let found = self
            .api(&r, dependent.namespace.as_deref())
            .get_opt(&owner.name)
            .await?;
        Ok(match found {
            Some(o) if o.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let info = ObjectInfo::from_meta(&owner.api_version, &owner.kind, &o.metadata);
                OwnerState::Present {
                    deleting_dependents: info.is_some_and(|i| i.deleting_dependents()),
                }
            }
            _ => OwnerState::Absent,
        })
    }
}

/// Upstream's `attemptToDeleteItem`.
async fn attempt_to_delete(gc: &Gc, uid: &str) -> Result<(), Error> {
    let (info, view) = {
        let g = gc.graph.lock().unwrap_or_else(|p| p.into_inner());
        match (g.get(uid).cloned(), g.view(uid)) {
            (Some(i), Some(v)) => (i, v),
            _ => return Ok(()),
        }
    };
    // Decide on the live object, not the cache.
    let Some((res, latest)) = gc.latest(&info).await? else {
        return Ok(());
    };
    let Some(live) = ObjectInfo::from_meta(&info.api_version, &info.kind, &latest.metadata) else {
        return Ok(());
    };
    let api = gc.api(&res, live.namespace.as_deref());
    let rv = latest.metadata.resource_version.clone();
    match precheck(&live, &view) {
        Precheck::Nothing => Ok(()),
        Precheck::CheckDependents(deps) => {
            for d in deps {
                enqueue(gc, Work::AttemptToDelete(d));
            }
            Ok(())
        }
        Precheck::RemoveForegroundFinalizer => {
            remove_finalizer(&api, &live, rv, FOREGROUND_FINALIZER).await
        }
        Precheck::LookUpOwners => {
            let mut owners = Vec::with_capacity(live.owners.len());
            for o in &live.owners {
                owners.push((o.uid.clone(), gc.owner_state(o, &live).await?));
            }
            match decide(&live, &owners, &view) {
                Decision::Keep => Ok(()),
                Decision::RemoveOwnerReferences(uids) => {
                    tracing::info!(controller = NAME, object = %describe(&live), owners = ?uids, "removing references to absent or deleting owners");
                    set_owner_references(&api, &live, rv, without_owners(&live.owners, &uids)).await
                }
                Decision::UnblockThenDeleteForeground => {
                    set_owner_references(&api, &live, rv, unblocked(&live.owners)).await?;
                    delete(&api, &live, graph::Propagation::Foreground).await
                }
                Decision::Delete(p) => delete(&api, &live, p).await,
            }
        }
    }
}

/// Upstream's `attemptToOrphanWorker`: detach the dependents, then drop the finalizer.
async fn orphan(gc: &Gc, uid: &str) -> Result<(), Error> {
    let (info, dependents) = {
        let g = gc.graph.lock().unwrap_or_else(|p| p.into_inner());
        let Some(info) = g.get(uid).cloned() else {
            return Ok(());
        };
        let deps: Vec<ObjectInfo> = g.dependents(uid).into_iter().cloned().collect();
        (info, deps)
    };
    for dep in &dependents {
        let Some((res, latest)) = gc.latest(dep).await? else {
            continue;
        };
        let Some(live) = ObjectInfo::from_meta(&dep.api_version, &dep.kind, &latest.metadata)
        else {
            continue;
        };
        if live.owner(uid).is_none() {
            continue;
        }
        let api = gc.api(&res, live.namespace.as_deref());
        let left = without_owners(&live.owners, &[uid.to_string()]);
        set_owner_references(&api, &live, latest.metadata.resource_version.clone(), left).await?;
    }
    let Some((res, latest)) = gc.latest(&info).await? else {
        return Ok(());
    };
    let Some(live) = ObjectInfo::from_meta(&info.api_version, &info.kind, &latest.metadata) else {
        return Ok(());
    };
    if !live.orphaning() {
        return Ok(());
    }
    let api = gc.api(&res, live.namespace.as_deref());
    tracing::info!(controller = NAME, object = %describe(&live), dependents = dependents.len(), "orphaned dependents");
    remove_finalizer(
        &api,
        &live,
        latest.metadata.resource_version,
        ORPHAN_FINALIZER,
    )
    .await
}

fn describe(o: &ObjectInfo) -> String {
    format!(
        "{} {}/{} ({})",
        o.kind,
        o.namespace.as_deref().unwrap_or_default(),
        o.name,
        o.uid
    )
}

/// A merge patch of `metadata`, guarded by the resourceVersion it was decided on.
async fn patch_meta(
    api: &Api<DynamicObject>,
    o: &ObjectInfo,
    rv: Option<String>,
    fields: serde_json::Value,
) -> Result<(), Error> {
    let mut meta = json!({ "uid": o.uid });
    if let (Some(m), Some(f)) = (meta.as_object_mut(), fields.as_object()) {
        m.extend(f.clone());
        if let Some(rv) = rv {
            m.insert("resourceVersion".into(), json!(rv));
        }
    }
    match api
        .patch(
            &o.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": meta })),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn remove_finalizer(
    api: &Api<DynamicObject>,
    o: &ObjectInfo,
    rv: Option<String>,
    finalizer: &str,
) -> Result<(), Error> {
    let left: Vec<&String> = o.finalizers.iter().filter(|f| *f != finalizer).collect();
    patch_meta(api, o, rv, json!({ "finalizers": left })).await
}

async fn set_owner_references(
    api: &Api<DynamicObject>,
    o: &ObjectInfo,
    rv: Option<String>,
    owners: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), Error> {
    let value = if owners.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(owners).unwrap_or(serde_json::Value::Null)
    };
    patch_meta(api, o, rv, json!({ "ownerReferences": value })).await
}

async fn delete(
    api: &Api<DynamicObject>,
    o: &ObjectInfo,
    p: graph::Propagation,
) -> Result<(), Error> {
    tracing::info!(controller = NAME, object = %describe(o), propagation = p.as_str(), "deleting object");
    let dp = DeleteParams {
        propagation_policy: Some(match p {
            graph::Propagation::Background => kube::api::PropagationPolicy::Background,
            graph::Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
            graph::Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
        }),
        preconditions: Some(Preconditions {
            uid: Some(o.uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&o.name, &dp).await {
        Ok(_) => Ok(()),
        // Gone already, or replaced by another object of the same name (uid precondition).
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Resource;
    use kube::discovery::ApiResource;

    fn r(group: &str, plural: &str, verbs: &[&str]) -> Resource {
        Resource {
            api: ApiResource {
                group: group.into(),
                version: "v1".into(),
                api_version: if group.is_empty() {
                    "v1".into()
                } else {
                    format!("{group}/v1")
                },
                kind: plural.into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn watched_resources_support_delete_list_watch_and_are_not_ignored() {
        let all = ["create", "delete", "get", "list", "watch"];
        let d = Discovered {
            resources: vec![
                r("", "configmaps", &all),
                r("", "events", &all),
                r("events.k8s.io", "events", &all),
                r("", "bindings", &["create"]),
                r("authentication.k8s.io", "tokenreviews", &["create"]),
                r("apps", "deployments", &all),
                r("", "componentstatuses", &["get", "list"]),
            ],
            failed: Default::default(),
        };
        let got: Vec<String> = watched(&d).iter().map(Resource::group_resource).collect();
        assert_eq!(got, ["configmaps.", "deployments.apps"]);
    }
}
