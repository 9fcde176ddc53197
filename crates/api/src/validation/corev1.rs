//! Core (`v1`) kinds other than services and volumes: pods, pod templates, replication
//! controllers, config maps, secrets, namespaces, nodes, service accounts, events, limit
//! ranges and resource quotas.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Pod, PodTemplate, ReplicationController, Secret, ServiceAccount,
};

use super::meta::{immutable, json, non_negative, validate_kube_finalizers};
use super::names::{
    is_config_map_key, is_qualified_name, name_is_dns_label, name_is_dns_subdomain,
};
use super::pod::{validate_pod_only, validate_pod_spec_update, validate_pod_template_spec};
use super::{no_create, no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

pub(crate) fn pod_rules() -> Rules<Pod> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |p, _| {
            let mut errs = pod_annotations(p);
            errs.extend(validate_pod_only(p));
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let ap = FieldPath::new("metadata").child("annotations");
            let (na, oa) = (
                n.metadata.annotations.clone().unwrap_or_default(),
                o.metadata.annotations.clone().unwrap_or_default(),
            );
            const MIRROR: &str = "kubernetes.io/config.mirror";
            match (na.get(MIRROR), oa.get(MIRROR)) {
                (Some(a), Some(b)) if a != b => errs.push(FieldError::forbidden(
                    &ap.key(MIRROR),
                    "may not remove or update mirror pod annotation",
                )),
                (None, Some(_)) => errs.push(FieldError::forbidden(
                    &ap.key(MIRROR),
                    "may not remove or update mirror pod annotation",
                )),
                (Some(_), None) => errs.push(FieldError::forbidden(
                    &ap.key(MIRROR),
                    "may not add mirror pod annotation",
                )),
                _ => {}
            }
            errs.extend(validate_pod_spec_update(
                &n.spec.clone().unwrap_or_default(),
                &o.spec.clone().unwrap_or_default(),
            ));
            errs
        },
        status: |n, o, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            let node = |p: &Pod| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default()
            };
            if node(n) != node(o) {
                errs.push(FieldError::forbidden(
                    &sp.child("nodeName"),
                    "may not be changed directly",
                ));
            }
            let qos = |p: &Pod| p.status.as_ref().and_then(|s| s.qos_class.clone());
            if o.status.is_some() && qos(o).is_some() {
                immutable(&qos(n), &qos(o), &sp.child("qosClass"), &mut errs);
            }
            let std_conditions = ["PodScheduled", "Ready", "Initialized"];
            for (i, c) in n
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .enumerate()
            {
                if std_conditions.contains(&c.type_.as_str()) {
                    continue;
                }
                for m in is_qualified_name(&c.type_) {
                    errs.push(FieldError::invalid(
                        &FieldPath::new("metadata")
                            .child("conditions")
                            .index(i)
                            .child("Type"),
                        c.type_.as_str(),
                        &m,
                    ));
                }
            }
            errs
        },
    }
}

