//! Per-resource behaviour on top of the generic registry (upstream's `RESTCreateStrategy` and
//! friends): what a create resets, when `generation` moves, what the status subresource may
//! change, and how a delete is graced.

use rkube_api::ResourceInfo;
use serde_json::{json, Map, Value};

/// Kinds whose `metadata.generation` tracks spec changes.
fn tracks_generation(res: &ResourceInfo) -> bool {
    matches!(
        (res.group, res.kind),
        ("", "Pod" | "ReplicationController")
            | (
                "apps",
                "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
            )
            | ("batch", "Job" | "CronJob")
            | ("autoscaling", "HorizontalPodAutoscaler")
            | ("policy", "PodDisruptionBudget")
            | ("networking.k8s.io", "Ingress" | "NetworkPolicy")
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("discovery.k8s.io", "EndpointSlice")
    )
}

/// Whether the update moves `generation`: the spec changed, or for kinds without one
/// (EndpointSlice) anything but the metadata (upstream's endpointslice strategy).
fn generation_moves(res: &ResourceInfo, new: &Value, old: &Value) -> bool {
    if res.group == "discovery.k8s.io" && res.kind == "EndpointSlice" {
        fn content(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
            v.as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "apiVersion" | "kind"))
        }
        return content(new).count() != content(old).count()
            || content(new).any(|(k, v)| old.get(k) != Some(v));
    }
    new.get("spec") != old.get("spec")
}

/// Whether writes to the main resource leave `status` alone (and the status subresource is
/// the only way to change it).
pub fn has_status_subresource(res: &ResourceInfo) -> bool {
    res.subresource("status").is_some()
}

/// Whether a PUT to a missing object creates it (upstream's `AllowCreateOnUpdate`).
pub fn allow_create_on_update(res: &ResourceInfo) -> bool {
    matches!(
        (res.group, res.kind),
        ("", "Endpoints" | "Event" | "LimitRange")
            | ("coordination.k8s.io", "Lease")
            | ("events.k8s.io", "Event")
            | ("rbac.authorization.k8s.io", _)
    )
}

/// Whether an update without a resourceVersion is allowed (upstream's
/// `AllowUnconditionalUpdate`: true for almost everything).
pub fn allow_unconditional_update(res: &ResourceInfo) -> bool {
    !matches!((res.group, res.kind), ("", "Namespace"))
}

/// The annotation a v1 DaemonSet carries its template generation in (upstream's
/// `DeprecatedTemplateGeneration`, the internal `spec.templateGeneration`).
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn is_daemon_set(res: &ResourceInfo) -> bool {
    res.group == "apps" && res.kind == "DaemonSet"
}

fn template_generation(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/annotations")?
        .get(TEMPLATE_GENERATION)?
        .as_str()?
        .parse()
        .ok()
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(TEMPLATE_GENERATION.into(), json!(generation.to_string()));
    }
}

/// Resets what a client may not set on create: status (to the kind's starting status) and
/// the system fields of metadata.
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    if res.group.is_empty() && res.kind == "Namespace" {
        // Phase Active and the `kubernetes` finalizer the namespace controller removes.
        rkube_api::defaults::namespace_prepare_for_create(obj);
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if has_status_subresource(res) && res.kind != "Node" {
        let status = initial_status(res, map);
        match status {
            Some(s) => map.insert("status".into(), s),
            None => map.remove("status"),
        };
    }
    if res.group == "batch" && res.kind == "Job" {
        generate_job_selector(map);
    }
    if is_daemon_set(res) {
        let given = template_generation(obj).filter(|g| *g >= 1).unwrap_or(1);
        set_template_generation(obj, given);
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        if tracks_generation(res) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("selfLink");
    }
}

/// Upstream's Job strategy: unless `manualSelector` is set, the selector is generated from the
/// Job's uid and the pod template gets the matching labels.
fn generate_job_selector(job: &mut Map<String, Value>) {
    let uid = job
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = job
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) || uid.is_empty() {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let template = spec.entry("template").or_insert_with(|| json!({}));
    let Some(template) = template.as_object_mut() else {
        return;
    };
    let meta = template.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
        labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
        labels.insert("controller-uid".into(), json!(uid));
        labels.insert("job-name".into(), json!(name));
    }
}

