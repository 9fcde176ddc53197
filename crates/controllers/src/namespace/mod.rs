//! `namespace` (upstream's namespace controller): empties a namespace being deleted, then
//! releases it.
//!
//! A namespace with a `deletionTimestamp` (phase Terminating, set by the API server) whose
//! `spec.finalizers` still holds `kubernetes` has all its content deleted: every namespaced
//! resource discovery lists with the `delete` verb (the preferred version of each group, as
//! upstream's `ServerPreferredNamespacedResources`), by a collection delete where the resource
//! supports `deletecollection`, else item by item, in the background. Then each is listed again:
//! what remains is reported in the namespace's status conditions
//! (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, and the failure conditions,
//! with upstream's reasons and messages, see [`deletion`]), and the namespace is looked at again
//! after half the estimated time (pods' grace periods, 15 s for finalizers) plus a second. Once
//! nothing remains, `kubernetes` is removed through `namespaces/{name}/finalize`; with no
//! finalizer left, the API server deletes the namespace in that update, as upstream's.
//!
//! A partial discovery failure is reported (`NamespaceDeletionDiscoveryFailure`) and the
//! namespace is not finalized until discovery is complete, since unlisted content could be
//! left behind. Failures, conflicts included, are errors of the reconcile: the driver retries
//! them with its per-key backoff, as upstream's `AddRateLimited`. A namespace that is not
//! being deleted is left alone until it changes.

pub mod deletion;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use crate::discovery::{preferred_resources, Resource};
use crate::driver::{drive, on_objects};
use crate::error::is_not_found;
use crate::{ControllerContext, Error};
use deletion::{finalized_spec, gvr_string, pod_estimate, remaining, Pass, Remaining};

pub const NAME: &str = "namespace";

struct State {
    client: Client,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (namespaces, events) = ctx.informer::<Namespace>(NAME, &client).await;
    let triggers = vec![on_objects(events, false, |ns: &Namespace| {
        Some(ObjectRef::from_obj(ns))
    })];
    let state = Arc::new(State { client });
    drive(NAME, &ctx, namespaces, triggers, state, reconcile).await
}

async fn reconcile(ns: Arc<Namespace>, st: Arc<State>) -> Result<Action, Error> {
    // A live namespace has nothing to do until it is deleted, which is a change.
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    match delete_namespace(&st.client, &name).await {
        Ok(None) => Ok(Action::await_change()),
        Ok(Some(after)) => Ok(Action::requeue(after)),
        Err(Failure::Content(msg)) => Err(content_error(&name, msg)),
        Err(Failure::Api(e)) => Err(e.into()),
    }
}

enum Failure {
    /// Content that could not be deleted or discovered (reported in the conditions).
    Content(String),
    Api(kube::Error),
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Failure::Api(e)
    }
}

/// The reconcile error for content that could not be deleted or discovered. `Error` has no
/// variant for it, so the message (already in the namespace's conditions) travels as the
/// client error of the requests that failed.
fn content_error(namespace: &str, message: String) -> Error {
    Error::NamespaceDeletion {
        namespace: namespace.to_string(),
        message,
    }
}

/// Upstream's `namespacedResourcesDeleter.Delete`: `Some(wait)` while content remains.
async fn delete_namespace(client: &Client, name: &str) -> Result<Option<Duration>, Failure> {
    let api = Api::<Namespace>::all(client.clone());
    // Decide on the latest namespace, not the cache: several parties edit it while it ends.
    let Some(ns) = api.get_opt(name).await? else {
        return Ok(None);
    };
    if ns.metadata.deletion_timestamp.is_none() || finalized_spec(&ns).is_none() {
        return Ok(None);
    }
    let pass = delete_all_content(client, name).await;
    update_status(&api, ns.clone(), &pass).await?;
    if let Some(e) = &pass.discovery_error {
        return Err(Failure::Content(e.clone()));
    }
    if !pass.content_errors.is_empty() {
        return Err(Failure::Content(pass.content_errors.join(", ")));
    }
    if let Some(after) = pass.requeue_after() {
        tracing::debug!(
            controller = NAME,
            namespace = name,
            estimate = pass.estimate,
            "content remains"
        );
        return Ok(Some(after));
    }
    finalize(&api, ns).await?;
    Ok(None)
}

/// Removes `kubernetes` from `spec.finalizers` through the finalize subresource.
async fn finalize(api: &Api<Namespace>, mut ns: Namespace) -> Result<(), Failure> {
    let Some(left) = finalized_spec(&ns) else {
        return Ok(());
    };
    let name = ns.name_any();
    ns.spec.get_or_insert_with(Default::default).finalizers = Some(left);
    match api
        .replace_subresource::<Namespace>("finalize", &name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            tracing::info!(
                controller = NAME,
                namespace = name,
                "namespace emptied and finalized"
            );
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the pass's conditions (and phase Terminating) if they change anything.
async fn update_status(
    api: &Api<Namespace>,
    mut ns: Namespace,
    pass: &Pass,
) -> Result<(), Failure> {
    let status = ns.status.get_or_insert_with(Default::default);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let existing = status.conditions.clone().unwrap_or_default();
    let phase_ok = status.phase.as_deref() == Some("Terminating");
    let new = deletion::update_conditions(&existing, &pass.conditions(), &now);
    if new.is_none() && phase_ok {
        return Ok(());
    }
    if let Some(c) = new {
        status.conditions = Some(c);
    }
    status.phase = Some("Terminating".into());
    let name = ns.name_any();
    match api.replace_status(&name, &PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Upstream's `deleteAllContent`: one pass over every deletable namespaced resource.
async fn delete_all_content(client: &Client, namespace: &str) -> Pass {
    let mut pass = Pass::default();
    let discovered = match preferred_resources(client).await {
        Ok(d) => d,
        Err(e) => {
            pass.discovery_error = Some(e.to_string());
            return pass;
        }
    };
    if let Some(msg) = discovered.failure_message() {
        pass.discovery_error = Some(msg);
        pass.discovery_failed_groups = discovered.failed.len();
    }
    for r in discovered.supporting(&["delete"]).filter(|r| r.namespaced) {
        let (rem, err) = match delete_resource_content(client, r, namespace).await {
            Ok(x) => x,
            Err(e) => (Remaining::default(), Some(e.to_string())),
        };
        pass.add(r.group_resource(), rem, err);
    }
    pass
}

/// Upstream's `deleteAllContentForGroupVersionResource`.
async fn delete_resource_content(
    client: &Client,
    r: &Resource,
    namespace: &str,
) -> Result<(Remaining, Option<String>), kube::Error> {
    let gvr = gvr_string(&r.api.group, &r.api.version, &r.api.plural);
    let estimate = if r.api.group.is_empty() && r.api.plural == "pods" {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await?;
        pod_estimate(&pods.items)
    } else {
        0
    };
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &r.api);
    // The garbage collector must not orphan anything the namespace takes with it.
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let mut collected = false;
    if r.supports(&["deletecollection"]) {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collected = true,
            // Advertised but not served (upstream's 405/404 special case): item by item.
            Err(e) if is_not_found(&e) || is_method_not_supported(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if !r.supports(&["list"]) {
        return Ok((Remaining::default(), None));
    }
    if !collected {
        for item in api.list(&ListParams::default()).await?.items {
            match api.delete(&item.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let left = api.list(&ListParams::default()).await?;
    let metas: Vec<_> = left.items.iter().map(|o| &o.metadata).collect();
    Ok(remaining(&metas, estimate, namespace, &gvr))
}

fn is_method_not_supported(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 405)
}