fn pod_annotations(p: &Pod) -> ErrorList {
    let mut errs = ErrorList::new();
    let ap = FieldPath::new("metadata").child("annotations");
    let ann = p.metadata.annotations.clone().unwrap_or_default();
    if let Some(v) = ann.get("kubernetes.io/config.mirror") {
        if p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
            .is_empty()
        {
            errs.push(FieldError::invalid(
                &ap.key("kubernetes.io/config.mirror"),
                v.as_str(),
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(v) = ann.get("controller.kubernetes.io/pod-deletion-cost") {
        if v.trim() != v || v.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                &ap.key("controller.kubernetes.io/pod-deletion-cost"),
                v.as_str(),
                "must be a 32bit integer",
            ));
        }
    }
    errs
}

pub(crate) fn pod_template_rules() -> Rules<PodTemplate> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |t, _| {
            validate_pod_template_spec(
                &t.template.clone().unwrap_or_default(),
                &FieldPath::new("template"),
            )
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn replication_controller_rules() -> Rules<ReplicationController> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |rc, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = rc.spec.clone().unwrap_or_default();
            non_negative(
                spec.min_ready_seconds.map(i64::from),
                &sp.child("minReadySeconds"),
                &mut errs,
            );
            let selector = spec.selector.clone().unwrap_or_default();
            if selector.is_empty() {
                errs.push(FieldError::required(&sp.child("selector"), ""));
            }
            non_negative(
                spec.replicas.map(i64::from),
                &sp.child("replicas"),
                &mut errs,
            );
            let tp = sp.child("template");
            match &spec.template {
                None => errs.push(FieldError::required(&tp, "")),
                Some(t) => {
                    let labels = t
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    if !selector.is_empty()
                        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    {
                        errs.push(FieldError::invalid(
                            &tp.child("metadata").child("labels"),
                            json(&labels),
                            "`selector` does not match template `labels`",
                        ));
                    }
                    errs.extend(validate_pod_template_spec(t, &tp));
                    let ts = t.spec.clone().unwrap_or_default();
                    if let Some(r) = ts.restart_policy.as_deref().filter(|r| *r != "Always") {
                        errs.push(FieldError::not_supported(
                            &tp.child("spec").child("restartPolicy"),
                            r,
                            &["Always"],
                        ));
                    }
                    if let Some(a) = ts.active_deadline_seconds {
                        errs.push(FieldError::invalid(
                            &tp.child("spec").child("activeDeadlineSeconds"),
                            a,
                            "activeDeadlineSeconds in ReplicationController is not Supported",
                        ));
                    }
                }
            }
            errs
        },
        update: no_update,
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            if let Some(s) = &n.status {
                non_negative(Some(s.replicas.into()), &sp.child("replicas"), &mut errs);
                for (v, f) in [
                    (s.fully_labeled_replicas, "fullyLabeledReplicas"),
                    (s.ready_replicas, "readyReplicas"),
                    (s.available_replicas, "availableReplicas"),
                ] {
                    non_negative(v.map(i64::from), &sp.child(f), &mut errs);
                }
            }
            errs
        },
    }
}

fn data_key_errors<'a>(
    keys: impl Iterator<Item = &'a String>,
    path: &FieldPath,
    errs: &mut ErrorList,
) {
    for k in keys {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(&path.key(k), k.as_str(), &m));
        }
    }
}

pub(crate) fn config_map_rules() -> Rules<ConfigMap> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |cm, _| {
            let mut errs = ErrorList::new();
            let data = cm.data.clone().unwrap_or_default();
            let bin = cm.binary_data.clone().unwrap_or_default();
            let dp = FieldPath::new("data");
            let mut total = 0;
            for (k, v) in &data {
                data_key_errors(std::iter::once(k), &dp, &mut errs);
                if bin.contains_key(k) {
                    errs.push(FieldError::invalid(
                        &dp.key(k),
                        k.as_str(),
                        "duplicate of key present in binaryData",
                    ));
                }
                total += v.len();
            }
            data_key_errors(bin.keys(), &FieldPath::new("binaryData"), &mut errs);
            total += bin.values().map(|b| b.0.len()).sum::<usize>();
            if total > MAX_SECRET_SIZE {
                errs.push(FieldError::too_long(&FieldPath::new(""), MAX_SECRET_SIZE));
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            if o.immutable == Some(true) {
                if n.immutable != Some(true) {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("immutable"),
                        IMMUTABLE_SET,
                    ));
                }
                if n.data != o.data {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("data"),
                        IMMUTABLE_SET,
                    ));
                }
                if n.binary_data != o.binary_data {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("binaryData"),
                        IMMUTABLE_SET,
                    ));
                }
            }
            errs
        },
        status: no_update,
    }
}

