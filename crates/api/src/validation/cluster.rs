//! Cluster plumbing in core `v1`: nodes (taints, pod CIDRs), limit ranges and resource
//! quotas.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{LimitRange, Node, ResourceQuota};

use super::container::non_negative_quantity;
use super::meta::{json, IS_NEGATIVE};
use super::names::{is_qualified_name, is_valid_label_value, name_is_dns_subdomain};
use super::pod::validate_taint_effect;
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

pub(crate) fn node_rules() -> Rules<Node> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |n, _| {
            let mut errs = ErrorList::new();
            let tp = FieldPath::new("spec").child("taints");
            let mut seen = BTreeSet::new();
            for (i, t) in n
                .spec
                .iter()
                .flat_map(|s| s.taints.iter().flatten())
                .enumerate()
            {
                let p = tp.index(i);
                for m in is_qualified_name(&t.key) {
                    errs.push(FieldError::invalid(&p.child("key"), t.key.as_str(), &m));
                }
                if let Some(v) = t.value.as_deref() {
                    for m in is_valid_label_value(v) {
                        errs.push(FieldError::invalid(&p.child("value"), v, &m));
                    }
                }
                if t.effect.is_empty() {
                    errs.push(FieldError::required(&p.child("effect"), ""));
                } else {
                    errs.extend(validate_taint_effect(&t.effect, &p.child("effect")));
                }
                if !seen.insert((t.key.clone(), t.effect.clone())) {
                    let mut e = FieldError::duplicate(&p, json(t));
                    e.detail = "taints must be unique by key and effect pair".to_string();
                    errs.push(e);
                }
            }
            for (i, c) in n
                .spec
                .iter()
                .flat_map(|s| s.pod_cidrs.iter().flatten())
                .enumerate()
            {
                if !is_cidr(c) {
                    errs.push(FieldError::invalid(
                        &FieldPath::new("spec").child("podCIDRs").index(i),
                        c.as_str(),
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    ));
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let cidr = |x: &Node| {
                x.spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.clone())
                    .unwrap_or_default()
            };
            if !cidr(o).is_empty() && cidr(n) != cidr(o) {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("spec").child("podCIDR"),
                    "node updates may not change podCIDR except from \"\" to valid",
                ));
            }
            let cidrs = |x: &Node| {
                x.spec
                    .as_ref()
                    .and_then(|s| s.pod_cidrs.clone())
                    .unwrap_or_default()
            };
            if !cidrs(o).is_empty() && cidrs(n) != cidrs(o) {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("spec").child("podCIDRs"),
                    "node updates may not change podCIDR except from \"\" to valid",
                ));
            }
            let pid = |x: &Node| {
                x.spec
                    .as_ref()
                    .and_then(|s| s.provider_id.clone())
                    .unwrap_or_default()
            };
            if !pid(o).is_empty() && pid(n) != pid(o) {
                errs.push(FieldError::forbidden(
                    &FieldPath::new("spec").child("providerID"),
                    "node updates may not change providerID except from \"\" to valid",
                ));
            }
            errs
        },
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            for (field, list) in [
                (
                    "capacity",
                    n.status.as_ref().and_then(|s| s.capacity.clone()),
                ),
                (
                    "allocatable",
                    n.status.as_ref().and_then(|s| s.allocatable.clone()),
                ),
            ] {
                for (k, q) in list.iter().flatten() {
                    non_negative_quantity(q, &sp.child(field).key(k), &mut errs);
                }
            }
            errs
        },
    }
}

/// `a.b.c.d/n` or an IPv6 CIDR.
pub(crate) fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    bits <= if ip.is_ipv4() { 32 } else { 128 }
}

const LIMIT_TYPES: &[&str] = &["Container", "Pod", "PersistentVolumeClaim"];

