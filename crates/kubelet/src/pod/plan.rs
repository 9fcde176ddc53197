//! The decision core: given a pod's spec and what the runtime shows of it, what to do next.
//! Pure: the worker feeds it the observed state, the probe results, the restart backoff and
//! the time, and performs the plan. This is upstream's `computePodActions`, restated.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container as SpecContainer, Pod};

use super::backoff::Backoff;
use super::observed::{Container, PodRuntime, State};
use super::ProbeView;

/// Which list a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Init,
    /// An init container with `restartPolicy: Always`.
    Sidecar,
    Regular,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Sidecar => "sidecar",
            Kind::Regular => "regular",
        }
    }
}

/// Start (create and start) a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub name: String,
    pub kind: Kind,
    /// The restart count the new instance records.
    pub restart_count: u32,
    /// The backoff key to advance: a restart of an instance that exited.
    pub backoff_key: Option<String>,
}

/// Why a container is stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum KillReason {
    /// Its spec changed (a new image): it restarts with the new spec.
    SpecChanged,
    /// Its liveness or startup probe failed.
    Unhealthy(String),
    /// A stale instance (created but never started, or in an unknown state).
    Stale,
}

/// Stop a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    pub id: String,
    pub name: String,
    pub reason: KillReason,
}

/// A container that must wait before it restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub name: String,
    pub reason: &'static str,
    pub message: String,
    pub remaining: Duration,
}

/// What to do for a pod, in this order: kill the pod (every container, then the sandbox),
/// create a sandbox, kill containers, start containers (in order), remove dead instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub kill_pod: bool,
    /// Create a sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    pub kill: Vec<Kill>,
    pub start: Vec<Start>,
    pub waiting: Vec<Waiting>,
    /// Dead container instances no status needs any more.
    pub remove: Vec<String>,
    /// Old sandboxes with nothing kept in them.
    pub remove_sandboxes: Vec<String>,
    /// The pod has finished for good (restart policy says no more runs).
    pub terminal: bool,
}

/// The inputs of [`plan`].
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntime,
    pub probes: &'a ProbeView,
    pub backoff: &'a Backoff,
    /// The spec hash of each container, by name.
    pub hashes: &'a HashMap<String, String>,
    /// Nanoseconds since the epoch.
    pub now: i64,
}

/// The pod's restart policy (`Always` when unset, as the API defaults it).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether an init container is a sidecar.
pub fn is_sidecar(c: &SpecContainer) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The backoff key of a container: its name and spec hash.
pub fn backoff_key(name: &str, hash: &str) -> String {
    format!("{name}/{hash}")
}

/// The containers of the spec, in start order, with their kind.
pub fn spec_containers(pod: &Pod) -> Vec<(&SpecContainer, Kind)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        out.push((
            c,
            if is_sidecar(c) {
                Kind::Sidecar
            } else {
                Kind::Init
            },
        ));
    }
    for c in &spec.containers {
        out.push((c, Kind::Regular));
    }
    out
}

/// Whether the regular containers are done for good under the restart policy.
fn regulars_done(pod: &Pod, current: &[&Container], spec: &[&SpecContainer]) -> bool {
    let policy = restart_policy(pod);
    if policy == "Always" || spec.is_empty() {
        return false;
    }
    spec.iter().all(|c| {
        let latest = current
            .iter()
            .filter(|i| i.name == c.name)
            .max_by_key(|i| (i.created_at, i.restart_count));
        match latest {
            Some(i) if i.state == State::Exited => policy == "Never" || i.exit_code == 0,
            _ => false,
        }
    })
}

