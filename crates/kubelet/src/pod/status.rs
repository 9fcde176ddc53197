//! The status core: a pod's status from its spec, what the runtime shows, the probe results
//! and the reasons containers wait. Pure, as upstream's `generateAPIPodStatus` + `getPhase`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container as SpecContainer, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::{Container, PodRuntime, State};
use super::plan::{is_sidecar, restart_policy};
use super::ProbeView;

/// The inputs of [`compute`].
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntime,
    pub probes: &'a ProbeView,
    /// Why containers wait, by name: `(reason, message)` (image pulls, backoff, create errors).
    pub waiting: &'a HashMap<String, (String, String)>,
    /// The runtime's name, the scheme of container ids (`containerd://...`).
    pub runtime_name: &'a str,
    pub host_ips: &'a [String],
    /// The pod's sandbox is gone for good or the pod is being deleted: nothing will start.
    pub terminal: bool,
    pub now: jiff::Timestamp,
}

fn ts(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .ok()
        .map(Time)
}

fn has_probe(c: &SpecContainer, readiness: bool) -> bool {
    if readiness {
        c.readiness_probe.is_some()
    } else {
        c.startup_probe.is_some()
    }
}

fn terminated(c: &Container, runtime_name: &str) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: ts(c.started_at),
        finished_at: ts(c.finished_at),
        container_id: Some(format!("{runtime_name}://{}", c.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..Default::default()
    }
}

/// The status of one container.
fn container_status(
    spec: &SpecContainer,
    init: bool,
    input: &Input<'_>,
    initialized: bool,
) -> ContainerStatus {
    let instances = input.runtime.instances(&spec.name);
    let latest = instances.first().copied();
    let previous = instances.get(1).copied();
    let rt = input.runtime_name;
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("{rt}://{}", c.id)),
        restart_count: latest.map(|c| c.restart_count as i32).unwrap_or(0),
        ready: false,
        started: Some(false),
        ..Default::default()
    };
    let reason = input.waiting.get(&spec.name);
    let mut last = previous
        .filter(|p| p.state == State::Exited)
        .map(|p| terminated(p, rt));
    let state = match latest {
        Some(c) if c.state == State::Running => {
            let ready = if init && !is_sidecar(spec) {
                false
            } else if has_probe(spec, true) {
                input.probes.ready.get(&spec.name).copied().unwrap_or(false)
            } else {
                true
            };
            let started = !has_probe(spec, false)
                || input
                    .probes
                    .started
                    .get(&spec.name)
                    .copied()
                    .unwrap_or(false);
            status.ready = ready && started;
            status.started = Some(started);
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: ts(c.started_at),
                }),
                ..Default::default()
            }
        }
        Some(c) if c.state == State::Exited => {
            if let Some((r, m)) = reason.filter(|_| !input.terminal) {
                // it ended and waits to restart
                last = Some(terminated(c, rt));
                waiting(r, m)
            } else {
                if init && !is_sidecar(spec) && c.exit_code == 0 {
                    status.ready = true;
                }
                ContainerState {
                    terminated: Some(terminated(c, rt)),
                    ..Default::default()
                }
            }
        }
        Some(_) => match reason {
            Some((r, m)) => waiting(r, m),
            None => waiting("ContainerCreating", ""),
        },
        None => match reason {
            Some((r, m)) => waiting(r, m),
            None if !init && !initialized => waiting("PodInitializing", ""),
            None => waiting("ContainerCreating", ""),
        },
    };
    status.state = Some(state);
    status.last_state = last.map(|t| ContainerState {
        terminated: Some(t),
        ..Default::default()
    });
    status
}

/// Upstream's `getPhase`.
fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    init_failed: bool,
) -> &'static str {
    let policy = restart_policy(pod);
    let spec_init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .cloned()
        .unwrap_or_default();
    if init_failed && policy == "Never" {
        return "Failed";
    }
    let pending_init = init.iter().zip(spec_init.iter()).any(|(s, c)| {
        if is_sidecar(c) {
            s.state.as_ref().is_none_or(|st| st.running.is_none()) && !s.started.unwrap_or(false)
        } else {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        }
    });
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in regular {
        let st = s.state.as_ref();
        if st.is_some_and(|st| st.running.is_some()) {
            running += 1;
        } else if let Some(t) = st.and_then(|st| st.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if pending_init && running == 0 && stopped == 0 {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        };
    }
    "Pending"
}

