//! Behaviour of the public API: JSON round trips through protobuf for realistic objects,
//! bodies built independently with k8s-pb's prost types the way client-go marshals Go structs,
//! watch framing, and bad input.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime as rt;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{json, Value};

use crate::{decode, decode_watch_event, encode, encode_watch_event, supports, ProtoError, MAGIC};

fn round_trip(obj: &Value) -> Value {
    let body = encode(obj).unwrap_or_else(|e| panic!("encode {}: {e}", obj["kind"]));
    assert!(body.starts_with(&MAGIC));
    decode(&body).unwrap_or_else(|e| panic!("decode {}: {e}", obj["kind"]))
}

fn pod() -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "web-0", "namespace": "default", "uid": "6f1c6b1e-1", "resourceVersion": "42",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web"}, "annotations": {"note": "x"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                "uid": "u1", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]
        },
        "spec": {
            "volumes": [{"name": "cfg", "configMap": {"name": "web-config", "defaultMode": 420}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
            "containers": [{
                "name": "app", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw", "optional": false}}}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                    "successThreshold": 1, "failureThreshold": 3},
                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false}
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "nodeName": "node-1", "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 2000}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"}],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
            "startTime": "2024-05-01T10:00:00Z",
            "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}},
                "lastState": {}, "ready": true, "restartCount": 0, "image": "nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:abc", "containerID": "containerd://123",
                "started": true}],
            "qosClass": "Burstable"
        }
    })
}

fn fixtures() -> Vec<Value> {
    vec![
        pod(),
        json!({"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "default", "generation": 3, "labels": {"app": "web"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 3, "replicas": 2, "conditions": [{"type": "Available",
                "status": "True", "lastUpdateTime": "2024-05-01T10:00:00Z",
                "lastTransitionTime": "2024-05-01T10:00:00Z", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability."}]}}),
        json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": "czNjcjN0", "empty": ""}, "type": "Opaque", "immutable": false}),
        json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "web-config", "namespace": "default"},
            "data": {"nginx.conf": "events {}\n", "blank": ""}, "binaryData": {"bin": "AAEC/w=="}}),
        json!({"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics", "nodePort": 30090}],
                "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "type": "NodePort", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}}}),
        json!({"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": "node-1"},
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                "taints": [{"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "2024-05-01T10:00:00Z"}]},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                    "lastTransitionTime": "2024-05-01T09:00:00Z", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "node-1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
                    "osImage": "Debian", "containerRuntimeVersion": "containerd://1.7",
                    "kubeletVersion": "v1.33.0", "kubeProxyVersion": "", "operatingSystem": "linux",
                    "architecture": "amd64"}}}),
        json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "web-0.17c", "namespace": "default"},
            "eventTime": "2024-05-01T10:00:00.123456Z",
            "series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000001Z"},
            "reportingController": "kubelet", "reportingInstance": "node-1", "action": "Started",
            "reason": "Started", "regarding": {"kind": "Pod", "namespace": "default", "name": "web-0",
                "uid": "u", "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
            "note": "Started container app", "type": "Normal"}),
        json!({"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": "web-0.17d", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0"}, "reason": "Pulled", "message": "pulled",
            "source": {"component": "kubelet"}, "firstTimestamp": "2024-05-01T10:00:00Z",
            "lastTimestamp": "2024-05-01T10:00:01Z", "count": 3, "type": "Normal",
            "eventTime": "2024-05-01T10:00:00.500000Z", "reportingComponent": "kubelet"}),
        crd(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound",
            "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid",
                "message": "bad", "field": "spec.x"}]}, "code": 404}),
        json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "99", "continue": "abc", "remainingItemCount": 0},
            "items": [{"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}]}),
        json!({"kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": "once", "namespace": "default"},
            "spec": {"backoffLimit": 0, "completions": 1, "parallelism": 1, "ttlSecondsAfterFinished": 0,
                "suspend": false, "activeDeadlineSeconds": 60,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        json!({"kind": "DeleteOptions", "apiVersion": "apps/v1", "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground", "preconditions": {"uid": "u"}, "dryRun": ["All"]}),
        json!({"kind": "ControllerRevision", "apiVersion": "apps/v1",
            "metadata": {"name": "web-1"}, "data": {"spec": {"template": {"x": [1, 2]}}}, "revision": 1}),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
            "resources": [{"name": "deployments", "singularName": "deployment", "namespaced": true,
                "kind": "Deployment", "verbs": ["create", "get", "list"], "shortNames": ["deploy"]}]}),
        json!({"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {}, "spec": {"user": "alice", "extra": {"scopes": ["a", "b"]},
                "resourceAttributes": {"verb": "get", "resource": "pods"}}, "status": {"allowed": true}}),
    ]
}

