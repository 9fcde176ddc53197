//! The pod row: upstream's `printPod`, whose STATUS column condenses the phase, the init
//! containers' progress, container waiting and termination reasons and deletion into one word,
//! and whose RESTARTS column says how long ago the last restart was.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::format::{arr_at, bool_at, get, int_at, since, str_at, timestamp};

/// Go's `metav1.Time.Before` with the zero time as `None`.
fn later(current: Option<Timestamp>, candidate: Option<Timestamp>) -> Option<Timestamp> {
    match (current, candidate) {
        (Some(c), Some(t)) if c < t => Some(t),
        (None, Some(t)) => Some(t),
        (c, _) => c,
    }
}

/// When the container last terminated; the zero time when unknown, as Go decodes it.
fn finished_at(container_status: &Value) -> Option<Timestamp> {
    timestamp(get(
        container_status,
        &["lastState", "terminated", "finishedAt"],
    ))
}

fn has_condition(status: &Value, type_: &str) -> bool {
    arr_at(status, &["conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == type_ && str_at(c, &["status"]) == "True")
}

pub(super) fn row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let status = obj.get("status").unwrap_or(&empty);

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let init_specs = arr_at(spec, &["initContainers"]);
    let mut total = arr_at(spec, &["containers"]).len();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = str_at(status, &["phase"]);
    let mut reason = phase.to_string();
    if !str_at(status, &["reason"]).is_empty() {
        reason = str_at(status, &["reason"]).to_string();
    }
    if arr_at(status, &["conditions"]).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    // Sidecars (init containers that restart always) count as regular containers.
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, &["name"]) == name && str_at(c, &["restartPolicy"]) == "Always")
    };
    total += init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();

    let mut initializing = false;
    for (i, c) in arr_at(status, &["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(c, &["restartCount"]);
        restarts += count;
        last_restart = later(last_restart, finished_at(c));
        let name = str_at(c, &["name"]);
        let is_sidecar = restartable(name);
        if is_sidecar {
            restartable_init_restarts += count;
            last_restartable_init_restart = later(last_restartable_init_restart, finished_at(c));
        }
        let terminated = get(c, &["state", "terminated"]);
        let waiting_reason = str_at(c, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && bool_at(c, &["started"]) {
            if bool_at(c, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, &["reason"]);
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if int_at(t, &["signal"]) != 0 {
                format!("Init:Signal:{}", int_at(t, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
            };
        } else if get(c, &["state", "waiting"]).is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(status, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for c in arr_at(status, &["containerStatuses"]).iter().rev() {
            restarts += int_at(c, &["restartCount"]);
            last_restart = later(last_restart, finished_at(c));
            let waiting = str_at(c, &["state", "waiting", "reason"]);
            let terminated = get(c, &["state", "terminated"]);
            let terminated_reason = terminated.map_or("", |t| str_at(t, &["reason"]));
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if let Some(t) = terminated {
                reason = if int_at(t, &["signal"]) != 0 {
                    format!("Signal:{}", int_at(t, &["signal"]))
                } else {
                    format!("ExitCode:{}", int_at(t, &["exitCode"]))
                };
            } else if bool_at(c, &["ready"]) && get(c, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose sidecar or other container still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if has_condition(status, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null());
    if deleting && str_at(status, &["reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = arr_at(status, &["podIPs"])
        .first()
        .map_or("", |ip| str_at(ip, &["ip"]));
    let gates = arr_at(spec, &["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(status, &["conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == t)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        json!(str_at(obj, &["metadata", "name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(since(
            timestamp(get(obj, &["metadata", "creationTimestamp"])),
            now
        )),
        json!(or_none(pod_ip)),
        json!(or_none(str_at(spec, &["nodeName"]))),
        json!(or_none(str_at(status, &["nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::table::row;
    use crate::table::tests::{meta, now};

    fn pod(status: Value) -> Value {
        json!({"metadata": meta("p"), "spec": {"containers": [{"name": "a"}]}, "status": status})
    }

    /// The READY, STATUS and RESTARTS cells.
    fn pod_summary(obj: &Value) -> (String, String, String) {
        let cells = row("", "Pod", obj, now());
        let s = |i: usize| cells[i].as_str().unwrap_or_default().to_string();
        (s(1), s(2), s(3))
    }

    #[test]
    fn pod_status_cells_match_kubectl() {
        let running = json!({"running": {"startedAt": "2024-05-01T11:51:00Z"}});
        let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
            (
                "running and ready",
                pod(json!({"phase": "Running",
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": running}]})),
                ("1/1", "Running", "0"),
            ),
            (
                "pending without statuses",
                pod(json!({"phase": "Pending"})),
                ("0/1", "Pending", "0"),
            ),
            (
                "container creating",
                pod(json!({"phase": "Pending",
                "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}}}]})),
                ("0/1", "ContainerCreating", "0"),
            ),
            (
                "crash loop with last restart age",
                pod(json!({"phase": "Running",
                "containerStatuses": [{"name": "a", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                        "finishedAt": "2024-05-01T11:58:00Z"}}}]})),
                ("0/1", "CrashLoopBackOff", "5 (2m ago)"),
            ),
            (
                "completed",
                pod(json!({"phase": "Succeeded",
                "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})),
                ("0/1", "Completed", "0"),
            ),
            (
                "terminated without reason",
                pod(json!({"phase": "Failed",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137}}}]})),
                ("0/1", "ExitCode:137", "0"),
            ),
            (
                "terminated by signal",
                pod(json!({"phase": "Failed",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]})),
                ("0/1", "Signal:9", "0"),
            ),
            (
                "evicted",
                pod(json!({"phase": "Failed", "reason": "Evicted"})),
                ("0/1", "Evicted", "0"),
            ),
            (
                "scheduling gated",
                pod(json!({"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})),
                ("0/1", "SchedulingGated", "0"),
            ),
        ];
        for (name, obj, (ready, status, restarts)) in cases {
            assert_eq!(
                pod_summary(&obj),
                (ready.into(), status.into(), restarts.into()),
                "{name}"
            );
        }
    }

    fn init_pod(init_statuses: Value, extra_status: Value) -> Value {
        let mut status = json!({"phase": "Pending", "initContainerStatuses": init_statuses,
            "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]});
        if let (Some(s), Some(e)) = (status.as_object_mut(), extra_status.as_object()) {
            s.extend(e.clone());
        }
        json!({"metadata": meta("p"), "spec": {
            "initContainers": [{"name": "i1"}, {"name": "i2"}],
            "containers": [{"name": "a"}]}, "status": status})
    }

    #[test]
    fn pod_init_container_progress_matches_kubectl() {
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "first init running",
                init_pod(
                    json!([
                {"name": "i1", "state": {"running": {}}}, {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]),
                    json!({}),
                ),
                "Init:0/2",
                "0",
            ),
            (
                "second init running",
                init_pod(
                    json!([
                {"name": "i1", "state": done}, {"name": "i2", "state": {"running": {}}}]),
                    json!({}),
                ),
                "Init:1/2",
                "0",
            ),
            (
                "init crash loop counts init restarts",
                init_pod(
                    json!([
                {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}}}]),
                    json!({}),
                ),
                "Init:CrashLoopBackOff",
                "3 (60s ago)",
            ),
            (
                "init failed with reason",
                init_pod(
                    json!([
                {"name": "i1", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]),
                    json!({}),
                ),
                "Init:Error",
                "0",
            ),
            (
                "init failed with exit code",
                init_pod(
                    json!([
                {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]),
                    json!({}),
                ),
                "Init:ExitCode:2",
                "0",
            ),
            (
                "init killed by signal",
                init_pod(
                    json!([
                {"name": "i1", "state": {"terminated": {"exitCode": 1, "signal": 15}}}]),
                    json!({}),
                ),
                "Init:Signal:15",
                "0",
            ),
            (
                "initialized condition shows containers",
                init_pod(
                    json!([
                {"name": "i1", "state": {"running": {}}}]),
                    json!({"conditions": [{"type": "Initialized", "status": "True"}]}),
                ),
                "PodInitializing",
                "0",
            ),
        ];
        for (name, obj, status, restarts) in cases {
            let (_, s, r) = pod_summary(&obj);
            assert_eq!((s.as_str(), r.as_str()), (status, restarts), "{name}");
        }
    }

    #[test]
    fn pod_sidecars_count_as_containers() {
        let running = json!({"running": {}});
        let obj = json!({"metadata": meta("p"), "spec": {
            "initContainers": [{"name": "side", "restartPolicy": "Always"}],
            "containers": [{"name": "a"}]},
            "status": {"phase": "Running",
                "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 2,
                    "state": running,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:00:00Z"}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 1, "state": running}]}});
        assert_eq!(
            pod_summary(&obj),
            ("2/2".into(), "Running".into(), "3 (60m ago)".into())
        );
    }

    #[test]
    fn pod_completed_container_with_running_sibling_reads_running_or_not_ready() {
        for (ready_condition, want) in [("True", "Running"), ("False", "NotReady")] {
            let obj = json!({"metadata": meta("p"), "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": ready_condition}],
                    "containerStatuses": [
                        {"name": "a", "ready": true, "state": {"running": {}}},
                        {"name": "b", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
            assert_eq!(pod_summary(&obj).1, want);
        }
    }

    #[test]
    fn pod_deletion_reads_terminating_or_unknown() {
        let cases = [
            (json!({"phase": "Running"}), "Terminating"),
            (json!({"phase": "Succeeded"}), "Succeeded"),
            (json!({"phase": "Running", "reason": "NodeLost"}), "Unknown"),
        ];
        for (status, want) in cases {
            let mut obj = pod(status);
            obj["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
            assert_eq!(pod_summary(&obj).1, want);
        }
    }

    #[test]
    fn pod_wide_cells() {
        let obj = json!({"metadata": meta("p"),
            "spec": {"containers": [{"name": "a"}], "nodeName": "n1",
                "readinessGates": [{"conditionType": "x/one"}, {"conditionType": "x/two"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                "conditions": [{"type": "x/one", "status": "True"}, {"type": "x/two", "status": "False"}]}});
        assert_eq!(
            row("", "Pod", &obj, now()),
            [
                json!("p"),
                json!("0/1"),
                json!("Running"),
                json!("0"),
                json!("10m"),
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("1/2")
            ]
        );
        assert_eq!(
            row("", "Pod", &pod(json!({})), now())[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
