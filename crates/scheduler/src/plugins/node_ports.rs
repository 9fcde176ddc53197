//! NodePorts: a pod whose containers ask for host ports fits only nodes where none of those
//! ports is taken, as upstream's `nodeports` plugin.
//!
//! A port conflicts with one in use with the same protocol and port number on the same host
//! IP, where `0.0.0.0` (the default) overlaps every IP (upstream's
//! `HostPortInfo.CheckConflict`, implemented by [`NodeInfo::port_conflicts`]). PreFilter skips
//! pods without host ports, so Filter never runs for most pods. The rejection is Unschedulable:
//! evicting the pods holding the ports frees them, so preemption can help.

use std::sync::Arc;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, Snapshot, Status,
};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodePorts";

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// See the module documentation.
#[derive(Debug)]
pub struct NodePorts;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodePorts))
}

/// Whether every host port `pod` asks for is free on `node` (upstream's `nodeports.Fits`).
pub fn fits(pod: &PodInfo, node: &NodeInfo) -> bool {
    !pod.host_ports.iter().any(|p| node.port_conflicts(p))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        // Upstream's set with queueing hints enabled (the v1.33 default): a deleted pod may
        // free a port, a new node has all ports free. Pod updates cannot change ports (they
        // are immutable).
        vec![
            ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE),
            ClusterEvent::new(EventResource::Node, ActionType::ADD),
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        // The wanted ports are already in `PodInfo.host_ports` (derived once per pod), so
        // there is no state to record; PreFilter only decides whether Filter runs at all.
        if pod.host_ports.is_empty() {
            (None, Status::skip())
        } else {
            (None, Status::success())
        }
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if fits(pod, node) {
            Status::success()
        } else {
            Status::unschedulable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod, with_pods};

    /// A pod with one container asking for each `PROTOCOL/hostIP/port`.
    fn pod_with_ports(name: &str, ports: &[&str]) -> Arc<PodInfo> {
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| {
                let parts: Vec<&str> = p.split('/').collect();
                let port: i32 = parts[2].parse().expect("port");
                json!({"containerPort": port, "hostPort": port,
                       "protocol": parts[0], "hostIP": parts[1]})
            })
            .collect();
        pod(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "ports": ports}]}
        }))
    }

    fn node_using(ports: &[&str]) -> NodeInfo {
        with_pods(
            node(json!({"metadata": {"name": "m1"}})),
            &[pod_with_ports("existing", ports)],
        )
    }

    #[test]
    fn host_ports_conflict_as_upstream() {
        let cases: [(&str, &[&str], &[&str], Code); 13] = [
            ("skip filter", &[], &[], Code::Skip),
            (
                "other port",
                &["UDP/127.0.0.1/8080"],
                &["UDP/127.0.0.1/9090"],
                Code::Success,
            ),
            (
                "same udp port",
                &["UDP/127.0.0.1/8080"],
                &["UDP/127.0.0.1/8080"],
                Code::Unschedulable,
            ),
            (
                "same tcp port",
                &["TCP/127.0.0.1/8080"],
                &["TCP/127.0.0.1/8080"],
                Code::Unschedulable,
            ),
            (
                "different host ip",
                &["TCP/127.0.0.1/8080"],
                &["TCP/127.0.0.2/8080"],
                Code::Success,
            ),
            (
                "different protocol",
                &["UDP/127.0.0.1/8080"],
                &["TCP/127.0.0.1/8080"],
                Code::Success,
            ),
            (
                "second udp port conflict",
                &["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"],
                &["UDP/127.0.0.1/8080"],
                Code::Unschedulable,
            ),
            (
                "first tcp port conflict",
                &["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"],
                &["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"],
                Code::Unschedulable,
            ),
            (
                "tcp conflict due to wanted 0.0.0.0",
                &["TCP/0.0.0.0/8001"],
                &["TCP/127.0.0.1/8001"],
                Code::Unschedulable,
            ),
            (
                "tcp conflict due to a wanted 0.0.0.0 among others",
                &["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"],
                &["TCP/127.0.0.1/8001"],
                Code::Unschedulable,
            ),
            (
                "tcp conflict with 0.0.0.0 in use",
                &["TCP/127.0.0.1/8001"],
                &["TCP/0.0.0.0/8001"],
                Code::Unschedulable,
            ),
            (
                "0.0.0.0 in use with another protocol",
                &["UDP/127.0.0.1/8001"],
                &["TCP/0.0.0.0/8001"],
                Code::Success,
            ),
            (
                "udp conflict with 0.0.0.0 in use",
                &["UDP/127.0.0.1/8001"],
                &["TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"],
                Code::Unschedulable,
            ),
        ];
        for (name, wanted, used, want) in cases {
            let p = pod_with_ports("p", wanted);
            let mut state = CycleState::new();
            let (result, pre) = NodePorts.pre_filter(&mut state, &p, &Snapshot::default());
            assert!(result.is_none(), "{name}");
            if want == Code::Skip {
                assert_eq!(pre, Status::skip(), "{name}");
                continue;
            }
            assert_eq!(pre, Status::success(), "{name}");
            let got = NodePorts.filter(&state, &p, &node_using(used));
            assert_eq!(got.code(), want, "{name}");
            if want == Code::Unschedulable {
                assert_eq!(got.reasons(), [ERR_REASON.to_string()], "{name}");
            }
        }
    }

    #[test]
    fn container_ports_without_host_port_are_not_wanted() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 80}]}]}}));
        let (_, s) = NodePorts.pre_filter(&mut CycleState::new(), &p, &Snapshot::default());
        assert_eq!(s, Status::skip());
    }

    #[test]
    fn unset_host_ip_and_protocol_mean_all_ips_and_tcp() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}));
        let cases: [(&[&str], Code); 3] = [
            (&["TCP/10.0.0.1/8080"], Code::Unschedulable),
            (&["UDP/10.0.0.1/8080"], Code::Success),
            (&["TCP/10.0.0.1/8081"], Code::Success),
        ];
        for (used, want) in cases {
            let got = NodePorts.filter(&CycleState::new(), &p, &node_using(used));
            assert_eq!(got.code(), want, "{used:?}");
        }
    }
}