fn crd() -> Value {
    json!({"kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "description": "A widget", "required": ["spec"],
                    "properties": {
                        "spec": {"type": "object",
                            "properties": {
                                "size": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10.5, "default": 3},
                                "color": {"type": "string", "enum": ["red", "blue"], "pattern": "^[a-z]+$"},
                                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "strict": {"type": "object", "additionalProperties": false},
                                "deps": {"type": "object", "dependencies": {"a": ["b"], "c": {"required": ["d"]}}}
                            },
                            "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "too big"}]},
                        "status": {"type": "object"}}}},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}],
            "conversion": {"strategy": "None"}},
        "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}, "storedVersions": ["v1"],
            "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z",
                "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}]}})
}

#[test]
fn realistic_objects_survive_a_protobuf_round_trip() {
    for obj in fixtures() {
        assert_eq!(round_trip(&obj), obj, "{}", obj["kind"]);
    }
}

#[test]
fn decoded_objects_start_with_kind_and_api_version() {
    let decoded = round_trip(&pod());
    let keys: Vec<&String> = decoded
        .as_object()
        .map(|o| o.keys().take(2).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["kind", "apiVersion"]);
}

#[test]
fn members_the_message_lacks_are_dropped() {
    let obj = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"},
        "data": {"a": "b"}, "someFutureField": 1});
    let mut want = obj.clone();
    want.as_object_mut().map(|o| o.remove("someFutureField"));
    assert_eq!(round_trip(&obj), want);
}

