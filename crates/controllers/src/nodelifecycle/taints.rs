//! The taints the node lifecycle controller manages, as upstream's TaintNodesByCondition and
//! taint-based eviction: a NoSchedule taint per bad condition (and for `spec.unschedulable`),
//! and a NoExecute taint for a node that is not ready or unreachable.
//!
//! Taints of other keys, or of these keys with another effect, are someone else's and are
//! kept as they are, in their order.

use k8s_openapi::api::core::v1::{NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// The NoSchedule taint a condition in a status calls for (upstream's
/// `nodeConditionToTaintKeyStatusMap`).
pub fn condition_taint(type_: &str, status: &str) -> Option<&'static str> {
    match (type_, status) {
        ("Ready", "False") => Some(NOT_READY),
        ("Ready", "Unknown") => Some(UNREACHABLE),
        ("MemoryPressure", "True") => Some(MEMORY_PRESSURE),
        ("DiskPressure", "True") => Some(DISK_PRESSURE),
        ("PIDPressure", "True") => Some(PID_PRESSURE),
        ("NetworkUnavailable", "True") => Some(NETWORK_UNAVAILABLE),
        _ => None,
    }
}

/// Keys whose NoSchedule taint this controller owns.
const NO_SCHEDULE_KEYS: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
    UNSCHEDULABLE,
];

/// The NoSchedule taints a node with these conditions should carry, in condition order.
pub fn no_schedule_keys(conditions: &[NodeCondition], unschedulable: bool) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = conditions
        .iter()
        .filter_map(|c| condition_taint(&c.type_, &c.status))
        .collect();
    if unschedulable {
        keys.push(UNSCHEDULABLE);
    }
    keys.dedup();
    keys
}

/// The NoExecute taint a node should carry for its Ready status, before rate limiting.
pub fn no_execute_key(ready: Option<&str>) -> Option<&'static str> {
    match ready {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    }
}

/// What to do with the node's not-ready/unreachable NoExecute taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoExecute {
    /// Keep what is there (e.g. an add still waits for the rate limiter).
    Leave,
    /// Remove both (the node is ready, or every zone is down).
    Remove,
    /// Have exactly this one (added with `timeAdded`, or swapped for the other).
    Set(&'static str),
}

fn is_managed_no_execute(t: &Taint) -> bool {
    t.effect == NO_EXECUTE && (t.key == NOT_READY || t.key == UNREACHABLE)
}

fn is_managed_no_schedule(t: &Taint) -> bool {
    t.effect == NO_SCHEDULE && NO_SCHEDULE_KEYS.contains(&t.key.as_str())
}

/// The node's current NoExecute taint of this controller, if any.
pub fn current_no_execute(taints: &[Taint]) -> Option<&str> {
    taints
        .iter()
        .find(|t| is_managed_no_execute(t))
        .map(|t| t.key.as_str())
}

