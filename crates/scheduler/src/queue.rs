//! The scheduling queue, as upstream's `PriorityQueue`:
//!
//! - **activeQ**: pods ready to be tried, ordered by the profile's QueueSort plugin (priority,
//!   then arrival);
//! - **backoffQ**: pods that failed, waiting out a backoff of `initial * 2^(attempts-1)`
//!   capped at `max` (1 s doubling to 10 s by default);
//! - **unschedulablePods**: pods no node fits. They move back when a cluster event arrives
//!   that one of the plugins that rejected them registered for (a node added, a pod deleted,
//!   ...), to backoffQ if their backoff has not expired, else to activeQ; and every pod that
//!   has waited there longer than `max_unschedulable` is flushed back as a safety net.
//!
//! Pods that a PreEnqueue plugin rejects (scheduling gates) wait in the unschedulable pool
//! marked gated until an update lets them in. A pod being scheduled is "in flight": updates
//! to it are kept for its next attempt.
//!
//! The heaps use lazy deletion: each pod has a generation, and stale heap entries are skipped.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::framework::{ClusterEvent, Framework, PodInfo, QueuedPodInfo};

/// Which part of the queue a pod is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// activeQ.
    Active,
    /// backoffQ.
    Backoff,
    /// The unschedulable pool.
    Unschedulable,
    /// The unschedulable pool, held by a PreEnqueue plugin.
    Gated,
    /// Being scheduled or bound.
    InFlight,
}

struct Entry {
    pod: QueuedPodInfo,
    place: Place,
    gen: u64,
    /// When the backoff ends (backoffQ) or when the pod entered the pool (unschedulable).
    since: Instant,
    /// A newer version of the pod arrived while it was in flight.
    updated: Option<Arc<PodInfo>>,
}

struct ActiveItem {
    pod: QueuedPodInfo,
    gen: u64,
    sort: Arc<Framework>,
}

impl PartialEq for ActiveItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ActiveItem {}
impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ActiveItem {
    // BinaryHeap pops the greatest: "less" in QueueSort terms means popped first.
    fn cmp(&self, other: &Self) -> Ordering {
        if self.sort.less(&self.pod, &other.pod) {
            Ordering::Greater
        } else if self.sort.less(&other.pod, &self.pod) {
            Ordering::Less
        } else {
            Ordering::Equal
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct BackoffItem {
    until: std::cmp::Reverse<Instant>,
    uid: String,
    gen: u64,
}

/// Counts of pending pods by queue (the `scheduler_pending_pods` metric).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// activeQ.
    pub active: usize,
    /// backoffQ.
    pub backoff: usize,
    /// Unschedulable pool (not gated).
    pub unschedulable: usize,
    /// Gated.
    pub gated: usize,
}

/// See the module documentation.
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<BackoffItem>,
    next_gen: u64,
    sort: Arc<Framework>,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// How long a pod may wait in the unschedulable pool before the flush moves it back.
    pub max_unschedulable: Duration,
    /// Plugin name to the events it registered.
    events: HashMap<&'static str, Vec<ClusterEvent>>,
    /// Uids in the unschedulable pool (not gated), so events need not scan every pod.
    unschedulable: HashSet<String>,
}

impl std::fmt::Debug for SchedulingQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulingQueue")
            .field("pending", &self.pending())
            .finish()
    }
}

