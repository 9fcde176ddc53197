//! `root-ca-cert-publisher`: every namespace has the ConfigMap `kube-root-ca.crt` whose
//! `ca.crt` is the cluster CA bundle, so pods can verify the API server; one changed or deleted
//! is put back.
//!
//! Keys are namespaces, queued by namespace events and by events of the ConfigMap itself (the
//! watch selects it by name). As upstream, the data is replaced as a whole and the description
//! annotation restored; other annotations and labels are kept. A create refused because the
//! namespace is gone or terminating is not an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects, reflect};
use crate::error::{is_conflict, is_namespace_terminating, is_not_found};
use crate::{ControllerContext, Error};

pub const NAME: &str = "root-ca-cert-publisher";
pub const CONFIG_MAP_NAME: &str = "kube-root-ca.crt";
pub const CA_KEY: &str = "ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What a namespace's ConfigMap needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Publish {
    /// It is missing: create this.
    Create(ConfigMap),
    /// Its data or description differ: write this (the cached object with them fixed).
    Update(ConfigMap),
    /// Nothing to do.
    UpToDate,
}

/// Decides what `namespace`'s `kube-root-ca.crt` (`existing`, from the cache) needs for it to
/// publish `ca_pem`.
pub fn plan(namespace: &str, existing: Option<&ConfigMap>, ca_pem: &str) -> Publish {
    let data = BTreeMap::from([(CA_KEY.to_string(), ca_pem.to_string())]);
    let Some(cm) = existing else {
        return Publish::Create(ConfigMap {
            metadata: ObjectMeta {
                name: Some(CONFIG_MAP_NAME.into()),
                namespace: Some(namespace.into()),
                annotations: Some(BTreeMap::from([(
                    DESCRIPTION_ANNOTATION.to_string(),
                    DESCRIPTION.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        });
    };
    let described = cm
        .annotations()
        .get(DESCRIPTION_ANNOTATION)
        .is_some_and(|d| !d.is_empty());
    if cm.data.as_ref() == Some(&data) && described {
        return Publish::UpToDate;
    }
    let mut cm = cm.clone();
    cm.data = Some(data);
    cm.annotations_mut()
        .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
    Publish::Update(cm)
}

struct State {
    client: Client,
    config_maps: Store<ConfigMap>,
    ca_pem: String,
}

/// Runs the controller until its watches end.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let (namespaces, ns_events) = ctx.informer::<Namespace>(NAME, &client).await;
    let by_name = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP_NAME}"));
    let (config_maps, cm_events) =
        reflect(NAME, Api::<ConfigMap>::all(ctx.informers(&client)), by_name);
    let triggers = vec![
        on_objects(ns_events, false, |ns: &Namespace| {
            Some(ObjectRef::from_obj(ns))
        }),
        on_objects(cm_events, true, |cm: &ConfigMap| {
            cm.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
        }),
    ];
    let state = Arc::new(State {
        client,
        config_maps,
        ca_pem: ctx.ca_pem.clone(),
    });
    drive(NAME, &ctx, namespaces, triggers, state, reconcile).await
}

async fn reconcile(ns: Arc<Namespace>, st: Arc<State>) -> Result<Action, Error> {
    st.config_maps
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped("configmap"))?;
    let namespace = ns.name_any();
    let existing = st
        .config_maps
        .get(&ObjectRef::new(CONFIG_MAP_NAME).within(&namespace));
    let api = Api::<ConfigMap>::namespaced(st.client.clone(), &namespace);
    match plan(&namespace, existing.as_deref(), &st.ca_pem) {
        Publish::UpToDate => {}
        Publish::Create(cm) => match api.create(&PostParams::default(), &cm).await {
            Ok(_) => tracing::info!(controller = NAME, namespace, "published the root CA"),
            // Gone or terminating: nothing to publish into.
            Err(e) if is_not_found(&e) || is_namespace_terminating(&e) => {}
            Err(e) => return Err(e.into()),
        },
        Publish::Update(cm) => match api
            .replace(CONFIG_MAP_NAME, &PostParams::default(), &cm)
            .await
        {
            Ok(_) => tracing::info!(controller = NAME, namespace, "updated the root CA"),
            // A newer version is on its way through the watch and will be looked at again.
            Err(e) if is_conflict(&e) || is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    fn cm(data: &[(&str, &str)], annotations: &[(&str, &str)]) -> ConfigMap {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(CONFIG_MAP_NAME.into()),
                namespace: Some("a".into()),
                annotations: Some(map(annotations)),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            data: Some(map(data)),
            ..Default::default()
        }
    }

    #[test]
    fn missing_config_map_is_created_with_ca_and_description() {
        let Publish::Create(made) = plan("a", None, CA) else {
            panic!("expected a create");
        };
        assert_eq!(made.name_any(), CONFIG_MAP_NAME);
        assert_eq!(made.namespace().as_deref(), Some("a"));
        assert_eq!(made.data.unwrap()[CA_KEY], CA);
        assert_eq!(
            made.metadata.annotations.unwrap()[DESCRIPTION_ANNOTATION],
            DESCRIPTION
        );
    }

    #[test]
    fn existing_config_map_is_updated_only_when_data_or_description_differ() {
        let desc = (DESCRIPTION_ANNOTATION, DESCRIPTION);
        let cases: &[(&str, ConfigMap, bool)] = &[
            ("in step", cm(&[(CA_KEY, CA)], &[desc]), false),
            (
                "other description kept",
                cm(&[(CA_KEY, CA)], &[(DESCRIPTION_ANNOTATION, "mine")]),
                false,
            ),
            ("stale CA", cm(&[(CA_KEY, "old")], &[desc]), true),
            ("extra key", cm(&[(CA_KEY, CA), ("x", "y")], &[desc]), true),
            ("no description", cm(&[(CA_KEY, CA)], &[]), true),
            (
                "empty description",
                cm(&[(CA_KEY, CA)], &[(DESCRIPTION_ANNOTATION, "")]),
                true,
            ),
        ];
        for (what, existing, want_update) in cases {
            match plan("a", Some(existing), CA) {
                Publish::UpToDate => assert!(!want_update, "{what}"),
                Publish::Update(new) => {
                    assert!(want_update, "{what}");
                    assert_eq!(new.data.as_ref().map(BTreeMap::len), Some(1), "{what}");
                    assert_eq!(new.data.as_ref().unwrap()[CA_KEY], CA, "{what}");
                    assert_eq!(
                        new.annotations()[DESCRIPTION_ANNOTATION],
                        DESCRIPTION,
                        "{what}"
                    );
                    assert_eq!(
                        new.resource_version().as_deref(),
                        Some("7"),
                        "{what}: written over the version read"
                    );
                }
                Publish::Create(_) => panic!("{what}: unexpected create"),
            }
        }
    }

    #[test]
    fn update_keeps_other_annotations() {
        let existing = cm(&[(CA_KEY, "old")], &[("team", "x")]);
        let Publish::Update(new) = plan("a", Some(&existing), CA) else {
            panic!("expected an update");
        };
        assert_eq!(new.annotations()["team"], "x");
    }
}
