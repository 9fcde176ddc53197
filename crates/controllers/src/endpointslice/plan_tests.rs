use super::*;
use serde_json::{json, Value};

fn service(extra: Value) -> Service {
    let mut v = json!({"metadata": {"name": "web", "namespace": "a", "uid": "svc-uid",
        "labels": {"team": "x"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}});
    merge(&mut v, extra);
    serde_json::from_value(v).expect("service")
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A running pod on node n1 serving `http` on `port`, ready or not.
fn pod(name: &str, ip: &str, port: i32, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
    .expect("pod")
}

fn zone_of(node: &str) -> Option<Option<String>> {
    (node == "n1").then(|| Some("zone-a".to_string()))
}

fn obs(max: usize) -> Observed<'static> {
    Observed {
        node_zone: &zone_of,
        max_endpoints: max,
        trigger_time: None,
        controller_name: CONTROLLER_NAME,
    }
}

/// The slices after applying `plan` to `existing`, created ones named `new-N`.
fn apply(existing: &[EndpointSlice], plan: &Plan) -> Vec<EndpointSlice> {
    let gone = |s: &EndpointSlice| {
        plan.delete
            .iter()
            .chain(&plan.update)
            .any(|d| d.metadata.name == s.metadata.name)
    };
    let mut out: Vec<EndpointSlice> = existing.iter().filter(|s| !gone(s)).cloned().collect();
    out.extend(plan.update.iter().cloned());
    for (i, s) in plan.create.iter().enumerate() {
        let mut s = s.clone();
        s.metadata.name = Some(format!("new-{i}-{}", existing.len()));
        out.push(s);
    }
    out
}

fn addresses(slice: &EndpointSlice) -> Vec<String> {
    let mut a: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    a.sort();
    a
}

fn cond(slice: &EndpointSlice, ip: &str) -> (bool, bool, bool) {
    let e = slice
        .endpoints
        .iter()
        .find(|e| e.addresses.iter().any(|a| a == ip))
        .expect("endpoint");
    let c = e.conditions.clone().unwrap_or_default();
    (
        c.ready.unwrap_or_default(),
        c.serving.unwrap_or_default(),
        c.terminating.unwrap_or_default(),
    )
}

#[test]
fn ready_unready_and_terminating_pods_get_upstreams_conditions() {
    let mut terminating = pod("t", "10.0.0.3", 8080, true);
    terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let pods = [
        pod("r", "10.0.0.1", 8080, true),
        pod("u", "10.0.0.2", 8080, false),
        terminating,
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let cases = [
        // (publishNotReadyAddresses, (ready, serving, terminating) for r, u, t)
        (
            false,
            [
                (true, true, false),
                (false, false, false),
                (false, true, true),
            ],
        ),
        (
            true,
            [
                (true, true, false),
                (true, false, false),
                (true, true, true),
            ],
        ),
    ];
    for (publish, want) in cases {
        let svc = service(json!({"spec": {"publishNotReadyAddresses": publish}}));
        let plan = plan(&svc, &refs, &[], &obs(100));
        assert_eq!(plan.create.len(), 1, "publish={publish}");
        let slice = &plan.create[0];
        for (ip, want) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().zip(want) {
            assert_eq!(cond(slice, ip), want, "{ip} publish={publish}");
        }
        let ep = &slice.endpoints[0];
        assert_eq!(ep.node_name.as_deref(), Some("n1"));
        assert_eq!(ep.zone.as_deref(), Some("zone-a"));
        assert_eq!(
            ep.target_ref.as_ref().and_then(|t| t.kind.as_deref()),
            Some("Pod")
        );
        assert_eq!(slice.address_type, "IPv4");
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(labels["team"], "x");
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
    }
}

#[test]
fn pods_whose_named_port_resolves_differently_get_separate_slices() {
    let pods = [
        pod("a", "10.0.0.1", 8080, true),
        pod("b", "10.0.0.2", 9090, true),
        pod("c", "10.0.0.3", 8080, true),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let plan = plan(&service(json!({})), &refs, &[], &obs(100));
    let mut got: Vec<(i32, Vec<String>)> = plan
        .create
        .iter()
        .map(|s| (s.ports.as_ref().unwrap()[0].port.unwrap(), addresses(s)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (8080, vec!["10.0.0.1".to_string(), "10.0.0.3".to_string()]),
            (9090, vec!["10.0.0.2".to_string()])
        ]
    );
}

#[test]
fn slices_hold_at_most_max_endpoints_and_fill_before_creating() {
    let many: Vec<Pod> = (0..150)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                8080,
                true,
            )
        })
        .collect();
    let refs: Vec<&Pod> = many.iter().collect();
    let svc = service(json!({}));
    let first = plan(&svc, &refs, &[], &obs(100));
    let mut sizes: Vec<usize> = first.create.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100]);
    let slices = apply(&[], &first);

    // The same pods again: nothing to do.
    assert!(plan(&svc, &refs, &slices, &obs(100)).is_empty());

    // Ten more pods go into the slice with room, in place, with no new slice.
    let more: Vec<Pod> = (150..160)
        .map(|i| pod(&format!("p{i}"), &format!("10.1.0.{}", i - 149), 8080, true))
        .collect();
    let refs2: Vec<&Pod> = many.iter().chain(&more).collect();
    let second = plan(&svc, &refs2, &slices, &obs(100));
    assert!(
        second.create.is_empty() && second.delete.is_empty(),
        "{second:?}"
    );
    assert_eq!(second.update.len(), 1);
    assert_eq!(second.update[0].endpoints.len(), 60);

    // A pod that is gone leaves its slice, which is updated in place.
    let fewer: Vec<&Pod> = refs[1..].to_vec();
    let third = plan(&svc, &fewer, &slices, &obs(100));
    assert!(third.create.is_empty() && third.delete.is_empty());
    assert_eq!(third.update.len(), 1);
    assert!(!third.update[0]
        .endpoints
        .iter()
        .any(|e| e.addresses == ["10.0.0.1"]));
}

