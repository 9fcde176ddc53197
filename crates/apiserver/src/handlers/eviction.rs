//! `pods/eviction`: a delete that honours the pod's PodDisruptionBudget, as upstream's
//! `pkg/registry/core/pod/storage/eviction.go`.
//!
//! A pod that is Pending, terminal or already being deleted is deleted at once: it no longer
//! counts toward any budget. Otherwise the budgets of its namespace whose (non-empty)
//! selector picks it are read from the watch cache: none → delete; more than one → 500. An
//! unready pod is deleted without spending the budget when the budget's
//! `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or (`IfHealthyBudget`, the default) when
//! the budget is met (`currentHealthy >= desiredHealthy > 0`); that delete carries a
//! resourceVersion precondition, so a pod that turned Ready meanwhile is not deleted (429).
//! Otherwise the budget is checked and spent: a status older than the spec is 429 ("still
//! being processed"), `disruptionsAllowed` 0 is 429 with a `DisruptionBudget` cause, and else
//! `disruptionsAllowed` is decremented and the pod recorded in `disruptedPods` with the time,
//! written through the budget's status subresource with a resourceVersion precondition (a conflict re-reads the
//! budget and tries again, a few times, then 429). Then the pod is deleted with the
//! eviction's `deleteOptions`. A dry run writes nothing.
//!
//! Not done: upstream's `DisruptionTarget` pod condition before the delete.

use std::collections::BTreeMap;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use rkube_api::selector::LabelSelector;
use serde_json::{json, Value};

use super::read::{find, load};
use super::write::guaranteed_update;
use super::{check_object, Ctx};
use crate::codec;
use crate::object;
use crate::request::{Query, ResourceRequest};
use crate::status::{ApiError, ApiResult, Cause};

/// Budget writes tried before the eviction gives up with 429.
const PDB_WRITE_TRIES: usize = 5;
/// The most `disruptedPods` entries a budget may hold (upstream's `MaxDisruptedPodSize`).
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// The cause type of a refusal by a disruption budget.
const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

