//! Scenarios and expected texts follow upstream's evaluator and admission tests
//! (`pkg/quota/v1/evaluator/core/*_test.go`, `plugin/pkg/admission/resourcequota`).

use serde_json::{json, Value};

use super::resources::to_json;
use super::*;

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_default()
}

fn now() -> jiff::Timestamp {
    ts("2025-01-01T00:00:00Z")
}

/// A resource list as `name=value` pairs for compact comparisons.
fn list(l: &ResourceList) -> Vec<String> {
    l.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn container(name: &str, requests: Value, limits: Value) -> Value {
    json!({"name": name, "image": "i", "resources": {"requests": requests, "limits": limits}})
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "test"}, "spec": spec})
}

#[test]
fn pod_usage_counts_compute_resources() {
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "requests and limits",
            pod(
                json!({"containers": [container("a", json!({"cpu": "100m", "memory": "1Gi"}), json!({"cpu": "200m", "memory": "2Gi"}))]}),
            ),
            &[
                "count/pods=1",
                "cpu=100m",
                "limits.cpu=200m",
                "limits.memory=2Gi",
                "memory=1Gi",
                "pods=1",
                "requests.cpu=100m",
                "requests.memory=1Gi",
            ],
        ),
        (
            "containers sum, init containers raise to their maximum",
            pod(json!({
                "initContainers": [container("i", json!({"cpu": "2"}), json!({}))],
                "containers": [
                    container("a", json!({"cpu": "500m"}), json!({})),
                    container("b", json!({"cpu": "700m"}), json!({})),
                ],
            })),
            &["count/pods=1", "cpu=2", "pods=1", "requests.cpu=2"],
        ),
        (
            "sidecars run alongside containers and later init containers",
            pod(json!({
                "initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                    container("i", json!({"cpu": "1500m"}), json!({})),
                ],
                "containers": [container("a", json!({"cpu": "500m"}), json!({}))],
            })),
            &["count/pods=1", "cpu=2500m", "pods=1", "requests.cpu=2500m"],
        ),
        (
            "extended resources and hugepages",
            pod(json!({"containers": [container("a",
                json!({"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}),
                json!({"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}))]})),
            &[
                "count/pods=1",
                "hugepages-2Mi=4Mi",
                "pods=1",
                "requests.example.com/gpu=2",
                "requests.hugepages-2Mi=4Mi",
            ],
        ),
        (
            "overhead is charged",
            pod(
                json!({"overhead": {"cpu": "250m"}, "containers": [container("a", json!({"cpu": "1"}), json!({"cpu": "2"}))]}),
            ),
            &[
                "count/pods=1",
                "cpu=1250m",
                "limits.cpu=2250m",
                "pods=1",
                "requests.cpu=1250m",
            ],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(list(&usage_at("", "pods", &obj, now())), want, "{name}");
    }
}

#[test]
fn pods_stop_being_charged_when_done() {
    let base = pod(json!({"containers": [container("a", json!({"cpu": "1"}), json!({}))]}));
    let mut succeeded = base.clone();
    succeeded["status"] = json!({"phase": "Succeeded"});
    let mut failed = base.clone();
    failed["status"] = json!({"phase": "Failed"});
    let mut deleting = base.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2024-12-31T23:59:30Z");
    deleting["metadata"]["deletionGracePeriodSeconds"] = json!(60);
    let mut expired = deleting.clone();
    expired["metadata"]["deletionGracePeriodSeconds"] = json!(10);
    let only_count = ["count/pods=1"];
    assert_eq!(list(&usage_at("", "pods", &succeeded, now())), only_count);
    assert_eq!(list(&usage_at("", "pods", &failed, now())), only_count);
    assert_eq!(list(&usage_at("", "pods", &expired, now())), only_count);
    assert_eq!(
        list(&usage_at("", "pods", &deleting, now())),
        ["count/pods=1", "cpu=1", "pods=1", "requests.cpu=1"]
    );
}

#[test]
fn pending_resize_is_charged_at_the_larger_size() {
    let mut p =
        pod(json!({"containers": [container("a", json!({"cpu": "2"}), json!({"cpu": "2"}))]}));
    p["status"] = json!({"containerStatuses": [{"name": "a",
        "allocatedResources": {"cpu": "1"},
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "3"}}}]});
    assert_eq!(
        list(&usage_at("", "pods", &p, now())),
        [
            "count/pods=1",
            "cpu=2",
            "limits.cpu=3",
            "pods=1",
            "requests.cpu=2"
        ]
    );
    // An infeasible resize is charged at what is running.
    p["status"]["conditions"] =
        json!([{"type": "PodResizePending", "status": "True", "reason": "Infeasible"}]);
    assert_eq!(
        list(&usage_at("", "pods", &p, now())),
        [
            "count/pods=1",
            "cpu=1",
            "limits.cpu=3",
            "pods=1",
            "requests.cpu=1"
        ]
    );
}

#[test]
fn other_resources_have_their_own_usage() {
    let cases: Vec<(&str, &str, Value, &[&str])> = vec![
        (
            "",
            "services",
            json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}),
            &[
                "count/services=1",
                "services=1",
                "services.loadbalancers=0",
                "services.nodeports=0",
            ],
        ),
        (
            "",
            "services",
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}),
            &[
                "count/services=1",
                "services=1",
                "services.loadbalancers=0",
                "services.nodeports=2",
            ],
        ),
        (
            "",
            "services",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 81}]}}),
            &[
                "count/services=1",
                "services=1",
                "services.loadbalancers=1",
                "services.nodeports=2",
            ],
        ),
        (
            "",
            "services",
            json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                            "ports": [{"port": 80, "nodePort": 30001}, {"port": 81}]}}),
            &[
                "count/services=1",
                "services=1",
                "services.loadbalancers=1",
                "services.nodeports=1",
            ],
        ),
        (
            "",
            "persistentvolumeclaims",
            json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "10Gi"}}}}),
            &[
                "count/persistentvolumeclaims=1",
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1",
                "gold.storageclass.storage.k8s.io/requests.storage=10Gi",
                "persistentvolumeclaims=1",
                "requests.storage=10Gi",
            ],
        ),
        (
            "",
            "persistentvolumeclaims",
            json!({"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
                   "spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}},
                   "status": {"allocatedResources": {"storage": "2Gi"}}}),
            &[
                "beta.storageclass.storage.k8s.io/persistentvolumeclaims=1",
                "beta.storageclass.storage.k8s.io/requests.storage=2Gi",
                "count/persistentvolumeclaims=1",
                "persistentvolumeclaims=1",
                "requests.storage=2Gi",
            ],
        ),
        (
            "",
            "persistentvolumeclaims",
            json!({"spec": {"resources": {"requests": {"storage": "1500m"}}}}),
            &[
                "count/persistentvolumeclaims=1",
                "persistentvolumeclaims=1",
                "requests.storage=2",
            ],
        ),
        (
            "",
            "configmaps",
            json!({}),
            &["configmaps=1", "count/configmaps=1"],
        ),
        ("", "secrets", json!({}), &["count/secrets=1", "secrets=1"]),
        (
            "apps",
            "deployments",
            json!({}),
            &["count/deployments.apps=1"],
        ),
        ("", "endpoints", json!({}), &["count/endpoints=1"]),
    ];
    for (group, resource, obj, want) in cases {
        assert_eq!(
            list(&usage_at(group, resource, &obj, now())),
            want,
            "{group}/{resource} {obj}"
        );
    }
}