#[test]
fn no_endpoints_means_one_placeholder_kept_across_syncs() {
    let svc = service(json!({}));
    let first = plan(&svc, &[], &[], &obs(100));
    assert_eq!(first.create.len(), 1);
    assert!(first.create[0].endpoints.is_empty());
    let slices = apply(&[], &first);
    assert!(plan(&svc, &[], &slices, &obs(100)).is_empty());

    // The placeholder is rewritten, not replaced, once a pod shows up; and back again.
    let p = pod("a", "10.0.0.1", 8080, true);
    let with_pod = plan(&svc, &[&p], &slices, &obs(100));
    assert!(
        with_pod.create.is_empty() && with_pod.delete.is_empty(),
        "{with_pod:?}"
    );
    assert_eq!(with_pod.update[0].metadata.name, slices[0].metadata.name);
    let slices = apply(&slices, &with_pod);
    let empty_again = plan(&svc, &[], &slices, &obs(100));
    assert!(empty_again.create.is_empty() && empty_again.delete.is_empty());
    assert!(empty_again.update[0].endpoints.is_empty());
}

#[test]
fn address_types_follow_ip_families_then_cluster_ip() {
    let cases = [
        (
            json!({"spec": {"ipFamilies": ["IPv6", "IPv4"]}}),
            vec!["IPv4", "IPv6"],
        ),
        (
            json!({"spec": {"ipFamilies": null, "clusterIP": "fd00::10"}}),
            vec!["IPv6"],
        ),
        (
            json!({"spec": {"ipFamilies": null, "clusterIP": "10.0.0.1"}}),
            vec!["IPv4"],
        ),
        (
            json!({"spec": {"ipFamilies": null, "clusterIP": "None"}}),
            vec!["IPv4", "IPv6"],
        ),
    ];
    for (extra, want) in cases {
        let got: Vec<&str> = address_types(&service(extra.clone())).into_iter().collect();
        assert_eq!(got, want, "{extra}");
    }
}

#[test]
fn dual_stack_pods_appear_once_per_address_type() {
    let svc = service(json!({"spec": {"ipFamilies": ["IPv4", "IPv6"]}}));
    let mut p = pod("a", "10.0.0.1", 8080, true);
    if let Some(s) = p.status.as_mut() {
        s.pod_ips = Some(vec![
            k8s_openapi::api::core::v1::PodIP {
                ip: "10.0.0.1".into(),
            },
            k8s_openapi::api::core::v1::PodIP {
                ip: "fd00::1".into(),
            },
        ]);
    }
    let plan = plan(&svc, &[&p], &[], &obs(100));
    let mut got: Vec<(String, Vec<String>)> = plan
        .create
        .iter()
        .map(|s| (s.address_type.clone(), addresses(s)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("IPv4".to_string(), vec!["10.0.0.1".to_string()]),
            ("IPv6".to_string(), vec!["fd00::1".to_string()])
        ]
    );
}

#[test]
fn pods_on_unknown_nodes_wait_unless_all_addresses_are_published() {
    let mut p = pod("a", "10.0.0.1", 8080, true);
    if let Some(s) = p.spec.as_mut() {
        s.node_name = Some("ghost".into());
    }
    let hidden = plan(&service(json!({})), &[&p], &[], &obs(100));
    assert_eq!(hidden.missing_nodes, ["ghost"]);
    assert!(hidden.create[0].endpoints.is_empty());
    let shown = plan(
        &service(json!({"spec": {"publishNotReadyAddresses": true}})),
        &[&p],
        &[],
        &obs(100),
    );
    assert_eq!(addresses(&shown.create[0]), ["10.0.0.1"]);
    assert_eq!(shown.create[0].endpoints[0].zone, None);
}

#[test]
fn label_changes_on_the_service_update_slices() {
    let p = pod("a", "10.0.0.1", 8080, true);
    let svc = service(json!({}));
    let slices = apply(&[], &plan(&svc, &[&p], &[], &obs(100)));
    let relabelled = service(json!({"metadata": {"labels": {"team": "y"}}}));
    let next = plan(&relabelled, &[&p], &slices, &obs(100));
    assert_eq!(next.update.len(), 1);
    assert_eq!(
        next.update[0].metadata.labels.as_ref().unwrap()["team"],
        "y"
    );
}

#[test]
fn slices_of_another_service_with_the_same_name_are_deleted() {
    let p = pod("a", "10.0.0.1", 8080, true);
    let old = service(json!({"metadata": {"uid": "old-uid"}}));
    let slices = apply(&[], &plan(&old, &[&p], &[], &obs(100)));
    let next = plan(&service(json!({})), &[&p], &slices, &obs(100));
    assert_eq!(next.delete.len(), 1);
    assert_eq!(next.create.len(), 1);
}

#[test]
fn the_trigger_time_is_recorded_on_written_slices() {
    let p = pod("a", "10.0.0.1", 8080, true);
    let t = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let o = Observed {
        trigger_time: Some(t),
        ..obs(100)
    };
    let made = plan(&service(json!({})), &[&p], &[], &o);
    let ann = made.create[0]
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    assert_eq!(ann[TRIGGER_TIME_ANNOTATION], "2023-11-14T22:13:20Z");
}