/// The metadata client-go writes for an object built in memory: every plain field, empty.
fn client_go_meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.to_owned()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time {
            seconds: Some(0),
            nanos: Some(0),
        }),
        labels: [("app".to_owned(), "web".to_owned())].into(),
        ..Default::default()
    }
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = rt::Unknown {
        type_meta: Some(rt::TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn client_go_container() -> core::Container {
    core::Container {
        name: Some("nginx".to_owned()),
        image: Some("nginx".to_owned()),
        working_dir: Some(String::new()),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: Some(String::new()),
        termination_message_policy: Some(String::new()),
        image_pull_policy: Some(String::new()),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

#[test]
fn kubectl_create_deployment_body_decodes_to_upstream_json() {
    let pod_spec = core::PodSpec {
        containers: vec![client_go_container()],
        restart_policy: Some(String::new()),
        dns_policy: Some(String::new()),
        service_account_name: Some(String::new()),
        service_account: Some(String::new()),
        node_name: Some(String::new()),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: Some(String::new()),
        subdomain: Some(String::new()),
        scheduler_name: Some(String::new()),
        priority_class_name: Some(String::new()),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(client_go_meta("web")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(client_go_meta("")),
                spec: Some(pod_spec),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some(String::new()),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    let body = envelope("apps/v1", "Deployment", deployment.encode_to_vec());
    // What `kubectl create deployment web --image=nginx --replicas=0 --dry-run=client -o json`
    // prints for the same Go object.
    let want = json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
            "strategy": {}},
        "status": {}});
    assert_eq!(decode(&body), Ok(want));
}

#[test]
fn independently_encoded_pod_pieces_decode_to_their_json_forms() {
    let container = core::Container {
        ports: vec![core::ContainerPort {
            name: Some("http".to_owned()),
            host_port: Some(0),
            container_port: Some(8080),
            protocol: Some("TCP".to_owned()),
            host_ip: Some(String::new()),
        }],
        resources: Some(core::ResourceRequirements {
            limits: [(
                "cpu".to_owned(),
                k8s_pb::apimachinery::pkg::api::resource::Quantity {
                    string: Some("500m".to_owned()),
                },
            )]
            .into(),
            ..Default::default()
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: Some("/healthz".to_owned()),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".to_owned()),
                    }),
                    host: Some(String::new()),
                    scheme: Some(String::new()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(0),
            timeout_seconds: Some(0),
            period_seconds: Some(0),
            success_threshold: Some(0),
            failure_threshold: Some(0),
            termination_grace_period_seconds: None,
        }),
        env: vec![core::EnvVar {
            name: Some("POD".to_owned()),
            value: Some(String::new()),
            value_from: Some(core::EnvVarSource {
                secret_key_ref: Some(core::SecretKeySelector {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: Some("creds".to_owned()),
                    }),
                    key: Some("pw".to_owned()),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
        }],
        ..client_go_container()
    };
    let pod = core::Pod {
        metadata: Some(client_go_meta("p")),
        spec: Some(core::PodSpec {
            containers: vec![container],
            termination_grace_period_seconds: Some(0),
            security_context: Some(core::PodSecurityContext {
                run_as_user: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let body = envelope("v1", "Pod", pod.encode_to_vec());
    let want = json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "nginx", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "POD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw", "optional": false}}}],
                "resources": {"limits": {"cpu": "500m"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}],
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsUser": 0}}});
    assert_eq!(decode(&body), Ok(want));
}

#[test]
fn encoded_bodies_decode_with_the_prost_types() {
    let obj = json!({"kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "s", "creationTimestamp": "2024-05-01T10:00:00Z"},
        "data": {"k": "AAEC"}, "type": "Opaque"});
    let body = encode(&obj).expect("encodes");
    let unknown = rt::Unknown::decode(&body[4..]).expect("an Unknown");
    let type_meta = unknown.type_meta.clone().unwrap_or_default();
    assert_eq!(type_meta.api_version.as_deref(), Some("v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Secret"));
    assert_eq!(unknown.content_type.as_deref(), Some(""));
    let secret =
        core::Secret::decode(unknown.raw.unwrap_or_default().as_slice()).expect("a Secret");
    let metadata = secret.metadata.unwrap_or_default();
    assert_eq!(metadata.name.as_deref(), Some("s"));
    assert_eq!(
        metadata.creation_timestamp.and_then(|t| t.seconds),
        Some(1_714_557_600)
    );
    assert_eq!(
        secret.data.get("k").map(Vec::as_slice),
        Some(&[0u8, 1, 2][..])
    );
    assert_eq!(secret.r#type.as_deref(), Some("Opaque"));
}

#[test]
fn int_or_string_and_quantities_encode_as_client_go_does() {
    let obj = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "web"}, {"port": 81, "targetPort": 8081}]}});
    let body = encode(&obj).expect("encodes");
    let unknown = rt::Unknown::decode(&body[4..]).expect("an Unknown");
    let svc = core::Service::decode(unknown.raw.unwrap_or_default().as_slice()).expect("a Service");
    let ports = svc.spec.unwrap_or_default().ports;
    let target = |i: usize| {
        ports
            .get(i)
            .and_then(|p| p.target_port.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        (target(0).r#type, target(0).str_val.as_deref()),
        (Some(1), Some("web"))
    );
    assert_eq!((target(1).r#type, target(1).int_val), (Some(0), Some(8081)));

    let node = json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n"},
        "status": {"capacity": {"cpu": 4, "memory": "16Gi"}}});
    let decoded = round_trip(&node);
    assert_eq!(
        decoded["status"]["capacity"],
        json!({"cpu": "4", "memory": "16Gi"})
    );
}

#[test]
fn watch_events_are_length_prefixed_raw_watch_events_around_full_bodies() {
    let obj = pod();
    let frame = encode_watch_event("ADDED", &obj).expect("encodes");
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    let event = meta::WatchEvent::decode(&frame[4..]).expect("a WatchEvent");
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let raw = event.object.and_then(|o| o.raw).unwrap_or_default();
    assert_eq!(decode(&raw), Ok(obj.clone()));
    assert_eq!(decode_watch_event(&frame), Ok(("ADDED".to_owned(), obj)));

    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version", "reason": "Expired", "code": 410});
    let frame = encode_watch_event("ERROR", &status).expect("encodes");
    assert_eq!(decode_watch_event(&frame), Ok(("ERROR".to_owned(), status)));
}

#[test]
fn supports_built_in_kinds_but_not_custom_resources_or_tables() {
    let cases = [
        ("v1", "Namespace", true),
        ("v1", "SecretList", true),
        ("apps/v1", "DeploymentList", true),
        ("v1", "Status", true),
        ("v1", "WatchEvent", true),
        ("batch/v1", "DeleteOptions", true),
        ("autoscaling/v1", "Scale", true),
        ("policy/v1", "Eviction", true),
        ("v1", "Binding", true),
        ("meta.k8s.io/v1", "PartialObjectMetadataList", true),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinitionList",
            true,
        ),
        ("meta.k8s.io/v1", "Table", false),
        ("example.com/v1", "Widget", false),
        ("v1", "Container", false),
        ("apps/v1", "Pod", false),
    ];
    for (api_version, kind, want) in cases {
        assert_eq!(supports(api_version, kind), want, "{api_version} {kind}");
    }
}

#[test]
fn bad_bodies_are_typed_errors() {
    let good = encode(&pod()).expect("encodes");
    let unknown_kind = envelope("example.com/v1", "Widget", vec![]);
    let no_type_meta = envelope("", "", vec![]);
    let mut gzip = MAGIC.to_vec();
    gzip.extend(
        rt::Unknown {
            type_meta: Some(rt::TypeMeta {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
            }),
            raw: Some(vec![1, 2, 3]),
            content_encoding: Some("gzip".to_owned()),
            content_type: None,
        }
        .encode_to_vec(),
    );
    let wrong_wire_type = envelope("v1", "ConfigMap", vec![0x0d, 0, 0, 0, 0]);
    let not_utf8_json = envelope("apps/v1", "ControllerRevision", {
        let revision = apps::ControllerRevision {
            data: Some(rt::RawExtension {
                raw: Some(b"{not json".to_vec()),
            }),
            ..Default::default()
        };
        revision.encode_to_vec()
    });

    assert_eq!(decode(b""), Err(ProtoError::BadMagic));
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtoError::BadMagic));
    assert_eq!(decode(&good[..3]), Err(ProtoError::BadMagic));
    assert!(matches!(
        decode(&good[..good.len() - 3]),
        Err(ProtoError::Malformed { .. })
    ));
    assert_eq!(
        decode(&unknown_kind),
        Err(ProtoError::UnsupportedKind {
            api_version: "example.com/v1".to_owned(),
            kind: "Widget".to_owned()
        })
    );
    assert_eq!(decode(&no_type_meta), Err(ProtoError::MissingTypeMeta));
    assert_eq!(
        decode(&gzip),
        Err(ProtoError::UnsupportedContent("gzip".to_owned()))
    );
    assert!(matches!(
        decode(&wrong_wire_type),
        Err(ProtoError::Malformed { .. })
    ));
    match decode(&not_utf8_json) {
        Err(ProtoError::Malformed { path, .. }) => assert_eq!(path, "data"),
        other => panic!("expected a malformed error, got {other:?}"),
    }
}

