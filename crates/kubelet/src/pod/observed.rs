//! What the runtime shows of one pod: its sandboxes and containers, read from CRI and keyed
//! by the kubelet's labels. The pure cores take this, never CRI types.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use crate::labels;

/// A sandbox of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The pod IPs the sandbox's network got (empty for host-network pods).
    pub ips: Vec<String>,
}

/// The state of a container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub state: State,
    pub attempt: u32,
    /// The restart count the kubelet recorded when it created this instance.
    pub restart_count: u32,
    /// The spec hash recorded at creation.
    pub hash: String,
    pub image: String,
    pub image_ref: String,
    /// Nanoseconds since the epoch (0: not yet).
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    /// The runtime's reason (`OOMKilled`, `Completed`, `Error`, ...).
    pub reason: String,
    pub message: String,
    pub log_path: String,
}

/// The pod as the runtime shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRuntime {
    pub sandboxes: Vec<Sandbox>,
    pub containers: Vec<Container>,
}

impl PodRuntime {
    /// The newest sandbox.
    pub fn latest_sandbox(&self) -> Option<&Sandbox> {
        self.sandboxes
            .iter()
            .max_by_key(|s| (s.created_at, s.attempt))
    }

    /// The instances of a container, newest first.
    pub fn instances(&self, name: &str) -> Vec<&Container> {
        let mut v: Vec<&Container> = self.containers.iter().filter(|c| c.name == name).collect();
        v.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.restart_count)));
        v
    }

    /// The newest instance of a container.
    pub fn latest(&self, name: &str) -> Option<&Container> {
        self.instances(name).into_iter().next()
    }

    /// Whether anything still runs (containers running or created, or a ready sandbox).
    pub fn anything_running(&self) -> bool {
        self.sandboxes.iter().any(|s| s.ready)
            || self
                .containers
                .iter()
                .any(|c| matches!(c.state, State::Running | State::Created | State::Unknown))
    }
}

/// Groups the runtime's sandboxes and container statuses by pod uid.
pub fn group(
    sandboxes: Vec<cri::PodSandbox>,
    sandbox_ips: &HashMap<String, Vec<String>>,
    containers: Vec<(cri::ContainerStatus, String)>,
) -> HashMap<String, PodRuntime> {
    let mut pods: HashMap<String, PodRuntime> = HashMap::new();
    for sb in sandboxes {
        let Some(uid) = sb.labels.get(labels::POD_UID).cloned() else {
            continue;
        };
        let ips = sandbox_ips.get(&sb.id).cloned().unwrap_or_default();
        pods.entry(uid).or_default().sandboxes.push(Sandbox {
            attempt: sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            ready: sb.state == cri::PodSandboxState::SandboxReady as i32,
            created_at: sb.created_at,
            id: sb.id,
            ips,
        });
    }
    for (c, sandbox_id) in containers {
        let Some(uid) = c.labels.get(labels::POD_UID).cloned() else {
            continue;
        };
        pods.entry(uid)
            .or_default()
            .containers
            .push(from_status(c, sandbox_id));
    }
    pods
}

/// A container instance from its CRI status and its sandbox's id (which ListContainers
/// gives and ContainerStatus does not).
pub fn from_status(c: cri::ContainerStatus, sandbox_id: String) -> Container {
    let state = match cri::ContainerState::try_from(c.state) {
        Ok(cri::ContainerState::ContainerCreated) => State::Created,
        Ok(cri::ContainerState::ContainerRunning) => State::Running,
        Ok(cri::ContainerState::ContainerExited) => State::Exited,
        _ => State::Unknown,
    };
    let name = c
        .labels
        .get(labels::CONTAINER_NAME)
        .cloned()
        .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
        .unwrap_or_default();
    Container {
        sandbox_id,
        attempt: c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        restart_count: c
            .annotations
            .get(labels::RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        hash: c
            .annotations
            .get(labels::CONTAINER_HASH)
            .cloned()
            .unwrap_or_default(),
        image: c
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default(),
        image_ref: c.image_ref,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        reason: c.reason,
        message: c.message,
        log_path: c.log_path,
        id: c.id,
        name,
        state,
    }
}
