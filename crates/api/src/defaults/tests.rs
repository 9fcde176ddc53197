//! Table-driven defaulting tests: input object in, the object upstream would store out.

use serde_json::{json, Value};

use super::{apply, apply_changes, namespace_prepare_for_create};

fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
    apply(group, version, kind, &mut obj);
    obj
}

/// The pod spec defaults every template gets, around the given containers.
fn template_spec(containers: Value) -> Value {
    json!({
        "containers": containers,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30
    })
}

fn nginx_defaulted() -> Value {
    json!([{
        "name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
    }])
}

#[test]
fn objects_default_as_upstream_stores_them() {
    let nginx = json!([{"name": "web", "image": "nginx:1.25"}]);
    let tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": nginx}});
    let tpl_out =
        json!({"metadata": {"labels": {"app": "web"}}, "spec": template_spec(nginx_defaulted())});
    let cases: Vec<(&str, &str, &str, &str, Value, Value)> = vec![
        (
            "pod gets pod-only and spec defaults",
            "",
            "v1",
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
                "containers": [{
                    "name": "c", "image": "busybox",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5}
                }],
                "volumes": [
                    {"name": "a"},
                    {"name": "b", "secret": {"secretName": "s"}},
                    {"name": "c", "configMap": {"name": "cm"}},
                    {"name": "d", "hostPath": {"path": "/x"}},
                    {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
                ]
            }}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
                "containers": [{
                    "name": "c", "image": "busybox", "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1", "memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                    "readinessProbe": {"grpc": {"port": 9000, "service": ""}, "periodSeconds": 5,
                        "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "volumes": [
                    {"name": "a", "emptyDir": {}},
                    {"name": "b", "secret": {"secretName": "s", "defaultMode": 420}},
                    {"name": "c", "configMap": {"name": "cm", "defaultMode": 420}},
                    {"name": "d", "hostPath": {"path": "/x", "type": ""}},
                    {"name": "e", "projected": {"defaultMode": 420,
                        "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]}}
                ],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }}),
        ),
        (
            "host-network pod copies container ports to host ports",
            "",
            "v1",
            "Pod",
            json!({"spec": {"hostNetwork": true, "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}}),
            json!({"spec": {"hostNetwork": true, "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "x:1", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}],
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30}}),
        ),
        (
            "deployment defaults and template without pod-only defaults",
            "apps",
            "v1",
            "Deployment",
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": tpl}}),
            json!({"metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"app": "web"}}, "template": tpl_out,
                "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
            }}),
        ),
        (
            "recreate deployment gets no rolling update",
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}, "selector": {}, "template": {}}}),
            json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}, "selector": {}, "template": {},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}}),
        ),
        (
            "daemonset rolling update 1/0",
            "apps",
            "v1",
            "DaemonSet",
            json!({"spec": {"selector": {}, "template": tpl}}),
            json!({"spec": {"selector": {}, "template": tpl_out, "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}}),
        ),
        (
            "statefulset defaults including claim templates",
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"selector": {}, "serviceName": "s", "template": tpl,
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
            json!({"spec": {"selector": {}, "serviceName": "s", "template": tpl_out,
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                    "status": {"phase": "Pending"}}],
                "podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}}),
        ),
        (
            "statefulset with explicit OnDelete keeps it",
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"replicas": 2, "updateStrategy": {"type": "OnDelete"}, "selector": {}, "template": {}}}),
            json!({"spec": {"replicas": 2, "updateStrategy": {"type": "OnDelete"}, "selector": {}, "template": {},
                "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}}),
        ),
        (
            "replicaset replicas",
            "apps",
            "v1",
            "ReplicaSet",
            json!({"spec": {"selector": {}}}),
            json!({"spec": {"selector": {}, "replicas": 1}}),
        ),
        (
            "replication controller takes selector and labels from its template",
            "",
            "v1",
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": tpl}}),
            json!({"metadata": {"name": "rc", "labels": {"app": "web"}},
                "spec": {"template": tpl_out, "selector": {"app": "web"}, "replicas": 1}}),
        ),
        (
            "job defaults and labels from template",
            "batch",
            "v1",
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"template": tpl}}),
            json!({"metadata": {"name": "j", "labels": {"app": "web"}}, "spec": {"template": tpl_out,
                "completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                "suspend": false, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": false}}),
        ),
        (
            "job with parallelism, per-index limit and failure policy",
            "batch",
            "v1",
            "Job",
            json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {}}}),
            json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                "template": {}, "backoffLimit": 2147483647, "suspend": false,
                "podReplacementPolicy": "Failed", "manualSelector": false}}),
        ),
        (
            "cronjob defaults its own fields and the pod template only",
            "batch",
            "v1",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": tpl}}}}),
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": tpl_out}},
                "concurrencyPolicy": "Allow", "suspend": false, "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1}}),
        ),
        (
            "cluster ip service",
            "",
            "v1",
            "Service",
            json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                                      {"port": 443, "targetPort": "https", "protocol": "TCP"}],
                "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}}),
        ),
        (
            "load balancer service",
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 0}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb"}]}}}),
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}],
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                "allocateLoadBalancerNodePorts": true},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "lb"}]}}}),
        ),
        (
            "external name service drops affinity config and gets no traffic policies",
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com", "sessionAffinity": "None"}}),
        ),
        (
            "namespace label and phase",
            "",
            "v1",
            "Namespace",
            json!({"metadata": {"name": "team-a"}}),
            json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "status": {"phase": "Active"}}),
        ),
        (
            "secret type and stringData folded into data",
            "",
            "v1",
            "Secret",
            json!({"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"a": "b", "c": "d"}}),
            json!({"metadata": {"name": "s"}, "data": {"a": "Yg==", "c": "ZA=="}, "type": "Opaque"}),
        ),
        (
            "persistent volume",
            "",
            "v1",
            "PersistentVolume",
            json!({"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}}}),
            json!({"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d", "type": ""},
                "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}}),
        ),
        (
            "persistent volume claim",
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
        ),
        (
            "node allocatable from capacity",
            "",
            "v1",
            "Node",
            json!({"status": {"capacity": {"cpu": "4"}}}),
            json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "4"}}}),
        ),
        (
            "container limit range fills default and defaultRequest",
            "",
            "v1",
            "LimitRange",
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}}]}}),
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"},
                    "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}}]}}),
        ),
        (
            "endpoints port protocol",
            "",
            "v1",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
            json!({"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
        ),
        (
            "hpa v2 default metric and behavior",
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "d"},
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
            json!({"spec": {"maxReplicas": 5, "minReplicas": 1, "scaleTargetRef": {"kind": "Deployment", "name": "d"},
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                     {"type": "Percent", "value": 100, "periodSeconds": 15}]}}}}),
        ),
        (
            "hpa v1 min replicas",
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "d"}}}),
            json!({"spec": {"maxReplicas": 5, "minReplicas": 1, "scaleTargetRef": {"kind": "Deployment", "name": "d"}}}),
        ),
        (
            "network policy types and port protocol",
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}],
                "policyTypes": ["Ingress", "Egress"]}}),
        ),
        (
            "ingress class parameters scope",
            "networking.k8s.io",
            "v1",
            "IngressClass",
            json!({"spec": {"controller": "x/y", "parameters": {"kind": "K", "name": "n"}}}),
            json!({"spec": {"controller": "x/y", "parameters": {"kind": "K", "name": "n", "scope": "Cluster"}}}),
        ),
        (
            "endpoint slice ports",
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}),
            json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80, "name": "", "protocol": "TCP"}]}),
        ),
        (
            "storage class",
            "storage.k8s.io",
            "v1",
            "StorageClass",
            json!({"provisioner": "p"}),
            json!({"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        ),
        (
            "csi driver",
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            json!({"metadata": {"name": "d"}, "spec": {}}),
            json!({"metadata": {"name": "d"}, "spec": {"attachRequired": true, "podInfoOnMount": false,
                "storageCapacity": false, "fsGroupPolicy": "ReadWriteOnceWithFSType",
                "volumeLifecycleModes": ["Persistent"], "requiresRepublish": false, "seLinuxMount": false}}),
        ),
        (
            "priority class",
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"value": 10}),
            json!({"value": 10, "preemptionPolicy": "PreemptLowerPriority"}),
        ),
        (
            "role binding groups",
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}),
        ),
        (
            "crd names, conversion and stored versions",
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            json!({"spec": {"group": "x.io", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}}),
            json!({"spec": {"group": "x.io", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true}],
                "conversion": {"strategy": "None"}},
                "status": {"storedVersions": ["v1"]}}),
        ),
        (
            "kinds without defaults are untouched",
            "",
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
            json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        ),
        (
            "an object that does not decode is left alone",
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"replicas": "three"}}),
            json!({"spec": {"replicas": "three"}}),
        ),
    ];
    for (name, group, version, kind, input, want) in cases {
        assert_eq!(defaulted(group, version, kind, input), want, "{name}");
    }
}