pub(crate) async fn evict(ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let ct = codec::content_type(&ctx.headers);
    let mut eviction = codec::decode_body(&ct, &body)?;
    check_object(&ctx, &mut eviction, "Eviction", "policy/v1")?;
    let body_name = object::name(&eviction);
    if !body_name.is_empty() && body_name != ctx.name() {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut opts = eviction
        .get("deleteOptions")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let dry = ctx.query.dry_run()?
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let rv_given = opts.pointer("/preconditions/resourceVersion").is_some();

    let (pod, pod_rev) = load(&ctx).await?;
    if can_ignore_pdb(&pod) {
        // A Pending pod could still turn Ready: pin the delete to the revision looked at.
        if !rv_given && !terminal_or_deleting(&pod) {
            pin_resource_version(&mut opts, pod_rev);
        }
        delete_pod(ctx, &opts).await?;
        return Ok(success());
    }

    let ns = ctx.namespace().to_string();
    let budgets = pod_budgets(&ctx, &ns, &pod).await?;
    let mut pinned = false;
    match budgets.as_slice() {
        [] => {}
        [_, _, ..] => {
            return Err(ApiError::new(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        [(budget, rev)] => {
            let typed: PodDisruptionBudget = serde_json::from_value(budget.clone())
                .map_err(|e| ApiError::internal(format!("decoding the disruption budget: {e}")))?;
            if unhealthy_may_go(&typed, is_pod_ready(&pod)) {
                pinned = true;
            } else {
                spend_budget(&ctx, &ns, typed, *rev, ctx.name(), dry).await?;
            }
        }
    }
    if pinned && !rv_given {
        pin_resource_version(&mut opts, pod_rev);
    }
    let budget_name = budgets
        .first()
        .map(|(b, _)| object::name(b).to_string())
        .unwrap_or_default();
    match delete_pod(ctx, &opts).await {
        Ok(()) => Ok(success()),
        // The pod changed since it was judged unhealthy: the client should try again.
        Err(e) if e.code == 409 && pinned && !rv_given => Err(still_processing(&budget_name)),
        Err(e) => Err(e),
    }
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminal_or_deleting(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Pods whose eviction cannot disrupt anything (upstream's `canIgnorePDB`).
fn can_ignore_pdb(pod: &Value) -> bool {
    terminal_or_deleting(pod) || phase(pod) == "Pending"
}

fn is_pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether an unready pod may go without spending the budget (upstream's
/// `unhealthyPodEvictionPolicy`): always with `AlwaysAllow`; with `IfHealthyBudget` (the
/// default) when the budget is met.
fn unhealthy_may_go(pdb: &PodDisruptionBudget, ready: bool) -> bool {
    if ready {
        return false;
    }
    let policy = pdb
        .spec
        .as_ref()
        .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
    if policy == Some("AlwaysAllow") {
        return true;
    }
    let status = pdb.status.clone().unwrap_or_default();
    status.current_healthy >= status.desired_healthy && status.desired_healthy > 0
}

fn pin_resource_version(opts: &mut Value, rev: i64) {
    if let Some(map) = opts.as_object_mut() {
        let pre = map.entry("preconditions").or_insert_with(|| json!({}));
        if let Some(pre) = pre.as_object_mut() {
            pre.insert("resourceVersion".into(), json!(rev.to_string()));
        }
    }
}

/// The budgets of the pod's namespace whose selector picks it, with their revisions, from a
/// watch cache brought up to the store's current revision. A budget with an empty or
/// invalid selector picks nothing here.
async fn pod_budgets(ctx: &Ctx, ns: &str, pod: &Value) -> ApiResult<Vec<(Value, i64)>> {
    let res = pdb_resource()?;
    let current = ctx.server.store.current_revision().await?;
    ctx.server.cache(res).wait_for(current).await?;
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for cached in ctx
        .server
        .cached_list("policy", "poddisruptionbudgets", Some(ns))
    {
        let Some(sel) = cached
            .value
            .pointer("/spec/selector")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
        else {
            continue;
        };
        let Ok(sel) = LabelSelector::from_typed(Some(&sel)) else {
            continue;
        };
        if sel.is_empty() || !sel.matches(&labels) {
            continue;
        }
        out.push((cached.value.clone(), cached.mod_revision));
    }
    Ok(out)
}

fn pdb_resource() -> ApiResult<&'static rkube_api::ResourceInfo> {
    rkube_api::catalogue::find("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not served"))
}

/// 429: the budget's status is behind its spec, or its write kept conflicting.
fn still_processing(name: &str) -> ApiError {
    let mut e = ApiError::too_many_requests(VIOLATES);
    e.retry_after_seconds = Some(10);
    e.causes.push(Cause {
        reason: DISRUPTION_BUDGET_CAUSE.into(),
        message: format!("The disruption budget {name} is still being processed by the server."),
        field: String::new(),
    });
    e
}

/// The budget's status after spending one disruption on `pod` (upstream's
/// `checkAndDecrement`), or why it cannot be spent.
pub(crate) fn check_and_decrement(
    pdb: &PodDisruptionBudget,
    pod: &str,
    now: jiff::Timestamp,
) -> ApiResult<Value> {
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let mut status = pdb.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < pdb.metadata.generation.unwrap_or(0) {
        return Err(still_processing(&name));
    }
    let res = pdb_resource()?;
    if status.disruptions_allowed < 0 {
        return Err(ApiError::forbidden(
            res,
            &name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = status.disrupted_pods.get_or_insert_with(BTreeMap::new);
    if disrupted.len() > MAX_DISRUPTED_POD_SIZE {
        return Err(ApiError::forbidden(
            res,
            &name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if status.disruptions_allowed == 0 {
        let mut e = ApiError::too_many_requests(VIOLATES);
        e.retry_after_seconds = None;
        e.causes.push(Cause {
            reason: DISRUPTION_BUDGET_CAUSE.into(),
            message: format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status.desired_healthy, status.current_healthy
            ),
            field: String::new(),
        });
        return Err(e);
    }
    // The controller stops counting the pod as healthy until it is deleted (or the entry
    // expires).
    disrupted.insert(pod.to_string(), Time(now));
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        let observed = status.observed_generation;
        let conds = status.conditions.get_or_insert_with(Vec::new);
        let cond = Condition {
            type_: "DisruptionAllowed".into(),
            status: "False".into(),
            reason: "InsufficientPods".into(),
            message: String::new(),
            observed_generation: observed,
            last_transition_time: Time(now),
        };
        match conds.iter_mut().find(|c| c.type_ == cond.type_) {
            Some(c) => {
                if c.status != cond.status {
                    c.status = cond.status;
                    c.last_transition_time = cond.last_transition_time;
                }
                c.reason = cond.reason;
                c.message = cond.message;
                c.observed_generation = cond.observed_generation;
            }
            None => conds.push(cond),
        }
    }
    serde_json::to_value(&status)
        .map_err(|e| ApiError::internal(format!("encoding the disruption budget: {e}")))
}

/// Checks and spends one disruption of the budget, writing its status unless `dry`. A
/// conflicting write re-reads the budget from the store and tries again.
async fn spend_budget(
    ctx: &Ctx,
    ns: &str,
    mut pdb: PodDisruptionBudget,
    mut rev: i64,
    pod: &str,
    dry: bool,
) -> ApiResult<()> {
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let pdb_ctx = Ctx {
        server: ctx.server.clone(),
        req: ResourceRequest {
            resource: pdb_resource()?,
            namespace: Some(ns.to_string()),
            name: Some(name.clone()),
            subresource: Some("status".into()),
            watch_path: false,
        },
        query: Query::default(),
        headers: http::HeaderMap::new(),
        user: ctx.user.clone(),
        warnings: ctx.warnings.clone(),
        audit_annotations: ctx.audit_annotations.clone(),
        track: false,
        path: String::new(),
        raw_query: None,
        upgrade: None,
    };
    let key = object::key(pdb_ctx.req.resource, ns, &name);
    for attempt in 0..PDB_WRITE_TRIES {
        if attempt > 0 {
            let Some((fresh, fresh_rev)) = find(&pdb_ctx, &key, 0).await? else {
                return Err(ApiError::not_found(pdb_ctx.req.resource, &name));
            };
            pdb = serde_json::from_value(fresh)
                .map_err(|e| ApiError::internal(format!("decoding the disruption budget: {e}")))?;
            rev = fresh_rev;
        }
        let status = check_and_decrement(&pdb, pod, jiff::Timestamp::now())?;
        if dry {
            return Ok(());
        }
        let rv = rev.to_string();
        let written = guaranteed_update(
            &pdb_ctx,
            false,
            Some(&rv),
            |cur| {
                let mut new = cur.clone();
                if let Some(map) = new.as_object_mut() {
                    map.insert("status".into(), status.clone());
                }
                Ok(new)
            },
            None,
        )
        .await;
        match written {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(still_processing(&name))
}

/// Deletes the pod with these DeleteOptions, through the ordinary delete.
async fn delete_pod(ctx: Ctx, opts: &Value) -> ApiResult<()> {
    let body = serde_json::to_vec(opts)
        .map_err(|e| ApiError::internal(format!("encoding deleteOptions: {e}")))?;
    let mut del_ctx = ctx;
    del_ctx.req.subresource = None;
    del_ctx.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    super::delete::delete(del_ctx, Bytes::from(body)).await?;
    Ok(())
}

fn success() -> Response {
    codec::json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(status: Value, generation: i64) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b", "namespace": "a",
            "generation": generation}, "spec": {}, "status": status}))
        .expect("pdb")
    }

    #[test]
    fn the_budget_is_checked_then_spent() {
        let now: jiff::Timestamp = "2024-05-01T12:00:00Z".parse().expect("time");
        let base = json!({"observedGeneration": 2, "currentHealthy": 3, "desiredHealthy": 2,
            "expectedPods": 3});
        let with = |allowed: i64| {
            let mut s = base.clone();
            s["disruptionsAllowed"] = json!(allowed);
            s
        };
        // (case, status, generation) -> Ok(allowed after, condition reason) or Err(code, cause)
        type Want = Result<(i64, Option<&'static str>), (u16, &'static str)>;
        let cases: Vec<(&str, Value, i64, Want)> = vec![
            ("one of two is spent", with(2), 2, Ok((1, None))),
            (
                "the last one turns the condition",
                with(1),
                2,
                Ok((0, Some("InsufficientPods"))),
            ),
            (
                "none left is 429",
                with(0),
                2,
                Err((
                    429,
                    "The disruption budget b needs 2 healthy pods and has 3 currently",
                )),
            ),
            (
                "a stale status is 429",
                with(1),
                3,
                Err((
                    429,
                    "The disruption budget b is still being processed by the server.",
                )),
            ),
            ("negative is forbidden", with(-1), 2, Err((403, ""))),
        ];
        for (name, status, generation, want) in cases {
            let got = check_and_decrement(&pdb(status, generation), "p", now);
            match (got, want) {
                (Ok(s), Ok((allowed, reason))) => {
                    assert_eq!(s["disruptionsAllowed"], json!(allowed), "{name}");
                    assert_eq!(
                        s["disruptedPods"]["p"],
                        json!("2024-05-01T12:00:00Z"),
                        "{name}"
                    );
                    assert_eq!(
                        s.pointer("/conditions/0/reason").and_then(Value::as_str),
                        reason,
                        "{name}"
                    );
                }
                (Err(e), Err((code, cause))) => {
                    assert_eq!(e.code, code, "{name}");
                    if !cause.is_empty() {
                        assert_eq!(e.message, VIOLATES, "{name}");
                        assert_eq!(e.causes[0].reason, DISRUPTION_BUDGET_CAUSE, "{name}");
                        assert_eq!(e.causes[0].message, cause, "{name}");
                    }
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unready_pods_go_free_per_the_eviction_policy() {
        let mk = |policy: Option<&str>, current: i32, desired: i32| -> PodDisruptionBudget {
            let mut spec = json!({});
            if let Some(p) = policy {
                spec["unhealthyPodEvictionPolicy"] = json!(p);
            }
            serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": spec,
                "status": {"currentHealthy": current, "desiredHealthy": desired,
                    "disruptionsAllowed": 0, "expectedPods": 3}}))
            .expect("pdb")
        };
        let cases = [
            ("a ready pod spends the budget", mk(None, 3, 2), true, false),
            (
                "default: unready goes when the budget is met",
                mk(None, 2, 2),
                false,
                true,
            ),
            (
                "default: not when it is not met",
                mk(None, 1, 2),
                false,
                false,
            ),
            (
                "default: not when nothing is desired",
                mk(None, 0, 0),
                false,
                false,
            ),
            (
                "IfHealthyBudget as the default",
                mk(Some("IfHealthyBudget"), 1, 2),
                false,
                false,
            ),
            (
                "AlwaysAllow: unready always goes",
                mk(Some("AlwaysAllow"), 1, 2),
                false,
                true,
            ),
        ];
        for (name, pdb, ready, want) in cases {
            assert_eq!(unhealthy_may_go(&pdb, ready), want, "{name}");
        }
    }
}
