//! ResourceQuota: a write that a namespace's quotas track is charged to them before it is
//! stored. The quotas are read from the store (not the cache) for the latest `status.used`;
//! a request over a hard limit, or charged to a quota the quota controller has not counted
//! yet, is refused with upstream's 403 (`exceeded quota: q1, requested: pods=1, used:
//! pods=1, limited: pods=1`). Otherwise each quota's new `status.used` is written back with
//! a compare-and-swap on the revision read, so two requests racing for the last unit cannot
//! both get it: the loser re-reads the quotas whose write failed and is checked again.
//! The decisions are `rkube_api::quota`'s.

use async_trait::async_trait;
use rkube_api::quota::{self, QuotaRequest, QuotaUpdate};
use serde_json::Value;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::{ApiError, ApiResult};

/// How often the check is repeated after a quota changed under it (upstream's three
/// retries after the first try).
const RETRIES: usize = 3;

#[derive(Debug)]
pub struct ResourceQuota;

#[async_trait]
impl Plugin for ResourceQuota {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        let Some(op) = charged(req) else {
            return Ok(());
        };
        let (group, plural) = (req.resource.group, req.resource.plural);
        // Most writes are nothing quota counts: no store read for them.
        if quota::ignored_resource(group, plural)
            || !quota::handles(group, plural, req.subresource(), op)
        {
            return Ok(());
        }
        let mut quotas = req
            .server
            .read_objects("", "resourcequotas", Some(req.namespace))
            .await?;
        let now = jiff::Timestamp::now();
        for attempt in 0..=RETRIES {
            if quotas.is_empty() {
                return Ok(());
            }
            let values: Vec<Value> = quotas.iter().map(|(q, _)| q.clone()).collect();
            let request = QuotaRequest {
                group,
                resource: plural,
                subresource: req.subresource(),
                operation: op,
                object: obj,
                old_object: req.old,
                now,
            };
            let updates = quota::check_request(&values, &request)
                .map_err(|e| req.forbidden(&e.to_string()))?;
            if req.dry_run || updates.is_empty() {
                return Ok(());
            }
            let mut failed = Vec::new();
            for update in &updates {
                let Some((quota, revision)) = quotas.get(update.index) else {
                    continue;
                };
                let written = req
                    .server
                    .replace_object(
                        "",
                        "resourcequotas",
                        req.namespace,
                        &update.name,
                        *revision,
                        &with_used(quota, update),
                    )
                    .await?;
                if !written {
                    failed.push(update.name.clone());
                }
            }
            let Some(last_failed) = failed.last() else {
                return Ok(());
            };
            if attempt == RETRIES {
                // Upstream returns the last failed status update's conflict as it is.
                return Err(
                    match rkube_api::catalogue::find("", "v1", "resourcequotas") {
                        Some(res) => ApiError::stale(res, last_failed),
                        None => ApiError::internal("resource quotas are not served"),
                    },
                );
            }
            // The quotas that were written have been charged; only the others are checked
            // again, at their current state. A quota deleted meanwhile drops out.
            quotas = req
                .server
                .read_objects("", "resourcequotas", Some(req.namespace))
                .await?
                .into_iter()
                .filter(|(q, _)| failed.iter().any(|f| f == crate::object::name(q)))
                .collect();
        }
        Ok(())
    }
}

/// The quota operation of a request quota admission looks at: creates and updates of the
/// object itself in a namespace (not namespaces themselves), and pod resizes, which the pod
/// evaluator charges. `rkube_api::quota` decides which resources it handles.
fn charged(req: &Request<'_>) -> Option<quota::Operation> {
    charged_op(req.op, req.subresource(), req.namespace, req.resource.kind)
}

fn charged_op(
    op: Operation,
    subresource: &str,
    namespace: &str,
    kind: &str,
) -> Option<quota::Operation> {
    let op = match op {
        Operation::Create => quota::Operation::Create,
        Operation::Update => quota::Operation::Update,
        Operation::Delete => return None,
    };
    if !matches!(subresource, "" | "resize") || namespace.is_empty() || kind == "Namespace" {
        return None;
    }
    Some(op)
}

/// The quota with its new `status.used`.
fn with_used(quota: &Value, update: &QuotaUpdate) -> Value {
    let mut quota = quota.clone();
    let used = quota::resources::to_json(&update.used);
    if let Some(map) = quota.as_object_mut() {
        let status = map
            .entry("status")
            .or_insert_with(|| Value::Object(Default::default()));
        if !status.is_object() {
            *status = Value::Object(Default::default());
        }
        if let Some(status) = status.as_object_mut() {
            status.insert("used".to_string(), used);
        }
    }
    quota
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_writes_of_namespaced_objects_and_pod_resizes_are_charged() {
        let cases = [
            (
                Operation::Create,
                "",
                "ns",
                "Pod",
                Some(quota::Operation::Create),
            ),
            (
                Operation::Update,
                "",
                "ns",
                "Service",
                Some(quota::Operation::Update),
            ),
            (
                Operation::Update,
                "resize",
                "ns",
                "Pod",
                Some(quota::Operation::Update),
            ),
            (
                Operation::Update,
                "status",
                "ns",
                "PersistentVolumeClaim",
                None,
            ),
            (Operation::Delete, "", "ns", "Pod", None),
            (Operation::Create, "", "", "Node", None),
            (Operation::Create, "", "ns", "Namespace", None),
        ];
        for (op, sub, ns, kind, want) in cases {
            assert_eq!(charged_op(op, sub, ns, kind), want, "{op:?} {kind}/{sub}");
        }
    }

    #[test]
    fn the_new_usage_replaces_status_used_and_keeps_the_rest() {
        let q = json!({
            "metadata": {"name": "q1", "resourceVersion": "7"},
            "spec": {"hard": {"pods": "2"}},
            "status": {"hard": {"pods": "2"}, "used": {"pods": "0"}},
        });
        let update = QuotaUpdate {
            index: 0,
            name: "q1".into(),
            used: quota::resources::resource_list(Some(&json!({"pods": "1"}))),
        };
        let out = with_used(&q, &update);
        assert_eq!(
            out["status"],
            json!({"hard": {"pods": "2"}, "used": {"pods": "1"}})
        );
        assert_eq!(out["spec"], q["spec"]);
        let bare = with_used(&json!({"metadata": {"name": "q1"}}), &update);
        assert_eq!(bare["status"], json!({"used": {"pods": "1"}}));
    }
}
