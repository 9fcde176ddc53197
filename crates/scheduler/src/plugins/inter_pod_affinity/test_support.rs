//! Builders shared by the filtering and scoring tests: a four-node cluster over two zones and
//! pods with affinity terms written tersely.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::framework::{PodInfo, Snapshot};
use crate::plugins::testing::{node, pod, snapshot, with_pods};

/// The zone label.
pub const ZONE: &str = "zone";
/// The hostname label.
pub const HOST: &str = "kubernetes.io/hostname";

/// n1 and n2 in zone z1, n3 in z2, n4 without a zone label; `pods` are (node index, pod).
/// Namespace `default` has label team=a, `other` team=b.
pub fn cluster(pods: &[(usize, Arc<PodInfo>)]) -> Snapshot {
    let nodes = [
        ("n1", Some("z1")),
        ("n2", Some("z1")),
        ("n3", Some("z2")),
        ("n4", None),
    ];
    let nodes = nodes
        .iter()
        .enumerate()
        .map(|(i, (name, zone))| {
            let mut labels = json!({HOST: name});
            if let Some(z) = zone {
                labels[ZONE] = json!(z);
            }
            let on: Vec<_> = pods
                .iter()
                .filter(|(at, _)| *at == i)
                .map(|(_, p)| p.clone())
                .collect();
            with_pods(
                node(json!({"metadata": {"name": name, "labels": labels}})),
                &on,
            )
        })
        .collect();
    let mut s = snapshot(nodes);
    s.namespaces
        .insert("default".into(), [("team".into(), "a".into())].into());
    s.namespaces
        .insert("other".into(), [("team".into(), "b".into())].into());
    s
}

/// `"k=v,k2=v2"` as a JSON label map.
fn labels(s: &str) -> Value {
    let m: Map<String, Value> = s
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(m)
}

/// A term selecting pods with labels `sel` per `key`.
pub fn term(sel: &str, key: &str) -> Value {
    json!({"labelSelector": {"matchLabels": labels(sel)}, "topologyKey": key})
}

/// [`term`] with a namespaceSelector.
pub fn term_ns(sel: &str, key: &str, ns_selector: Value) -> Value {
    let mut t = term(sel, key);
    t["namespaceSelector"] = ns_selector;
    t
}

/// Required terms of `kind` (`podAffinity` or `podAntiAffinity`).
pub fn req(kind: &str, terms: &[Value]) -> Value {
    json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

/// Preferred terms of `kind` with their weights.
pub fn pref(kind: &str, terms: &[(i32, Value)]) -> Value {
    let terms: Vec<Value> = terms
        .iter()
        .map(|(w, t)| json!({"weight": w, "podAffinityTerm": t}))
        .collect();
    json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": terms}})
}

/// Both affinities of `a` and `b` in one `spec.affinity`.
pub fn both(a: Value, b: Value) -> Value {
    let mut out = a;
    if let (Some(o), Value::Object(b)) = (out.as_object_mut(), b) {
        o.extend(b);
    }
    out
}

/// A pod `name` in `ns` with labels `lbls` (`"k=v"`) and this `spec.affinity`.
pub fn pd(name: &str, ns: &str, lbls: &str, affinity: Value) -> Arc<PodInfo> {
    pod(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels(lbls)},
        "spec": {"affinity": affinity}
    }))
}

/// A pod without affinity.
pub fn plain(name: &str, ns: &str, lbls: &str) -> Arc<PodInfo> {
    pd(name, ns, lbls, json!({}))
}
