//! The driver: watches feed one scheduling loop, which owns the cache and the queue, runs the
//! pure cycle ([`crate::schedule`]) for one pod at a time, assumes the chosen node, and hands
//! the binding to an async task so the next pod is scheduled while the bind is in flight.
//! Bind results come back to the loop as messages: success leaves the pod assumed until the
//! watch confirms it; failure forgets it and retries it with backoff.
//!
//! The loop runs on a blocking thread (scheduling is CPU work), filtering and scoring in
//! parallel on a rayon pool; the API calls (binding, events, status updates, preemption's
//! evictions) run on the tokio runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use crate::actions::{self, pod_ref, Events, PodEvent};
use crate::cache::Cache;
use crate::config::{ConfigError, KubeSchedulerConfiguration, DEFAULT_SCHEDULER_NAME};
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, Framework, Nominated, PodInfo,
    PostFilterResult, Status, WaitingPods,
};
use crate::metrics::Metrics;
use crate::queue::SchedulingQueue;
use crate::registry::Handle;
use crate::schedule::{schedule_pod, CycleCursor, FitError, Outcome};
use crate::watch::{self, Msg, WatchEvent};

/// Why the scheduler could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The filter/score thread pool could not start.
    #[error("starting the scheduler's worker pool: {0}")]
    Pool(String),
    /// The scheduling loop panicked.
    #[error("the scheduling loop failed: {0}")]
    Loop(String),
}

/// A binding cycle's result, sent back to the loop.
#[derive(Debug)]
pub struct BindDone {
    fw: Arc<Framework>,
    assumed: Arc<PodInfo>,
    node: String,
    state: CycleState,
    status: Status,
    started: Instant,
    first_queued: Instant,
}

/// Runs the scheduler until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    config: KubeSchedulerConfiguration,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let waiting = Arc::new(WaitingPods::default());
    let handle = Handle {
        client: Some(client.clone()),
        waiting: waiting.clone(),
    };
    let frameworks = config.build(&handle)?;
    let threads = config
        .parallelism
        .map(|p| p as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rkube-scheduler-{i}"))
        .build()
        .map_err(|e| Error::Pool(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let watches = watch::start(&client, &tx);
    let mut tasks = Vec::new();
    let mut events = HashMap::new();
    for fw in &frameworks {
        let (ev, task) = Events::start(client.clone(), &fw.scheduler_name);
        events.insert(fw.scheduler_name.clone(), ev);
        tasks.push(task);
    }
    let (initial, max) = config.backoff();
    let queue = SchedulingQueue::new(frameworks[0].clone(), &frameworks, initial, max);
    let state = Loop {
        client,
        rt: tokio::runtime::Handle::current(),
        tx: tx.clone(),
        profiles: frameworks
            .iter()
            .map(|f| (f.scheduler_name.clone(), f.clone()))
            .collect(),
        cache: Cache::new(),
        queue,
        nominated: Nominated::default(),
        cursor: CycleCursor::default(),
        percentage: config.percentage_of_nodes_to_score.unwrap_or(0),
        metrics,
        events,
        waiting,
        synced: HashSet::new(),
        relist: HashMap::new(),
        objects: Objects::default(),
        objects_dirty: false,
    };
    // The loop thread stops on Shutdown; the guard sends it also when this future is dropped
    // (the task aborted), so a runtime shutting down never waits on the loop.
    let guard = StopOnDrop(tx.clone());
    let looping = tokio::task::spawn_blocking(move || pool.install(move || state.run(rx)));
    shutdown.await;
    drop(guard);
    let result = looping
        .await
        .map_err(|e| Error::Loop(e.to_string()))
        .and_then(|r| r);
    for t in watches.into_iter().chain(tasks) {
        t.abort();
    }
    result
}

/// Tells the loop to stop when dropped.
struct StopOnDrop(Sender<Msg>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Shutdown);
    }
}