fn with_spec(spec: Value) -> Value {
    json!({"spec": spec})
}

#[test]
fn pods_match_quota_scopes() {
    let best_effort = pod(json!({"containers": [{"name": "a"}]}));
    let burstable = pod(json!({"containers": [container("a", json!({"cpu": "1"}), json!({}))]}));
    let terminating = pod(json!({"activeDeadlineSeconds": 30, "containers": [{"name": "a"}]}));
    let high = pod(json!({"priorityClassName": "high", "containers": [{"name": "a"}]}));
    let cross_ns = pod(
        json!({"containers": [{"name": "a"}], "affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {
            "topologyKey": "k", "namespaceSelector": {}}}]}}}),
    );
    let selector = |op: &str, values: &[&str]| {
        with_spec(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": op, "values": values}]}}))
    };
    let cases: Vec<(&str, Value, &Value, bool)> = vec![
        ("no scopes", with_spec(json!({})), &burstable, true),
        (
            "BestEffort",
            with_spec(json!({"scopes": ["BestEffort"]})),
            &best_effort,
            true,
        ),
        (
            "BestEffort burstable",
            with_spec(json!({"scopes": ["BestEffort"]})),
            &burstable,
            false,
        ),
        (
            "NotBestEffort",
            with_spec(json!({"scopes": ["NotBestEffort"]})),
            &burstable,
            true,
        ),
        (
            "Terminating",
            with_spec(json!({"scopes": ["Terminating"]})),
            &terminating,
            true,
        ),
        (
            "Terminating long-running",
            with_spec(json!({"scopes": ["Terminating"]})),
            &best_effort,
            false,
        ),
        (
            "NotTerminating",
            with_spec(json!({"scopes": ["NotTerminating"]})),
            &best_effort,
            true,
        ),
        (
            "both scopes",
            with_spec(json!({"scopes": ["Terminating", "BestEffort"]})),
            &terminating,
            true,
        ),
        ("In", selector("In", &["high", "mid"]), &high, true),
        ("In other", selector("In", &["low"]), &high, false),
        (
            "In without class",
            selector("In", &["high"]),
            &best_effort,
            false,
        ),
        ("NotIn", selector("NotIn", &["low"]), &high, true),
        (
            "NotIn without class",
            selector("NotIn", &["low"]),
            &best_effort,
            true,
        ),
        ("Exists", selector("Exists", &[]), &high, true),
        (
            "Exists without class",
            selector("Exists", &[]),
            &best_effort,
            false,
        ),
        (
            "DoesNotExist",
            selector("DoesNotExist", &[]),
            &best_effort,
            true,
        ),
        (
            "cross-namespace affinity",
            with_spec(json!({"scopes": ["CrossNamespacePodAffinity"]})),
            &cross_ns,
            true,
        ),
        (
            "no cross-namespace affinity",
            with_spec(json!({"scopes": ["CrossNamespacePodAffinity"]})),
            &high,
            false,
        ),
    ];
    for (name, quota_spec, p, want) in cases {
        assert_eq!(matches_scopes(&quota_spec["spec"], p), want, "{name}");
    }
}

