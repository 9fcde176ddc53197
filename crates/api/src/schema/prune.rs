//! Decoding as upstream's typed decoder does: fields the kind does not have are dropped,
//! `null` fields are left out, and a value of the wrong JSON type is an error naming the field
//! and the Go type upstream would have reported.

use serde_json::{Map, Value};

use super::definitions::{definitions, Definitions, INT_OR_STRING, QUANTITY};

/// Drops unknown and null fields from `obj` (a full object of the kind) and checks the type of
/// every scalar. Kinds without a schema are left alone.
pub fn prune(group: &str, version: &str, kind: &str, obj: &mut Value) -> Result<(), String> {
    let defs = definitions();
    let Some(schema) = defs.kind_schema(group, version, kind) else {
        return Ok(());
    };
    let mut path = String::new();
    prune_value(defs, schema, obj, &mut path, kind)
}

fn prune_value(
    defs: &Definitions,
    schema: &Value,
    value: &mut Value,
    path: &mut String,
    parent: &str,
) -> Result<(), String> {
    let schema = defs.resolve(schema);
    let int_or_string = [QUANTITY, INT_OR_STRING]
        .iter()
        .any(|name| defs.get(name).is_some_and(|d| std::ptr::eq(d, schema)));
    if int_or_string {
        return match value {
            Value::String(_) | Value::Number(_) => Ok(()),
            other => Err(type_error(other, path, parent, "string or int")),
        };
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ty = schema.get("type").and_then(Value::as_str);
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let name = definition_short_name(schema).unwrap_or(parent);
                prune_object(defs, props, preserve, map, path, name)?;
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|s| s.is_object())
            {
                map.retain(|_, v| !v.is_null());
                for (k, v) in map.iter_mut() {
                    let len = path.len();
                    push(path, k);
                    prune_value(defs, values, v, path, parent)?;
                    path.truncate(len);
                }
            } else if matches!(
                ty,
                Some("string" | "integer" | "number" | "boolean" | "array")
            ) {
                return Err(type_error(value, path, parent, go_type(schema)));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    prune_value(defs, item_schema, item, path, parent)?;
                    path.truncate(len);
                }
            } else if matches!(
                ty,
                Some("object" | "string" | "integer" | "number" | "boolean")
            ) {
                return Err(type_error(value, path, parent, go_type(schema)));
            }
        }
        Value::String(_)
            if matches!(
                ty,
                Some("integer" | "number" | "boolean" | "object" | "array")
            ) =>
        {
            return Err(type_error(value, path, parent, go_type(schema)));
        }
        Value::Number(n) => match ty {
            Some("integer") if !(n.is_i64() || n.is_u64()) => {
                return Err(type_error(value, path, parent, go_type(schema)));
            }
            Some("string" | "boolean" | "object" | "array") => {
                return Err(type_error(value, path, parent, go_type(schema)));
            }
            _ => {}
        },
        Value::Bool(_)
            if matches!(
                ty,
                Some("string" | "integer" | "number" | "object" | "array")
            ) =>
        {
            return Err(type_error(value, path, parent, go_type(schema)));
        }
        _ => {}
    }
    Ok(())
}

fn prune_object(
    defs: &Definitions,
    props: &Map<String, Value>,
    preserve: bool,
    map: &mut Map<String, Value>,
    path: &mut String,
    parent: &str,
) -> Result<(), String> {
    map.retain(|k, v| !v.is_null() && (preserve || props.contains_key(k)));
    for (k, v) in map.iter_mut() {
        if let Some(field) = props.get(k) {
            let len = path.len();
            push(path, k);
            prune_value(defs, field, v, path, parent)?;
            path.truncate(len);
        }
    }
    Ok(())
}

fn push(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// The Go struct name upstream's message uses: the last segment of the definition name.
fn definition_short_name(schema: &Value) -> Option<&str> {
    let gvk = schema
        .get("x-kubernetes-group-version-kind")?
        .as_array()?
        .first()?;
    gvk.get("kind")?.as_str()
}

fn go_type(schema: &Value) -> &'static str {
    match (
        schema.get("type").and_then(Value::as_str),
        schema.get("format").and_then(Value::as_str),
    ) {
        (Some("integer"), Some("int32")) => "int32",
        (Some("integer"), _) => "int64",
        (Some("number"), _) => "float64",
        (Some("boolean"), _) => "bool",
        (Some("string"), _) => "string",
        (Some("array"), _) => "[]",
        _ => "struct",
    }
}

fn type_error(value: &Value, path: &str, parent: &str, want: &str) -> String {
    let found = match value {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    format!("json: cannot unmarshal {found} into Go struct field {parent}.{path} of type {want}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_null_fields_are_dropped() {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": null, "bogus": 1},
            "spec": {"replicas": 2, "extra": {"x": 1}, "template": {"spec": {"containers": [{"name": "c", "image": "i", "nope": true, "resources": {"limits": {"cpu": 1}}}]}}},
        });
        prune("apps", "v1", "Deployment", &mut d).expect("prune");
        assert!(d["metadata"].get("bogus").is_none());
        assert!(d["metadata"].get("labels").is_none());
        assert!(d["spec"].get("extra").is_none());
        assert!(d["spec"]["template"]["spec"]["containers"][0]
            .get("nope")
            .is_none());
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            1
        );
        assert_eq!(d["spec"]["replicas"], 2);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "two"}});
        let e = prune("apps", "v1", "Deployment", &mut d).expect_err("type error");
        assert!(e.contains("cannot unmarshal string"), "{e}");
        assert!(e.contains("spec.replicas"), "{e}");
        assert!(e.contains("int32"), "{e}");
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": "x"}});
        assert!(prune("", "v1", "Pod", &mut p).is_err());
    }

    #[test]
    fn int_or_string_fields_take_both() {
        let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}});
        prune("", "v1", "Service", &mut s).expect("prune");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], "http");
    }
}
