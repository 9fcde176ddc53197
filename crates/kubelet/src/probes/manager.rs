//! The probe manager (upstream's prober manager and workers): one task per probe of each running
//! container instance, probing on its period and keeping the results the pod worker reads.
//!
//! The worker tells the manager after every sync which containers run ([`ProbeManager::sync_pod`]);
//! a container gone or restarted (a new id) loses its tasks and results, a new instance gets
//! fresh ones. A task probes after `initialDelaySeconds` and then every `periodSeconds`; the
//! results move through [`ProbeState`] and every change calls `wake(pod_uid)`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::action::{self, RunResult, Target};
use super::gofmt;
use super::state::{gate, Gate, Outcome, ProbeKind, ProbeState, Status, Timing};
use crate::cri::Cri;

/// What the probes say about one pod's containers, by container name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeView {
    /// Readiness per container that has a readiness probe (absent: no result yet → not ready).
    pub ready: HashMap<String, bool>,
    /// Whether each container with a startup probe has passed it (absent: not yet).
    pub started: HashMap<String, bool>,
    /// Containers whose liveness (or startup) probe has failed `failureThreshold` times, with
    /// the id of the container instance that failed and the message for the event/status,
    /// upstream's e.g. `Container c failed liveness probe, will be restarted`.
    pub restart: HashMap<String, (String, String)>,
}

/// A running container the probes watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    pub name: String,
    /// The CRI container id of this instance.
    pub id: String,
    /// When this instance started (the CRI status's `started_at`).
    pub started_at: SystemTime,
}

/// A Warning event a probe run asks for, on the container (upstream's prober events): reason
/// `Unhealthy` (`Readiness probe failed: ...`, `Liveness probe errored and resulted in unknown
/// state: ...`) or `ProbeWarning`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    pub container: String,
    pub reason: &'static str,
    pub message: String,
}

/// Events kept per pod until taken; older ones are dropped beyond this.
const MAX_EVENTS: usize = 64;

/// The kubelet's probes: see the module documentation. Create it inside a tokio runtime: its
/// tasks run there.
pub struct ProbeManager {
    inner: Arc<Inner>,
}

struct Inner {
    cri: Cri,
    wake: Arc<dyn Fn(&str) + Send + Sync>,
    /// When the manager started: probes of a freshly started kubelet spread out over their
    /// first period, as upstream's.
    born: Instant,
    runtime: tokio::runtime::Handle,
    pods: Mutex<HashMap<String, PodProbes>>,
}

#[derive(Default)]
struct PodProbes {
    pod_ip: Option<String>,
    /// `format.Pod`, for error texts.
    desc: String,
    containers: HashMap<String, ContainerProbes>,
    events: VecDeque<ProbeEvent>,
}

struct ContainerProbes {
    id: String,
    /// The kill message's first part (`Container c failed` / `Init container c failed`).
    subject: String,
    /// Whether the kill message says it will be restarted.
    restarts: bool,
    deleting: bool,
    workers: Vec<Worker>,
}

struct Worker {
    state: ProbeState,
    timing: Timing,
    trigger: Arc<Notify>,
    task: Option<AbortHandle>,
}

impl ContainerProbes {
    fn worker(&self, kind: ProbeKind) -> Option<&Worker> {
        self.workers.iter().find(|w| w.state.kind == kind)
    }

    fn worker_mut(&mut self, kind: ProbeKind) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.state.kind == kind)
    }

    /// Started: no startup probe, or it has passed.
    fn started(&self) -> bool {
        self.worker(ProbeKind::Startup)
            .is_none_or(|w| w.state.status == Status::Success)
    }

    fn trigger(&self, kind: ProbeKind) {
        if let Some(w) = self.worker(kind) {
            w.trigger.notify_one();
        }
    }

    fn stop(&mut self) {
        for w in &mut self.workers {
            if let Some(task) = w.task.take() {
                task.abort();
            }
        }
    }
}

/// Which task: the pod, container instance and probe.
#[derive(Debug, Clone)]
struct Key {
    uid: String,
    name: String,
    id: String,
    kind: ProbeKind,
}

impl std::fmt::Debug for ProbeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pods = self.inner.pods.lock();
        f.debug_struct("ProbeManager")
            .field("pods", &pods.len())
            .field(
                "tasks",
                &pods
                    .values()
                    .flat_map(|p| p.containers.values())
                    .flat_map(|c| &c.workers)
                    .filter(|w| w.task.is_some())
                    .count(),
            )
            .finish()
    }
}