fn quota(name: &str, hard: Value, used: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "test"},
           "spec": {"hard": hard},
           "status": {"hard": hard, "used": used}})
}

fn parse_list(pairs: &[(&str, &str)]) -> ResourceList {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), crate::quantity::Quantity::parse(v).ok()?)))
        .collect()
}

#[test]
fn check_charges_or_refuses_with_upstream_texts() {
    let q = quota(
        "quota",
        json!({"cpu": "3", "memory": "100Gi", "pods": "5"}),
        json!({"cpu": "1", "memory": "50Gi", "pods": "3"}),
    );
    let used = check(
        &q,
        &parse_list(&[
            ("cpu", "100m"),
            ("memory", "2Gi"),
            ("pods", "1"),
            ("count/pods", "1"),
        ]),
    );
    assert_eq!(
        used.map(|u| list(&u)),
        Ok(vec![
            "cpu=1100m".into(),
            "memory=52Gi".into(),
            "pods=4".into()
        ])
    );

    let q = quota(
        "quota",
        json!({"requests.memory": "1Gi"}),
        json!({"requests.memory": "600Mi"}),
    );
    assert_eq!(
        check(&q, &parse_list(&[("requests.memory", "700Mi")])).map_err(|e| e.to_string()),
        Err("exceeded quota: quota, requested: requests.memory=700Mi, used: requests.memory=600Mi, limited: requests.memory=1Gi".to_string())
    );
    let q = quota(
        "q1",
        json!({"pods": "1", "services": "2"}),
        json!({"pods": "1", "services": "0"}),
    );
    assert_eq!(
        check(&q, &parse_list(&[("pods", "1")])).map_err(|e| e.to_string()),
        Err("exceeded quota: q1, requested: pods=1, used: pods=1, limited: pods=1".to_string())
    );
    let q = quota("q1", json!({"pods": "1"}), json!({}));
    assert_eq!(
        check(&q, &parse_list(&[("pods", "1")])).map_err(|e| e.to_string()),
        Err("status unknown for quota: q1, resources: pods".to_string())
    );
}