fn initial_status(res: &ResourceInfo, obj: &Map<String, Value>) -> Option<Value> {
    match (res.group, res.kind) {
        ("", "Pod") => {
            let qos = obj.get("spec").map_or("BestEffort", pod_qos_class);
            Some(json!({"phase": "Pending", "qosClass": qos}))
        }
        ("", "PersistentVolume" | "PersistentVolumeClaim") => Some(json!({"phase": "Pending"})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let storage = obj
                .get("spec")
                .and_then(|s| s.get("versions"))
                .and_then(Value::as_array)
                .and_then(|vs| {
                    vs.iter()
                        .find(|v| v.get("storage") == Some(&Value::Bool(true)))
                })
                .and_then(|v| v.get("name"))
                .cloned();
            let stored: Vec<Value> = storage.into_iter().collect();
            Some(json!({
                "conditions": [],
                "acceptedNames": {"kind": "", "plural": ""},
                "storedVersions": stored,
            }))
        }
        ("storage.k8s.io", "VolumeAttachment") => None,
        _ => Some(json!({})),
    }
}

/// Upstream's pod QoS class: BestEffort with no requests or limits at all, Guaranteed when
/// every container limits CPU and memory with requests equal to limits, else Burstable.
pub fn pod_qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>| {
            m.map(|m| m.keys().filter(|k| *k == "cpu" || *k == "memory").count())
                .unwrap_or(0)
        };
        if relevant(requests) > 0 || relevant(limits) > 0 {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(r));
            let request = requests.and_then(|q| q.get(r)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed && !containers.is_empty() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Prepares an update of the main resource: keeps what only subresources change, carries the
/// system fields over from the old object and moves `generation` when the spec changed.
pub fn prepare_for_update(res: &ResourceInfo, new: &mut Value, old: &Value) {
    if has_status_subresource(res) {
        match old.get("status") {
            Some(s) => set(new, "status", s.clone()),
            None => remove(new, "status"),
        }
    }
    if res.group.is_empty() && res.kind == "Namespace" {
        // spec.finalizers change only through the finalize subresource.
        if let (Some(old_fin), Some(spec)) = (
            old.pointer("/spec/finalizers").cloned(),
            new.get_mut("spec").and_then(Value::as_object_mut),
        ) {
            spec.insert("finalizers".into(), old_fin);
        }
    }
    carry_system_metadata(new, old);
    if is_daemon_set(res) {
        // Clients may not set it; it counts template changes (upstream's DaemonSet strategy).
        let old_generation = template_generation(old).unwrap_or(1);
        let changed = new.pointer("/spec/template") != old.pointer("/spec/template");
        set_template_generation(new, old_generation + i64::from(changed));
    }
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if tracks_generation(res) {
        let changed = generation_moves(res, new, old);
        set_meta(
            new,
            "generation",
            json!(if changed {
                generation + 1
            } else {
                generation.max(1)
            }),
        );
    } else if generation > 0 {
        set_meta(new, "generation", json!(generation));
    }
}

/// Prepares a status-subresource update: only status (and managed fields) come from `new`.
pub fn prepare_for_status_update(new: &mut Value, old: &Value) {
    let status = new.get("status").cloned();
    let mut merged = old.clone();
    match status {
        Some(s) => set(&mut merged, "status", s),
        None => remove(&mut merged, "status"),
    }
    if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
        set_meta(&mut merged, "resourceVersion", rv);
    }
    if let Some(mf) = new.pointer("/metadata/managedFields").cloned() {
        set_meta(&mut merged, "managedFields", mf);
    }
    *new = merged;
}

/// uid, creationTimestamp, deletion fields and generation are the server's.
fn carry_system_metadata(new: &mut Value, old: &Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => set_meta(new, field, v.clone()),
            None => {
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove(field);
                }
            }
        }
    }
}

fn set(obj: &mut Value, field: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert(field.into(), v);
    }
}

fn remove(obj: &mut Value, field: &str) {
    if let Some(m) = obj.as_object_mut() {
        m.remove(field);
    }
}

pub fn set_meta(obj: &mut Value, field: &str, v: Value) {
    if let Ok(meta) = crate::object::meta_mut(obj) {
        meta.insert(field.into(), v);
    }
}

