//! Which field labels each kind can be selected by, and the values an object has for them.
//!
//! Two upstream mechanisms are mirrored. The scheme's field label conversion decides which
//! labels a request may use, and may rename them (`spec.host` to `spec.nodeName` for pods,
//! `regarding.kind` to `involvedObject.kind` for `events.k8s.io` events); kinds without a
//! conversion accept only `metadata.name` and `metadata.namespace`. Each registry's
//! `GetAttrs` then gives the object's values under the converted names. The two do not
//! always agree upstream (replica sets expose `status.replicas` but their conversion
//! rejects it; pods accept `status.podIPs` but expose no value for it, so it reads as
//! empty), and both quirks are kept.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{FieldSelector, SelectorError};
use crate::catalogue::RESOURCES;

const META: &[&str] = &["metadata.name", "metadata.namespace"];

const POD: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    "spec.host",
];
const NODE: &[&str] = &["metadata.name", "spec.unschedulable"];
const REPLICATION_CONTROLLER: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const CORE_EVENT: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const NAMESPACE: &[&str] = &["status.phase", "metadata.name"];
const SECRET: &[&str] = &["type", "metadata.namespace", "metadata.name"];
const SERVICE: &[&str] = &[
    "metadata.namespace",
    "metadata.name",
    "spec.clusterIP",
    "spec.type",
];
const JOB: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];
/// `events.k8s.io/v1` labels and the internal (core) names they select on.
const EVENTS_V1: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

/// How one kind converts field labels.
enum Conversion {
    /// Accepts the listed labels unchanged (pods also rename `spec.host`), rejecting others with
    /// `field label not supported: <label>`.
    Listed(&'static [&'static str]),
    /// Batch jobs: like `Listed`, with upstream's job-specific message.
    Job,
    /// `events.k8s.io` events: renames through [`EVENTS_V1`].
    EventsV1,
    /// No conversion registered: only object metadata.
    Default,
}

fn conversion(group: &str, kind: &str) -> Conversion {
    match (group, kind) {
        ("", "Pod") => Conversion::Listed(POD),
        ("", "Node") => Conversion::Listed(NODE),
        ("", "ReplicationController") => Conversion::Listed(REPLICATION_CONTROLLER),
        ("", "Event") => Conversion::Listed(CORE_EVENT),
        ("", "Namespace") => Conversion::Listed(NAMESPACE),
        ("", "Secret") => Conversion::Listed(SECRET),
        ("", "Service") => Conversion::Listed(SERVICE),
        ("batch", "Job") => Conversion::Job,
        ("events.k8s.io", "Event") => Conversion::EventsV1,
        _ => Conversion::Default,
    }
}

/// The field labels a request may select `group`/`kind` by, as sent by clients
/// (including pods' legacy `spec.host`).
pub fn supported_fields(group: &str, kind: &str) -> Vec<&'static str> {
    match conversion(group, kind) {
        Conversion::Listed(list) => list.to_vec(),
        Conversion::Job => JOB.to_vec(),
        Conversion::EventsV1 => EVENTS_V1.iter().map(|(from, _)| *from).collect(),
        Conversion::Default => META.to_vec(),
    }
}

