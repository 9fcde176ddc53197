//! The labels and annotations the kubelet puts on CRI sandboxes and containers (upstream's
//! names, so tools such as crictl show them as they would for upstream's kubelet). They are
//! how a restarted kubelet adopts what runs, and how the kubelet server finds a pod's
//! containers: the runtime holds all the state, the kubelet keeps no database of its own.

/// The pod's name (sandboxes and containers).
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// The pod's namespace (sandboxes and containers).
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// The pod's uid (sandboxes and containers).
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// The container's name in the pod spec (containers only).
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks what this kubelet created (sandboxes and containers), with the node's name: several
/// nodes may share one runtime in tests, and a node only touches its own.
pub const NODE: &str = "rkube.io/node";

/// Container annotation: the hash of the container's spec, to restart it when the spec changes.
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
/// Container annotation: how many times the container had restarted when this one was created.
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Container annotation: where the container writes its termination message.
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// Container annotation: `File` or `FallbackToLogsOnError`.
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
/// Container annotation: the pod's grace period, for a kubelet that finds the container
/// without its pod.
pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Container annotation: which list the container comes from: `init`, `sidecar`, `regular`.
pub const CONTAINER_KIND: &str = "rkube.io/container-kind";

/// The directory of a pod's logs below the kubelet's log root: `<ns>_<name>_<uid>`, as
/// upstream's `/var/log/pods`.
pub fn pod_log_dir(namespace: &str, name: &str, uid: &str) -> String {
    format!("{namespace}_{name}_{uid}")
}

/// A container's log file relative to its pod's log directory: `<container>/<restarts>.log`.
pub fn container_log_path(container: &str, restart_count: u32) -> String {
    format!("{container}/{restart_count}.log")
}