fn create<'a>(group: &'a str, resource: &'a str, object: &'a Value) -> QuotaRequest<'a> {
    QuotaRequest {
        group,
        resource,
        subresource: "",
        operation: Operation::Create,
        object,
        old_object: None,
        now: now(),
    }
}

fn update<'a>(
    group: &'a str,
    resource: &'a str,
    object: &'a Value,
    old: &'a Value,
) -> QuotaRequest<'a> {
    QuotaRequest {
        operation: Operation::Update,
        old_object: Some(old),
        ..create(group, resource, object)
    }
}

fn used_after(r: Result<Vec<QuotaUpdate>, QuotaError>) -> Vec<Vec<String>> {
    match r {
        Ok(updates) => updates.iter().map(|u| list(&u.used)).collect(),
        Err(e) => vec![vec![e.to_string()]],
    }
}

#[test]
fn pods_missing_tracked_compute_resources_are_refused() {
    let q = quota(
        "mem-cpu-demo",
        json!({"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"}),
        json!({"requests.cpu": "0", "requests.memory": "0", "limits.cpu": "0", "limits.memory": "0"}),
    );
    let p = pod(json!({"containers": [{"name": "quota-mem-cpu-demo-2-ctr", "image": "nginx"}]}));
    assert_eq!(
        check_request(std::slice::from_ref(&q), &create("", "pods", &p)).map_err(|e| e.to_string()),
        Err("failed quota: mem-cpu-demo: must specify limits.cpu for: quota-mem-cpu-demo-2-ctr; \
             limits.memory for: quota-mem-cpu-demo-2-ctr; requests.cpu for: quota-mem-cpu-demo-2-ctr; \
             requests.memory for: quota-mem-cpu-demo-2-ctr".to_string())
    );
    let p = pod(json!({
        "initContainers": [container("init", json!({"cpu": "1", "memory": "1Mi"}), json!({"memory": "1Mi"}))],
        "containers": [container("c", json!({"cpu": "1", "memory": "1Mi"}), json!({"cpu": "1", "memory": "1Mi"})),
                       container("b", json!({"memory": "1Mi"}), json!({"cpu": "1", "memory": "1Mi"}))],
    }));
    assert_eq!(
        check_request(&[q], &create("", "pods", &p)).map_err(|e| e.to_string()),
        Err(
            "failed quota: mem-cpu-demo: must specify limits.cpu for: init; requests.cpu for: b"
                .to_string()
        )
    );
}

#[test]
fn creates_are_charged_to_matching_quotas() {
    let p = pod(
        json!({"containers": [container("c", json!({"cpu": "100m", "memory": "2Gi"}), json!({}))]}),
    );
    let below = quota(
        "quota",
        json!({"cpu": "3", "memory": "100Gi", "pods": "5"}),
        json!({"cpu": "1", "memory": "50Gi", "pods": "3"}),
    );
    assert_eq!(
        used_after(check_request(&[below], &create("", "pods", &p))),
        [["cpu=1100m", "memory=52Gi", "pods=4"]]
    );

    // Only the quota whose scope the pod is in is charged.
    let mut terminating = quota("terminating", json!({"pods": "5"}), json!({"pods": "0"}));
    terminating["spec"]["scopes"] = json!(["Terminating"]);
    let mut long_running = quota("long-running", json!({"pods": "5"}), json!({"pods": "1"}));
    long_running["spec"]["scopes"] = json!(["NotTerminating"]);
    let mut job_pod = p.clone();
    job_pod["spec"]["activeDeadlineSeconds"] = json!(60);
    let got = check_request(&[long_running, terminating], &create("", "pods", &job_pod));
    assert_eq!(
        got.as_ref().map(|u| u
            .iter()
            .map(|u| (u.index, u.name.clone()))
            .collect::<Vec<_>>()),
        Ok(vec![(1, "terminating".to_string())])
    );

    // Scoped quotas never match other resources.
    let mut scoped = quota(
        "scoped",
        json!({"count/configmaps": "1"}),
        json!({"count/configmaps": "1"}),
    );
    scoped["spec"]["scopes"] = json!(["BestEffort"]);
    assert_eq!(
        check_request(&[scoped], &create("", "configmaps", &json!({}))),
        Ok(vec![])
    );

    // Generic object counts.
    let full = quota(
        "quota",
        json!({"count/configmaps": "1"}),
        json!({"count/configmaps": "1"}),
    );
    assert_eq!(
        check_request(&[full], &create("", "configmaps", &json!({}))).map_err(|e| e.to_string()),
        Err("exceeded quota: quota, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1".to_string())
    );
    let deploy = quota(
        "quota",
        json!({"count/deployments.apps": "2"}),
        json!({"count/deployments.apps": "1"}),
    );
    assert_eq!(
        used_after(check_request(
            &[deploy],
            &create("apps", "deployments", &json!({}))
        )),
        [["count/deployments.apps=2"]]
    );
}

