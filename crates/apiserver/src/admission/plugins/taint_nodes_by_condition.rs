//! TaintNodesByCondition: a new node starts with the `node.kubernetes.io/not-ready:NoSchedule`
//! taint, so nothing is scheduled to it before its kubelet reports Ready.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

#[derive(Debug)]
pub struct TaintNodesByCondition;

#[async_trait]
impl Plugin for TaintNodesByCondition {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op != Operation::Create || !req.is("", "nodes") || req.subresource.is_some() {
            return Ok(());
        }
        add_not_ready_taint(obj);
        Ok(())
    }
}

fn add_not_ready_taint(node: &mut Value) {
    let Some(spec) = node
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
    else {
        return;
    };
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    let Some(list) = taints.as_array_mut() else {
        return;
    };
    let present = list.iter().any(|t| {
        t.get("key").and_then(Value::as_str) == Some(NOT_READY)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    });
    if !present {
        list.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_nodes_get_the_not_ready_taint_once() {
        let mut n = json!({"metadata": {"name": "n1"}});
        add_not_ready_taint(&mut n);
        add_not_ready_taint(&mut n);
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": NOT_READY, "effect": "NoSchedule"}])
        );
        let mut n = json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut n);
        assert_eq!(n["spec"]["taints"].as_array().map(Vec::len), Some(2));
    }
}