#[test]
fn untouched_parts_keep_unknown_fields_and_spelling() {
    let got = defaulted(
        "",
        "v1",
        "Secret",
        json!({"metadata": {"name": "s", "creationTimestamp": null}, "data": {"a": "YWJj"}, "extra": 1}),
    );
    assert_eq!(
        got,
        json!({"metadata": {"name": "s", "creationTimestamp": null}, "data": {"a": "YWJj"}, "extra": 1, "type": "Opaque"})
    );
}

#[test]
fn missing_required_fields_are_not_invented() {
    // A Deployment without selector must stay without one so validation says "Required".
    let got = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"template": {}}}),
    );
    assert!(got["spec"].get("selector").is_none(), "{got}");
    assert_eq!(got["spec"]["replicas"], json!(1));
}

#[test]
fn numeric_quantities_decode_and_feed_requests() {
    // kubectl turns YAML `cpu: 1` into a JSON number; upstream accepts it as a quantity.
    let got = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": 1}}}]}}),
    );
    assert_eq!(
        got["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": 1}, "requests": {"cpu": "1"}})
    );
}

#[test]
fn mismatched_api_version_in_body_does_not_block_defaulting() {
    // The caller chose the type; a wrong apiVersion is validation's to report, not ours to drop.
    let got = defaulted(
        "",
        "v1",
        "Secret",
        json!({"apiVersion": "apps/v1", "kind": "Secret"}),
    );
    assert_eq!(
        got,
        json!({"apiVersion": "apps/v1", "kind": "Secret", "type": "Opaque"})
    );
}

#[test]
fn apply_changes_replaces_arrays_of_other_lengths() {
    let mut target = json!({"a": [1], "b": {"x": 1, "gone": 2}});
    apply_changes(
        &mut target,
        &json!({"a": [1], "b": {"x": 1, "gone": 2}}),
        &json!({"a": [1, 2], "b": {"x": 1}}),
    );
    assert_eq!(target, json!({"a": [1, 2], "b": {"x": 1}}));
}

#[test]
fn namespace_create_adds_kubernetes_finalizer_once() {
    let cases = [
        (json!({"metadata": {"name": "n"}}), json!(["kubernetes"])),
        (
            json!({"spec": {"finalizers": ["example.com/x"]}}),
            json!(["example.com/x", "kubernetes"]),
        ),
        (
            json!({"spec": {"finalizers": ["kubernetes"]}}),
            json!(["kubernetes"]),
        ),
    ];
    for (mut obj, want) in cases {
        namespace_prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["finalizers"], want);
        assert_eq!(obj["status"], json!({"phase": "Active"}));
    }
}