/// Objects the snapshot holds as lists, kept by key here and copied over when they change.
#[derive(Default)]
struct Objects {
    pdbs: BTreeMap<String, Arc<k8s_openapi::api::policy::v1::PodDisruptionBudget>>,
    services: BTreeMap<String, Arc<k8s_openapi::api::core::v1::Service>>,
    rcs: BTreeMap<String, Arc<k8s_openapi::api::core::v1::ReplicationController>>,
    rss: BTreeMap<String, Arc<k8s_openapi::api::apps::v1::ReplicaSet>>,
    stss: BTreeMap<String, Arc<k8s_openapi::api::apps::v1::StatefulSet>>,
}

struct Loop {
    client: kube::Client,
    rt: tokio::runtime::Handle,
    tx: Sender<Msg>,
    profiles: HashMap<String, Arc<Framework>>,
    cache: Cache,
    queue: SchedulingQueue,
    nominated: Nominated,
    cursor: CycleCursor,
    percentage: i32,
    metrics: Arc<Metrics>,
    events: HashMap<String, Events>,
    waiting: Arc<WaitingPods>,
    /// Watches (by index) whose first list is complete.
    synced: HashSet<usize>,
    /// Keys seen during an ongoing relist, by watch.
    relist: HashMap<usize, HashSet<String>>,
    objects: Objects,
    objects_dirty: bool,
}

fn key_of<K: kube::Resource>(o: &K) -> String {
    format!(
        "{}/{}",
        o.meta().namespace.as_deref().unwrap_or(""),
        o.meta().name.as_deref().unwrap_or("")
    )
}

fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// What changed between two versions of a node, as upstream's `nodeSchedulingPropertiesChange`
/// (heartbeat timestamps are not a change).
fn node_change(old: &Node, new: &Node) -> ActionType {
    let mut a = ActionType(0);
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    if alloc(old) != alloc(new) {
        a = a.or(ActionType::UPDATE_NODE_ALLOCATABLE);
    }
    if old.metadata.labels != new.metadata.labels {
        a = a.or(ActionType::UPDATE_NODE_LABEL);
    }
    let taints = |n: &Node| {
        n.spec
            .as_ref()
            .map(|s| (s.taints.clone(), s.unschedulable))
            .unwrap_or_default()
    };
    if taints(old) != taints(new) {
        a = a.or(ActionType::UPDATE_NODE_TAINT);
    }
    let conds = |n: &Node| -> Vec<(String, String)> {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    if conds(old) != conds(new) {
        a = a.or(ActionType::UPDATE_NODE_CONDITION);
    }
    if old.metadata.annotations != new.metadata.annotations {
        a = a.or(ActionType::UPDATE_NODE_ANNOTATION);
    }
    a
}

// Watch indices, for the initial-sync and relist bookkeeping.
const POD_WATCH: usize = 0;
const NODE_WATCH: usize = 1;
const NAMESPACE_WATCH: usize = 2;
const PDB_WATCH: usize = 3;
const SERVICE_WATCH: usize = 4;
const RC_WATCH: usize = 5;
const RS_WATCH: usize = 6;
const STS_WATCH: usize = 7;

impl Loop {
    fn run(mut self, rx: Receiver<Msg>) -> Result<(), Error> {
        let mut idle = true;
        let mut last_flush = Instant::now();
        let mut last_gauge = Instant::now();
        loop {
            if idle {
                let now = Instant::now();
                let wait = self
                    .queue
                    .next_backoff()
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(1));
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        if !self.handle(msg) {
                            return Ok(());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        if !self.handle(msg) {
                            return Ok(());
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if self.objects_dirty {
                self.publish_objects();
            }
            let now = Instant::now();
            self.queue.flush_backoff(now);
            if now.duration_since(last_flush) >= Duration::from_secs(30) {
                self.queue.flush_unschedulable(now);
                last_flush = now;
            }
            if now.duration_since(last_gauge) >= Duration::from_secs(1) {
                self.metrics.pending(self.queue.pending());
                last_gauge = now;
            }
            if self.synced.len() < watch::WATCHED {
                idle = true;
                continue;
            }
            idle = match self.queue.pop() {
                Some(q) => {
                    self.schedule_one(q);
                    false
                }
                None => true,
            };
        }
    }

    /// Applies one message; false on shutdown.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Shutdown => return false,
            Msg::Pod(ev) => self.on_watch(POD_WATCH, ev, Self::pod_applied, Self::pod_deleted),
            Msg::Node(ev) => self.on_watch(NODE_WATCH, ev, Self::node_applied, Self::node_deleted),
            Msg::Namespace(ev) => self.on_watch(
                NAMESPACE_WATCH,
                ev,
                |s, ns| {
                    let name = ns.name_any();
                    s.cache
                        .snapshot_mut()
                        .namespaces
                        .insert(name, ns.labels().clone());
                    s.queue.on_event(
                        &ClusterEvent::new(
                            EventResource::Namespace,
                            ActionType::ADD.or(ActionType::UPDATE),
                        ),
                        Instant::now(),
                    );
                },
                |s, key| {
                    let name = key.trim_start_matches('/').to_string();
                    s.cache.snapshot_mut().namespaces.remove(&name);
                },
            ),
            Msg::Pdb(ev) => self.on_watch(
                PDB_WATCH,
                ev,
                |s, o| {
                    s.objects.pdbs.insert(key_of(o.as_ref()), o);
                    s.objects_dirty = true;
                },
                |s, k| {
                    s.objects.pdbs.remove(k);
                    s.objects_dirty = true;
                },
            ),
            Msg::Service(ev) => self.on_watch(
                SERVICE_WATCH,
                ev,
                |s, o| {
                    s.objects.services.insert(key_of(o.as_ref()), o);
                    s.objects_dirty = true;
                },
                |s, k| {
                    s.objects.services.remove(k);
                    s.objects_dirty = true;
                },
            ),
            Msg::Rc(ev) => self.on_watch(
                RC_WATCH,
                ev,
                |s, o| {
                    s.objects.rcs.insert(key_of(o.as_ref()), o);
                    s.objects_dirty = true;
                },
                |s, k| {
                    s.objects.rcs.remove(k);
                    s.objects_dirty = true;
                },
            ),
            Msg::Rs(ev) => self.on_watch(
                RS_WATCH,
                ev,
                |s, o| {
                    s.objects.rss.insert(key_of(o.as_ref()), o);
                    s.objects_dirty = true;
                },
                |s, k| {
                    s.objects.rss.remove(k);
                    s.objects_dirty = true;
                },
            ),
            Msg::Sts(ev) => self.on_watch(
                STS_WATCH,
                ev,
                |s, o| {
                    s.objects.stss.insert(key_of(o.as_ref()), o);
                    s.objects_dirty = true;
                },
                |s, k| {
                    s.objects.stss.remove(k);
                    s.objects_dirty = true;
                },
            ),
            Msg::BindDone(done) => self.bind_done(*done),
        }
        true
    }

    /// Watch bookkeeping shared by every resource: applies and deletes, and after a relist
    /// deletes what the relist did not return. Keys are `namespace/name` except for pods
    /// (uid).
    fn on_watch<K: kube::Resource>(
        &mut self,
        idx: usize,
        ev: WatchEvent<K>,
        apply: fn(&mut Self, Arc<K>),
        delete: fn(&mut Self, &str),
    ) {
        let key = |o: &K| {
            if idx == POD_WATCH {
                o.meta().uid.clone().unwrap_or_default()
            } else {
                key_of(o)
            }
        };
        match ev {
            WatchEvent::Init => {
                self.relist.insert(idx, HashSet::new());
            }
            WatchEvent::InitApply(o) => {
                if let Some(seen) = self.relist.get_mut(&idx) {
                    seen.insert(key(&o));
                }
                apply(self, o);
            }
            WatchEvent::InitDone => {
                if let Some(seen) = self.relist.remove(&idx) {
                    for k in self.known_keys(idx) {
                        if !seen.contains(&k) {
                            delete(self, &k);
                        }
                    }
                }
                self.synced.insert(idx);
            }
            WatchEvent::Apply(o) => apply(self, o),
            WatchEvent::Delete(o) => delete(self, &key(&o)),
        }
    }

    fn known_keys(&self, idx: usize) -> Vec<String> {
        match idx {
            POD_WATCH => {
                let mut v: Vec<String> = self
                    .cache
                    .pod_uids()
                    .into_iter()
                    .filter(|u| !self.cache.is_assumed(u))
                    .collect();
                v.extend(self.queue.uids());
                v
            }
            NODE_WATCH => self
                .cache
                .node_names()
                .into_iter()
                .map(|n| format!("/{n}"))
                .collect(),
            NAMESPACE_WATCH => self
                .cache
                .snapshot()
                .namespaces
                .keys()
                .map(|n| format!("/{n}"))
                .collect(),
            PDB_WATCH => self.objects.pdbs.keys().cloned().collect(),
            SERVICE_WATCH => self.objects.services.keys().cloned().collect(),
            RC_WATCH => self.objects.rcs.keys().cloned().collect(),
            RS_WATCH => self.objects.rss.keys().cloned().collect(),
            STS_WATCH => self.objects.stss.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn publish_objects(&mut self) {
        let o = &self.objects;
        let snap = self.cache.snapshot_mut();
        snap.pdbs = o.pdbs.values().cloned().collect();
        snap.services = o.services.values().cloned().collect();
        snap.replication_controllers = o.rcs.values().cloned().collect();
        snap.replica_sets = o.rss.values().cloned().collect();
        snap.stateful_sets = o.stss.values().cloned().collect();
        self.objects_dirty = false;
        self.queue.on_event(
            &ClusterEvent::new(EventResource::PodDisruptionBudget, ActionType::ALL),
            Instant::now(),
        );
    }

    fn pod_applied(&mut self, pod: Arc<Pod>) {
        let info = Arc::new(PodInfo::new(pod.clone()));
        let uid = info.uid.clone();
        let node = info.node_name().to_string();
        let now = Instant::now();
        if !node.is_empty() {
            // bound: by us (confirming an assumption) or by someone else
            self.queue.delete(&uid);
            self.nominated.remove(&uid);
            if is_terminal(&pod) {
                self.pod_deleted(&uid);
                return;
            }
            let known = self.cache.contains(&uid) && !self.cache.is_assumed(&uid);
            let old_labels = known
                .then(|| {
                    self.cache
                        .snapshot()
                        .get(&node)
                        .and_then(|n| n.pods.iter().find(|p| p.uid == uid))
                        .map(|p| (p.labels.clone(), p.requests.clone()))
                })
                .flatten();
            self.cache.add_or_update_pod(info.clone());
            let action = match old_labels {
                None if known => ActionType::UPDATE_OTHER,
                None => ActionType::ADD,
                Some((labels, req)) => {
                    let mut a = ActionType(0);
                    if labels != info.labels {
                        a = a.or(ActionType::UPDATE_POD_LABEL);
                    }
                    if req != info.requests {
                        a = a.or(ActionType::UPDATE_POD_SCALE_DOWN);
                    }
                    a
                }
            };
            if action.0 != 0 {
                self.queue
                    .on_event(&ClusterEvent::new(EventResource::AssignedPod, action), now);
            }
            return;
        }
        if is_terminal(&pod) || pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&uid);
            self.nominated.remove(&uid);
            return;
        }
        let Some(fw) = self.profiles.get(scheduler_name(&pod)).cloned() else {
            return; // another scheduler's pod
        };
        match pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some(n) => self.nominated.add(n, info.clone()),
            None => self.nominated.remove(&uid),
        }
        if self.cache.is_assumed(&uid) {
            return; // our bind is in flight; the pod is not pending any more
        }
        self.queue.update(info, &fw, now);
    }

    fn pod_deleted(&mut self, uid: &str) {
        self.queue.delete(uid);
        self.nominated.remove(uid);
        if self.cache.remove_pod(uid).is_some() {
            self.queue.on_event(
                &ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE),
                Instant::now(),
            );
        }
    }

    fn node_applied(&mut self, node: Arc<Node>) {
        let old = self.cache.upsert_node(node.clone());
        let action = match &old {
            None => ActionType::ADD,
            Some(old) => node_change(old, &node),
        };
        if action.0 != 0 {
            self.queue.on_event(
                &ClusterEvent::new(EventResource::Node, action),
                Instant::now(),
            );
        }
    }

    fn node_deleted(&mut self, key: &str) {
        let name = key.trim_start_matches('/');
        self.cache.remove_node(name);
    }

    fn schedule_one(&mut self, q: crate::framework::QueuedPodInfo) {
        let pod = q.pod.clone();
        let Some(fw) = self.profiles.get(scheduler_name(&pod.pod)).cloned() else {
            self.queue.delete(&pod.uid);
            return;
        };
        if pod.pod.metadata.deletion_timestamp.is_some() || self.cache.contains(&pod.uid) {
            self.queue.delete(&pod.uid);
            return;
        }
        let started = Instant::now();
        let mut state = CycleState::new();
        let outcome = schedule_pod(
            &fw,
            &mut state,
            &pod,
            self.cache.snapshot(),
            &self.nominated,
            &mut self.cursor,
            self.percentage,
        );
        match outcome {
            Outcome::Scheduled { node, .. } => self.assume_and_bind(fw, q, state, node, started),
            Outcome::Unschedulable { fit, nomination } => {
                self.unschedulable(&fw, &q, *fit, nomination, started)
            }
            Outcome::Error(s) => self.error(&fw, &q, s, started),
        }
    }

    fn assume_and_bind(
        &mut self,
        fw: Arc<Framework>,
        q: crate::framework::QueuedPodInfo,
        mut state: CycleState,
        node: String,
        started: Instant,
    ) {
        let mut pod = (*q.pod.pod).clone();
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = Some(node.clone());
        }
        let mut assumed = (*q.pod).clone();
        assumed.pod = Arc::new(pod);
        let assumed = Arc::new(assumed);
        self.cache.assume(assumed.clone());
        self.nominated.remove(&assumed.uid);
        let s = fw.run_reserve(&mut state, &assumed, &node);
        if !s.is_success() {
            self.cache.forget(&assumed.uid);
            self.error(&fw, &q, s, started);
            return;
        }
        let (s, wait) = fw.run_permit(&mut state, &assumed, &node);
        if !s.is_success() && !s.is_wait() {
            fw.run_unreserve(&mut state, &assumed, &node);
            self.cache.forget(&assumed.uid);
            self.error(&fw, &q, s, started);
            return;
        }
        let permit = wait.map(|t| {
            (
                self.waiting.wait(&assumed.uid, s.reasons().iter().cloned()),
                t,
            )
        });
        let tx = self.tx.clone();
        let events = self.events.get(&fw.scheduler_name).cloned();
        let waiting = self.waiting.clone();
        let first_queued = q.initial_attempt;
        self.rt.spawn(async move {
            let mut status = Status::success();
            if let Some((rx, timeout)) = permit {
                status = match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(s)) => s,
                    _ => {
                        waiting.remove(&assumed.uid);
                        Status::unschedulable("pod rejected while waiting on permit: timeout")
                    }
                };
            }
            if status.is_success() {
                status = fw.run_pre_bind(&state, &assumed, &node).await;
            }
            if status.is_success() {
                status = fw.run_bind(&state, &assumed, &node).await;
            }
            if status.is_success() {
                fw.run_post_bind(&state, &assumed, &node).await;
                if let Some(ev) = &events {
                    ev.emit(PodEvent {
                        pod: pod_ref(&assumed),
                        warning: false,
                        reason: "Scheduled",
                        action: "Binding",
                        note: format!(
                            "Successfully assigned {}/{} to {node}",
                            assumed.namespace, assumed.name
                        ),
                    });
                }
            }
            let _ = tx.send(Msg::BindDone(Box::new(BindDone {
                fw,
                assumed,
                node,
                state,
                status,
                started,
                first_queued,
            })));
        });
    }

    fn bind_done(&mut self, mut d: BindDone) {
        let uid = d.assumed.uid.clone();
        if d.status.is_success() {
            self.queue.done(&uid);
            self.metrics
                .attempt("scheduled", &d.fw.scheduler_name, d.started.elapsed());
            self.metrics.scheduled(d.first_queued.elapsed());
            return;
        }
        d.fw.run_unreserve(&mut d.state, &d.assumed, &d.node);
        self.cache.forget(&uid);
        // the space it held is free again
        self.queue.on_event(
            &ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE),
            Instant::now(),
        );
        let msg = format!("Binding rejected: {}", d.status.message());
        tracing::debug!(pod = %d.assumed.key(), error = %msg, "binding failed");
        let fw = d.fw.clone();
        self.report_failure(&fw, &d.assumed, None, "SchedulerError", msg, None);
        self.metrics
            .attempt("error", &fw.scheduler_name, d.started.elapsed());
    }

    fn unschedulable(
        &mut self,
        fw: &Arc<Framework>,
        q: &crate::framework::QueuedPodInfo,
        fit: FitError,
        nomination: Option<PostFilterResult>,
        started: Instant,
    ) {
        self.metrics
            .attempt("unschedulable", &fw.scheduler_name, started.elapsed());
        let msg = fit.to_string();
        let mut nominated_node = None;
        match nomination {
            Some(n) if n.nominated_node.is_empty() => {
                // preemption cannot help: drop a stale nomination
                self.nominated.remove(&q.pod.uid);
                let had = q
                    .pod
                    .pod
                    .status
                    .as_ref()
                    .and_then(|s| s.nominated_node_name.as_deref())
                    .is_some_and(|n| !n.is_empty());
                if had {
                    nominated_node = Some(String::new());
                }
            }
            Some(n) => {
                nominated_node = Some(n.nominated_node.clone());
                self.nominated.add(&n.nominated_node, q.pod.clone());
                self.preempt(fw, &q.pod, n);
            }
            None => {}
        }
        let plugins = fit.diagnosis.unschedulable_plugins.clone();
        self.report_failure(
            fw,
            &q.pod,
            Some(plugins),
            "Unschedulable",
            msg,
            nominated_node,
        );
    }

    fn error(
        &mut self,
        fw: &Arc<Framework>,
        q: &crate::framework::QueuedPodInfo,
        s: Status,
        started: Instant,
    ) {
        self.metrics
            .attempt("error", &fw.scheduler_name, started.elapsed());
        let (plugins, reason) = if s.is_rejected() {
            (
                Some(s.plugin().into_iter().collect::<HashSet<_>>()),
                "Unschedulable",
            )
        } else {
            (None, "SchedulerError")
        };
        self.report_failure(fw, &q.pod, plugins, reason, s.message(), None);
    }

    /// Requeues the pod, records `FailedScheduling`, and updates its `PodScheduled`
    /// condition (and nomination).
    fn report_failure(
        &mut self,
        fw: &Arc<Framework>,
        pod: &Arc<PodInfo>,
        plugins: Option<HashSet<&'static str>>,
        reason: &'static str,
        msg: String,
        nominated: Option<String>,
    ) {
        self.queue.failed(&pod.uid, plugins, Instant::now());
        if let Some(ev) = self.events.get(&fw.scheduler_name) {
            ev.emit(PodEvent {
                pod: pod_ref(pod),
                warning: true,
                reason: "FailedScheduling",
                action: "Scheduling",
                note: msg.clone(),
            });
        }
        let client = self.client.clone();
        let pod = pod.clone();
        self.rt.spawn(async move {
            actions::set_unschedulable(client, &pod, reason, &msg, nominated).await;
        });
    }

    /// Carries out preemption's proposal: evicts the victims and clears the nominations it
    /// displaces.
    fn preempt(&mut self, fw: &Arc<Framework>, preemptor: &Arc<PodInfo>, n: PostFilterResult) {
        for p in &n.clear_nominations {
            self.nominated.remove(&p.uid);
        }
        let client = self.client.clone();
        let scheduler = fw.scheduler_name.clone();
        let events = self.events.get(&fw.scheduler_name).cloned();
        let preemptor = preemptor.clone();
        self.rt.spawn(async move {
                // victims already terminating need no second eviction
            for victim in n
                .victims
                .iter()
                .filter(|v| v.pod.metadata.deletion_timestamp.is_none())
            {
                if let Some(ev) = &events {
                    if let Err(e) = actions::evict_victim(
                        client.clone(),
                        victim,
                        &scheduler,
                        &preemptor,
                        &n.nominated_node,
                        ev,
                    )
                    .await
                    {
                        tracing::warn!(victim = %victim.key(), error = %e, "preemption: evicting a victim failed");
                    }
                }
            }
            for p in &n.clear_nominations {
                actions::clear_nomination(client.clone(), p).await;
            }
        });
    }
}