/// The taints a node should have: others' taints as they are, the NoSchedule taints its
/// conditions call for, and the NoExecute taint as `no_execute` says (a new one stamped
/// `now`). Equal to `existing` when nothing changes.
pub fn reconcile_taints(
    existing: &[Taint],
    conditions: &[NodeCondition],
    unschedulable: bool,
    no_execute: NoExecute,
    now: Timestamp,
) -> Vec<Taint> {
    let want = no_schedule_keys(conditions, unschedulable);
    let mut out = Vec::with_capacity(existing.len() + 2);
    let mut have_ns: Vec<&str> = Vec::new();
    let mut have_ne = false;
    for t in existing {
        if is_managed_no_schedule(t) {
            if want.contains(&t.key.as_str()) && !have_ns.contains(&t.key.as_str()) {
                have_ns.push(&t.key);
                out.push(t.clone());
            }
        } else if is_managed_no_execute(t) {
            match no_execute {
                NoExecute::Leave => out.push(t.clone()),
                NoExecute::Remove => {}
                NoExecute::Set(key) if key == t.key && !have_ne => {
                    have_ne = true;
                    out.push(t.clone());
                }
                NoExecute::Set(_) => {}
            }
        } else {
            out.push(t.clone());
        }
    }
    for key in want {
        if !have_ns.contains(&key) {
            out.push(Taint {
                key: key.to_string(),
                effect: NO_SCHEDULE.to_string(),
                ..Default::default()
            });
        }
    }
    if let NoExecute::Set(key) = no_execute {
        if !have_ne {
            out.push(Taint {
                key: key.to_string(),
                effect: NO_EXECUTE.to_string(),
                time_added: Some(Time(now)),
                value: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(t: &str, s: &str) -> NodeCondition {
        NodeCondition {
            type_: t.into(),
            status: s.into(),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn keys(ts: &[Taint]) -> Vec<String> {
        ts.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    #[test]
    fn taints_follow_conditions_and_keep_foreign_ones() {
        let now = Timestamp::UNIX_EPOCH;
        let foreign = taint("example.com/gpu", NO_SCHEDULE);
        #[allow(clippy::type_complexity)]
        let cases: &[(
            &str,
            Vec<Taint>,
            Vec<NodeCondition>,
            bool,
            NoExecute,
            &[&str],
        )] = &[
            (
                "ready node loses admission's not-ready taint",
                vec![taint(NOT_READY, NO_SCHEDULE)],
                vec![cond("Ready", "True")],
                false,
                NoExecute::Remove,
                &[],
            ),
            (
                "not ready: not-ready NoSchedule and NoExecute",
                vec![foreign.clone()],
                vec![cond("Ready", "False")],
                false,
                NoExecute::Set(NOT_READY),
                &[
                    "example.com/gpu:NoSchedule",
                    "node.kubernetes.io/not-ready:NoSchedule",
                    "node.kubernetes.io/not-ready:NoExecute",
                ],
            ),
            (
                "unknown swaps not-ready for unreachable",
                vec![taint(NOT_READY, NO_SCHEDULE), taint(NOT_READY, NO_EXECUTE)],
                vec![cond("Ready", "Unknown")],
                false,
                NoExecute::Set(UNREACHABLE),
                &[
                    "node.kubernetes.io/unreachable:NoSchedule",
                    "node.kubernetes.io/unreachable:NoExecute",
                ],
            ),
            (
                "rate-limited add leaves NoExecute absent",
                vec![],
                vec![cond("Ready", "Unknown")],
                false,
                NoExecute::Leave,
                &["node.kubernetes.io/unreachable:NoSchedule"],
            ),
            (
                "pressure and cordon",
                vec![],
                vec![
                    cond("Ready", "True"),
                    cond("MemoryPressure", "True"),
                    cond("DiskPressure", "True"),
                    cond("PIDPressure", "True"),
                    cond("NetworkUnavailable", "False"),
                ],
                true,
                NoExecute::Remove,
                &[
                    "node.kubernetes.io/memory-pressure:NoSchedule",
                    "node.kubernetes.io/disk-pressure:NoSchedule",
                    "node.kubernetes.io/pid-pressure:NoSchedule",
                    "node.kubernetes.io/unschedulable:NoSchedule",
                ],
            ),
            (
                "uncordon removes unschedulable, keeps user NoExecute of other key",
                vec![
                    taint(UNSCHEDULABLE, NO_SCHEDULE),
                    taint("example.com/drain", NO_EXECUTE),
                ],
                vec![cond("Ready", "True")],
                false,
                NoExecute::Remove,
                &["example.com/drain:NoExecute"],
            ),
        ];
        for (what, existing, conds, unsched, ne, want) in cases {
            let got = reconcile_taints(existing, conds, *unsched, *ne, now);
            assert_eq!(keys(&got), *want, "{what}");
            for t in got.iter().filter(|t| t.effect == NO_EXECUTE) {
                if !existing.contains(t) && t.key.starts_with("node.kubernetes.io") {
                    assert_eq!(t.time_added, Some(Time(now)), "{what}");
                }
            }
        }
    }

    #[test]
    fn an_unchanged_node_gives_its_taints_back() {
        let existing = vec![
            taint("a", NO_SCHEDULE),
            taint(UNREACHABLE, NO_SCHEDULE),
            taint(UNREACHABLE, NO_EXECUTE),
        ];
        let got = reconcile_taints(
            &existing,
            &[cond("Ready", "Unknown")],
            false,
            NoExecute::Set(UNREACHABLE),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(got, existing);
    }
}
