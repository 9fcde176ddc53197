//! Events, through either API: upstream validates the one internal type (`core.Event`), so
//! both the core `v1` and the `events.k8s.io/v1` form are converted to the core form first and
//! errors name the internal fields (`message`, `involvedObject`, `firstTimestamp`, `count`,
//! `source`, `reportingController`), whichever API the request came through.
//!
//! Every event passes upstream's legacy checks; writes through `events.k8s.io/v1` also pass
//! the strict ones (`ValidateEventCreate`/`ValidateEventUpdate` for a request version other
//! than core `v1`).

use k8s_openapi::api::core::v1::{Event, EventSource};
use serde_json::Value;

use super::meta::immutable;
use super::names::{is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain};
use super::{meta_update_identity, typed, validate_object_meta, validate_object_meta_update, Op};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

/// The core form of an event sent through `group`'s API (an object without an apiVersion
/// is taken to be of that API's version).
fn core_form(group: &str, obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(m) = obj.as_object_mut() {
        let has_version = m
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if !has_version {
            let v = if group.is_empty() {
                "v1"
            } else {
                "events.k8s.io/v1"
            };
            m.insert("apiVersion".into(), Value::from(v));
        }
    }
    crate::convert::to_version("Event", "v1", obj.clone()).unwrap_or(obj)
}

