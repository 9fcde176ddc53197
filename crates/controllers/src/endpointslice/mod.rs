//! `endpointslice` (upstream's endpointslice-controller): every Service with a selector has
//! EndpointSlices listing the pods it selects, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` and owned by the
//! Service, so the garbage collector removes them with it.
//!
//! Keys are services. A service's own events queue it; a pod event queues the services whose
//! selector picks the pod and those whose slices still list it (it may have stopped
//! matching); an event of a managed slice queues its service. The planning is pure
//! ([`plan`]); the driver reads the caches, writes the plan, and remembers what it wrote
//! ([`SliceTracker`], upstream's `EndpointSliceTracker`) so that it does not plan again from a
//! cache that has not seen its own writes yet (which would create duplicate slices).
//!
//! Unlike upstream, which leaves them alone, the slices this controller made for a service
//! that has since lost its selector (or become `ExternalName`) are deleted: nothing else
//! would ever update them. Slices of other managers (the mirroring controller's) are never
//! touched.

pub mod plan;
pub mod pods;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::driver::{drive, on_objects, Events};
use crate::error::{is_conflict, is_namespace_terminating, is_not_found};
use crate::{ControllerContext, Error};

pub use plan::{
    Observed, Plan, CONTROLLER_NAME, DEFAULT_MAX_ENDPOINTS_PER_SLICE, MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
};

pub const NAME: &str = "endpointslice";

/// How soon a service is looked at again when a pod's node is unknown or the cache lags.
const RETRY: Duration = Duration::from_secs(1);

/// What this controller wrote per service, until its cache shows it (upstream's
/// `EndpointSliceTracker`): slice uid to the resourceVersion written, or None for a delete.
/// rkube's resourceVersions are store revisions, so "the cache has caught up" is a numeric
/// comparison.
#[derive(Debug, Default)]
pub struct SliceTracker {
    expected: Mutex<HashMap<String, HashMap<String, Option<u64>>>>,
}