pub(crate) fn secret_rules() -> Rules<Secret> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |s, _| {
            let mut errs = ErrorList::new();
            let dp = FieldPath::new("data");
            let data = s.data.clone().unwrap_or_default();
            let string_data = s.string_data.clone().unwrap_or_default();
            // `stringData` is merged into `data` before upstream validates, so its keys count
            // as data keys.
            let keys: BTreeSet<&String> = data.keys().chain(string_data.keys()).collect();
            data_key_errors(keys.iter().copied(), &dp, &mut errs);
            let mut total: usize = 0;
            for k in &keys {
                total += string_data
                    .get(*k)
                    .map(String::len)
                    .or_else(|| data.get(*k).map(|b| b.0.len()))
                    .unwrap_or(0);
            }
            if total > MAX_SECRET_SIZE {
                errs.push(FieldError::too_long(&dp, MAX_SECRET_SIZE));
            }
            let has = |k: &str| data.contains_key(k) || string_data.contains_key(k);
            let nonempty = |k: &str| {
                data.get(k).is_some_and(|b| !b.0.is_empty())
                    || string_data.get(k).is_some_and(|s| !s.is_empty())
            };
            match s.type_.as_deref().unwrap_or_default() {
                "kubernetes.io/service-account-token" => {
                    let name = s
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("kubernetes.io/service-account.name"));
                    if name.is_none_or(String::is_empty) {
                        errs.push(FieldError::required(
                            &FieldPath::new("metadata")
                                .child("annotations")
                                .key("kubernetes.io/service-account.name"),
                            "",
                        ));
                    }
                }
                "kubernetes.io/dockercfg" => {
                    docker_json(&data, &string_data, ".dockercfg", &dp, &mut errs)
                }
                "kubernetes.io/dockerconfigjson" => {
                    docker_json(&data, &string_data, ".dockerconfigjson", &dp, &mut errs)
                }
                "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                    errs.push(FieldError::required(&dp.key("username"), ""));
                    errs.push(FieldError::required(&dp.key("password"), ""));
                }
                "kubernetes.io/ssh-auth" if !nonempty("ssh-privatekey") => {
                    errs.push(FieldError::required(&dp.key("ssh-privatekey"), ""));
                }
                "kubernetes.io/tls" => {
                    if !has("tls.crt") {
                        errs.push(FieldError::required(&dp.key("tls.crt"), ""));
                    }
                    if !has("tls.key") {
                        errs.push(FieldError::required(&dp.key("tls.key"), ""));
                    }
                }
                _ => {}
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let t = |s: &Secret| s.type_.clone().unwrap_or_else(|| "Opaque".to_string());
            immutable(&t(n), &t(o), &FieldPath::new("type"), &mut errs);
            if o.immutable == Some(true) {
                if n.immutable != Some(true) {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("immutable"),
                        IMMUTABLE_SET,
                    ));
                }
                if n.data != o.data || n.string_data.as_ref().is_some_and(|s| !s.is_empty()) {
                    errs.push(FieldError::forbidden(
                        &FieldPath::new("data"),
                        IMMUTABLE_SET,
                    ));
                }
            }
            errs
        },
        status: no_update,
    }
}

fn docker_json(
    data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>,
    string_data: &std::collections::BTreeMap<String, String>,
    key: &str,
    dp: &FieldPath,
    errs: &mut ErrorList,
) {
    let bytes = match (data.get(key), string_data.get(key)) {
        (_, Some(s)) => s.as_bytes().to_vec(),
        (Some(b), None) => b.0.clone(),
        (None, None) => {
            errs.push(FieldError::required(&dp.key(key), ""));
            return;
        }
    };
    if let Err(e) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
        errs.push(FieldError::invalid(
            &dp.key(key),
            "<secret contents redacted>",
            &e.to_string(),
        ));
    }
}

pub(crate) fn namespace_rules() -> Rules<Namespace> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_label),
        create: |ns, _| {
            let mut errs = ErrorList::new();
            let fp = FieldPath::new("spec").child("finalizers");
            let fins = ns.spec.as_ref().and_then(|s| s.finalizers.clone());
            for f in fins.iter().flatten() {
                for m in is_qualified_name(f) {
                    errs.push(FieldError::invalid(&fp, f.as_str(), &m));
                }
            }
            errs.extend(validate_kube_finalizers(fins.as_ref(), &fp));
            errs
        },
        update: no_update,
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let deleting = n.metadata.deletion_timestamp.is_some();
            let phase = n
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or_default();
            let pp = FieldPath::new("status").child("phase");
            if !deleting && phase == "Terminating" {
                errs.push(FieldError::invalid(
                    &pp,
                    phase,
                    "may only be 'Active' if `deletionTimestamp` is empty",
                ));
            } else if deleting && phase == "Active" {
                errs.push(FieldError::invalid(
                    &pp,
                    phase,
                    "may only be 'Terminating' if `deletionTimestamp` is not empty",
                ));
            }
            errs
        },
    }
}

