//! Messages are upstream's `limitranger` texts.

use serde_json::{json, Value};

use super::*;

fn limit_range(limits: Value) -> Value {
    json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})
}

fn container(name: &str, requests: Value, limits: Value) -> Value {
    json!({"name": name, "image": "i", "resources": {"requests": requests, "limits": limits}})
}

fn pod(containers: Value, init: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers, "initContainers": init}})
}

#[test]
fn defaults_fill_missing_requests_and_limits_and_say_so() {
    let lr = limit_range(json!([
        {"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "100m"}},
        {"type": "Pod", "max": {"cpu": "4"}},
    ]));
    let mut p = pod(
        json!([{"name": "c", "image": "i"}, container("full", json!({"cpu": "1"}), json!({"cpu": "2", "memory": "1Gi"}))]),
        json!([container("i", json!({"cpu": "200m"}), json!({}))]),
    );
    default_pod(&mut p, &[lr]);
    assert_eq!(
        p["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION],
        "LimitRanger plugin set: cpu request for container c; cpu, memory limit for container c; \
         cpu, memory limit for init container i"
    );
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        p["spec"]["containers"][1]["resources"],
        json!({"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}})
    );
    assert_eq!(
        p["spec"]["initContainers"][0]["resources"],
        json!({"requests": {"cpu": "200m"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
}

#[test]
fn later_limit_ranges_fill_only_what_is_still_missing() {
    let first = limit_range(json!([{"type": "Container", "defaultRequest": {"cpu": "100m"}}]));
    let second = limit_range(json!([
        {"type": "Container", "defaultRequest": {"cpu": "300m", "memory": "1Gi"}},
        {"type": "Container", "defaultRequest": {"memory": "2Gi"}},
    ]));
    let nothing = limit_range(json!([{"type": "Container", "max": {"cpu": "1"}}]));
    let mut p = pod(json!([{"name": "c"}]), json!([]));
    default_pod(&mut p, &[first, second, nothing]);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "100m", "memory": "2Gi"})
    );
    // The last limit range that set anything wrote the annotation.
    assert_eq!(
        p["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION],
        "LimitRanger plugin set: memory request for container c"
    );

    let mut untouched = pod(
        json!([container("c", json!({"cpu": "1"}), json!({}))]),
        json!([]),
    );
    let before = untouched.clone();
    default_pod(
        &mut untouched,
        &[limit_range(
            json!([{"type": "Container", "defaultRequest": {"cpu": "2"}}]),
        )],
    );
    assert_eq!(untouched, before);
}

#[test]
fn containers_are_checked_against_min_max_and_ratio() {
    let lr = |item: Value| limit_range(json!([item]));
    let c =
        |requests: Value, limits: Value| pod(json!([container("c", requests, limits)]), json!([]));
    let cases: Vec<(&str, Value, Value, Result<(), &str>)> = vec![
        (
            "within bounds",
            lr(json!({"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "4"}})),
            c(json!({"cpu": "250m"}), json!({"cpu": "1"})),
            Ok(()),
        ),
        (
            "min without request",
            lr(json!({"type": "Container", "min": {"memory": "1Mi"}})),
            c(json!({}), json!({})),
            Err("minimum memory usage per Container is 1Mi.  No request is specified"),
        ),
        (
            "min above request",
            lr(json!({"type": "Container", "min": {"cpu": "100m"}})),
            c(json!({"cpu": "50m"}), json!({})),
            Err("minimum cpu usage per Container is 100m, but request is 50m"),
        ),
        (
            "min above limit",
            lr(json!({"type": "Container", "min": {"cpu": "100m"}})),
            c(json!({"cpu": "200m"}), json!({"cpu": "50m"})),
            Err("minimum cpu usage per Container is 100m, but limit is 50m"),
        ),
        (
            "max without limit",
            lr(json!({"type": "Container", "max": {"cpu": "1"}})),
            c(json!({"cpu": "200m"}), json!({})),
            Err("maximum cpu usage per Container is 1.  No limit is specified"),
        ),
        (
            "max below limit",
            lr(json!({"type": "Container", "max": {"cpu": "1"}})),
            c(json!({}), json!({"cpu": "2"})),
            Err("maximum cpu usage per Container is 1, but limit is 2"),
        ),
        (
            "max below request",
            lr(json!({"type": "Container", "max": {"memory": "1Gi"}})),
            c(json!({"memory": "2Gi"}), json!({"memory": "1Gi"})),
            Err("maximum memory usage per Container is 1Gi, but request is 2Gi"),
        ),
        (
            "ratio without request",
            lr(json!({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}})),
            c(json!({"cpu": "0"}), json!({"cpu": "1"})),
            Err("cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"),
        ),
        (
            "ratio without limit",
            lr(json!({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}})),
            c(json!({"cpu": "1"}), json!({})),
            Err("cpu max limit to request ratio per Container is 2, but no limit is specified or limit is 0"),
        ),
        (
            "max and ratio together",
            lr(json!({"type": "Container", "max": {"cpu": "500m"}, "maxLimitRequestRatio": {"cpu": "2"}})),
            c(json!({"cpu": "250m"}), json!({"cpu": "1"})),
            Err("[maximum cpu usage per Container is 500m, but limit is 1, cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"),
        ),
        (
            "fractional ratio",
            lr(json!({"type": "Container", "maxLimitRequestRatio": {"memory": "1500m"}})),
            c(json!({"memory": "1Gi"}), json!({"memory": "2Gi"})),
            Err("memory max limit to request ratio per Container is 1500m, but provided ratio is 2.000000"),
        ),
        (
            "init containers too",
            lr(json!({"type": "Container", "max": {"cpu": "1"}})),
            pod(json!([container("c", json!({}), json!({"cpu": "1"}))]), json!([container("i", json!({}), json!({"cpu": "3"}))])),
            Err("maximum cpu usage per Container is 1, but limit is 3"),
        ),
    ];
    for (name, lr, p, want) in cases {
        assert_eq!(
            validate_pod(&p, &[lr]),
            want.map_err(str::to_string),
            "{name}"
        );
    }
}

#[test]
fn pod_limits_apply_to_the_pods_totals() {
    let lr = limit_range(
        json!([{"type": "Pod", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "200m"}}]),
    );
    let p = pod(
        json!([
            container(
                "a",
                json!({"cpu": "100m", "memory": "256Mi"}),
                json!({"cpu": "1500m", "memory": "512Mi"})
            ),
            container(
                "b",
                json!({"cpu": "100m", "memory": "256Mi"}),
                json!({"cpu": "1", "memory": "512Mi"})
            ),
        ]),
        json!([]),
    );
    assert_eq!(
        validate_pod(&p, std::slice::from_ref(&lr)),
        Err("maximum cpu usage per Pod is 2, but limit is 2500m".to_string())
    );
    // An init container larger than the containers sets the pod's total.
    let p = pod(
        json!([container(
            "a",
            json!({"cpu": "100m"}),
            json!({"cpu": "1", "memory": "512Mi"})
        )]),
        json!([container(
            "i",
            json!({"cpu": "100m"}),
            json!({"cpu": "3", "memory": "512Mi"})
        )]),
    );
    assert_eq!(
        validate_pod(&p, std::slice::from_ref(&lr)),
        Err("[minimum cpu usage per Pod is 200m, but request is 100m, maximum cpu usage per Pod is 2, but limit is 3]".to_string())
    );
    // A container without a limit leaves the total without one.
    let p = pod(
        json!([container(
            "a",
            json!({"cpu": "300m"}),
            json!({"memory": "1Gi"})
        )]),
        json!([]),
    );
    assert_eq!(
        validate_pod(&p, &[lr]),
        Err("maximum cpu usage per Pod is 2.  No limit is specified".to_string())
    );
}

#[test]
fn the_first_violated_limit_range_is_reported() {
    let loose = limit_range(json!([{"type": "Container", "max": {"cpu": "10"}}]));
    let tight = limit_range(json!([{"type": "Container", "max": {"cpu": "1"}}]));
    let tighter = limit_range(json!([{"type": "Container", "max": {"cpu": "500m"}}]));
    let p = pod(
        json!([container("c", json!({}), json!({"cpu": "2"}))]),
        json!([]),
    );
    assert_eq!(
        validate_pod(&p, &[loose, tight, tighter]),
        Err("maximum cpu usage per Container is 1, but limit is 2".to_string())
    );
    assert_eq!(validate_pod(&p, &[]), Ok(()));
}

#[test]
fn claims_are_checked_on_their_storage_request() {
    let lr = limit_range(json!([
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}},
        {"type": "Container", "max": {"cpu": "1"}},
    ]));
    let pvc = |size: Value| json!({"spec": {"resources": {"requests": size}}});
    let lrs = [lr];
    assert_eq!(validate_pvc(&pvc(json!({"storage": "5Gi"})), &lrs), Ok(()));
    assert_eq!(
        validate_pvc(&pvc(json!({"storage": "20Gi"})), &lrs),
        Err(
            "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
                .to_string()
        )
    );
    assert_eq!(
        validate_pvc(&pvc(json!({"storage": "500Mi"})), &lrs),
        Err(
            "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
                .to_string()
        )
    );
    assert_eq!(
        validate_pvc(&pvc(json!({})), &lrs),
        Err(
            "[minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified, \
             maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified]"
                .to_string()
        )
    );
}

#[test]
fn the_plugin_applies_to_pod_creates_and_resizes_and_claims() {
    let stored = json!({"metadata": {"name": "x"}});
    let deleting = json!({"metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"}});
    assert!(applies("pods", "", None));
    assert!(!applies("pods", "", Some(&stored)));
    assert!(applies("pods", "resize", Some(&stored)));
    assert!(!applies("pods", "status", None));
    assert!(applies("persistentvolumeclaims", "", Some(&stored)));
    assert!(!applies("persistentvolumeclaims", "", Some(&deleting)));
    assert!(!applies("services", "", None));
}
