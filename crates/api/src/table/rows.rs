//! Row cells for every kind with a printer except pods, following upstream's `print*`
//! functions with wide output on, as the API server always generates tables.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::format::{
    arr_at, bool_at, containers, format_labels, format_selector, get, human_nanos, int_at, len_at,
    list_with_more, scalar_string, selector_string, since, str_at, timestamp,
};

/// Everything a row function needs besides the object.
pub(super) struct Ctx<'a> {
    pub obj: &'a Value,
    pub now: Timestamp,
}

impl Ctx<'_> {
    fn name(&self) -> Value {
        json!(str_at(self.obj, &["metadata", "name"]))
    }

    fn age(&self) -> Value {
        json!(self.since(&["metadata", "creationTimestamp"]))
    }

    fn since(&self, path: &[&str]) -> String {
        since(timestamp(get(self.obj, path)), self.now)
    }

    fn s(&self, path: &[&str]) -> &str {
        str_at(self.obj, path)
    }

    fn i(&self, path: &[&str]) -> i64 {
        int_at(self.obj, path)
    }

    fn deleting(&self) -> bool {
        get(self.obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null())
    }

    fn template_spec(&self, path: &[&str]) -> Option<&Value> {
        get(self.obj, path)
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// The cells for `kind`, or `None` when it has no printer.
pub(super) fn for_kind(group: &str, kind: &str, c: &Ctx<'_>) -> Option<Vec<Value>> {
    let cells = match (group, kind) {
        ("", "PodTemplate") => {
            let (names, images) = containers(c.template_spec(&["template", "spec"]));
            vec![
                c.name(),
                json!(names),
                json!(images),
                json!(format_labels(get(
                    c.obj,
                    &["template", "metadata", "labels"]
                ))),
            ]
        }
        ("policy", "PodDisruptionBudget") => vec![
            c.name(),
            json!(scalar_string(get(c.obj, &["spec", "minAvailable"]))
                .unwrap_or_else(|| "N/A".into())),
            json!(scalar_string(get(c.obj, &["spec", "maxUnavailable"]))
                .unwrap_or_else(|| "N/A".into())),
            json!(c.i(&["status", "disruptionsAllowed"])),
            c.age(),
        ],
        ("", "ReplicationController") => {
            let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
            vec![
                c.name(),
                json!(c.i(&["spec", "replicas"])),
                json!(c.i(&["status", "replicas"])),
                json!(c.i(&["status", "readyReplicas"])),
                c.age(),
                json!(names),
                json!(images),
                json!(format_labels(get(c.obj, &["spec", "selector"]))),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
            vec![
                c.name(),
                json!(c.i(&["spec", "replicas"])),
                json!(c.i(&["status", "replicas"])),
                json!(c.i(&["status", "readyReplicas"])),
                c.age(),
                json!(names),
                json!(images),
                json!(format_selector(get(c.obj, &["spec", "selector"]))),
            ]
        }
        ("apps", "DaemonSet") => {
            let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
            vec![
                c.name(),
                json!(c.i(&["status", "desiredNumberScheduled"])),
                json!(c.i(&["status", "currentNumberScheduled"])),
                json!(c.i(&["status", "numberReady"])),
                json!(c.i(&["status", "updatedNumberScheduled"])),
                json!(c.i(&["status", "numberAvailable"])),
                json!(format_labels(get(
                    c.obj,
                    &["spec", "template", "spec", "nodeSelector"]
                ))),
                c.age(),
                json!(names),
                json!(images),
                json!(format_selector(get(c.obj, &["spec", "selector"]))),
            ]
        }
        ("batch", "Job") => job(c),
        ("batch", "CronJob") => {
            let (names, images) =
                containers(c.template_spec(&["spec", "jobTemplate", "spec", "template", "spec"]));
            let last = if get(c.obj, &["status", "lastScheduleTime"]).is_some_and(|v| !v.is_null())
            {
                c.since(&["status", "lastScheduleTime"])
            } else {
                "<none>".to_string()
            };
            let suspend = match get(c.obj, &["spec", "suspend"]).and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            vec![
                c.name(),
                json!(c.s(&["spec", "schedule"])),
                json!(get(c.obj, &["spec", "timeZone"])
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")),
                json!(suspend),
                json!(len_at(c.obj, &["status", "active"])),
                json!(last),
                c.age(),
                json!(names),
                json!(images),
                json!(format_selector(get(
                    c.obj,
                    &["spec", "jobTemplate", "spec", "selector"]
                ))),
            ]
        }
        ("", "Service") => service(c),
        ("networking.k8s.io", "Ingress") => {
            let rules = arr_at(c.obj, &["spec", "rules"]);
            let hosts_cell = ingress_hosts(rules);
            let ports = if arr_at(c.obj, &["spec", "tls"]).is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                c.name(),
                json!(get(c.obj, &["spec", "ingressClassName"])
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")),
                json!(hosts_cell),
                json!(load_balancer(c.obj)),
                json!(ports),
                c.age(),
            ]
        }
        ("networking.k8s.io", "IngressClass") => {
            let parameters = match get(c.obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
                Some(p) => {
                    let mut s = str_at(p, &["kind"]).to_string();
                    if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                        s = format!("{s}.{g}");
                    }
                    format!("{s}/{}", str_at(p, &["name"]))
                }
                None => "<none>".to_string(),
            };
            vec![
                c.name(),
                json!(c.s(&["spec", "controller"])),
                json!(parameters),
                c.age(),
            ]
        }
        ("apps", "StatefulSet") => {
            let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
            vec![
                c.name(),
                json!(format!(
                    "{}/{}",
                    c.i(&["status", "readyReplicas"]),
                    c.i(&["spec", "replicas"])
                )),
                c.age(),
                json!(names),
                json!(images),
            ]
        }
        ("", "Endpoints") => vec![c.name(), json!(endpoints(c.obj)), c.age()],
        ("", "Node") => node(c),
        ("", "Event") => event(c, c.obj),
        ("events.k8s.io", "Event") => event(c, &core_event(c.obj)),
        ("", "Namespace") => vec![c.name(), json!(c.s(&["status", "phase"])), c.age()],
        ("", "Secret") => vec![
            c.name(),
            json!(c.s(&["type"])),
            json!(len_at(c.obj, &["data"])),
            c.age(),
        ],
        ("", "ServiceAccount") => vec![c.name(), json!(len_at(c.obj, &["secrets"])), c.age()],
        ("", "PersistentVolume") => persistent_volume(c),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(c),
        ("apps", "Deployment") => {
            let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
            let selector = selector_string(get(c.obj, &["spec", "selector"]))
                .unwrap_or_else(|()| "<invalid>".to_string());
            vec![
                c.name(),
                json!(format!(
                    "{}/{}",
                    c.i(&["status", "readyReplicas"]),
                    c.i(&["spec", "replicas"])
                )),
                json!(c.i(&["status", "updatedReplicas"])),
                json!(c.i(&["status", "availableReplicas"])),
                c.age(),
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        ("autoscaling", "HorizontalPodAutoscaler") => super::hpa::row(c.obj, c.age()),
        ("", "ConfigMap") => vec![
            c.name(),
            json!(len_at(c.obj, &["data"]) + len_at(c.obj, &["binaryData"])),
            c.age(),
        ],
        ("networking.k8s.io", "NetworkPolicy") => {
            // A missing podSelector is an empty one, which selects everything.
            let selector = get(c.obj, &["spec", "podSelector"])
                .cloned()
                .unwrap_or(json!({}));
            vec![c.name(), json!(format_selector(Some(&selector))), c.age()]
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            let role = format!(
                "{}/{}",
                c.s(&["roleRef", "kind"]),
                c.s(&["roleRef", "name"])
            );
            let (mut users, mut groups, mut sas) = (vec![], vec![], vec![]);
            for s in arr_at(c.obj, &["subjects"]) {
                let name = str_at(s, &["name"]);
                match str_at(s, &["kind"]) {
                    "ServiceAccount" => sas.push(format!("{}/{name}", str_at(s, &["namespace"]))),
                    "User" => users.push(name.to_string()),
                    "Group" => groups.push(name.to_string()),
                    _ => {}
                }
            }
            vec![
                c.name(),
                json!(role),
                c.age(),
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![c.name(), json!(c.s(&["spec", "holderIdentity"])), c.age()]
        }
        ("storage.k8s.io", "StorageClass") => {
            let annotations = get(c.obj, &["metadata", "annotations"]);
            let is_default = [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|k| annotations.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"));
            let mut name = c.s(&["metadata", "name"]).to_string();
            if is_default {
                name.push_str(" (default)");
            }
            vec![
                json!(name),
                json!(c.s(&["provisioner"])),
                json!(get(c.obj, &["reclaimPolicy"])
                    .and_then(Value::as_str)
                    .unwrap_or("Delete")),
                json!(get(c.obj, &["volumeBindingMode"])
                    .and_then(Value::as_str)
                    .unwrap_or("Immediate")),
                json!(bool_at(c.obj, &["allowVolumeExpansion"])),
                c.age(),
            ]
        }
        ("apps", "ControllerRevision") => {
            let controller = arr_at(c.obj, &["metadata", "ownerReferences"])
                .iter()
                .find(|r| bool_at(r, &["controller"]))
                .map_or_else(
                    || "<none>".to_string(),
                    |r| {
                        let group = str_at(r, &["apiVersion"])
                            .rsplit_once('/')
                            .map_or("", |(g, _)| g);
                        let kind = str_at(r, &["kind"]);
                        let group_kind = if group.is_empty() {
                            kind.to_string()
                        } else {
                            format!("{kind}.{group}")
                        };
                        let name = str_at(r, &["name"]);
                        if group_kind.is_empty() {
                            name.to_string()
                        } else {
                            format!("{}/{name}", group_kind.to_lowercase())
                        }
                    },
                );
            vec![
                c.name(),
                json!(controller),
                json!(c.i(&["revision"])),
                c.age(),
            ]
        }
        ("", "ResourceQuota") => resource_quota(c),
        ("scheduling.k8s.io", "PriorityClass") => vec![
            c.name(),
            json!(c.i(&["value"])),
            json!(bool_at(c.obj, &["globalDefault"])),
            c.age(),
            json!(c.s(&["preemptionPolicy"])),
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            c.name(),
            json!(c.s(&["spec", "attacher"])),
            json!(c.s(&["spec", "source", "persistentVolumeName"])),
            json!(c.s(&["spec", "nodeName"])),
            json!(bool_at(c.obj, &["status", "attached"])),
            c.age(),
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            let ports = arr_at(c.obj, &["ports"]);
            let port_list: Vec<String> = ports
                .iter()
                .take(3)
                .map(|p| {
                    match (
                        p.get("port").and_then(Value::as_i64),
                        p.get("name").and_then(Value::as_str),
                    ) {
                        (Some(n), _) => n.to_string(),
                        (None, Some(name)) => name.to_string(),
                        (None, None) => "*".to_string(),
                    }
                })
                .collect();
            let addresses: Vec<&str> = arr_at(c.obj, &["endpoints"])
                .iter()
                .flat_map(|e| arr_at(e, &["addresses"]).iter().filter_map(Value::as_str))
                .collect();
            let shown: Vec<String> = addresses.iter().take(3).map(|s| s.to_string()).collect();
            vec![
                c.name(),
                json!(c.s(&["addressType"])),
                json!(list_with_more(&port_list, ports.len(), 3)),
                json!(list_with_more(&shown, addresses.len(), 3)),
                c.age(),
            ]
        }
        ("storage.k8s.io", "CSINode") => vec![
            c.name(),
            json!(len_at(c.obj, &["spec", "drivers"])),
            c.age(),
        ],
        ("storage.k8s.io", "CSIDriver") => {
            let flag = |field: &str, default: bool| {
                get(c.obj, &["spec", field])
                    .and_then(Value::as_bool)
                    .unwrap_or(default)
            };
            let modes: Vec<&str> = arr_at(c.obj, &["spec", "volumeLifecycleModes"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let tokens = match get(c.obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|t| str_at(t, &["audience"]))
                    .collect::<Vec<_>>()
                    .join(","),
                None => "<unset>".to_string(),
            };
            vec![
                c.name(),
                json!(flag("attachRequired", true)),
                json!(flag("podInfoOnMount", false)),
                json!(flag("storageCapacity", false)),
                json!(tokens),
                json!(flag("requiresRepublish", false)),
                json!(or_none(&modes.join(","))),
                c.age(),
            ]
        }
        _ => return None,
    };
    Some(cells)
}

/// `formatHosts`: up to three hosts; once three are listed, any further rule, with or without
/// a host, makes it "+ N more" where N counts all rules beyond three.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(r, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    if more {
        return format!("{} + {} more...", list.join(","), rules.len() - MAX);
    }
    list.join(",")
}

fn job(c: &Ctx<'_>) -> Vec<Value> {
    let succeeded = c.i(&["status", "succeeded"]);
    let completions = match get(c.obj, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => {
            let parallelism = c.i(&["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = timestamp(get(c.obj, &["status", "startTime"]));
    let end = timestamp(get(c.obj, &["status", "completionTime"]));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_nanos(c.now.as_nanosecond() - s.as_nanosecond()),
        (Some(s), Some(e)) => human_nanos(e.as_nanosecond() - s.as_nanosecond()),
    };
    let conditions = arr_at(c.obj, &["status", "conditions"]);
    // The first condition of a type decides, as upstream's hasJobCondition does.
    let has = |t: &str| {
        conditions
            .iter()
            .find(|x| str_at(x, &["type"]) == t)
            .is_some_and(|x| str_at(x, &["status"]) == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if c.deleting() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(c.template_spec(&["spec", "template", "spec"]));
    vec![
        c.name(),
        json!(status),
        json!(completions),
        json!(duration),
        c.age(),
        json!(names),
        json!(images),
        json!(format_selector(get(c.obj, &["spec", "selector"]))),
    ]
}

/// Load-balancer ingress points, sorted and deduplicated; never clipped since server-side
/// tables are always generated wide.
fn load_balancer(obj: &Value) -> String {
    let set: BTreeSet<&str> = arr_at(obj, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service(c: &Ctx<'_>) -> Vec<Value> {
    let type_ = c.s(&["spec", "type"]);
    // Upstream's registry always fills clusterIPs from clusterIP; read the latter for objects
    // stored without it.
    let cluster_ip = arr_at(c.obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| get(c.obj, &["spec", "clusterIP"]).and_then(Value::as_str))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let external: Vec<&str> = arr_at(c.obj, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match type_ {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            let lb = load_balancer(c.obj);
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                all.extend(&external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => c.s(&["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr_at(c.obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let proto = str_at(p, &["protocol"]);
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    vec![
        c.name(),
        json!(type_),
        json!(cluster_ip),
        json!(external_ip),
        json!(or_none(&ports.join(","))),
        c.age(),
        json!(format_labels(get(c.obj, &["spec", "selector"]))),
    ]
}

/// `formatEndpoints`: up to three `ip:port` pairs (bare IPs for port-less subsets).
fn endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses.iter().take(MAX.saturating_sub(list.len())) {
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            let port = int_at(p, &["port"]);
            for a in addresses.iter().take(MAX.saturating_sub(list.len())) {
                let ip = str_at(a, &["ip"]);
                // net.JoinHostPort brackets IPv6 addresses.
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let ret = list.join(",");
    if count > MAX && list.len() == MAX {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

fn node(c: &Ctx<'_>) -> Vec<Value> {
    // The last condition of a type wins, as upstream builds a map of them.
    let ready = arr_at(c.obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|x| str_at(x, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(x) if str_at(x, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(c.obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    if let Some(labels) = get(c.obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let address = |t: &str| {
        arr_at(c.obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == t)
            .map_or("<none>", |a| str_at(a, &["address"]))
            .to_string()
    };
    let info = |f: &str| {
        let v = c.s(&["status", "nodeInfo", f]);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        c.name(),
        json!(status.join(",")),
        json!(or_none(&roles.into_iter().collect::<Vec<_>>().join(","))),
        c.age(),
        json!(c.s(&["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// An events.k8s.io/v1 event in core/v1 field names, as the shared internal type sees it.
fn core_event(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(m) = e.as_object_mut() {
        m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    }
    crate::convert::to_version("Event", "v1", e.clone()).unwrap_or(e)
}

fn event(c: &Ctx<'_>, e: &Value) -> Vec<Value> {
    let at = |path: &[&str]| timestamp(get(e, path));
    let first = match at(&["firstTimestamp"]) {
        Some(t) => since(Some(t), c.now),
        None => since(at(&["eventTime"]), c.now),
    };
    let mut last = match at(&["lastTimestamp"]) {
        Some(t) => since(Some(t), c.now),
        None => first.clone(),
    };
    let mut count = int_at(e, &["count"]);
    if let Some(series) = get(e, &["series"]).filter(|s| s.is_object()) {
        last = since(timestamp(series.get("lastObservedTime")), c.now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        // Events of the new API are singletons without a count.
        count = 1;
    }
    let kind = str_at(e, &["involvedObject", "kind"]).to_lowercase();
    let name = str_at(e, &["involvedObject", "name"]);
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        str_at(e, &["source", "component"]),
        str_at(e, &["reportingComponent"]),
    );
    let host = first_non_empty(
        str_at(e, &["source", "host"]),
        str_at(e, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(str_at(e, &["type"])),
        json!(str_at(e, &["reason"])),
        json!(target),
        json!(str_at(e, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(e, &["message"]).trim()),
        json!(first),
        json!(count),
        json!(str_at(e, &["metadata", "name"])),
    ]
}

/// `GetAccessModesAsString`: the short forms in a fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta storage-class annotation still overrides the field, as upstream's helpers read it.
fn storage_class(c: &Ctx<'_>, field_path: &[&str]) -> String {
    if let Some(a) = get(
        c.obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    {
        return a.to_string();
    }
    c.s(field_path).to_string()
}

fn persistent_volume(c: &Ctx<'_>) -> Vec<Value> {
    let claim = match get(c.obj, &["spec", "claimRef"]).filter(|v| v.is_object()) {
        Some(r) => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
        None => String::new(),
    };
    let phase = if c.deleting() {
        "Terminating"
    } else {
        c.s(&["status", "phase"])
    };
    vec![
        c.name(),
        json!(scalar_string(get(c.obj, &["spec", "capacity", "storage"]))
            .unwrap_or_else(|| "0".into())),
        json!(access_modes(arr_at(c.obj, &["spec", "accessModes"]))),
        json!(c.s(&["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(storage_class(c, &["spec", "storageClassName"])),
        json!(get(c.obj, &["spec", "volumeAttributesClassName"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")),
        json!(c.s(&["status", "reason"])),
        c.age(),
        json!(get(c.obj, &["spec", "volumeMode"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")),
    ]
}

fn persistent_volume_claim(c: &Ctx<'_>) -> Vec<Value> {
    let phase = if c.deleting() {
        "Terminating"
    } else {
        c.s(&["status", "phase"])
    };
    let volume = c.s(&["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            scalar_string(get(c.obj, &["status", "capacity", "storage"]))
                .unwrap_or_else(|| "0".into()),
            access_modes(arr_at(c.obj, &["status", "accessModes"])),
        )
    };
    vec![
        c.name(),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(c, &["spec", "storageClassName"])),
        json!(get(c.obj, &["spec", "volumeAttributesClassName"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")),
        c.age(),
        json!(get(c.obj, &["spec", "volumeMode"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")),
    ]
}

fn resource_quota(c: &Ctx<'_>) -> Vec<Value> {
    let hard = get(c.obj, &["status", "hard"]).and_then(Value::as_object);
    let mut names: Vec<&String> = hard.map(|h| h.keys().collect()).unwrap_or_default();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for name in names {
        let used =
            scalar_string(get(c.obj, &["status", "used", name])).unwrap_or_else(|| "0".into());
        let hard = scalar_string(hard.and_then(|h| h.get(name))).unwrap_or_else(|| "0".into());
        let entry = format!("{name}: {used}/{hard}");
        if name.split('.').count() > 1 && name.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        c.name(),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        c.age(),
    ]
}
