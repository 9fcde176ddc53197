//! Unknown and duplicate field detection for `fieldValidation=Strict|Warn`, reporting what
//! upstream's strict JSON decoding (sigs.k8s.io/json's `UnmarshalStrict`) reports when it
//! decodes a body into the Go type:
//! - `unknown field "spec.foo"` for an object key that names no field of a struct;
//! - `duplicate field "metadata.name"` for a struct field or map key given twice.
//!
//! Paths are built as upstream builds them: `.` before each field or map key except the
//! first, `[i]` for list elements (`spec.containers[0].foo`). Messages are deduplicated and
//! capped at 100, as upstream does. Values the Go types decode themselves (IntOrString,
//! Quantity, Time, RawExtension, FieldsV1, apiextensions JSON) are opaque: nothing inside them
//! is reported. A value of the wrong JSON type is a decoding error reported elsewhere, so it
//! is not descended into.
//!
//! `serde_json::Value` keeps only the last of duplicate keys, so the body is parsed into
//! [`Raw`], which keeps every key in order.

use crate::go_quote::go_quote;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::definitions::{definitions, Definitions};

/// Upstream stops collecting strict errors after this many.
const MAX_PROBLEMS: usize = 100;

/// Problems upstream would report for `body` (raw JSON bytes) against the kind's schema, in
/// document order: `unknown field "spec.foo"` and `duplicate field "metadata.name"`.
/// Empty for an unknown kind or a body that is not a JSON object (decoding reports those).
pub fn strict_problems(group: &str, version: &str, kind: &str, body: &[u8]) -> Vec<String> {
    let defs = definitions();
    let Some(schema) = defs.kind_schema(group, version, kind) else {
        return Vec::new();
    };
    let Ok(raw) = serde_json::from_slice::<Raw>(body) else {
        return Vec::new();
    };
    let mut walker = Walker {
        defs,
        problems: Vec::new(),
        seen: HashSet::new(),
    };
    let mut path = String::new();
    walker.walk(schema, &raw, &mut path);
    walker.problems
}

/// The error upstream returns under `fieldValidation=Strict`, e.g.
/// `strict decoding error: unknown field "spec.foo", duplicate field "metadata.name"`.
/// (kube-apiserver wraps it further: `Pod in version "v1" cannot be handled as a Pod: ...`.)
pub fn strict_error_message(problems: &[String]) -> String {
    format!("strict decoding error: {}", problems.join(", "))
}

/// A JSON value as written: every object key, duplicates included, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Object(Vec<(String, Raw)>),
    Array(Vec<Raw>),
    Scalar,
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Raw, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(Raw::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Raw>()?;
            entries.push((key, value));
        }
        Ok(Raw::Object(entries))
    }
}

struct Walker<'a> {
    defs: &'a Definitions,
    problems: Vec<String>,
    seen: HashSet<String>,
}