#[test]
fn every_truncation_and_corruption_of_a_body_fails_without_panicking() {
    let good = encode(&crd()).expect("encodes");
    for end in 0..good.len() {
        let _ = decode(&good[..end]);
    }
    // Deterministic byte flips over the whole body.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut body = good.clone();
        let at = 4 + (state as usize) % (body.len() - 4);
        body[at] ^= (state >> 32) as u8 | 1;
        let _ = decode(&body);
    }
}

#[test]
fn nesting_beyond_the_limit_is_rejected() {
    // JSONSchemaProps nest through `not`; build a chain far deeper than the limit.
    let mut props = Vec::new();
    for _ in 0..2000 {
        let mut outer = Vec::new();
        crate::wire::put_bytes(&mut outer, 28, &props);
        props = outer;
    }
    let mut validation = Vec::new();
    crate::wire::put_bytes(&mut validation, 1, &props);
    let mut version = Vec::new();
    crate::wire::put_bytes(&mut version, 4, &validation);
    let mut spec = Vec::new();
    crate::wire::put_bytes(&mut spec, 7, &version);
    let mut crd = Vec::new();
    crate::wire::put_bytes(&mut crd, 2, &spec);
    let body = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd);
    assert_eq!(
        decode(&body),
        Err(ProtoError::TooDeep(crate::to_json::MAX_DEPTH))
    );
}

#[test]
fn json_that_does_not_fit_the_message_is_an_encode_error_with_its_path() {
    let cases = [
        (
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": "three"}}),
            "spec.replicas",
        ),
        (
            json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": "a"}, {"name": 5}]}}),
            "spec.containers[1].name",
        ),
        (
            json!({"kind": "Secret", "apiVersion": "v1", "data": {"k": "not base64!"}}),
            "data.k",
        ),
        (
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"creationTimestamp": "yesterday"}}),
            "metadata.creationTimestamp",
        ),
        (
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 4_294_967_296i64}}),
            "spec.replicas",
        ),
    ];
    for (obj, want) in cases {
        match encode(&obj) {
            Err(ProtoError::InvalidValue { path, .. }) => assert_eq!(path, want),
            other => panic!("{want}: expected an invalid value, got {other:?}"),
        }
    }
    assert_eq!(
        encode(&json!({"metadata": {}})),
        Err(ProtoError::MissingTypeMeta)
    );
    assert_eq!(
        encode(&json!({"kind": "Widget", "apiVersion": "example.com/v1"})),
        Err(ProtoError::UnsupportedKind {
            api_version: "example.com/v1".to_owned(),
            kind: "Widget".to_owned()
        })
    );
}