/// The container of a pod with this name that probes apply to: a regular container, or a
/// sidecar (an init container with restartPolicy Always). The bool says whether it is a sidecar.
fn probed_container<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, bool)> {
    let spec = pod.spec.as_ref()?;
    if let Some(c) = spec.containers.iter().find(|c| c.name == name) {
        return Some((c, false));
    }
    spec.init_containers
        .iter()
        .flatten()
        .find(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
        .map(|c| (c, true))
}

impl ProbeManager {
    /// `wake(pod_uid)` is called whenever a result changes (the worker then re-syncs the pod).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(cri: Cri, wake: Arc<dyn Fn(&str) + Send + Sync>) -> ProbeManager {
        ProbeManager {
            inner: Arc::new(Inner {
                cri,
                wake,
                born: Instant::now(),
                runtime: tokio::runtime::Handle::current(),
                pods: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Called after every sync of the pod with its running containers (regular containers and
    /// sidecars = init containers with restartPolicy Always; plain init containers have no
    /// probes). Starts a probe task per (container instance, probe kind), stops tasks of
    /// containers no longer listed or restarted (new id → fresh state: readiness false,
    /// startup not passed).
    pub fn sync_pod(&self, pod: &Pod, pod_ip: Option<&str>, running: &[RunningContainer]) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let restart_policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let mut pods = self.inner.pods.lock();
        let entry = pods.entry(uid.clone()).or_default();
        entry.pod_ip = pod_ip.filter(|ip| !ip.is_empty()).map(str::to_string);
        entry.desc = gofmt::pod(pod);
        entry.containers.retain(|name, c| {
            let keep = running.iter().any(|r| &r.name == name && r.id == c.id)
                && probed_container(pod, name).is_some();
            if !keep {
                c.stop();
            }
            keep
        });
        for r in running {
            let Some((container, sidecar)) = probed_container(pod, &r.name) else {
                continue;
            };
            if !entry.containers.contains_key(&r.name) {
                let c = self.start_container(&uid, container, sidecar, restart_policy, r);
                entry.containers.insert(r.name.clone(), c);
            }
            let Some(c) = entry.containers.get_mut(&r.name) else {
                continue;
            };
            if deleting && !c.deleting {
                // Graceful deletion: liveness and startup stop with a success, so the
                // container is not killed for them while it shuts down.
                c.deleting = true;
                for w in c.workers.iter_mut().filter(|w| w.state.kind.kills()) {
                    if let Some(task) = w.task.take() {
                        task.abort();
                    }
                    if !w.state.on_hold {
                        w.state.status = Status::Success;
                    }
                }
            }
            // A started container that is not ready has its readiness probed now rather than
            // at the next period (upstream does this on every status update).
            if c.started()
                && c.worker(ProbeKind::Readiness)
                    .is_some_and(|w| w.state.status != Status::Success)
            {
                c.trigger(ProbeKind::Readiness);
            }
        }
        if entry.containers.is_empty() && entry.events.is_empty() {
            pods.remove(&uid);
        }
    }

    fn start_container(
        &self,
        uid: &str,
        container: &Container,
        sidecar: bool,
        restart_policy: &str,
        running: &RunningContainer,
    ) -> ContainerProbes {
        let container_arc = Arc::new(container.clone());
        let mut workers = Vec::new();
        for kind in ProbeKind::ALL {
            let Some(probe) = kind.of(container) else {
                continue;
            };
            let timing = Timing::of(probe);
            let trigger = Arc::new(Notify::new());
            let key = Key {
                uid: uid.to_string(),
                name: running.name.clone(),
                id: running.id.clone(),
                kind,
            };
            let task = self.inner.runtime.spawn(probe_task(
                self.inner.clone(),
                key,
                container_arc.clone(),
                probe.clone(),
                timing,
                running.started_at,
                trigger.clone(),
            ));
            workers.push(Worker {
                state: ProbeState::new(kind),
                timing,
                trigger,
                task: Some(task.abort_handle()),
            });
        }
        ContainerProbes {
            id: running.id.clone(),
            subject: if sidecar {
                format!("Init container {}", container.name)
            } else {
                format!("Container {}", container.name)
            },
            // a sidecar's kill message never says so, though it is restarted
            restarts: !sidecar && restart_policy != "Never",
            deleting: false,
            workers,
        }
    }

    /// Stops the pod's probes and forgets its results.
    pub fn remove_pod(&self, uid: &str) {
        if let Some(mut pod) = self.inner.pods.lock().remove(uid) {
            for c in pod.containers.values_mut() {
                c.stop();
            }
        }
    }

    /// What the probes say about the pod's containers now.
    pub fn results(&self, uid: &str) -> ProbeView {
        let pods = self.inner.pods.lock();
        let mut view = ProbeView::default();
        let Some(pod) = pods.get(uid) else {
            return view;
        };
        for (name, c) in &pod.containers {
            let started = c.started();
            for w in &c.workers {
                match w.state.kind {
                    ProbeKind::Readiness => {
                        view.ready
                            .insert(name.clone(), started && w.state.status == Status::Success);
                    }
                    ProbeKind::Startup => {
                        view.started
                            .insert(name.clone(), w.state.status == Status::Success);
                    }
                    ProbeKind::Liveness => {}
                }
            }
            // liveness first, as upstream's computePodActions
            for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
                if c.worker(kind)
                    .is_some_and(|w| w.state.status == Status::Failure)
                {
                    let mut message = format!(
                        "{} failed {} probe",
                        c.subject,
                        kind.name().to_ascii_lowercase()
                    );
                    if c.restarts {
                        message.push_str(", will be restarted");
                    }
                    view.restart.insert(name.clone(), (c.id.clone(), message));
                    break;
                }
            }
        }
        view
    }

    /// Takes the Warning events the pod's probes asked for since the last call (at most the
    /// last 64).
    pub fn take_events(&self, uid: &str) -> Vec<ProbeEvent> {
        let mut pods = self.inner.pods.lock();
        let Some(pod) = pods.get_mut(uid) else {
            return Vec::new();
        };
        let events = pod.events.drain(..).collect();
        if pod.containers.is_empty() {
            pods.remove(uid);
        }
        events
    }
}

impl Drop for ProbeManager {
    fn drop(&mut self) {
        for pod in self.inner.pods.lock().values_mut() {
            for c in pod.containers.values_mut() {
                c.stop();
            }
        }
    }
}

/// What a task is to do now.
enum Step {
    Probe(Option<String>, String),
    Wait,
    Done,
}

impl Inner {
    fn step(&self, key: &Key, since_start: Duration) -> Step {
        let pods = self.pods.lock();
        let Some(pod) = pods.get(&key.uid) else {
            return Step::Done;
        };
        let Some(c) = pod.containers.get(&key.name).filter(|c| c.id == key.id) else {
            return Step::Done;
        };
        let Some(w) = c.worker(key.kind) else {
            return Step::Done;
        };
        match gate(
            &w.state,
            c.started(),
            c.deleting,
            since_start,
            w.timing.initial_delay,
        ) {
            Gate::Probe => Step::Probe(pod.pod_ip.clone(), pod.desc.clone()),
            Gate::Wait => Step::Wait,
            Gate::Done => Step::Done,
        }
    }

    /// Records a run's result; returns whether the task goes on.
    fn record(&self, key: &Key, result: RunResult) -> bool {
        let changed;
        let keep_going;
        {
            let mut pods = self.pods.lock();
            let Some(pod) = pods.get_mut(&key.uid) else {
                return false;
            };
            let Some(c) = pod.containers.get_mut(&key.name).filter(|c| c.id == key.id) else {
                return false;
            };
            let kind = key.kind.name();
            let event = match &result {
                Err(e) => Some((
                    "Unhealthy",
                    format!("{kind} probe errored and resulted in unknown state: {e}"),
                )),
                Ok((Outcome::Failure, out)) => {
                    Some(("Unhealthy", format!("{kind} probe failed: {out}")))
                }
                Ok((Outcome::Warning, out)) => {
                    Some(("ProbeWarning", format!("{kind} probe warning: {out}")))
                }
                Ok(_) => None,
            };
            if let Some((reason, message)) = event {
                if pod.events.len() >= MAX_EVENTS {
                    pod.events.pop_front();
                }
                pod.events.push_back(ProbeEvent {
                    container: key.name.clone(),
                    reason,
                    message,
                });
            }
            let Ok((outcome, _)) = result else {
                // an error: the run does not count
                return true;
            };
            let Some(w) = c.worker_mut(key.kind) else {
                return false;
            };
            let timing = w.timing;
            changed = w.state.record(outcome.verdict(), &timing);
            keep_going = !(w.state.on_hold || (key.kind == ProbeKind::Startup && c.started()));
            if key.kind == ProbeKind::Startup && changed == Some(Status::Success) {
                // started: liveness and readiness probe now, not a period later
                c.trigger(ProbeKind::Readiness);
                c.trigger(ProbeKind::Liveness);
            }
        }
        if changed.is_some() {
            (self.wake)(&key.uid);
        }
        keep_going
    }
}

/// One probe of one container instance: after a random part of the period when the kubelet has
/// just started, and after `initialDelaySeconds`, probes at once and then every period (or when
/// triggered), until the container goes away or the probe is done with it.
async fn probe_task(
    inner: Arc<Inner>,
    key: Key,
    container: Arc<Container>,
    probe: Probe,
    timing: Timing,
    started_at: SystemTime,
    trigger: Arc<Notify>,
) {
    if timing.period > inner.born.elapsed() {
        tokio::time::sleep(timing.period.mul_f64(rand::random::<f64>())).await;
    }
    if let Ok(rest) = (started_at + timing.initial_delay).duration_since(SystemTime::now()) {
        tokio::time::sleep(rest).await;
    }
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + timing.period, timing.period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let since_start = SystemTime::now()
            .duration_since(started_at)
            .unwrap_or_default();
        match inner.step(&key, since_start) {
            Step::Done => return,
            Step::Wait => {}
            Step::Probe(pod_ip, pod_desc) => {
                let target = Target {
                    container: &container,
                    container_id: &key.id,
                    pod_ip: pod_ip.as_deref(),
                    pod_desc: &pod_desc,
                };
                let result = action::run(&inner.cri, &probe, target, timing.timeout).await;
                if !inner.record(&key, result) {
                    return;
                }
            }
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = trigger.notified() => {}
        }
    }
}
