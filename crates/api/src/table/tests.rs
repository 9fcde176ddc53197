//! Table-driven tests of the columns and cells, against what upstream's printers produce.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::{columns, human_duration, row, row_conditions};
use crate::catalogue::RESOURCES;

pub(super) fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// Creation ten minutes before [`now`].
pub(super) fn meta(name: &str) -> Value {
    json!({"name": name, "creationTimestamp": "2024-05-01T11:50:00Z"})
}

#[test]
fn human_duration_matches_upstream_rounding() {
    let cases = [
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 30 * 60 + 59, "3h30m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (51 * 3600, "2d3h"),
        (7 * 86400, "7d"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
    }
}

#[test]
fn ages_handle_future_and_missing_timestamps() {
    let cases = [
        (
            json!({"metadata": {"name": "a", "creationTimestamp": "2024-05-01T12:00:01Z"}}),
            "0s",
        ),
        (
            json!({"metadata": {"name": "a", "creationTimestamp": "2024-05-01T12:00:05Z"}}),
            "<invalid>",
        ),
        (json!({"metadata": {"name": "a"}}), "<unknown>"),
    ];
    for (obj, want) in cases {
        assert_eq!(row("", "Namespace", &obj, now())[2], json!(want));
    }
}

#[test]
fn every_served_kind_has_cells_aligned_with_its_columns() {
    let objects = [
        json!({}),
        json!({"metadata": meta("x"), "spec": {}, "status": {}}),
    ];
    for r in RESOURCES {
        let cols = columns(r.group, r.kind);
        assert!(
            cols.iter().any(|c| c.name == "Name"),
            "{} has no Name column",
            r.kind
        );
        for obj in &objects {
            assert_eq!(
                row(r.group, r.kind, obj, now()).len(),
                cols.len(),
                "{}/{}",
                r.group,
                r.kind
            );
        }
    }
}

#[test]
fn kinds_without_printers_use_the_default_table() {
    for (group, kind) in [
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("", "LimitRange"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        let cols = columns(group, kind);
        let names: Vec<_> = cols.iter().map(|c| (c.name, c.type_, c.format)).collect();
        assert_eq!(
            names,
            [("Name", "string", "name"), ("Created At", "date", "")],
            "{kind}"
        );
        assert_eq!(
            row(group, kind, &json!({"metadata": meta("r")}), now()),
            [json!("r"), json!("2024-05-01T11:50:00Z")]
        );
    }
}

/// A kind and the (name, priority) of each of its columns.
type ColumnCase<'a> = (&'a str, &'a str, Vec<(&'a str, i32)>);

fn names_and_priorities(group: &str, kind: &str) -> Vec<(&'static str, i32)> {
    columns(group, kind)
        .iter()
        .map(|c| (c.name, c.priority))
        .collect()
}

#[test]
fn column_names_and_priorities_match_upstream() {
    let cases: Vec<ColumnCase> = vec![
        (
            "",
            "Pod",
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ],
        ),
        (
            "",
            "Service",
            vec![
                ("Name", 0),
                ("Type", 0),
                ("Cluster-IP", 0),
                ("External-IP", 0),
                ("Port(s)", 0),
                ("Age", 0),
                ("Selector", 1),
            ],
        ),
        (
            "apps",
            "Deployment",
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
        ),
        (
            "batch",
            "Job",
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Completions", 0),
                ("Duration", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
        ),
        (
            "batch",
            "CronJob",
            vec![
                ("Name", 0),
                ("Schedule", 0),
                ("Timezone", 0),
                ("Suspend", 0),
                ("Active", 0),
                ("Last Schedule", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
        ),
        (
            "",
            "Event",
            vec![
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ],
        ),
        (
            "",
            "Node",
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1),
            ],
        ),
        (
            "",
            "ServiceAccount",
            vec![("Name", 0), ("Secrets", 0), ("Age", 0)],
        ),
    ];
    for (group, kind, want) in cases {
        assert_eq!(names_and_priorities(group, kind), want, "{kind}");
    }
    let pod = columns("", "Pod");
    assert_eq!((pod[0].type_, pod[0].format), ("string", "name"));
    assert_eq!(pod[3].type_, "string");
    assert!(pod[0]
        .description
        .starts_with("Name must be unique within a namespace."));
}