pub(crate) fn service_account_rules() -> Rules<ServiceAccount> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: no_create,
        update: no_update,
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want};
    use super::super::{validate_create, validate_status_update, validate_update};
    use crate::field_error::FieldErrorType::{self, *};
    use serde_json::{json, Value};

    fn obj(kind: &str, ns: Option<&str>, extra: Value) -> Value {
        let mut m = json!({"name": "x", "resourceVersion": "1"});
        if let Some(ns) = ns {
            m["namespace"] = json!(ns);
        }
        let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": m});
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if k == "metadata" {
                    for (mk, mv) in v.as_object().into_iter().flatten() {
                        o["metadata"][mk] = mv.clone();
                    }
                } else {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        o
    }

    fn create(kind: &str, ns: Option<&str>, extra: Value) -> Vec<(String, FieldErrorType)> {
        kinds(&validate_create("", kind, &obj(kind, ns, extra)))
    }

    #[test]
    fn pod_create_and_update() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx"}]});
        assert_eq!(
            create("Pod", Some("d"), json!({"spec": spec})),
            want(vec![])
        );
        assert_eq!(
            create("Pod", None, json!({"spec": spec})),
            want(vec![("metadata.namespace", Required)])
        );
        assert_eq!(
            create("Pod", Some("d"), json!({"spec": {"containers": []}})),
            want(vec![("spec.containers", Required)])
        );
        assert_eq!(
            create(
                "Pod",
                Some("d"),
                json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}, "spec": spec})
            ),
            want(vec![(
                "metadata.annotations[kubernetes.io/config.mirror]",
                Invalid
            )])
        );
        let old = obj(
            "Pod",
            Some("d"),
            json!({"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}),
        );
        let new = obj(
            "Pod",
            Some("d"),
            json!({"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}),
        );
        assert_eq!(kinds(&validate_update("", "Pod", &new, &old)), want(vec![]));
        let new = obj(
            "Pod",
            Some("d"),
            json!({"spec": {"containers": [{"name": "web", "image": "nginx:1"}], "restartPolicy": "Never"}}),
        );
        assert_eq!(
            kinds(&validate_update("", "Pod", &new, &old)),
            want(vec![("spec", Forbidden)])
        );
        let new = obj(
            "Pod",
            Some("d"),
            json!({"spec": {"containers": [{"name": "web", "image": "nginx:1"}], "nodeName": "n1"}}),
        );
        assert_eq!(
            kinds(&validate_status_update("", "Pod", &new, &old)),
            want(vec![("status.nodeName", Forbidden)])
        );
    }

    #[test]
    fn replication_controller_rules() {
        let tmpl = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        assert_eq!(
            create(
                "ReplicationController",
                Some("d"),
                json!({"spec": {"selector": {"app": "a"}, "template": tmpl}})
            ),
            want(vec![])
        );
        assert_eq!(
            create(
                "ReplicationController",
                Some("d"),
                json!({"spec": {"selector": {"app": "b"}, "template": tmpl, "replicas": -1}})
            ),
            want(vec![
                ("spec.replicas", Invalid),
                ("spec.template.metadata.labels", Invalid)
            ])
        );
        assert_eq!(
            create(
                "ReplicationController",
                Some("d"),
                json!({"spec": {"template": tmpl}})
            ),
            want(vec![("spec.selector", Required)])
        );
    }

    #[test]
    fn config_map_rules() {
        assert_eq!(
            create(
                "ConfigMap",
                Some("d"),
                json!({"data": {"a.b": "x", "c_d-e": "y"}})
            ),
            want(vec![])
        );
        assert_eq!(
            create("ConfigMap", Some("d"), json!({"data": {"a b": "x"}})),
            want(vec![("data[a b]", Invalid)])
        );
        assert_eq!(
            create(
                "ConfigMap",
                Some("d"),
                json!({"data": {"a": "x"}, "binaryData": {"a": "eA=="}})
            ),
            want(vec![("data[a]", Invalid)])
        );
        assert_eq!(
            create(
                "ConfigMap",
                Some("d"),
                json!({"data": {"a": "x".repeat(1024 * 1024 + 1)}})
            ),
            want(vec![("", TooLong)])
        );
        let old = obj(
            "ConfigMap",
            Some("d"),
            json!({"data": {"a": "1"}, "immutable": true}),
        );
        let new = obj(
            "ConfigMap",
            Some("d"),
            json!({"data": {"a": "2"}, "immutable": true}),
        );
        assert_eq!(
            kinds(&validate_update("", "ConfigMap", &new, &old)),
            want(vec![("data", Forbidden)])
        );
        let new = obj(
            "ConfigMap",
            Some("d"),
            json!({"data": {"a": "1"}, "immutable": false}),
        );
        assert_eq!(
            kinds(&validate_update("", "ConfigMap", &new, &old)),
            want(vec![("immutable", Forbidden)])
        );
    }

    #[test]
    fn secret_rules() {
        assert_eq!(
            create(
                "Secret",
                Some("d"),
                json!({"data": {"k": "eA=="}, "stringData": {"s": "y"}})
            ),
            want(vec![])
        );
        assert_eq!(
            create("Secret", Some("d"), json!({"stringData": {"a/b": "y"}})),
            want(vec![("data[a/b]", Invalid)])
        );
        assert_eq!(
            create(
                "Secret",
                Some("d"),
                json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})
            ),
            want(vec![("data[tls.key]", Required)])
        );
        assert_eq!(
            create(
                "Secret",
                Some("d"),
                json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "nope"}})
            ),
            want(vec![("data[.dockerconfigjson]", Invalid)])
        );
        assert_eq!(
            create(
                "Secret",
                Some("d"),
                json!({"type": "kubernetes.io/service-account-token"})
            ),
            want(vec![(
                "metadata.annotations[kubernetes.io/service-account.name]",
                Required
            )])
        );
        let old = obj("Secret", Some("d"), json!({"type": "Opaque"}));
        let new = obj(
            "Secret",
            Some("d"),
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
        );
        assert_eq!(
            kinds(&validate_update("", "Secret", &new, &old)),
            want(vec![("type", Invalid)])
        );
    }

    #[test]
    fn namespace_and_node_rules() {
        assert_eq!(create("Namespace", None, json!({})), want(vec![]));
        assert_eq!(
            kinds(&validate_create(
                "",
                "Namespace",
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}})
            )),
            want(vec![("metadata.name", Invalid)])
        );
        assert_eq!(
            create("Namespace", Some("d"), json!({})),
            want(vec![("metadata.namespace", Forbidden)])
        );
        assert_eq!(
            create("Namespace", None, json!({"spec": {"finalizers": ["foo"]}})),
            want(vec![("spec.finalizers[0]", Invalid)])
        );
        assert_eq!(
            create(
                "Node",
                None,
                json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}})
            ),
            want(vec![])
        );
        assert_eq!(
            create(
                "Node",
                None,
                json!({"spec": {"taints": [{"key": "a", "effect": "Bad"}, {"key": "b", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]}})
            ),
            want(vec![
                ("spec.taints[0].effect", NotSupported),
                ("spec.taints[2]", Duplicate)
            ])
        );
        let old = obj("Node", None, json!({"spec": {"podCIDR": "10.0.0.0/24"}}));
        let new = obj("Node", None, json!({"spec": {"podCIDR": "10.0.1.0/24"}}));
        assert_eq!(
            kinds(&validate_update("", "Node", &new, &old)),
            want(vec![("spec.podCIDR", Forbidden)])
        );
    }
}