#[test]
fn unhandled_requests_change_nothing() {
    let full = quota(
        "quota",
        json!({"pods": "1", "count/events": "0"}),
        json!({"pods": "1", "count/events": "0"}),
    );
    let p = pod(json!({"containers": [{"name": "c"}]}));
    let quotas = [full];
    for req in [
        QuotaRequest {
            subresource: "status",
            ..create("", "pods", &p)
        },
        QuotaRequest {
            operation: Operation::Update,
            old_object: Some(&p),
            ..create("", "pods", &p)
        },
        create("", "events", &p),
        QuotaRequest {
            subresource: "scale",
            ..create("apps", "deployments", &p)
        },
    ] {
        assert_eq!(check_request(&quotas, &req), Ok(vec![]), "{req:?}");
    }
}

#[test]
fn updates_are_charged_their_growth() {
    let svc_quota = || {
        quota(
            "quota",
            json!({"services": "10", "services.loadbalancers": "10", "services.nodeports": "10"}),
            json!({"services": "1", "services.loadbalancers": "1", "services.nodeports": "0"}),
        )
    };
    let old = json!({"metadata": {"name": "service", "resourceVersion": "1"}, "spec": {"type": "LoadBalancer"}});
    let new = json!({"metadata": {"name": "service"}, "spec": {"type": "NodePort", "ports": [{"port": 1234}]}});
    assert_eq!(
        used_after(check_request(
            &[svc_quota()],
            &update("", "services", &new, &old)
        )),
        [[
            "services=1",
            "services.loadbalancers=1",
            "services.nodeports=1"
        ]]
    );
    // An old object that was never stored makes the update a create.
    let unstored = json!({"metadata": {"name": "service", "resourceVersion": ""}, "spec": {"type": "LoadBalancer"}});
    assert_eq!(
        used_after(check_request(
            &[svc_quota()],
            &update("", "services", &new, &unstored)
        )),
        [[
            "services=2",
            "services.loadbalancers=1",
            "services.nodeports=1"
        ]]
    );
    assert_eq!(
        check_request(
            &[svc_quota()],
            &QuotaRequest {
                old_object: None,
                ..update("", "services", &new, &old)
            }
        )
        .map_err(|e| e.to_string()),
        Err("unable to get previous usage since prior version of object was not found".to_string())
    );

    let pvc_quota = quota(
        "quota",
        json!({"persistentvolumeclaims": "3", "requests.storage": "100Gi"}),
        json!({"persistentvolumeclaims": "1", "requests.storage": "10Gi"}),
    );
    let pvc = |size: &str, rv: &str| {
        json!({"metadata": {"name": "pvc", "resourceVersion": rv},
                                           "spec": {"resources": {"requests": {"storage": size}}}})
    };
    let (old, bigger, smaller) = (pvc("10Gi", "1"), pvc("15Gi", ""), pvc("5Gi", ""));
    let quotas = [pvc_quota];
    assert_eq!(
        used_after(check_request(
            &quotas,
            &update("", "persistentvolumeclaims", &bigger, &old)
        )),
        [["persistentvolumeclaims=1", "requests.storage=15Gi"]]
    );
    assert_eq!(
        check_request(
            &quotas,
            &update("", "persistentvolumeclaims", &smaller, &old)
        ),
        Ok(vec![])
    );
    // Status writes record usage even over the limit.
    let huge = pvc("200Gi", "");
    let status = QuotaRequest {
        subresource: "status",
        ..update("", "persistentvolumeclaims", &huge, &old)
    };
    assert_eq!(
        used_after(check_request(&quotas, &status)),
        [["persistentvolumeclaims=1", "requests.storage=200Gi"]]
    );
}

