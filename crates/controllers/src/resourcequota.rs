//! `resourcequota` (upstream's resourcequota-controller): every ResourceQuota's status holds
//! its hard limits and the usage counted over the namespace's objects, so that admission can
//! charge new objects against it and deleted objects free their share.
//!
//! Keys are quotas. A quota's own event queues it; an event of a counted object (pods,
//! services, claims, config maps, secrets, replication controllers) queues every quota of its
//! namespace; each quota is also recounted every five minutes (upstream's resync), which
//! repairs what admission charged for a write that then failed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::driver::{drive, on_objects, Triggers};
use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "resourcequota";

/// The resources whose objects this controller watches and counts.
const COUNTED: &[&str] = &[
    "pods",
    "services",
    "persistentvolumeclaims",
    "configmaps",
    "secrets",
    "replicationcontrollers",
];

/// Upstream's `--resource-quota-sync-period`.
const RESYNC: Duration = Duration::from_secs(300);

/// The status a quota should have: `hard` from its spec, `used` recounted over `objects`
/// (group, resource plural, object) of its namespace. None when the status is already that.
pub fn desired_status<'a>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
) -> Option<Value> {
    let hard = quota
        .pointer("/spec/hard")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut used = rkube_api::quota::compute_used(quota, objects);
    // Object counts of resources this controller does not watch cannot be recounted: keep
    // what admission charged (upstream watches every resource it can count).
    let previous = rkube_api::quota::resources::resource_list(quota.pointer("/status/used"));
    for (name, value) in used.iter_mut() {
        let unwatched_count = name
            .strip_prefix("count/")
            .is_some_and(|r| !COUNTED.contains(&r));
        if unwatched_count {
            if let Some(prev) = previous.get(name) {
                *value = prev.clone();
            }
        }
    }
    let want = json!({"hard": hard, "used": rkube_api::quota::resources::to_json(&used)});
    let have = quota.get("status").cloned().unwrap_or(Value::Null);
    let same = |k: &str| {
        let a = have.get(k).cloned().unwrap_or_else(|| json!({}));
        let b = want.get(k).cloned().unwrap_or_else(|| json!({}));
        rkube_api::quota::resources::resource_list(Some(&a))
            == rkube_api::quota::resources::resource_list(Some(&b))
    };
    (!(same("hard") && same("used"))).then_some(want)
}

/// Whether a quota's status lags its spec: new, or `spec.hard` changed.
pub fn needs_sync(quota: &ResourceQuota) -> bool {
    let spec = quota.spec.as_ref().and_then(|s| s.hard.as_ref());
    let status = quota.status.as_ref();
    status.and_then(|s| s.hard.as_ref()) != spec || status.and_then(|s| s.used.as_ref()).is_none()
}

struct State {
    client: Client,
    pods: Store<Pod>,
    services: Store<Service>,
    claims: Store<PersistentVolumeClaim>,
    config_maps: Store<ConfigMap>,
    secrets: Store<Secret>,
    controllers: Store<ReplicationController>,
}

/// Queues every quota of the namespace an object of kind `K` lives in.
fn quotas_of_namespace<K>(
    events: crate::driver::Events<K>,
    quotas: Store<ResourceQuota>,
) -> Triggers<ResourceQuota>
where
    K: kube::Resource + Send + 'static,
{
    on_objects(events, true, move |obj: &K| {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        quotas
            .state()
            .into_iter()
            .filter(|q| q.namespace().as_deref() == Some(ns.as_str()))
            .map(|q| ObjectRef::from_obj(q.as_ref()))
            .collect::<Vec<_>>()
    })
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (quotas, quota_events) = ctx.informer::<ResourceQuota>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (services, svc_events) = ctx.informer::<Service>(NAME, &client).await;
    let (claims, pvc_events) = ctx.informer::<PersistentVolumeClaim>(NAME, &client).await;
    let (config_maps, cm_events) = ctx.informer::<ConfigMap>(NAME, &client).await;
    let (secrets, secret_events) = ctx.informer::<Secret>(NAME, &client).await;
    let (controllers, rc_events) = ctx.informer::<ReplicationController>(NAME, &client).await;
    let triggers = vec![
        // Admission's own writes of status.used do not trigger a recount (upstream ignores
        // status-only updates): the pod cache may not hold the pod just charged yet.
        on_objects(quota_events, false, |q: &ResourceQuota| {
            needs_sync(q).then(|| ObjectRef::from_obj(q))
        }),
        quotas_of_namespace(pod_events, quotas.clone()),
        quotas_of_namespace(svc_events, quotas.clone()),
        quotas_of_namespace(pvc_events, quotas.clone()),
        quotas_of_namespace(cm_events, quotas.clone()),
        quotas_of_namespace(secret_events, quotas.clone()),
        quotas_of_namespace(rc_events, quotas.clone()),
    ];
    let state = Arc::new(State {
        client,
        pods,
        services,
        claims,
        config_maps,
        secrets,
        controllers,
    });
    drive(NAME, &ctx, quotas, triggers, state, reconcile).await
}