/// Upstream's field label conversion: the name `label` selects on in [`field_set`], or
/// upstream's error for a label the kind does not support.
pub fn convert_field_label(
    group: &str,
    kind: &str,
    label: &str,
) -> Result<&'static str, SelectorError> {
    let found = |list: &[&'static str]| list.iter().copied().find(|l| *l == label);
    let converted = match conversion(group, kind) {
        // Old v1 clients send `spec.host`.
        Conversion::Listed(POD) if label == "spec.host" => Some("spec.nodeName"),
        Conversion::Listed(list) => found(list),
        Conversion::Job => {
            return found(JOB).ok_or_else(|| {
                SelectorError::UnsupportedField(format!(
                    "field label {label:?} not supported for Job"
                ))
            })
        }
        Conversion::EventsV1 => EVENTS_V1
            .iter()
            .find(|(from, _)| *from == label)
            .map(|(_, to)| *to),
        Conversion::Default => {
            return found(META).ok_or_else(|| {
                SelectorError::UnsupportedField(format!(
                    "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                ))
            })
        }
    };
    converted.ok_or_else(|| {
        SelectorError::UnsupportedField(format!("field label not supported: {label}"))
    })
}

impl FieldSelector {
    /// Converts every term's field label for `group`/`kind` as the API server does before
    /// listing, failing on the first unsupported one (in sorted term order).
    pub fn convert(&self, group: &str, kind: &str) -> Result<FieldSelector, SelectorError> {
        self.transform(|field, value| {
            convert_field_label(group, kind, field).map(|f| (f.to_string(), value.to_string()))
        })
    }

    /// Whether every term's field label is supported for `group`/`kind`.
    pub fn check_supported(&self, group: &str, kind: &str) -> Result<(), SelectorError> {
        self.convert(group, kind).map(|_| ())
    }

    /// Whether an object (its JSON form, of `group`/`kind`) is selected. The selector must
    /// already be [converted](Self::convert).
    pub fn matches_object(&self, group: &str, kind: &str, obj: &Value) -> bool {
        self.matches(&field_set(group, kind, obj))
    }
}

fn text(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn integer(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn boolean(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn is_namespaced(group: &str, kind: &str) -> bool {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .is_none_or(|r| r.namespaced)
}

/// The field values an object of `group`/`kind` (in that group's JSON form) offers to
/// field selectors, under the names [`convert_field_label`] yields: always
/// `metadata.name`, `metadata.namespace` for namespaced kinds, and the kind's own fields.
pub fn field_set(group: &str, kind: &str, obj: &Value) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    set.insert("metadata.name".to_string(), text(obj, "/metadata/name"));
    if is_namespaced(group, kind) {
        set.insert(
            "metadata.namespace".to_string(),
            text(obj, "/metadata/namespace"),
        );
    }
    let mut put = |k: &str, v: String| {
        set.insert(k.to_string(), v);
    };
    match (group, kind) {
        ("", "Pod") => {
            put("spec.nodeName", text(obj, "/spec/nodeName"));
            put("spec.restartPolicy", text(obj, "/spec/restartPolicy"));
            put("spec.schedulerName", text(obj, "/spec/schedulerName"));
            put(
                "spec.serviceAccountName",
                text(obj, "/spec/serviceAccountName"),
            );
            put("spec.hostNetwork", boolean(obj, "/spec/hostNetwork"));
            put("status.phase", text(obj, "/status/phase"));
            // The primary IP: the first of podIPs, which conversion fills from podIP.
            let mut ip = text(obj, "/status/podIPs/0/ip");
            if ip.is_empty() {
                ip = text(obj, "/status/podIP");
            }
            put("status.podIP", ip);
            put(
                "status.nominatedNodeName",
                text(obj, "/status/nominatedNodeName"),
            );
        }
        ("", "Node") => put("spec.unschedulable", boolean(obj, "/spec/unschedulable")),
        ("", "Namespace") => {
            put("status.phase", text(obj, "/status/phase"));
            // Kept upstream for backward compatibility, though no conversion accepts it.
            put("name", text(obj, "/metadata/name"));
        }
        ("", "PersistentVolume" | "PersistentVolumeClaim") => {
            put("name", text(obj, "/metadata/name"))
        }
        ("", "Secret") => put("type", text(obj, "/type")),
        ("", "Service") => {
            put("spec.clusterIP", text(obj, "/spec/clusterIP"));
            put("spec.type", text(obj, "/spec/type"));
        }
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            put("status.replicas", integer(obj, "/status/replicas"))
        }
        ("batch", "Job") => put("status.successful", integer(obj, "/status/succeeded")),
        // both groups share storage: read whichever form the stored object is in
        ("", "Event") | ("events.k8s.io", "Event") if obj.get("regarding").is_some() => {
            event_fields(
                &mut put,
                obj,
                "/regarding",
                "/reportingController",
                "/deprecatedSource/component",
            )
        }
        ("", "Event") | ("events.k8s.io", "Event") => event_fields(
            &mut put,
            obj,
            "/involvedObject",
            "/reportingComponent",
            "/source/component",
        ),
        _ => {}
    }
    set
}

/// Events in either group: the involved object, reason, type, reporting controller, and
/// the source component falling back to the reporting controller.
fn event_fields(
    put: &mut impl FnMut(&str, String),
    obj: &Value,
    involved: &str,
    reporting: &str,
    source: &str,
) {
    for field in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        put(
            &format!("involvedObject.{field}"),
            text(obj, &format!("{involved}/{field}")),
        );
    }
    put("reason", text(obj, "/reason"));
    put("type", text(obj, "/type"));
    let reporting = text(obj, reporting);
    let mut source = text(obj, source);
    if source.is_empty() {
        source = reporting.clone();
    }
    put("reportingComponent", reporting);
    put("source", source);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_written_in_either_group_answer_core_field_selectors() {
        let ev_v1 = json!({"apiVersion": "events.k8s.io/v1", "regarding": {"name": "p", "kind": "Pod"},
            "reason": "Scheduled", "reportingController": "default-scheduler"});
        let core = json!({"apiVersion": "v1", "involvedObject": {"name": "p", "kind": "Pod"},
            "reason": "Scheduled", "source": {"component": "kubelet"}});
        for obj in [&ev_v1, &core] {
            for group in ["", "events.k8s.io"] {
                let set = field_set(group, "Event", obj);
                assert_eq!(
                    set.get("involvedObject.name").map(String::as_str),
                    Some("p"),
                    "{group} {obj}"
                );
                assert_eq!(set.get("reason").map(String::as_str), Some("Scheduled"));
            }
        }
    }

    #[test]
    fn conversion_accepts_and_renames_like_upstream() {
        let cases: &[(&str, &str, &str, Result<&str, &str>)] = &[
            ("", "Pod", "spec.nodeName", Ok("spec.nodeName")),
            ("", "Pod", "spec.host", Ok("spec.nodeName")),
            ("", "Pod", "status.podIPs", Ok("status.podIPs")),
            ("", "Pod", "spec.hostNetwork", Ok("spec.hostNetwork")),
            ("", "Pod", "foo", Err("field label not supported: foo")),
            ("", "Node", "spec.unschedulable", Ok("spec.unschedulable")),
            ("", "Node", "metadata.namespace", Err("field label not supported: metadata.namespace")),
            ("", "Namespace", "status.phase", Ok("status.phase")),
            ("", "Namespace", "name", Err("field label not supported: name")),
            ("", "Secret", "type", Ok("type")),
            ("", "Service", "spec.clusterIP", Ok("spec.clusterIP")),
            ("", "Service", "spec.type", Ok("spec.type")),
            ("", "ReplicationController", "status.replicas", Ok("status.replicas")),
            ("", "Event", "involvedObject.name", Ok("involvedObject.name")),
            ("", "Event", "reportingComponent", Ok("reportingComponent")),
            ("", "Event", "regarding.name", Err("field label not supported: regarding.name")),
            ("events.k8s.io", "Event", "regarding.name", Ok("involvedObject.name")),
            ("events.k8s.io", "Event", "reportingController", Ok("reportingComponent")),
            ("events.k8s.io", "Event", "involvedObject.name", Err("field label not supported: involvedObject.name")),
            ("batch", "Job", "status.successful", Ok("status.successful")),
            ("batch", "Job", "spec.x", Err("field label \"spec.x\" not supported for Job")),
            ("apps", "ReplicaSet", "status.replicas", Err("\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")),
            ("", "ConfigMap", "metadata.name", Ok("metadata.name")),
            ("", "PersistentVolume", "metadata.namespace", Ok("metadata.namespace")),
            ("", "ConfigMap", "data", Err("\"data\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")),
        ];
        for (group, kind, label, want) in cases {
            let got = convert_field_label(group, kind, label).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{group}/{kind} {label}");
        }
    }

    #[test]
    fn every_supported_field_converts() {
        for r in RESOURCES {
            for f in supported_fields(r.group, r.kind) {
                assert!(
                    convert_field_label(r.group, r.kind, f).is_ok(),
                    "{} {f}",
                    r.kind
                );
            }
        }
        assert_eq!(supported_fields("apps", "Deployment"), META);
        assert!(supported_fields("", "Pod").contains(&"status.nominatedNodeName"));
    }

    #[test]
    fn pods_expose_upstream_fields() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "sa", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "nominatedNodeName": "n2"}
        });
        let set = field_set("", "Pod", &pod);
        let want: BTreeMap<String, String> = [
            ("metadata.name", "p"),
            ("metadata.namespace", "ns"),
            ("spec.nodeName", "n1"),
            ("spec.restartPolicy", "Always"),
            ("spec.schedulerName", "default-scheduler"),
            ("spec.serviceAccountName", "sa"),
            ("spec.hostNetwork", "true"),
            ("status.phase", "Running"),
            ("status.podIP", "10.0.0.1"),
            ("status.nominatedNodeName", "n2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(set, want);
        let bare = field_set("", "Pod", &json!({"metadata": {"name": "p"}}));
        assert_eq!(
            bare.get("spec.hostNetwork").map(String::as_str),
            Some("false")
        );
        assert_eq!(bare.get("status.podIP").map(String::as_str), Some(""));
    }

    #[test]
    fn selectors_match_objects_after_conversion() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}});
        let cases: &[(&str, bool)] = &[
            ("spec.host=n1", true),
            ("spec.nodeName=n1,metadata.namespace=ns", true),
            ("spec.nodeName!=n1", false),
            ("status.podIPs=", true),
            ("status.podIPs=10.0.0.1", false),
            ("spec.hostNetwork=false", true),
        ];
        for (sel, want) in cases {
            let s = FieldSelector::parse(sel).and_then(|s| s.convert("", "Pod"));
            let got = s.map(|s| s.matches_object("", "Pod", &pod));
            assert_eq!(got, Ok(*want), "{sel}");
        }
        let bad = FieldSelector::parse("spec.nodeName=a,zzz=b")
            .and_then(|s| s.check_supported("", "Pod"));
        assert_eq!(
            bad.map_err(|e| e.to_string()),
            Err("field label not supported: zzz".to_string())
        );
    }

    #[test]
    fn other_kinds_expose_upstream_fields() {
        let get =
            |g: &str, k: &str, obj: Value, field: &str| field_set(g, k, &obj).get(field).cloned();
        assert_eq!(
            get(
                "",
                "Node",
                json!({"spec": {"unschedulable": true}}),
                "spec.unschedulable"
            )
            .as_deref(),
            Some("true")
        );
        assert_eq!(
            get("", "Node", json!({}), "spec.unschedulable").as_deref(),
            Some("false")
        );
        assert_eq!(get("", "Node", json!({}), "metadata.namespace"), None);
        assert_eq!(
            get(
                "",
                "Namespace",
                json!({"status": {"phase": "Active"}}),
                "status.phase"
            )
            .as_deref(),
            Some("Active")
        );
        assert_eq!(
            get("", "Secret", json!({"type": "Opaque"}), "type").as_deref(),
            Some("Opaque")
        );
        assert_eq!(
            get(
                "",
                "Service",
                json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}}),
                "spec.clusterIP"
            )
            .as_deref(),
            Some("None")
        );
        assert_eq!(
            get(
                "",
                "ReplicationController",
                json!({"status": {"replicas": 3}}),
                "status.replicas"
            )
            .as_deref(),
            Some("3")
        );
        assert_eq!(
            get("apps", "ReplicaSet", json!({}), "status.replicas").as_deref(),
            Some("0")
        );
        assert_eq!(
            get(
                "batch",
                "Job",
                json!({"status": {"succeeded": 2}}),
                "status.successful"
            )
            .as_deref(),
            Some("2")
        );
        assert_eq!(
            get(
                "",
                "ConfigMap",
                json!({"metadata": {"namespace": "d"}}),
                "metadata.namespace"
            )
            .as_deref(),
            Some("d")
        );
        assert_eq!(
            get(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                json!({"metadata": {"name": "r"}}),
                "metadata.namespace"
            ),
            None
        );
    }

    #[test]
    fn events_expose_involved_object_in_both_groups() {
        let core = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"},
            "reason": "Started", "type": "Normal", "reportingComponent": "kubelet"
        });
        let set = field_set("", "Event", &core);
        assert_eq!(
            set.get("involvedObject.kind").map(String::as_str),
            Some("Pod")
        );
        assert_eq!(
            set.get("involvedObject.uid").map(String::as_str),
            Some("u1")
        );
        assert_eq!(
            set.get("involvedObject.fieldPath").map(String::as_str),
            Some("")
        );
        assert_eq!(set.get("source").map(String::as_str), Some("kubelet"));
        assert_eq!(
            set.get("reportingComponent").map(String::as_str),
            Some("kubelet")
        );
        let v1 = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod", "name": "p"},
            "reason": "Started", "type": "Warning", "reportingController": "ctl",
            "deprecatedSource": {"component": "src"}
        });
        let set = field_set("events.k8s.io", "Event", &v1);
        assert_eq!(
            set.get("involvedObject.name").map(String::as_str),
            Some("p")
        );
        assert_eq!(set.get("source").map(String::as_str), Some("src"));
        assert_eq!(
            set.get("reportingComponent").map(String::as_str),
            Some("ctl")
        );
        let s = FieldSelector::parse("regarding.kind=Pod,type=Warning")
            .and_then(|s| s.convert("events.k8s.io", "Event"));
        assert_eq!(
            s.map(|s| s.matches_object("events.k8s.io", "Event", &v1)),
            Ok(true)
        );
    }
}