impl Walker<'_> {
    fn report(&mut self, what: &str, path: &str, key: &str) {
        if self.problems.len() >= MAX_PROBLEMS {
            return;
        }
        let full = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let message = format!("{what} field {}", go_quote(&full));
        if self.seen.insert(message.clone()) {
            self.problems.push(message);
        }
    }

    fn walk(&mut self, schema: &Value, value: &Raw, path: &mut String) {
        let schema = self.defs.resolve(schema);
        match value {
            Raw::Object(entries) => {
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    let preserve = schema
                        .get("x-kubernetes-preserve-unknown-fields")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let mut seen: HashSet<&str> = HashSet::new();
                    for (key, v) in entries {
                        match props.get(key) {
                            Some(field) => {
                                if !seen.insert(key) {
                                    self.report("duplicate", path, key);
                                }
                                self.descend(field, v, path, key);
                            }
                            None if !preserve => self.report("unknown", path, key),
                            None => {}
                        }
                    }
                } else if let Some(values) =
                    schema.get("additionalProperties").filter(|s| s.is_object())
                {
                    let mut seen: HashSet<&str> = HashSet::new();
                    for (key, v) in entries {
                        if !seen.insert(key) {
                            self.report("duplicate", path, key);
                        }
                        self.descend(values, v, path, key);
                    }
                }
            }
            Raw::Array(items) => {
                if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        self.walk(item_schema, item, path);
                        path.truncate(len);
                    }
                }
            }
            Raw::Scalar => {}
        }
    }

    fn descend(&mut self, schema: &Value, value: &Raw, path: &mut String, key: &str) {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        self.walk(schema, value, path);
        path.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = r#"{
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web", "app.kubernetes.io/name": "web"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Foo", "name": "f", "uid": "u", "controller": true}],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
      },
      "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
          "metadata": {"labels": {"app": "web"}},
          "spec": {
            "containers": [{
              "name": "web",
              "image": "nginx:1.27",
              "args": ["--port", "8080"],
              "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
              "env": [{"name": "A", "value": "1"},
                      {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                      {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}],
              "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25, "memory": 1000000}},
              "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
              "readinessProbe": {"tcpSocket": {"port": 8080}},
              "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}],
              "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true}
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}]}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
              {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
            "nodeSelector": {"disk": "ssd"},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                           "labelSelector": {"matchLabels": {"app": "web"}}}]
          }
        }
      },
      "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True",
                 "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    }"#;

    #[test]
    fn a_realistic_deployment_has_no_problems() {
        assert_eq!(
            strict_problems("apps", "v1", "Deployment", DEPLOYMENT.as_bytes()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn realistic_objects_of_other_kinds_have_no_problems() {
        let cases = [
            (
                "",
                "v1",
                "Service",
                r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
              "spec": {"selector": {"app": "web"}, "type": "ClusterIP",
                       "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"port": 443, "targetPort": 8443}]}}"#,
            ),
            (
                "batch",
                "v1",
                "CronJob",
                r#"{"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
              "backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure",
              "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}}}"#,
            ),
            (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                r#"{"spec": {"minReplicas": 1, "maxReplicas": 5,
              "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
              "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                           "target": {"type": "Utilization", "averageUtilization": 80}}}]}}"#,
            ),
            (
                "networking.k8s.io",
                "v1",
                "Ingress",
                r#"{"spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example",
              "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                  "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}"#,
            ),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "Role",
                r#"{"rules": [{"apiGroups": [""], "resources": ["pods"],
              "verbs": ["get", "list"]}]}"#,
            ),
            (
                "",
                "v1",
                "ResourceQuota",
                r#"{"spec": {"hard": {"pods": "10", "requests.cpu": 4}}}"#,
            ),
            (
                "autoscaling",
                "v1",
                "Scale",
                r#"{"apiVersion": "autoscaling/v1", "kind": "Scale",
              "metadata": {"name": "web"}, "spec": {"replicas": 2}}"#,
            ),
            (
                "apps",
                "v1",
                "DeleteOptions",
                r#"{"kind": "DeleteOptions", "apiVersion": "v1",
              "propagationPolicy": "Foreground", "preconditions": {"uid": "x"}}"#,
            ),
        ];
        for (group, version, kind, body) in cases {
            assert_eq!(
                strict_problems(group, version, kind, body.as_bytes()),
                Vec::<String>::new(),
                "{kind}"
            );
        }
    }

    #[test]
    fn problems_are_reported_at_upstream_paths() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "unknown top-level field",
                "Pod",
                r#"{"apiVersion": "v1", "kind": "Pod", "foo": 1}"#,
                &[r#"unknown field "foo""#],
            ),
            (
                "unknown spec field",
                "Pod",
                r#"{"spec": {"foo": {"bar": 1}, "containers": []}}"#,
                &[r#"unknown field "spec.foo""#],
            ),
            (
                "unknown field in a list element",
                "Pod",
                r#"{"spec": {"containers": [{"name": "a"}, {"name": "b", "imagePullPolicyy": "Always"}]}}"#,
                &[r#"unknown field "spec.containers[1].imagePullPolicyy""#],
            ),
            (
                "unknown field deep in a list of lists",
                "Pod",
                r#"{"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPortt": 1}]}]}}"#,
                &[r#"unknown field "spec.containers[0].ports[0].hostPortt""#],
            ),
            (
                "duplicate struct field",
                "Pod",
                r#"{"metadata": {"name": "a", "name": "b"}}"#,
                &[r#"duplicate field "metadata.name""#],
            ),
            (
                "duplicate top-level field",
                "ConfigMap",
                r#"{"kind": "ConfigMap", "kind": "ConfigMap"}"#,
                &[r#"duplicate field "kind""#],
            ),
            (
                "duplicate map key",
                "ConfigMap",
                r#"{"metadata": {"labels": {"a": "1", "a": "2"}}, "data": {"k": "v"}}"#,
                &[r#"duplicate field "metadata.labels.a""#],
            ),
            (
                "unknown and duplicate fields in document order, each once",
                "Pod",
                r#"{"spec": {"bogus": 1, "bogus": 2, "hostname": "a", "hostname": "b"}, "extra": true}"#,
                &[
                    r#"unknown field "spec.bogus""#,
                    r#"duplicate field "spec.hostname""#,
                    r#"unknown field "extra""#,
                ],
            ),
            (
                "field names are case-sensitive",
                "Pod",
                r#"{"Metadata": {}}"#,
                &[r#"unknown field "Metadata""#],
            ),
        ];
        for (name, kind, body, want) in cases {
            let got = strict_problems("", "v1", kind, body.as_bytes());
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn values_upstream_decodes_itself_are_opaque() {
        let cases = [
            // Quantity and IntOrString accept strings and numbers; nothing inside is checked.
            r#"{"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": 5}}}]}}"#,
            r#"{"spec": {"containers": [{"name": "a", "readinessProbe": {"httpGet": {"port": "http"}}}]}}"#,
            r#"{"spec": {"containers": [{"name": "a", "readinessProbe": {"httpGet": {"port": 80}}}]}}"#,
            // FieldsV1 is raw JSON.
            r#"{"metadata": {"managedFields": [{"fieldsV1": {"f:x": {}, "f:x": {}, "anything": 1}}]}}"#,
            // A value of the wrong type is a decoding error, not an unknown field.
            r#"{"spec": "not an object", "metadata": {"labels": ["x"]}}"#,
        ];
        for body in cases {
            assert_eq!(
                strict_problems("", "v1", "Pod", body.as_bytes()),
                Vec::<String>::new(),
                "{body}"
            );
        }
    }

    #[test]
    fn custom_resource_definition_schemas_nest_without_false_positives() {
        let body = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
          "metadata": {"name": "foos.example.com"},
          "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                         "default": {"a": 1, "a": 2},
                         "properties": {"size": {"type": "integer", "typo": 1}}}}}}}]}}"#;
        assert_eq!(
            strict_problems("apiextensions.k8s.io", "v1", "CustomResourceDefinition", body.as_bytes()),
            vec![
                r#"unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.typo""#
                    .to_string()
            ]
        );
    }

    #[test]
    fn bodies_that_do_not_decode_and_unknown_kinds_report_nothing() {
        for (kind, body) in [
            ("Pod", "{"),
            ("Pod", "[1, 2]"),
            ("Pod", "{} {}"),
            ("NoSuchKind", r#"{"foo": 1}"#),
        ] {
            assert!(
                strict_problems("", "v1", kind, body.as_bytes()).is_empty(),
                "{body}"
            );
        }
    }

    #[test]
    fn problems_are_capped_at_one_hundred() {
        let fields: Vec<String> = (0..150).map(|i| format!(r#""f{i}": 1"#)).collect();
        let body = format!("{{{}}}", fields.join(","));
        assert_eq!(strict_problems("", "v1", "Pod", body.as_bytes()).len(), 100);
    }

    #[test]
    fn error_message_and_quoting_match_upstream() {
        let problems = strict_problems("", "v1", "Pod", br#"{"a\"b": 1, "c\td": 2}"#);
        assert_eq!(
            strict_error_message(&problems),
            r#"strict decoding error: unknown field "a\"b", unknown field "c\td""#
        );
    }
}