/// The namespace's objects of one kind as JSON.
fn in_namespace<K>(store: &Store<K>, ns: &str) -> Vec<Value>
where
    K: kube::Resource + Clone + serde::Serialize + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .into_iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
        .collect()
}

async fn reconcile(quota: Arc<ResourceQuota>, st: Arc<State>) -> Result<Action, Error> {
    for ready in [
        st.pods.wait_until_ready().await.is_ok(),
        st.services.wait_until_ready().await.is_ok(),
        st.claims.wait_until_ready().await.is_ok(),
        st.config_maps.wait_until_ready().await.is_ok(),
        st.secrets.wait_until_ready().await.is_ok(),
        st.controllers.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return Err(Error::CacheStopped(NAME));
        }
    }
    let ns = quota.namespace().unwrap_or_default();
    let objects: Vec<(&str, &str, Vec<Value>)> = vec![
        ("", "pods", in_namespace(&st.pods, &ns)),
        ("", "services", in_namespace(&st.services, &ns)),
        ("", "persistentvolumeclaims", in_namespace(&st.claims, &ns)),
        ("", "configmaps", in_namespace(&st.config_maps, &ns)),
        ("", "secrets", in_namespace(&st.secrets, &ns)),
        (
            "",
            "replicationcontrollers",
            in_namespace(&st.controllers, &ns),
        ),
    ];
    let flat = objects
        .iter()
        .flat_map(|(g, r, objs)| objs.iter().map(move |o| (*g, *r, o)));
    let quota_json = serde_json::to_value(quota.as_ref()).unwrap_or(Value::Null);
    let Some(status) = desired_status(&quota_json, flat) else {
        return Ok(Action::requeue(RESYNC));
    };
    let mut updated = quota.as_ref().clone();
    updated.status = serde_json::from_value(status).ok();
    let api = Api::<ResourceQuota>::namespaced(st.client.clone(), &ns);
    match api
        .replace_status(&quota.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(Action::requeue(RESYNC)),
        // A newer quota is on its way through the watch; it will be recounted.
        Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "q"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}, "status": {"phase": phase}})
    }

    #[test]
    fn status_counts_live_pods_and_copies_hard_limits() {
        let quota = json!({"metadata": {"name": "q1", "namespace": "q"},
            "spec": {"hard": {"pods": "5", "requests.cpu": "1"}}});
        let pods = [
            pod("a", "Running"),
            pod("b", "Pending"),
            pod("done", "Succeeded"),
        ];
        let status = desired_status(&quota, pods.iter().map(|p| ("", "pods", p))).expect("change");
        assert_eq!(status["hard"], json!({"pods": "5", "requests.cpu": "1"}));
        assert_eq!(status["used"]["pods"], json!("2"));
        assert_eq!(status["used"]["requests.cpu"], json!("200m"));
    }

    #[test]
    fn counts_of_unwatched_resources_keep_what_admission_charged() {
        let quota = json!({"metadata": {"name": "q1", "namespace": "q"},
            "spec": {"hard": {"count/deployments.apps": "2", "count/configmaps": "3"}},
            "status": {"hard": {"count/deployments.apps": "2", "count/configmaps": "3"},
                       "used": {"count/deployments.apps": "1", "count/configmaps": "2"}}});
        let status = desired_status(&quota, std::iter::empty()).expect("configmaps recounted");
        assert_eq!(status["used"]["count/deployments.apps"], json!("1"));
        assert_eq!(status["used"]["count/configmaps"], json!("0"));
    }

    #[test]
    fn only_spec_changes_or_a_missing_status_queue_a_quota() {
        let q = |v: Value| serde_json::from_value::<ResourceQuota>(v).expect("quota");
        assert!(needs_sync(&q(json!({"spec": {"hard": {"pods": "1"}}}))));
        assert!(needs_sync(&q(json!({"spec": {"hard": {"pods": "2"}},
            "status": {"hard": {"pods": "1"}, "used": {"pods": "0"}}}))));
        assert!(!needs_sync(&q(json!({"spec": {"hard": {"pods": "1"}},
            "status": {"hard": {"pods": "1"}, "used": {"pods": "1"}}}))));
    }

    #[test]
    fn an_up_to_date_status_needs_no_write() {
        let quota = json!({"metadata": {"name": "q1", "namespace": "q"},
            "spec": {"hard": {"pods": "5"}}, "status": {"hard": {"pods": "5"}, "used": {"pods": "1"}}});
        let pods = [pod("a", "Running")];
        assert_eq!(
            desired_status(&quota, pods.iter().map(|p| ("", "pods", p))),
            None
        );
        assert!(
            desired_status(&quota, std::iter::empty()).is_some(),
            "the pod went away"
        );
    }
}
