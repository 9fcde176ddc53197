//! Builders for plugin table tests: pods and nodes from JSON, as the API would return them.
#![allow(dead_code)] // shared by the plugins' tests; not every builder is used by each

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use crate::framework::{NodeInfo, PodInfo, Snapshot};

/// A pod from a partial JSON object; `metadata.name` defaults to `p`, the namespace to
/// `default`, the uid to the name.
pub fn pod(v: Value) -> Arc<PodInfo> {
    let mut v = v;
    let meta = v
        .as_object_mut()
        .expect("object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let m = meta.as_object_mut().expect("object");
    let name = m.entry("name").or_insert_with(|| json!("p")).clone();
    m.entry("namespace").or_insert_with(|| json!("default"));
    m.entry("uid").or_insert(name);
    let obj = v.as_object_mut().expect("object");
    obj.entry("spec")
        .or_insert_with(|| json!({"containers": []}));
    if let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        s.entry("containers").or_insert_with(|| json!([]));
    }
    let pod: Pod = serde_json::from_value(v).expect("valid pod");
    Arc::new(PodInfo::new(Arc::new(pod)))
}

/// A pod with one container requesting `cpu` (millicores) and `mem` (bytes).
pub fn pod_with_requests(name: &str, cpu: i64, mem: i64) -> Arc<PodInfo> {
    pod(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {
            "cpu": format!("{cpu}m"), "memory": mem.to_string()}}}]}
    }))
}

/// A node from a partial JSON object; `metadata.name` is required.
pub fn node(v: Value) -> NodeInfo {
    let node: Node = serde_json::from_value(v).expect("valid node");
    NodeInfo::new(Arc::new(node))
}

/// A node with this allocatable cpu (millicores), memory (bytes) and pods.
pub fn node_with_allocatable(name: &str, cpu: i64, mem: i64, pods: i64) -> NodeInfo {
    node(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": format!("{cpu}m"), "memory": mem.to_string(), "pods": pods.to_string()}}
    }))
}

/// `node` with `pods` on it.
pub fn with_pods(mut node: NodeInfo, pods: &[Arc<PodInfo>]) -> NodeInfo {
    for p in pods {
        node.add_pod(p.clone());
    }
    node
}

/// A snapshot of these nodes.
pub fn snapshot(nodes: Vec<NodeInfo>) -> Snapshot {
    Snapshot::from_nodes(nodes)
}

/// A resource list from `"cpu=1m,memory=1"`; `""` is empty.
pub fn quantities(s: &str) -> serde_json::Map<String, Value> {
    s.split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv.trim().split_once('=').expect("resource=quantity");
            (k.to_string(), json!(v))
        })
        .collect()
}

/// Containers from `"cpu=1m,memory=1 + example.com/a=1"`: one per `+`-separated resource
/// list (see [`quantities`]); `{}` is a container without requests, `""` no container.
pub fn containers(s: &str) -> Vec<Value> {
    s.split('+')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .enumerate()
        .map(|(i, c)| {
            let requests = if c == "{}" {
                Default::default()
            } else {
                quantities(c)
            };
            json!({"name": format!("c{i}"), "resources": {"requests": requests}})
        })
        .collect()
}

/// A pod with these containers (see [`containers`]).
pub fn pod_requesting(s: &str) -> Arc<PodInfo> {
    pod(json!({"spec": {"containers": containers(s)}}))
}

/// A node whose allocatable is the resource list `alloc` (see [`quantities`]), with one pod
/// per entry of `pods` (see [`pod_requesting`]).
pub fn node_allocatable(name: &str, alloc: &str, pods: &[&str]) -> NodeInfo {
    let alloc = quantities(alloc);
    let n = node(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": alloc, "capacity": alloc}
    }));
    let pods: Vec<Arc<PodInfo>> = pods.iter().map(|p| pod_requesting(p)).collect();
    with_pods(n, &pods)
}