pub(crate) fn limit_range_rules() -> Rules<LimitRange> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |lr, _| {
            let mut errs = ErrorList::new();
            let lp = FieldPath::new("spec").child("limits");
            for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
                let p = lp.index(i);
                if !LIMIT_TYPES.contains(&item.type_.as_str()) {
                    errs.push(FieldError::not_supported(
                        &p.child("type"),
                        item.type_.as_str(),
                        LIMIT_TYPES,
                    ));
                }
                let mut maxes = std::collections::BTreeMap::new();
                for (field, map) in [
                    ("max", &item.max),
                    ("min", &item.min),
                    ("default", &item.default),
                    ("defaultRequest", &item.default_request),
                    ("maxLimitRequestRatio", &item.max_limit_request_ratio),
                ] {
                    for (k, q) in map.iter().flatten() {
                        let kp = p.child(field).key(k);
                        if let Some(v) = non_negative_quantity(q, &kp, &mut errs) {
                            maxes.insert((field, k.clone()), (v, q.0.clone()));
                        }
                    }
                }
                for ((field, k), (v, s)) in &maxes {
                    if *field != "min" {
                        continue;
                    }
                    if let Some((mv, ms)) = maxes.get(&("max", k.clone())) {
                        if v > mv {
                            errs.push(FieldError::invalid(
                                &p.child("min").key(k),
                                s.as_str(),
                                &format!("min value {s} is greater than max value {ms}"),
                            ));
                        }
                    }
                }
                if item.type_ == "Pod" && (item.default.is_some() || item.default_request.is_some())
                {
                    let f = if item.default.is_some() {
                        "default"
                    } else {
                        "defaultRequest"
                    };
                    errs.push(FieldError::forbidden(
                        &p.child(f),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn resource_quota_rules() -> Rules<ResourceQuota> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |rq, _| {
            let mut errs = ErrorList::new();
            let hp = FieldPath::new("spec").child("hard");
            for (k, q) in rq.spec.iter().flat_map(|s| s.hard.iter().flatten()) {
                for m in is_qualified_name(k) {
                    errs.push(FieldError::invalid(&hp.key(k), k.as_str(), &m));
                }
                non_negative_quantity(q, &hp.key(k), &mut errs);
            }
            let scopes = [
                "BestEffort",
                "CrossNamespacePodAffinity",
                "NotBestEffort",
                "NotTerminating",
                "PriorityClass",
                "Terminating",
                "VolumeAttributesClass",
            ];
            for s in rq.spec.iter().flat_map(|s| s.scopes.iter().flatten()) {
                if !scopes.contains(&s.as_str()) {
                    errs.push(FieldError::not_supported(
                        &FieldPath::new("spec").child("scopes"),
                        s.as_str(),
                        &scopes,
                    ));
                }
            }
            errs
        },
        update: no_update,
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            for (field, map) in [
                ("hard", n.status.as_ref().and_then(|s| s.hard.clone())),
                ("used", n.status.as_ref().and_then(|s| s.used.clone())),
            ] {
                for (k, q) in map.iter().flatten() {
                    let p = sp.child(field).key(k);
                    if let Some(v) = super::qty::parse(&q.0) {
                        if v < 0.0 {
                            errs.push(FieldError::invalid(&p, q.0.as_str(), IS_NEGATIVE));
                        }
                    }
                }
            }
            errs
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want};
    use super::super::validate_create;
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
    fn limit_range_and_quota_rules() {
        assert_eq!(
            create(
                "LimitRange",
                Some("d"),
                json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "1"}}]}})
            ),
            want(vec![])
        );
        assert_eq!(
            create(
                "LimitRange",
                Some("d"),
                json!({"spec": {"limits": [{"type": "Box", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}})
            ),
            want(vec![
                ("spec.limits[0].type", NotSupported),
                ("spec.limits[0].min[cpu]", Invalid)
            ])
        );
        assert_eq!(
            create(
                "ResourceQuota",
                Some("d"),
                json!({"spec": {"hard": {"pods": "10"}}})
            ),
            want(vec![])
        );
        assert_eq!(
            create(
                "ResourceQuota",
                Some("d"),
                json!({"spec": {"hard": {"pods": "-1"}}})
            ),
            want(vec![("spec.hard[pods]", Invalid)])
        );
    }
}