/// The plan for a pod that should be running.
pub fn plan(input: Input<'_>) -> Plan {
    let Input {
        pod,
        runtime,
        probes,
        backoff,
        hashes,
        now,
    } = input;
    let mut plan = Plan::default();
    let policy = restart_policy(pod);
    let sandbox = runtime.latest_sandbox();
    let next_restart = |name: &str| -> u32 {
        runtime
            .instances(name)
            .first()
            .map(|c| c.restart_count + 1)
            .unwrap_or(0)
    };
    let spec = spec_containers(pod);
    let regular: Vec<&SpecContainer> = spec
        .iter()
        .filter(|(_, k)| *k == Kind::Regular)
        .map(|(c, _)| *c)
        .collect();
    // Containers of the current sandbox; instances of older sandboxes only feed restart
    // counts and last states.
    let current: Vec<&Container> = match sandbox {
        Some(sb) if sb.ready => runtime
            .containers
            .iter()
            .filter(|c| c.sandbox_id == sb.id)
            .collect(),
        _ => Vec::new(),
    };
    garbage(runtime, &mut plan);

    if sandbox.is_none_or(|sb| !sb.ready) {
        let attempt = sandbox.map(|s| s.attempt + 1).unwrap_or(0);
        let all: Vec<&Container> = runtime.containers.iter().collect();
        // A pod that has run and must not run again stays down.
        let ran_before = sandbox.is_some() && !runtime.containers.is_empty();
        if ran_before && (policy == "Never" || regulars_done(pod, &all, &regular)) {
            plan.kill_pod = runtime.anything_running();
            plan.terminal = true;
            return plan;
        }
        plan.kill_pod = runtime.anything_running();
        plan.create_sandbox = Some(attempt);
        // In a fresh sandbox: the first init container (or sidecar), else every container.
        match spec.first() {
            Some((c, kind)) if *kind != Kind::Regular => plan.start.push(Start {
                name: c.name.clone(),
                kind: *kind,
                restart_count: next_restart(&c.name),
                backoff_key: None,
            }),
            _ => {
                for c in &regular {
                    plan.start.push(Start {
                        name: c.name.clone(),
                        kind: Kind::Regular,
                        restart_count: next_restart(&c.name),
                        backoff_key: None,
                    });
                }
            }
        }
        return plan;
    }

    let latest_current = |name: &str| -> Option<&Container> {
        current
            .iter()
            .filter(|c| c.name == name)
            .max_by_key(|c| (c.created_at, c.restart_count))
            .copied()
    };
    let hash_of = |name: &str| hashes.get(name).map(String::as_str).unwrap_or("");
    // Restart a container instance that ended, unless it is backing off.
    let restart = |plan: &mut Plan, c: &Container, kind: Kind| {
        let key = backoff_key(&c.name, hash_of(&c.name));
        if let Some(remaining) = backoff.remaining(&key, c.finished_at, now) {
            plan.waiting.push(Waiting {
                name: c.name.clone(),
                reason: "CrashLoopBackOff",
                message: format!(
                    "back-off {} restarting failed container={} pod={}",
                    format_backoff(backoff.current(&key).unwrap_or(remaining)),
                    c.name,
                    pod_desc(pod)
                ),
                remaining,
            });
        } else {
            plan.start.push(Start {
                name: c.name.clone(),
                kind,
                restart_count: c.restart_count + 1,
                backoff_key: Some(key),
            });
        }
    };
    // A running instance whose spec changed or whose probe failed is stopped.
    let check_running = |plan: &mut Plan, c: &Container| -> bool {
        if !c.hash.is_empty() && !hash_of(&c.name).is_empty() && c.hash != hash_of(&c.name) {
            plan.kill.push(Kill {
                id: c.id.clone(),
                name: c.name.clone(),
                reason: KillReason::SpecChanged,
            });
            return false;
        }
        if let Some((id, message)) = probes.restart.get(&c.name) {
            if *id == c.id {
                plan.kill.push(Kill {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    reason: KillReason::Unhealthy(message.clone()),
                });
                return false;
            }
        }
        true
    };

    // Init containers, in order; sidecars keep running beside the rest.
    let mut initialized = true;
    for (c, kind) in spec.iter().filter(|(_, k)| *k != Kind::Regular) {
        let latest = latest_current(&c.name);
        if *kind == Kind::Sidecar {
            match latest {
                Some(i) if i.state == State::Running => {
                    check_running(&mut plan, i);
                    let needs_start = c.startup_probe.is_some();
                    if needs_start && !probes.started.get(&c.name).copied().unwrap_or(false) {
                        initialized = false;
                        break;
                    }
                }
                Some(i) if i.state == State::Exited => {
                    restart(&mut plan, i, Kind::Sidecar);
                }
                Some(i) => {
                    plan.kill.push(Kill {
                        id: i.id.clone(),
                        name: i.name.clone(),
                        reason: KillReason::Stale,
                    });
                    initialized = false;
                    break;
                }
                None => {
                    plan.start.push(Start {
                        name: c.name.clone(),
                        kind: Kind::Sidecar,
                        restart_count: next_restart(&c.name),
                        backoff_key: None,
                    });
                    initialized = false;
                    break;
                }
            }
            continue;
        }
        match latest {
            Some(i) if i.state == State::Exited && i.exit_code == 0 => continue,
            Some(i) if i.state == State::Exited => {
                if policy == "Never" {
                    // the pod failed: stop what still runs
                    plan.kill_pod = runtime.anything_running();
                    plan.terminal = true;
                    plan.start.clear();
                    plan.kill.clear();
                    return plan;
                }
                restart(&mut plan, i, Kind::Init);
            }
            Some(i) if i.state == State::Running => {}
            Some(i) => plan.kill.push(Kill {
                id: i.id.clone(),
                name: i.name.clone(),
                reason: KillReason::Stale,
            }),
            None => plan.start.push(Start {
                name: c.name.clone(),
                kind: Kind::Init,
                restart_count: next_restart(&c.name),
                backoff_key: None,
            }),
        }
        initialized = false;
        break;
    }
    if !initialized {
        return plan;
    }

    // Regular containers.
    if regulars_done(pod, &current, &regular) {
        // Finished for good: stop the sidecars and the sandbox.
        plan.kill_pod = runtime.anything_running();
        plan.terminal = true;
        plan.start.clear();
        plan.kill.clear();
        plan.waiting.clear();
        return plan;
    }
    for c in &regular {
        match latest_current(&c.name) {
            None => plan.start.push(Start {
                name: c.name.clone(),
                kind: Kind::Regular,
                restart_count: next_restart(&c.name),
                backoff_key: None,
            }),
            Some(i) if i.state == State::Running => {
                check_running(&mut plan, i);
            }
            Some(i) if i.state == State::Exited => {
                let again = policy == "Always" || (policy == "OnFailure" && i.exit_code != 0);
                if again {
                    restart(&mut plan, i, Kind::Regular);
                }
            }
            Some(i) => {
                plan.kill.push(Kill {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    reason: KillReason::Stale,
                });
                if i.state == State::Created {
                    plan.remove.push(i.id.clone());
                }
            }
        }
    }
    plan
}

/// Dead instances that no status needs: of each container name, the two newest instances
/// are kept (the current one and the previous one, for `lastState`); older exited ones go,
/// and so do old, not-ready sandboxes that hold nothing kept.
fn garbage(runtime: &PodRuntime, plan: &mut Plan) {
    let mut kept: HashSet<&str> = HashSet::new();
    let names: HashSet<&str> = runtime.containers.iter().map(|c| c.name.as_str()).collect();
    for name in names {
        for (i, c) in runtime.instances(name).into_iter().enumerate() {
            if i < 2 || c.state != State::Exited {
                kept.insert(c.sandbox_id.as_str());
            } else {
                plan.remove.push(c.id.clone());
            }
        }
    }
    let latest = runtime.latest_sandbox().map(|s| s.id.as_str());
    for sb in &runtime.sandboxes {
        if Some(sb.id.as_str()) != latest && !sb.ready && !kept.contains(sb.id.as_str()) {
            plan.remove_sandboxes.push(sb.id.clone());
        }
    }
}

/// `name_namespace(uid)`, as upstream's kubelet names pods in messages.
pub fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// A Go-style duration (`10s`, `2m40s`, `5m0s`), as the backoff message shows it.
pub fn format_backoff(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests;