impl SchedulingQueue {
    /// A queue ordered by `sort`'s QueueSort plugin, with events registered by the plugins of
    /// every profile in `profiles`.
    pub fn new(
        sort: Arc<Framework>,
        profiles: &[Arc<Framework>],
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> SchedulingQueue {
        let mut events: HashMap<&'static str, Vec<ClusterEvent>> = HashMap::new();
        for fw in profiles {
            for p in fw.plugins() {
                events
                    .entry(p.name())
                    .or_insert_with(|| p.events_to_register());
            }
        }
        SchedulingQueue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            next_gen: 0,
            sort,
            initial_backoff,
            max_backoff,
            max_unschedulable: Duration::from_secs(5 * 60),
            events,
            unschedulable: HashSet::new(),
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn push_active(&mut self, uid: &str, now: Instant) {
        let gen = self.bump();
        self.unschedulable.remove(uid);
        let Some(e) = self.entries.get_mut(uid) else {
            return;
        };
        e.place = Place::Active;
        e.gen = gen;
        e.since = now;
        let pod = e.pod.clone();
        self.active.push(ActiveItem {
            pod,
            gen,
            sort: self.sort.clone(),
        });
    }

    fn push_backoff(&mut self, uid: &str, until: Instant) {
        let gen = self.bump();
        self.unschedulable.remove(uid);
        let Some(e) = self.entries.get_mut(uid) else {
            return;
        };
        e.place = Place::Backoff;
        e.gen = gen;
        e.since = until;
        self.backoff.push(BackoffItem {
            until: std::cmp::Reverse(until),
            uid: uid.to_string(),
            gen,
        });
    }

    /// The backoff after `attempts` failures.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    /// A new pending pod. `fw` is its profile (for PreEnqueue).
    pub fn add(&mut self, pod: Arc<PodInfo>, fw: &Framework, now: Instant) {
        if self.entries.contains_key(&pod.uid) {
            self.update(pod, fw, now);
            return;
        }
        let uid = pod.uid.clone();
        let gated = !fw.run_pre_enqueue(&pod).is_success();
        let mut q = QueuedPodInfo::new(pod, now);
        q.gated = gated;
        self.entries.insert(
            uid.clone(),
            Entry {
                pod: q,
                place: Place::Gated,
                gen: 0,
                since: now,
                updated: None,
            },
        );
        if !gated {
            self.push_active(&uid, now);
        }
    }

    /// A pending pod changed. Gated pods are re-checked; an unschedulable pod whose spec
    /// changed is retried; a pod in activeQ or backoffQ takes the new version in place.
    pub fn update(&mut self, pod: Arc<PodInfo>, fw: &Framework, now: Instant) {
        let uid = pod.uid.clone();
        let Some(e) = self.entries.get_mut(&uid) else {
            self.add(pod, fw, now);
            return;
        };
        let spec_changed = e.pod.pod.pod.spec != pod.pod.spec || e.pod.pod.labels != pod.labels;
        match e.place {
            Place::InFlight => e.updated = Some(pod),
            Place::Active => {
                e.pod.pod = pod;
                self.push_active(&uid, now);
            }
            Place::Backoff => {
                e.pod.pod = pod;
                let until = e.since;
                self.push_backoff(&uid, until);
            }
            Place::Gated => {
                e.pod.pod = pod;
                if fw.run_pre_enqueue(&e.pod.pod).is_success() {
                    e.pod.gated = false;
                    self.push_active(&uid, now);
                }
            }
            Place::Unschedulable => {
                e.pod.pod = pod;
                if spec_changed {
                    self.requeue(&uid, now);
                }
            }
        }
    }

    /// A pending pod was deleted or bound by someone else.
    pub fn delete(&mut self, uid: &str) {
        // heap entries go stale with the entry
        self.entries.remove(uid);
        self.unschedulable.remove(uid);
    }

    /// Whether the queue holds the pod.
    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Where the pod is.
    pub fn place(&self, uid: &str) -> Option<Place> {
        self.entries.get(uid).map(|e| e.place)
    }

    /// The next pod to schedule, marked in flight.
    pub fn pop(&mut self) -> Option<QueuedPodInfo> {
        while let Some(item) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&item.pod.pod.uid) else {
                continue;
            };
            if e.gen != item.gen || e.place != Place::Active {
                continue;
            }
            e.place = Place::InFlight;
            e.pod.attempts += 1;
            return Some(e.pod.clone());
        }
        None
    }

