//! DefaultTolerationSeconds: a new pod tolerates the not-ready and unreachable NoExecute
//! taints for 300 s unless it says otherwise, so its node's brief trouble does not evict it.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

const KEYS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];
/// Upstream's `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
const SECONDS: i64 = 300;

#[derive(Debug)]
pub struct DefaultTolerationSeconds;

#[async_trait]
impl Plugin for DefaultTolerationSeconds {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op == Operation::Create && req.is("", "pods") && req.subresource.is_none() {
            add_default_tolerations(obj);
        }
        Ok(())
    }
}

fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in KEYS {
        // Upstream skips a key the pod already tolerates for NoExecute (or every effect).
        let tolerated = list.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            (effect.is_empty() || effect == "NoExecute")
                && (k == *key || k.is_empty())
                && (!k.is_empty() || t.get("operator").and_then(Value::as_str) == Some("Exists"))
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": SECONDS,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_both_tolerations_unless_they_have_their_own() {
        let mut p = json!({"spec": {"containers": []}});
        add_default_tolerations(&mut p);
        let t = p["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], json!(300));
        let mut p = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 10}]}});
        add_default_tolerations(&mut p);
        let t = p["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], json!(10));
        assert_eq!(t[1]["key"], json!("node.kubernetes.io/not-ready"));
    }
}