#[test]
fn rows_match_upstream_printers() {
    let cases: Vec<(&str, &str, Value, Vec<Value>)> = vec![
        (
            "",
            "Service",
            json!({"metadata": meta("old"), "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.7",
                "ports": [{"port": 53, "protocol": "UDP"}]}}),
            vec![
                json!("old"),
                json!("ClusterIP"),
                json!("10.0.0.7"),
                json!("<none>"),
                json!("53/UDP"),
                json!("10m"),
                json!("<none>"),
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("web"), "spec": {"type": "NodePort",
            "clusterIPs": ["10.96.0.10"], "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30001, "protocol": "TCP"}]}}),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP,443:30001/TCP"),
                json!("10m"),
                json!("a=1,b=2"),
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.1"],
            "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}}),
            vec![
                json!("lb"),
                json!("LoadBalancer"),
                json!("10.0.0.1"),
                json!("<pending>"),
                json!("80:31000/TCP"),
                json!("10m"),
                json!("<none>"),
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.5.5.5"}, {"hostname": "a.example.com"}, {"ip": "1.1.1.1"}]}}}),
            vec![
                json!("lb"),
                json!("LoadBalancer"),
                json!("<none>"),
                json!("1.1.1.1,5.5.5.5,a.example.com,9.9.9.9"),
                json!("<none>"),
                json!("10m"),
                json!("<none>"),
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
            vec![
                json!("ext"),
                json!("ExternalName"),
                json!("<none>"),
                json!("db.example.com"),
                json!("<none>"),
                json!("10m"),
                json!("<none>"),
            ],
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": meta("d"), "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
            vec![
                json!("d"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("10m"),
                json!("web,log"),
                json!("nginx,busybox"),
                json!("app=web,tier in (a,b)"),
            ],
        ),
        (
            "apps",
            "ReplicaSet",
            json!({"metadata": meta("rs"), "spec": {"replicas": 1, "selector": {}}}),
            vec![
                json!("rs"),
                json!(1),
                json!(0),
                json!(0),
                json!("10m"),
                json!(""),
                json!(""),
                json!("<none>"),
            ],
        ),
        (
            "apps",
            "StatefulSet",
            json!({"metadata": meta("s"), "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}),
            vec![json!("s"), json!("1/3"), json!("10m"), json!(""), json!("")],
        ),
        (
            "apps",
            "DaemonSet",
            json!({"metadata": meta("ds"), "spec": {"selector": {"matchLabels": {"k": "v"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                "updatedNumberScheduled": 2, "numberAvailable": 1}}),
            vec![
                json!("ds"),
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux"),
                json!("10m"),
                json!("c"),
                json!("i"),
                json!("k=v"),
            ],
        ),
        (
            "",
            "Node",
            json!({"metadata": {"name": "n1", "creationTimestamp": "2024-04-29T09:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian", "kernelVersion": "6.1",
                    "containerRuntimeVersion": "rkube://0.1"}}}),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("2d3h"),
                json!("v1.33.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("rkube://0.1"),
            ],
        ),
        (
            "",
            "Node",
            json!({"metadata": meta("n2")}),
            vec![
                json!("n2"),
                json!("Unknown"),
                json!("<none>"),
                json!("10m"),
                json!(""),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>"),
            ],
        ),
        (
            "",
            "Namespace",
            json!({"metadata": meta("default"), "status": {"phase": "Active"}}),
            vec![json!("default"), json!("Active"), json!("10m")],
        ),
        (
            "",
            "ConfigMap",
            json!({"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
            vec![json!("c"), json!(3), json!("10m")],
        ),
        (
            "",
            "Secret",
            json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "YQ=="}}),
            vec![json!("s"), json!("Opaque"), json!(1), json!("10m")],
        ),
        (
            "",
            "ServiceAccount",
            json!({"metadata": meta("default")}),
            vec![json!("default"), json!(0), json!("10m")],
        ),
        (
            "",
            "Endpoints",
            json!({"metadata": meta("e"), "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}),
            vec![
                json!("e"),
                json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."),
                json!("10m"),
            ],
        ),
        (
            "",
            "Endpoints",
            json!({"metadata": meta("e")}),
            vec![json!("e"), json!("<none>"), json!("10m")],
        ),
        (
            "batch",
            "Job",
            json!({"metadata": meta("j"), "spec": {"completions": 3, "selector": {"matchLabels": {"job": "j"}}},
            "status": {"succeeded": 3, "startTime": "2024-05-01T11:50:00Z", "completionTime": "2024-05-01T11:52:05Z",
                "conditions": [{"type": "Complete", "status": "True"}]}}),
            vec![
                json!("j"),
                json!("Complete"),
                json!("3/3"),
                json!("2m5s"),
                json!("10m"),
                json!(""),
                json!(""),
                json!("job=j"),
            ],
        ),
        (
            "batch",
            "Job",
            json!({"metadata": meta("j"), "spec": {"parallelism": 2},
            "status": {"startTime": "2024-05-01T11:59:30Z"}}),
            vec![
                json!("j"),
                json!("Running"),
                json!("0/1 of 2"),
                json!("30s"),
                json!("10m"),
                json!(""),
                json!(""),
                json!("<none>"),
            ],
        ),
        (
            "batch",
            "CronJob",
            json!({"metadata": meta("cj"), "spec": {"schedule": "*/5 * * * *", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "x"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}}),
            vec![
                json!("cj"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("10m"),
                json!("c"),
                json!("busybox"),
                json!("<none>"),
            ],
        ),
        (
            "",
            "PersistentVolume",
            json!({"metadata": meta("pv"), "spec": {"capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "ns", "name": "data"}, "storageClassName": "fast", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}}),
            vec![
                json!("pv"),
                json!("5Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("ns/data"),
                json!("fast"),
                json!("<unset>"),
                json!(""),
                json!("10m"),
                json!("Filesystem"),
            ],
        ),
        (
            "",
            "PersistentVolumeClaim",
            json!({"metadata": meta("data"), "spec": {"volumeName": "pv",
            "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"},
            "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pv"),
                json!("5Gi"),
                json!("RWO"),
                json!("fast"),
                json!("<unset>"),
                json!("10m"),
                json!("<unset>"),
            ],
        ),
        (
            "",
            "ResourceQuota",
            json!({"metadata": meta("q"), "status": {
            "hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "2Gi"},
            "used": {"requests.cpu": "500m", "pods": "3"}}}),
            vec![
                json!("q"),
                json!("pods: 3/10, requests.cpu: 500m/2"),
                json!("limits.memory: 0/2Gi"),
                json!("10m"),
            ],
        ),
        (
            "",
            "Event",
            json!({"metadata": meta("p.17a"), "involvedObject": {"kind": "Pod", "name": "p",
            "fieldPath": "spec.containers{a}"}, "reason": "Pulled", "type": "Normal", "message": " pulled \n",
            "source": {"component": "kubelet", "host": "n1"}, "count": 2,
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:59:00Z"}),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/p"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("pulled"),
                json!("60m"),
                json!(2),
                json!("p.17a"),
            ],
        ),
        (
            "events.k8s.io",
            "Event",
            json!({"metadata": meta("e"), "regarding": {"kind": "Node", "name": "n1"},
            "reason": "Starting", "type": "Normal", "note": "started", "eventTime": "2024-05-01T11:58:00.000000Z",
            "reportingController": "kubelet", "reportingInstance": "n1"}),
            vec![
                json!("2m"),
                json!("Normal"),
                json!("Starting"),
                json!("node/n1"),
                json!(""),
                json!("kubelet, n1"),
                json!("started"),
                json!("2m"),
                json!(1),
                json!("e"),
            ],
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v2", "metadata": meta("h"),
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]}}),
            vec![
                json!("h"),
                json!("Deployment/web"),
                json!("cpu: 45%/80%, memory: <unknown>/100Mi + 1 more..."),
                json!("1"),
                json!(5),
                json!(2),
                json!("10m"),
            ],
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v1", "metadata": meta("h"),
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 50}}),
            vec![
                json!("h"),
                json!("Deployment/web"),
                json!("cpu: <unknown>/50%"),
                json!("<unset>"),
                json!(3),
                json!(0),
                json!("10m"),
            ],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": meta("pdb"), "spec": {"minAvailable": "50%"},
            "status": {"disruptionsAllowed": 1}}),
            vec![
                json!("pdb"),
                json!("50%"),
                json!("N/A"),
                json!(1),
                json!("10m"),
            ],
        ),
        (
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": meta("i"), "spec": {"ingressClassName": "nginx",
            "rules": [{"host": "a.com"}, {"host": "b.com"}, {"host": "c.com"}, {}, {"host": "e.com"}],
            "tls": [{"hosts": ["a.com"]}]}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
            vec![
                json!("i"),
                json!("nginx"),
                json!("a.com,b.com,c.com + 2 more..."),
                json!("1.2.3.4"),
                json!("80, 443"),
                json!("10m"),
            ],
        ),
        (
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": meta("i"), "spec": {"rules": [{}]}}),
            vec![
                json!("i"),
                json!("<none>"),
                json!("*"),
                json!(""),
                json!("80"),
                json!("10m"),
            ],
        ),
        (
            "networking.k8s.io",
            "IngressClass",
            json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}),
            vec![
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p"),
                json!("10m"),
            ],
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"metadata": meta("np"), "spec": {"podSelector": {}}}),
            vec![json!("np"), json!("<none>"), json!("10m")],
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": meta("es"), "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "x"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]}),
            vec![
                json!("es"),
                json!("IPv4"),
                json!("80,x,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
                json!("10m"),
            ],
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": meta("es"), "addressType": "IPv4"}),
            vec![
                json!("es"),
                json!("IPv4"),
                json!("<unset>"),
                json!("<unset>"),
                json!("10m"),
            ],
        ),
        (
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": meta("l"), "spec": {"holderIdentity": "n1"}}),
            vec![json!("l"), json!("n1"), json!("10m")],
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": meta("high"), "value": 1000, "globalDefault": true,
            "preemptionPolicy": "PreemptLowerPriority"}),
            vec![
                json!("high"),
                json!(1000),
                json!(true),
                json!("10m"),
                json!("PreemptLowerPriority"),
            ],
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            json!({"metadata": {"name": "std", "creationTimestamp": "2024-05-01T11:50:00Z",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path"}),
            vec![
                json!("std (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("Immediate"),
                json!(false),
                json!("10m"),
            ],
        ),
        (
            "storage.k8s.io",
            "CSIDriver",
            json!({"metadata": meta("d"), "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"],
            "tokenRequests": [{"audience": "a"}, {"audience": "b"}]}}),
            vec![
                json!("d"),
                json!(true),
                json!(false),
                json!(false),
                json!("a,b"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("10m"),
            ],
        ),
        (
            "storage.k8s.io",
            "CSINode",
            json!({"metadata": meta("n"), "spec": {"drivers": [{"name": "d"}]}}),
            vec![json!("n"), json!(1), json!("10m")],
        ),
        (
            "storage.k8s.io",
            "VolumeAttachment",
            json!({"metadata": meta("va"), "spec": {"attacher": "d",
            "source": {"persistentVolumeName": "pv"}, "nodeName": "n1"}, "status": {"attached": true}}),
            vec![
                json!("va"),
                json!("d"),
                json!("pv"),
                json!("n1"),
                json!(true),
                json!("10m"),
            ],
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": meta("rb"), "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u1"}, {"kind": "User", "name": "u2"}, {"kind": "Group", "name": "g"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}),
            vec![
                json!("rb"),
                json!("Role/r"),
                json!("10m"),
                json!("u1, u2"),
                json!("g"),
                json!("ns/sa"),
            ],
        ),
        (
            "apps",
            "ControllerRevision",
            json!({"metadata": {"name": "web-5d8", "creationTimestamp": "2024-05-01T11:50:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]},
            "revision": 3}),
            vec![
                json!("web-5d8"),
                json!("statefulset.apps/web"),
                json!(3),
                json!("10m"),
            ],
        ),
        (
            "",
            "ReplicationController",
            json!({"metadata": meta("rc"), "spec": {"replicas": 2, "selector": {"app": "x"},
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 2, "readyReplicas": 1}}),
            vec![
                json!("rc"),
                json!(2),
                json!(2),
                json!(1),
                json!("10m"),
                json!("c"),
                json!("i"),
                json!("app=x"),
            ],
        ),
        (
            "",
            "PodTemplate",
            json!({"metadata": meta("pt"), "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
            vec![json!("pt"), json!("c"), json!("i"), json!("a=b")],
        ),
    ];
    for (group, kind, obj, want) in cases {
        assert_eq!(row(group, kind, &obj, now()), want, "{group}/{kind}: {obj}");
    }
}

#[test]
fn column_json_has_every_field() {
    let c = &columns("", "Pod")[5];
    assert_eq!(
        c.to_json(),
        json!({"name": "IP", "type": "string", "format": "", "description": c.description, "priority": 1})
    );
}

#[test]
fn finished_pods_carry_a_completed_row_condition() {
    let cases = [
        (
            "Succeeded",
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}]),
        ),
        (
            "Failed",
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        ("Running", json!([])),
    ];
    for (phase, want) in cases {
        let obj = json!({"status": {"phase": phase}});
        assert_eq!(json!(row_conditions("", "Pod", &obj)), want, "{phase}");
    }
    assert!(row_conditions(
        "apps",
        "Deployment",
        &json!({"status": {"phase": "Failed"}})
    )
    .is_empty());
}
