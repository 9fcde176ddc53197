//! `serviceaccount` (upstream's serviceaccounts-controller): every active namespace has the
//! ServiceAccount `default`; one deleted is made again.
//!
//! Keys are namespaces. A namespace event queues its namespace, and so does an event of a
//! ServiceAccount the controller ensures (upstream reacts to deletions; any event is harmless
//! since reconcile reads the cache). A create that races another, or that meets a terminating
//! namespace, is not an error.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects};
use crate::error::{is_already_exists, is_namespace_terminating};
use crate::{ControllerContext, Error};

pub const NAME: &str = "serviceaccount";

/// The service accounts every namespace gets (upstream's default options).
pub const SERVICE_ACCOUNTS_TO_ENSURE: &[&str] = &["default"];

/// Whether a namespace takes new content: phase `Active` (upstream checks exactly this).
pub fn is_active(ns: &Namespace) -> bool {
    ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Active")
}

/// The ServiceAccounts to create in `ns`, given which names exist there already: none unless
/// the namespace is active.
pub fn missing_service_accounts(
    ns: &Namespace,
    exists: impl Fn(&str) -> bool,
) -> Vec<ServiceAccount> {
    if !is_active(ns) {
        return Vec::new();
    }
    let namespace = ns.name_any();
    SERVICE_ACCOUNTS_TO_ENSURE
        .iter()
        .filter(|name| !exists(name))
        .map(|name| ServiceAccount {
            metadata: ObjectMeta {
                name: Some((*name).to_string()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect()
}

struct State {
    client: Client,
    accounts: Store<ServiceAccount>,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (namespaces, ns_events) = ctx.informer::<Namespace>(NAME, &client).await;
    let (accounts, sa_events) = ctx.informer::<ServiceAccount>(NAME, &client).await;
    let triggers = vec![
        on_objects(ns_events, false, |ns: &Namespace| {
            Some(ObjectRef::from_obj(ns))
        }),
        on_objects(sa_events, true, |sa: &ServiceAccount| {
            let ensured = SERVICE_ACCOUNTS_TO_ENSURE.contains(&sa.name_any().as_str());
            sa.namespace()
                .filter(|_| ensured)
                .map(|ns| ObjectRef::<Namespace>::new(&ns))
        }),
    ];
    let state = Arc::new(State { client, accounts });
    drive(NAME, &ctx, namespaces, triggers, state, reconcile).await
}

async fn reconcile(ns: Arc<Namespace>, st: Arc<State>) -> Result<Action, Error> {
    st.accounts
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped("serviceaccount"))?;
    let namespace = ns.name_any();
    let missing = missing_service_accounts(&ns, |name| {
        st.accounts
            .get(&ObjectRef::new(name).within(&namespace))
            .is_some()
    });
    let api = Api::<ServiceAccount>::namespaced(st.client.clone(), &namespace);
    let mut first_error = None;
    for sa in missing {
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {
                tracing::info!(controller = NAME, namespace, name = %sa.name_any(), "created service account")
            }
            Err(e) if is_already_exists(&e) || is_namespace_terminating(&e) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(Action::await_change()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn ns(phase: Option<&str>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("team-a".into()),
                ..Default::default()
            },
            status: phase.map(|p| NamespaceStatus {
                phase: Some(p.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn default_account_is_created_only_where_missing_in_active_namespaces() {
        let cases: &[(&str, Option<&str>, bool, &[&str])] = &[
            ("active, none yet", Some("Active"), false, &["default"]),
            ("active, present", Some("Active"), true, &[]),
            ("terminating", Some("Terminating"), false, &[]),
            ("no phase yet", None, false, &[]),
        ];
        for (what, phase, exists, want) in cases {
            let got = missing_service_accounts(&ns(*phase), |_| *exists);
            let names: Vec<String> = got.iter().map(|sa| sa.name_any()).collect();
            assert_eq!(names, *want, "{what}");
            for sa in &got {
                assert_eq!(sa.namespace().as_deref(), Some("team-a"), "{what}");
            }
        }
    }
}