pub(super) fn validate(group: &str, obj: &Value, op: Op) -> ErrorList {
    let strict = group == "events.k8s.io";
    let new_raw = core_form(group, obj);
    let new: Event = match typed(&new_raw) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let old = match op {
        Op::Create => None,
        Op::Update(o) | Op::Status(o) => {
            let raw = core_form(group, o);
            match typed::<Event>(&raw) {
                Ok(e) => Some((e, raw)),
                Err(e) => return e,
            }
        }
    };
    let mut errs = legacy(&new);
    match (&old, strict) {
        (None, false) => {}
        (Some((old, _)), false) => errs.extend(meta_update_identity(&new.metadata, &old.metadata)),
        (None, true) => strict_create(&new, &new_raw, &mut errs),
        (Some((old, old_raw)), true) => strict_update(&new, &new_raw, old, old_raw, &mut errs),
    }
    errs
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// Upstream's `legacyValidateEvent`: what every event must satisfy.
fn legacy(e: &Event) -> ErrorList {
    let mut errs = ErrorList::new();
    let ns = s(&e.metadata.namespace);
    let ins = s(&e.involved_object.namespace);
    let mismatch = || {
        FieldError::invalid(
            &FieldPath::new("involvedObject").child("namespace"),
            ins,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        // Old events: the namespaces agree (an object without one: the event's is empty or
        // "default", for old clients).
        let ok = if ins.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == ins
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if ins.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller = s(&e.reporting_component);
        let controller_path = FieldPath::new("reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required(&controller_path, ""));
        }
        for m in is_qualified_name(controller) {
            errs.push(FieldError::invalid(&controller_path, controller, &m));
        }
        for (field, value, limit) in [
            (
                "reportingInstance",
                s(&e.reporting_instance),
                REPORTING_INSTANCE_LENGTH_LIMIT,
            ),
            ("action", s(&e.action), ACTION_LENGTH_LIMIT),
            ("reason", s(&e.reason), REASON_LENGTH_LIMIT),
        ] {
            let path = FieldPath::new(field);
            if value.is_empty() {
                errs.push(FieldError::required(&path, ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    &path,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if s(&e.message).len() > NOTE_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                &FieldPath::new("message"),
                "",
                &format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    for m in is_dns1123_subdomain(ns) {
        errs.push(FieldError::invalid(&FieldPath::new("namespace"), ns, &m));
    }
    errs
}

/// Upstream's `validateV1EventSeries`, read from the object (a series without its time is
/// still an object to report on).
fn series(raw: &Value, errs: &mut ErrorList) {
    let Some(series) = raw.get("series").filter(|s| !s.is_null()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        errs.push(FieldError::invalid(
            &FieldPath::new("series.count"),
            "",
            "should be at least 2",
        ));
    }
    if series.get("lastObservedTime").is_none_or(Value::is_null) {
        errs.push(FieldError::required(
            &FieldPath::new("series.lastObservedTime"),
            "",
        ));
    }
}

fn source_set(e: &Event) -> bool {
    e.source
        .as_ref()
        .is_some_and(|src| !s(&src.component).is_empty() || !s(&src.host).is_empty())
}

/// Creation through `events.k8s.io/v1`.
fn strict_create(e: &Event, raw: &Value, errs: &mut ErrorList) {
    errs.extend(validate_object_meta(
        &e.metadata,
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    ));
    series(raw, errs);
    if e.event_time.is_none() {
        errs.push(FieldError::required(&FieldPath::new("eventTime"), ""));
    }
    let ty = s(&e.type_);
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            &FieldPath::new("type"),
            "",
            &format!("has invalid value: {ty}"),
        ));
    }
    let unset = |field: &str| FieldError::invalid(&FieldPath::new(field), "", "needs to be unset");
    if e.first_timestamp.is_some() {
        errs.push(unset("firstTimestamp"));
    }
    if e.last_timestamp.is_some() {
        errs.push(unset("lastTimestamp"));
    }
    if e.count.unwrap_or(0) != 0 {
        errs.push(unset("count"));
    }
    if source_set(e) {
        errs.push(unset("source"));
    }
}

/// An update through `events.k8s.io/v1`: only a series may change.
fn strict_update(new: &Event, new_raw: &Value, old: &Event, old_raw: &Value, errs: &mut ErrorList) {
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &FieldPath::new("metadata"),
    ));
    let series_of = |raw: &Value| raw.get("series").filter(|s| !s.is_null()).cloned();
    if series_of(new_raw) != series_of(old_raw) {
        series(new_raw, errs);
    }
    let p = FieldPath::new;
    immutable(
        &new.involved_object,
        &old.involved_object,
        &p("involvedObject"),
        errs,
    );
    immutable(&s(&new.reason), &s(&old.reason), &p("reason"), errs);
    immutable(&s(&new.message), &s(&old.message), &p("message"), errs);
    let source = |e: &Event| e.source.clone().unwrap_or_default();
    let normal = |mut src: EventSource| {
        src.component = src.component.filter(|c| !c.is_empty());
        src.host = src.host.filter(|h| !h.is_empty());
        src
    };
    immutable(
        &normal(source(new)),
        &normal(source(old)),
        &p("source"),
        errs,
    );
    immutable(
        &new.first_timestamp,
        &old.first_timestamp,
        &p("firstTimestamp"),
        errs,
    );
    immutable(
        &new.last_timestamp,
        &old.last_timestamp,
        &p("lastTimestamp"),
        errs,
    );
    immutable(
        &new.count.unwrap_or(0),
        &old.count.unwrap_or(0),
        &p("count"),
        errs,
    );
    // Upstream checks the reason twice; the message lists it once.
    immutable(&s(&new.reason), &s(&old.reason), &p("reason"), errs);
    immutable(&s(&new.type_), &s(&old.type_), &p("type"), errs);
    immutable(&new.event_time, &old.event_time, &p("eventTime"), errs);
    immutable(&s(&new.action), &s(&old.action), &p("action"), errs);
    immutable(&new.related, &old.related, &p("related"), errs);
    immutable(
        &s(&new.reporting_component),
        &s(&old.reporting_component),
        &p("reportingController"),
        errs,
    );
    immutable(
        &s(&new.reporting_instance),
        &s(&old.reporting_instance),
        &p("reportingInstance"),
        errs,
    );
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    /// A new-style event as a controller writes it through events.k8s.io/v1.
    fn events_v1(extra: Value) -> Value {
        let mut e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.17a", "namespace": "default", "resourceVersion": "1"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "deployment-controller",
            "reportingInstance": "deployment-controller-host",
            "action": "ScalingReplicaSet", "reason": "ScalingReplicaSet", "type": "Normal",
            "note": "Scaled up", "regarding": {"kind": "Deployment", "namespace": "default", "name": "web"},
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            e[k] = v.clone();
        }
        e
    }

    /// An old-style event as the kubelet writes it through core v1.
    fn core(extra: Value) -> Value {
        let mut e = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-1.17a", "namespace": "default", "resourceVersion": "1"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1"},
            "reason": "Pulled", "message": "pulled", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:00:00Z",
            "count": 1,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            e[k] = v.clone();
        }
        e
    }

    #[test]
    fn valid_events_pass_through_either_api() {
        assert_eq!(
            kinds(&validate_create(
                "events.k8s.io",
                "Event",
                &events_v1(json!({}))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create("", "Event", &core(json!({})))),
            want(vec![])
        );
        // The core API takes a new-style event too, converted or not.
        let as_core =
            crate::convert::to_version("Event", "v1", events_v1(json!({}))).expect("core");
        assert_eq!(kinds(&validate_create("", "Event", &as_core)), want(vec![]));
    }

    #[test]
    fn errors_name_the_internal_fields_whichever_api_is_used() {
        let long = "x".repeat(1025);
        let e = events_v1(
            json!({"note": long, "reportingController": "", "deprecatedCount": 3,
            "deprecatedSource": {"component": "c"}, "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z"}),
        );
        assert_eq!(
            kinds(&validate_create("events.k8s.io", "Event", &e)),
            want(vec![
                ("reportingController", Required),
                ("reportingController", Invalid),
                ("reportingController", Invalid),
                ("message", Invalid),
                ("firstTimestamp", Invalid),
                ("count", Invalid),
                ("source", Invalid),
            ])
        );
        // Through core v1 only the legacy checks apply.
        let as_core = crate::convert::to_version("Event", "v1", e).expect("core");
        assert_eq!(
            kinds(&validate_create("", "Event", &as_core)),
            want(vec![
                ("reportingController", Required),
                ("reportingController", Invalid),
                ("reportingController", Invalid),
                ("message", Invalid),
            ])
        );
    }

    #[test]
    fn strict_creation_rules() {
        let cases = [
            (
                "no event time",
                json!({"eventTime": null}),
                // Without an eventTime the legacy checks are the old ones.
                vec![("eventTime", Required)],
            ),
            ("bad type", json!({"type": "Odd"}), vec![("type", Invalid)]),
            (
                "series of one",
                json!({"series": {"count": 1}}),
                vec![
                    ("series.count", Invalid),
                    ("series.lastObservedTime", Required),
                ],
            ),
            (
                "name",
                json!({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
                vec![("metadata.name", Invalid)],
            ),
            (
                "regarding in another namespace",
                json!({"metadata": {"name": "e", "namespace": "team"}, "regarding": {"kind": "Node", "name": "n1"}}),
                vec![("involvedObject.namespace", Invalid)],
            ),
            (
                "no action or instance",
                json!({"action": "", "reportingInstance": "y".repeat(129)}),
                vec![("reportingInstance", Invalid), ("action", Required)],
            ),
        ];
        for (name, extra, errs) in cases {
            assert_eq!(
                kinds(&validate_create(
                    "events.k8s.io",
                    "Event",
                    &events_v1(extra)
                )),
                want(errs),
                "{name}"
            );
        }
    }

    #[test]
    fn legacy_events_check_namespaces() {
        assert_eq!(
            kinds(&validate_create(
                "",
                "Event",
                &core(json!({"metadata": {"name": "any:name", "namespace": "d"},
                    "involvedObject": {"namespace": "d"}}))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "",
                "Event",
                &core(json!({"involvedObject": {"namespace": "e"}}))
            )),
            want(vec![("involvedObject.namespace", Invalid)])
        );
    }

    #[test]
    fn strict_updates_change_only_the_series() {
        let old = events_v1(json!({}));
        let bumped = events_v1(
            json!({"series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"}}),
        );
        assert_eq!(
            kinds(&validate_update("events.k8s.io", "Event", &bumped, &old)),
            want(vec![])
        );
        let bad_series = events_v1(
            json!({"series": {"count": 1, "lastObservedTime": "2025-01-01T00:01:00.000000Z"}}),
        );
        assert_eq!(
            kinds(&validate_update(
                "events.k8s.io",
                "Event",
                &bad_series,
                &old
            )),
            want(vec![("series.count", Invalid)])
        );
        let changed = events_v1(json!({"note": "other", "reason": "Other",
            "regarding": {"kind": "Deployment", "namespace": "default", "name": "api"}}));
        assert_eq!(
            kinds(&validate_update("events.k8s.io", "Event", &changed, &old)),
            want(vec![
                ("involvedObject", Invalid),
                ("reason", Invalid),
                ("message", Invalid),
                ("reason", Invalid),
            ])
        );
        // An event the kubelet wrote (firstTimestamp, count, source) can still get a series
        // through events.k8s.io: the deprecated fields are only forbidden on creation.
        let kubelet = crate::convert::to_version("Event", "events.k8s.io/v1", core(json!({})))
            .expect("events");
        let mut series = kubelet.clone();
        series["series"] = json!({"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"});
        assert_eq!(
            kinds(&validate_update(
                "events.k8s.io",
                "Event",
                &series,
                &kubelet
            )),
            want(vec![])
        );
        // Through core v1 anything may change, as upstream's legacy update.
        let (old, new) = (core(json!({})), core(json!({"message": "m", "count": 2})));
        assert_eq!(
            kinds(&validate_update("", "Event", &new, &old)),
            want(vec![])
        );
        let renamed = core(
            json!({"metadata": {"name": "other", "namespace": "default", "resourceVersion": "1"}}),
        );
        assert_eq!(
            kinds(&validate_update("", "Event", &renamed, &old)),
            want(vec![("metadata.name", Invalid)])
        );
    }
}