#[test]
fn status_unknown_names_every_tracked_resource() {
    let q = quota(
        "q1",
        json!({"pods": "5", "requests.cpu": "1", "services": "1"}),
        json!({"pods": "0"}),
    );
    let p = pod(json!({"containers": [container("c", json!({"cpu": "100m"}), json!({}))]}));
    assert_eq!(
        check_request(&[q], &create("", "pods", &p)).map_err(|e| e.to_string()),
        Err("status unknown for quota: q1, resources: pods,requests.cpu".to_string())
    );
}

#[test]
fn the_controller_recounts_tracked_resources() {
    let mut q = quota(
        "q",
        json!({"pods": "10", "count/pods": "10", "requests.cpu": "10", "count/deployments.apps": "5",
               "services.nodeports": "3", "example.com/unknown": "1"}),
        json!({"pods": "7", "example.com/unknown": "1", "secrets": "4"}),
    );
    q["status"]["hard"] = json!({});
    let running = pod(json!({"containers": [container("c", json!({"cpu": "500m"}), json!({}))]}));
    let mut done = running.clone();
    done["status"] = json!({"phase": "Succeeded"});
    let deployment = json!({});
    let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
    let objects = vec![
        ("", "pods", &running),
        ("", "pods", &running),
        ("", "pods", &done),
        ("apps", "deployments", &deployment),
        ("", "services", &svc),
    ];
    let used = compute_used_at(&q, objects.clone(), now());
    assert_eq!(
        list(&used),
        [
            "count/deployments.apps=1",
            "count/pods=3",
            "example.com/unknown=1",
            "pods=2",
            "requests.cpu=1",
            "services.nodeports=2"
        ]
    );
    assert_eq!(to_json(&used)["requests.cpu"], json!("1"));

    // A scoped quota counts only the pods in its scopes, and nothing else.
    q["spec"]["scopes"] = json!(["NotBestEffort"]);
    let used = compute_used_at(&q, objects, now());
    assert_eq!(
        list(&used),
        [
            "count/deployments.apps=0",
            "count/pods=3",
            "example.com/unknown=1",
            "pods=2",
            "requests.cpu=1",
            "services.nodeports=0"
        ]
    );
}

#[test]
fn matching_resources_follow_each_evaluator() {
    let names = [
        "pods",
        "requests.cpu",
        "requests.example.com/gpu",
        "requests.hugepages-2Mi",
        "services",
        "count/pods",
        "gold.storageclass.storage.k8s.io/requests.storage",
        "requests.storage",
        "configmaps",
        "count/jobs.batch",
    ];
    assert_eq!(
        matching_resources("", "pods", &names),
        [
            "count/pods",
            "pods",
            "requests.cpu",
            "requests.example.com/gpu",
            "requests.hugepages-2Mi"
        ]
    );
    assert_eq!(matching_resources("", "services", &names), ["services"]);
    assert_eq!(
        matching_resources("", "persistentvolumeclaims", &names),
        [
            "gold.storageclass.storage.k8s.io/requests.storage",
            "requests.storage"
        ]
    );
    assert_eq!(matching_resources("", "configmaps", &names), ["configmaps"]);
    assert_eq!(
        matching_resources("batch", "jobs", &names),
        ["count/jobs.batch"]
    );
    assert!(handles("", "pods", "resize", Operation::Update));
    assert!(!handles("", "pods", "", Operation::Update));
    assert!(ignored_resource(
        "authorization.k8s.io",
        "subjectaccessreviews"
    ));
    assert_eq!(
        object_count_name("apps", "deployments"),
        "count/deployments.apps"
    );
}