    /// The pod was scheduled and bound: it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        if self
            .entries
            .get(uid)
            .is_some_and(|e| e.place == Place::InFlight)
        {
            self.entries.remove(uid);
        }
    }

    /// An in-flight pod failed. Rejected (`Some`, with the plugins that rejected it) it goes
    /// to the unschedulable pool, where an event any of those plugins registered for (any
    /// event, if none is named) moves it back; after an error (`None`) it backs off.
    pub fn failed(&mut self, uid: &str, plugins: Option<HashSet<&'static str>>, now: Instant) {
        let rejected = plugins.is_some();
        let plugins = plugins.unwrap_or_default();
        let attempts;
        {
            let Some(e) = self.entries.get_mut(uid) else {
                return;
            };
            if let Some(newer) = e.updated.take() {
                e.pod.pod = newer;
            }
            e.pod.timestamp = now;
            e.pod.unschedulable_plugins = plugins;
            attempts = e.pod.attempts;
        }
        if rejected {
            if let Some(e) = self.entries.get_mut(uid) {
                e.place = Place::Unschedulable;
                e.since = now;
                self.unschedulable.insert(uid.to_string());
            }
        } else {
            let until = now + self.backoff_duration(attempts);
            self.push_backoff(uid, until);
        }
    }

    /// Moves a pod out of the unschedulable pool: to backoffQ if its backoff has not ended,
    /// else to activeQ.
    fn requeue(&mut self, uid: &str, now: Instant) {
        let Some(e) = self.entries.get(uid) else {
            return;
        };
        let until = e.pod.timestamp + self.backoff_duration(e.pod.attempts);
        if e.pod.attempts > 0 && until > now {
            self.push_backoff(uid, until);
        } else {
            self.push_active(uid, now);
        }
    }

    /// A cluster event: unschedulable pods rejected by a plugin that registered for it (or
    /// by no plugin in particular) are retried.
    pub fn on_event(&mut self, event: &ClusterEvent, now: Instant) -> usize {
        let movers: Vec<String> = self
            .unschedulable
            .iter()
            .filter_map(|uid| self.entries.get(uid).map(|e| (uid, e)))
            .filter(|(_, e)| {
                e.pod.unschedulable_plugins.is_empty()
                    || e.pod.unschedulable_plugins.iter().any(|p| {
                        self.events
                            .get(p)
                            .is_some_and(|evs| evs.iter().any(|r| r.matches(event)))
                    })
            })
            .map(|(k, _)| k.to_string())
            .collect();
        for uid in &movers {
            self.requeue(uid, now);
        }
        movers.len()
    }

    /// Moves backoffQ pods whose backoff has ended to activeQ.
    pub fn flush_backoff(&mut self, now: Instant) {
        while let Some(top) = self.backoff.peek() {
            if top.until.0 > now {
                break;
            }
            let Some(item) = self.backoff.pop() else {
                break;
            };
            let current = self
                .entries
                .get(&item.uid)
                .is_some_and(|e| e.gen == item.gen && e.place == Place::Backoff);
            if current {
                self.push_active(&item.uid, now);
            }
        }
    }

    /// When the earliest backoff ends.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|b| b.until.0)
    }

    /// Moves pods that have waited in the unschedulable pool longer than
    /// `max_unschedulable` back.
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let old: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|uid| {
                self.entries
                    .get(*uid)
                    .is_some_and(|e| now.duration_since(e.since) >= self.max_unschedulable)
            })
            .cloned()
            .collect();
        for uid in old {
            self.requeue(&uid, now);
        }
    }

    /// Uids of every queued pod.
    pub fn uids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Counts by queue.
    pub fn pending(&self) -> Pending {
        let mut p = Pending::default();
        for e in self.entries.values() {
            match e.place {
                Place::Active => p.active += 1,
                Place::Backoff => p.backoff += 1,
                Place::Unschedulable => p.unschedulable += 1,
                Place::Gated => p.gated += 1,
                Place::InFlight => {}
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{build_profile, Profile};
    use crate::framework::{ActionType, EventResource};
    use crate::plugins::testing::pod;
    use crate::registry::Handle;

    fn fw() -> Arc<Framework> {
        Arc::new(build_profile(&Profile::default(), &Handle::default()).expect("default profile"))
    }

    fn queue() -> SchedulingQueue {
        let f = fw();
        SchedulingQueue::new(
            f.clone(),
            &[f],
            Duration::from_secs(1),
            Duration::from_secs(10),
        )
    }

    fn p(name: &str, prio: i32) -> Arc<PodInfo> {
        pod(json!({"metadata": {"name": name}, "spec": {"priority": prio}}))
    }

    #[test]
    fn active_queue_pops_by_priority_then_arrival() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("low", 1), &f, t);
        q.add(p("high", 10), &f, t + Duration::from_millis(1));
        q.add(p("low2", 1), &f, t + Duration::from_millis(2));
        let order: Vec<String> =
            std::iter::from_fn(|| q.pop().map(|q| q.pod.name.clone())).collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        let q = queue();
        let got: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn failed_pods_back_off_then_return() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("a", 0), &f, t);
        let a = q.pop().expect("a");
        q.failed(&a.pod.uid, None, t);
        assert_eq!(q.place("a"), Some(Place::Backoff));
        q.flush_backoff(t + Duration::from_millis(500));
        assert!(q.pop().is_none(), "still backing off");
        q.flush_backoff(t + Duration::from_secs(1));
        assert_eq!(q.pop().map(|p| p.attempts), Some(2));
    }

    #[test]
    fn unschedulable_pods_move_only_on_events_their_plugins_registered() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("a", 0), &f, t);
        let a = q.pop().expect("a");
        q.failed(&a.pod.uid, Some(HashSet::from(["NodeUnschedulable"])), t);
        assert_eq!(q.place("a"), Some(Place::Unschedulable));
        let label = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_LABEL);
        assert_eq!(q.on_event(&label, t + Duration::from_secs(5)), 0);
        let taint = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_TAINT);
        assert_eq!(q.on_event(&taint, t + Duration::from_secs(5)), 1);
        assert_eq!(q.place("a"), Some(Place::Active));
    }

    #[test]
    fn an_event_during_backoff_moves_the_pod_to_backoff_not_active() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("a", 0), &f, t);
        let a = q.pop().expect("a");
        q.failed(&a.pod.uid, Some(HashSet::from(["NodeUnschedulable"])), t);
        q.on_event(&ClusterEvent::WILDCARD, t + Duration::from_millis(100));
        assert_eq!(q.place("a"), Some(Place::Backoff));
    }

    #[test]
    fn the_periodic_flush_retries_long_unschedulable_pods() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("a", 0), &f, t);
        let a = q.pop().expect("a");
        q.failed(&a.pod.uid, Some(HashSet::from(["NodeUnschedulable"])), t);
        q.flush_unschedulable(t + Duration::from_secs(60));
        assert_eq!(q.place("a"), Some(Place::Unschedulable));
        q.flush_unschedulable(t + Duration::from_secs(301));
        assert_eq!(q.place("a"), Some(Place::Active));
    }

    #[test]
    fn gated_pods_wait_until_their_gates_are_removed() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(
            pod(json!({"metadata": {"name": "g"}, "spec": {"schedulingGates": [{"name": "x"}]}})),
            &f,
            t,
        );
        assert_eq!(q.place("g"), Some(Place::Gated));
        assert!(q.pop().is_none());
        assert_eq!(q.pending().gated, 1);
        q.update(pod(json!({"metadata": {"name": "g"}})), &f, t);
        assert_eq!(q.pop().map(|p| p.pod.name.clone()), Some("g".to_string()));
    }

    #[test]
    fn deleted_pods_are_never_popped() {
        let f = fw();
        let mut q = queue();
        let t = Instant::now();
        q.add(p("a", 0), &f, t);
        q.delete("a");
        assert!(q.pop().is_none());
        assert_eq!(q.pending(), Pending::default());
    }
}