/// The grace period of a delete (upstream's `CheckGracefulDelete`): `None` deletes at once.
/// Only pods are graceful: an unscheduled or finished pod goes at once; otherwise the
/// request's grace period, else the pod's `terminationGracePeriodSeconds`.
pub fn delete_grace(res: &ResourceInfo, obj: &Value, requested: Option<i64>) -> Option<i64> {
    if !(res.group.is_empty() && res.kind == "Pod") {
        return None;
    }
    let unscheduled = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty();
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if unscheduled || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = requested.unwrap_or_else(|| {
        obj.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    // A zero grace period still deletes at once; upstream turns a negative one into 1.
    if grace == 0 {
        None
    } else {
        Some(grace.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::catalogue::find;

    fn res(group: &str, plural: &str) -> &'static ResourceInfo {
        find(group, "v1", plural).expect("resource")
    }

    #[test]
    fn create_resets_status_and_sets_generation() {
        let mut d = json!({"metadata": {"name": "a", "generation": 7}, "spec": {}, "status": {"replicas": 3}});
        prepare_for_create(res("apps", "deployments"), &mut d);
        assert_eq!(d["status"], json!({}));
        assert_eq!(d["metadata"]["generation"], 1);
        let mut cm = json!({"metadata": {"name": "a", "generation": 7}, "data": {}});
        prepare_for_create(res("", "configmaps"), &mut cm);
        assert!(cm["metadata"].get("generation").is_none());
    }

    #[test]
    fn generation_moves_only_on_spec_change() {
        let deploy = res("apps", "deployments");
        let old = json!({"metadata": {"generation": 2, "uid": "u"}, "spec": {"replicas": 1}, "status": {"a": 1}});
        let mut same =
            json!({"metadata": {"labels": {"x": "y"}}, "spec": {"replicas": 1}, "status": {}});
        prepare_for_update(deploy, &mut same, &old);
        assert_eq!(same["metadata"]["generation"], 2);
        assert_eq!(same["status"], json!({"a": 1}));
        assert_eq!(same["metadata"]["uid"], "u");
        let mut changed = json!({"metadata": {}, "spec": {"replicas": 3}});
        prepare_for_update(deploy, &mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 3);
    }

    #[test]
    fn endpoint_slice_generation_moves_when_its_endpoints_or_ports_change() {
        let r = res("discovery.k8s.io", "endpointslices");
        let mut created =
            json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": []});
        prepare_for_create(r, &mut created);
        assert_eq!(created["metadata"]["generation"], 1);
        let mut relabelled = created.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        prepare_for_update(r, &mut relabelled, &created);
        assert_eq!(relabelled["metadata"]["generation"], 1);
        let mut moved = created.clone();
        moved["endpoints"] = json!([{"addresses": ["10.0.0.1"]}]);
        prepare_for_update(r, &mut moved, &created);
        assert_eq!(moved["metadata"]["generation"], 2);
    }

    #[test]
    fn daemon_sets_count_template_changes_in_their_annotation() {
        let r = res("apps", "daemonsets");
        let tg = |v: &Value| v["metadata"]["annotations"][TEMPLATE_GENERATION].clone();
        let mut created = json!({"metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
        prepare_for_create(r, &mut created);
        assert_eq!(tg(&created), "1");
        let mut scaled = created.clone();
        scaled["spec"]["minReadySeconds"] = json!(5);
        scaled["metadata"]["annotations"][TEMPLATE_GENERATION] = json!("9");
        prepare_for_update(r, &mut scaled, &created);
        assert_eq!(
            tg(&scaled),
            "1",
            "a client cannot set it; a non-template change keeps it"
        );
        let mut rolled = scaled.clone();
        rolled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
        prepare_for_update(r, &mut rolled, &scaled);
        assert_eq!(tg(&rolled), "2");
    }

    #[test]
    fn status_update_takes_only_status() {
        let old = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}, "status": {"phase": "Pending"}});
        let mut new =
            json!({"metadata": {"labels": {}}, "spec": {"x": 2}, "status": {"phase": "Running"}});
        prepare_for_status_update(&mut new, &old);
        assert_eq!(new["spec"]["x"], 1);
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert_eq!(new["status"]["phase"], "Running");
    }

    #[test]
    fn jobs_get_a_generated_selector_and_template_labels() {
        let jobs = find("batch", "v1", "jobs").expect("jobs");
        let mut j =
            json!({"metadata": {"name": "j", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
        prepare_for_create(jobs, &mut j);
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u-1"
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
        let mut manual =
            json!({"metadata": {"name": "m", "uid": "u-2"}, "spec": {"manualSelector": true}});
        prepare_for_create(jobs, &mut manual);
        assert!(manual["spec"].get("selector").is_none());
    }

    #[test]
    fn qos_classes_follow_upstream_rules() {
        assert_eq!(
            pod_qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }

    #[test]
    fn pods_are_graceful_only_when_scheduled_and_running() {
        let pods = res("", "pods");
        let scheduled = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(delete_grace(pods, &scheduled, None), Some(30));
        assert_eq!(delete_grace(pods, &scheduled, Some(0)), None);
        assert_eq!(delete_grace(pods, &scheduled, Some(5)), Some(5));
        let unscheduled = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(delete_grace(pods, &unscheduled, Some(30)), None);
        assert_eq!(
            delete_grace(res("", "configmaps"), &scheduled, Some(30)),
            None
        );
    }
}