fn condition(
    old: &[PodCondition],
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: jiff::Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's QoS class (upstream's `GetPodQOS`): no cpu/memory requests or limits anywhere
/// is BestEffort; limits equal to requests for both in every container is Guaranteed.
pub fn qos_class(pod: &Pod) -> crate::cgroups::Qos {
    use crate::cgroups::Qos;
    use rkube_api::quantity::Quantity;
    let Some(spec) = pod.spec.as_ref() else {
        return Qos::BestEffort;
    };
    let parse = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.and_then(|q| Quantity::parse(&q.0).ok())
            .filter(|q| !q.is_zero())
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.as_ref();
        let req = res.and_then(|r| r.requests.as_ref());
        let lim = res.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            // an unset request defaults to the limit
            let l = parse(lim.and_then(|m| m.get(name)));
            let r = parse(req.and_then(|m| m.get(name))).or_else(|| l.clone());
            any |= r.is_some() || l.is_some();
            match (r, l) {
                (Some(r), Some(l)) if r == l => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        Qos::BestEffort
    } else if guaranteed {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// The pod's status.
pub fn compute(input: Input<'_>) -> PodStatus {
    let pod = input.pod;
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();

    // initialized: every init container succeeded, every sidecar started
    let mut incomplete = Vec::new();
    let mut init_failed = false;
    for c in &init_specs {
        let latest = input.runtime.latest(&c.name);
        let done = if is_sidecar(c) {
            latest.is_some_and(|l| l.state == State::Running)
                && (c.startup_probe.is_none()
                    || input.probes.started.get(&c.name).copied().unwrap_or(false))
        } else {
            latest.is_some_and(|l| l.state == State::Exited && l.exit_code == 0)
        };
        if !done {
            incomplete.push(c.name.clone());
            if !is_sidecar(c)
                && latest.is_some_and(|l| l.state == State::Exited && l.exit_code != 0)
            {
                init_failed = true;
            }
        }
    }
    // once initialized, a pod stays initialized while its sandbox lives (sidecar restarts and
    // garbage-collected init containers do not undo it)
    let was_initialized = old_conditions
        .iter()
        .any(|c| c.type_ == "Initialized" && c.status == "True");
    let any_regular_started = spec
        .containers
        .iter()
        .any(|c| input.runtime.latest(&c.name).is_some());
    let initialized = incomplete.is_empty() || (was_initialized && any_regular_started);

    let init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, true, &input, initialized))
        .collect();
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, false, &input, initialized))
        .collect();

    let mut phase = phase(pod, &init_statuses, &statuses, init_failed).to_string();
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = old.phase.clone().unwrap_or_default();
    }
    let completed = phase == "Succeeded" || phase == "Failed";

    let sandbox = input.runtime.latest_sandbox();
    let host_network = spec.host_network.unwrap_or(false);
    let pod_ips: Vec<String> = if host_network {
        input.host_ips.to_vec()
    } else {
        sandbox.map(|s| s.ips.clone()).unwrap_or_default()
    };

    let mut conditions = Vec::new();
    // keep conditions the kubelet does not own (PodScheduled, readiness gates, DisruptionTarget...)
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ];
    conditions.push(condition(
        &old_conditions,
        "PodReadyToStartContainers",
        sandbox.is_some_and(|s| s.ready),
        None,
        None,
        input.now,
    ));
    let init_reason = if completed && initialized {
        Some("PodCompleted")
    } else {
        None
    };
    conditions.push(if initialized {
        condition(
            &old_conditions,
            "Initialized",
            true,
            init_reason,
            None,
            input.now,
        )
    } else {
        condition(
            &old_conditions,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
            input.now,
        )
    });
    let mut unready: Vec<String> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.clone())
        .collect();
    for (s, c) in init_statuses.iter().zip(init_specs.iter()) {
        if is_sidecar(c) && !s.ready {
            unready.push(s.name.clone());
        }
    }
    let containers_ready = unready.is_empty() && initialized;
    let (reason, message) = if completed {
        (Some("PodCompleted"), None)
    } else if !unready.is_empty() {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (None, None)
    };
    conditions.push(condition(
        &old_conditions,
        "ContainersReady",
        containers_ready && !completed,
        reason,
        message.clone(),
        input.now,
    ));
    // readiness gates: each named condition must be True
    let gates_missing: Vec<String> = spec
        .readiness_gates
        .iter()
        .flatten()
        .filter(|g| {
            !old_conditions
                .iter()
                .any(|c| c.type_ == g.condition_type && c.status == "True")
        })
        .map(|g| g.condition_type.clone())
        .collect();
    let (ready_reason, ready_message) = if completed || !unready.is_empty() {
        (reason, message)
    } else if !gates_missing.is_empty() {
        (
            Some("ReadinessGatesNotReady"),
            Some(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gates_missing[0]
            )),
        )
    } else {
        (None, None)
    };
    conditions.push(condition(
        &old_conditions,
        "Ready",
        containers_ready && !completed && gates_missing.is_empty(),
        ready_reason,
        ready_message,
        input.now,
    ));
    for c in &old_conditions {
        if !owned.contains(&c.type_.as_str()) {
            conditions.push(c.clone());
        }
    }

    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: input.host_ips.first().cloned(),
        host_ips: (!input.host_ips.is_empty()).then(|| {
            input
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or(Some(Time(input.now))),
        qos_class: Some(qos_class(pod).as_str().into()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        nominated_node_name: old.nominated_node_name.clone(),
        message: old.message.clone(),
        reason: old.reason.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