fn revision(slice: &EndpointSlice) -> u64 {
    slice
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

impl SliceTracker {
    /// Records a slice written (created or updated) for service `key`.
    pub fn written(&self, key: &str, slice: &EndpointSlice) {
        if let Some(uid) = slice.metadata.uid.clone() {
            self.lock()
                .entry(key.to_string())
                .or_default()
                .insert(uid, Some(revision(slice)));
        }
    }

    /// Records a slice deleted for service `key`.
    pub fn deleted(&self, key: &str, slice: &EndpointSlice) {
        if let Some(uid) = slice.metadata.uid.clone() {
            self.lock()
                .entry(key.to_string())
                .or_default()
                .insert(uid, None);
        }
    }

    /// Whether `cached` (the cache's slices of the service's namespace) lacks one of the
    /// writes recorded for `key`. Writes the cache shows are forgotten.
    pub fn is_stale(&self, key: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let mut all = self.lock();
        let Some(expected) = all.get_mut(key) else {
            return false;
        };
        expected.retain(|uid, want| {
            let seen = cached
                .iter()
                .find(|s| s.metadata.uid.as_deref() == Some(uid.as_str()));
            let caught_up = match (want, seen) {
                (None, None) => true,
                (None, Some(_)) => false,
                (Some(_), None) => false,
                (Some(rv), Some(s)) => revision(s) >= *rv,
            };
            !caught_up
        });
        let stale = !expected.is_empty();
        if !stale {
            all.remove(key);
        }
        stale
    }

    /// Forgets a service (deleted): whatever was written for it no longer matters, and a
    /// service recreated under the same name starts afresh.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Drops a deleted slice from whatever was expected of it (upstream's `HandleDeletion`):
    /// a write the cache can no longer show must not keep its service stale forever.
    pub fn slice_deleted(&self, slice: &EndpointSlice) {
        let Some(uid) = slice.metadata.uid.as_deref() else {
            return;
        };
        self.lock().retain(|_, expected| {
            expected.remove(uid);
            !expected.is_empty()
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Option<u64>>>> {
        self.expected.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The slices `controller_name` manages for service `name` in `ns`, without those being
/// deleted (upstream drops them so a slow deletion cannot wedge the controller).
pub fn managed_slices(
    slices: &Store<EndpointSlice>,
    ns: &str,
    name: &str,
    controller_name: &str,
) -> Vec<EndpointSlice> {
    let mut out: Vec<EndpointSlice> = slices
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            labels
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == Some(name)
                && labels
                    .and_then(|l| l.get(MANAGED_BY_LABEL))
                    .map(String::as_str)
                    == Some(controller_name)
        })
        .map(|s| (*s).clone())
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

struct State {
    client: Client,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    tracker: Arc<SliceTracker>,
    max_endpoints: usize,
}

/// The services of a pod's namespace that select it, or whose slices this controller made
/// still list it.
fn services_of_pod(
    pod: &Pod,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
) -> Vec<ObjectRef<Service>> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let mut keys: Vec<ObjectRef<Service>> = services
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_some_and(|sel| pods::selects(sel, pod.metadata.labels.as_ref()))
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect();
    for slice in slices.state() {
        let labels = slice.metadata.labels.as_ref();
        let ours = labels
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str)
            == Some(CONTROLLER_NAME);
        if !ours || slice.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        let lists_pod = slice.endpoints.iter().any(|e| {
            e.target_ref
                .as_ref()
                .is_some_and(|t| t.name.as_deref() == Some(name.as_str()))
        });
        if let (true, Some(svc)) = (lists_pod, labels.and_then(|l| l.get(SERVICE_NAME_LABEL))) {
            keys.push(ObjectRef::new(svc).within(&ns));
        }
    }
    keys
}

/// The service key a slice of this controller belongs to.
fn service_of_slice(slice: &EndpointSlice, controller_name: &str) -> Option<ObjectRef<Service>> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(controller_name) {
        return None;
    }
    let svc = labels.get(SERVICE_NAME_LABEL)?;
    Some(ObjectRef::new(svc).within(slice.metadata.namespace.as_deref()?))
}

/// Passes `events` on, dropping each deleted slice from `tracker` first.
pub(crate) fn forget_deleted_slices(
    events: Events<EndpointSlice>,
    tracker: Arc<SliceTracker>,
) -> Events<EndpointSlice> {
    events
        .inspect(move |ev| {
            if let watcher::Event::Delete(slice) = ev {
                tracker.slice_deleted(slice);
            }
        })
        .boxed()
}

/// Passes `events` on, forgetting each deleted object's key (`namespace/name`) in `tracker`
/// first: a Service here, an Endpoints for the mirroring controller.
pub(crate) fn forget_deleted_services<K: Resource + Send + 'static>(
    events: Events<K>,
    tracker: Arc<SliceTracker>,
) -> Events<K> {
    events
        .inspect(move |ev| {
            if let watcher::Event::Delete(obj) = ev {
                tracker.forget(&format!(
                    "{}/{}",
                    obj.namespace().unwrap_or_default(),
                    obj.name_any()
                ));
            }
        })
        .boxed()
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (services, svc_events) = ctx.informer::<Service>(NAME, &client).await;
    let (pods, pod_events) = ctx.informer::<Pod>(NAME, &client).await;
    let (slices, slice_events) = ctx.informer::<EndpointSlice>(NAME, &client).await;
    let (nodes, _node_events) = ctx.informer::<Node>(NAME, &client).await;
    let (svc_store, slice_store) = (services.clone(), slices.clone());
    let tracker = Arc::new(SliceTracker::default());
    let (svc_events, slice_events) = (
        forget_deleted_services(svc_events, tracker.clone()),
        forget_deleted_slices(slice_events, tracker.clone()),
    );
    let triggers = vec![
        on_objects(svc_events, true, |s: &Service| Some(ObjectRef::from_obj(s))),
        on_objects(pod_events, true, move |p: &Pod| {
            services_of_pod(p, &svc_store, &slice_store)
        }),
        on_objects(slice_events, true, |s: &EndpointSlice| {
            service_of_slice(s, CONTROLLER_NAME)
        }),
    ];
    let state = Arc::new(State {
        client,
        pods,
        slices,
        nodes,
        tracker,
        max_endpoints: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
    });
    drive(NAME, &ctx, services, triggers, state, reconcile).await
}

/// Writes `plan` for `service`: creates (unless the service is going away), updates,
/// deletes. A conflict or a terminating namespace ends the write early without an error.
pub(crate) async fn apply_plan(
    api: &Api<EndpointSlice>,
    tracker: &SliceTracker,
    key: &str,
    service_deleting: bool,
    plan: Plan,
) -> Result<bool, Error> {
    let pp = PostParams::default();
    if !service_deleting {
        for slice in &plan.create {
            match api.create(&pp, slice).await {
                Ok(made) => tracker.written(key, &made),
                Err(e) if is_namespace_terminating(&e) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        }
    }
    for slice in &plan.update {
        let name = slice.name_any();
        match api.replace(&name, &pp, slice).await {
            Ok(done) => tracker.written(key, &done),
            Err(e) if is_conflict(&e) || is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    for slice in &plan.delete {
        match api
            .delete(&slice.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => tracker.deleted(key, slice),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

async fn reconcile(service: Arc<Service>, st: Arc<State>) -> Result<Action, Error> {
    for ready in [
        st.pods.wait_until_ready().await.is_ok(),
        st.slices.wait_until_ready().await.is_ok(),
        st.nodes.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return Err(Error::CacheStopped(NAME));
        }
    }
    let ns = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let key = format!("{ns}/{name}");
    let in_ns: Vec<Arc<EndpointSlice>> = st
        .slices
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    if st.tracker.is_stale(&key, &in_ns) {
        // The slice events on their way queue the service again; this is a safety net.
        return Ok(Action::requeue(RETRY));
    }
    let existing = managed_slices(&st.slices, &ns, &name, CONTROLLER_NAME);
    let spec = service.spec.as_ref();
    let external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    let api = Api::<EndpointSlice>::namespaced(st.client.clone(), &ns);
    if external || spec.and_then(|s| s.selector.as_ref()).is_none() {
        let plan = Plan {
            delete: existing,
            ..Default::default()
        };
        apply_plan(&api, &st.tracker, &key, true, plan).await?;
        return Ok(Action::await_change());
    }

    let plan = {
        let all_pods = st.pods.state();
        let selected = pods::selected_pods(&service, all_pods.iter().map(|p| p.as_ref()));
        let node_zone = |node: &str| -> Option<Option<String>> {
            let n = st.nodes.get(&ObjectRef::new(node))?;
            Some(n.labels().get(pods::ZONE_LABEL).cloned())
        };
        let obs = Observed {
            node_zone: &node_zone,
            max_endpoints: st.max_endpoints,
            trigger_time: pods::trigger_time(&service, &selected),
            controller_name: CONTROLLER_NAME,
        };
        plan::plan(&service, &selected, &existing, &obs)
    };
    let retry = !plan.missing_nodes.is_empty();
    if retry {
        tracing::info!(service = %key, nodes = ?plan.missing_nodes, "skipping pods on unknown nodes");
    }
    let deleting = service.metadata.deletion_timestamp.is_some();
    let finished = apply_plan(&api, &st.tracker, &key, deleting, plan).await?;
    if !finished || retry {
        return Ok(Action::requeue(RETRY));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn slice(uid: &str, rv: u64) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("web-{uid}")),
                namespace: Some("a".into()),
                uid: Some(uid.into()),
                resource_version: Some(rv.to_string()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        }
    }

    enum Step {
        Written(&'static str, u64),
        Deleted(&'static str),
        SliceDeleted(&'static str),
        Forget,
    }

    /// A table case: its name, the tracker calls, the cached slices (uid, resourceVersion),
    /// and whether the service is stale after them.
    type Case = (&'static str, Vec<Step>, Vec<(&'static str, u64)>, bool);

    #[test]
    fn tracker_is_stale_until_the_cache_shows_its_writes_or_they_are_moot() {
        use Step::*;
        let key = "a/web";
        let cases: Vec<Case> = vec![
            ("nothing written", vec![], vec![], false),
            (
                "written, not cached yet",
                vec![Written("s1", 5)],
                vec![],
                true,
            ),
            (
                "written, cache behind",
                vec![Written("s1", 5)],
                vec![("s1", 4)],
                true,
            ),
            (
                "written, cache caught up",
                vec![Written("s1", 5)],
                vec![("s1", 5)],
                false,
            ),
            (
                "deleted, still cached",
                vec![Deleted("s1")],
                vec![("s1", 5)],
                true,
            ),
            (
                "deleted, gone from cache",
                vec![Deleted("s1")],
                vec![],
                false,
            ),
            (
                "written, then deleted by someone else before the cache saw it",
                vec![Written("s1", 5), SliceDeleted("s1")],
                vec![],
                false,
            ),
            (
                "another slice's deletion leaves the expectation",
                vec![Written("s1", 5), SliceDeleted("s2")],
                vec![],
                true,
            ),
            (
                "service deleted",
                vec![Written("s1", 5), Written("s2", 6), Forget],
                vec![],
                false,
            ),
        ];
        for (name, steps, cached, want) in cases {
            let tracker = SliceTracker::default();
            for step in steps {
                match step {
                    Written(uid, rv) => tracker.written(key, &slice(uid, rv)),
                    Deleted(uid) => tracker.deleted(key, &slice(uid, 0)),
                    SliceDeleted(uid) => tracker.slice_deleted(&slice(uid, 0)),
                    Forget => tracker.forget(key),
                }
            }
            let cached: Vec<Arc<EndpointSlice>> = cached
                .into_iter()
                .map(|(uid, rv)| Arc::new(slice(uid, rv)))
                .collect();
            assert_eq!(tracker.is_stale(key, &cached), want, "{name}");
            assert!(!tracker.is_stale("a/other", &cached), "{name}: other keys");
        }
    }

    #[tokio::test]
    async fn deletion_events_clear_the_tracker() {
        use futures::stream;
        let tracker = Arc::new(SliceTracker::default());
        tracker.written("a/web", &slice("s1", 5));
        tracker.written("a/api", &slice("s2", 5));
        let slices: Events<EndpointSlice> =
            stream::iter(vec![watcher::Event::Delete(slice("s1", 5))]).boxed();
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("api".into()),
                namespace: Some("a".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let services: Events<Service> = stream::iter(vec![watcher::Event::Delete(svc)]).boxed();
        assert_eq!(
            forget_deleted_slices(slices, tracker.clone())
                .collect::<Vec<_>>()
                .await
                .len(),
            1,
            "events pass through"
        );
        forget_deleted_services(services, tracker.clone())
            .collect::<Vec<_>>()
            .await;
        assert!(!tracker.is_stale("a/web", &[]));
        assert!(!tracker.is_stale("a/api", &[]));
    }
}
