//! The garbage collector against a real API server: background, foreground and orphan
//! propagation, and dependents of owners that never existed.

mod common;

use std::collections::BTreeMap;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use rkube_controllers::ControllerContext;
use serde_json::json;

const NS: &str = "default";

fn owned_by(owner: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        block_owner_deletion: block.then_some(true),
        ..Default::default()
    }
}

fn meta(name: &str, owners: Vec<OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        owner_references: (!owners.is_empty()).then_some(owners),
        ..Default::default()
    }
}

async fn config_map(
    api: &Api<ConfigMap>,
    name: &str,
    owners: Vec<OwnerReference>,
) -> Result<ConfigMap, kube::Error> {
    let cm = ConfigMap {
        metadata: meta(name, owners),
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm).await
}

async fn secret(
    api: &Api<Secret>,
    name: &str,
    owners: Vec<OwnerReference>,
) -> Result<Secret, kube::Error> {
    let s = Secret {
        metadata: meta(name, owners),
        ..Default::default()
    };
    api.create(&PostParams::default(), &s).await
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(&format!("{name} to be deleted"), || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            match api.get_opt(&name).await {
                Ok(None) => Some(()),
                _ => None,
            }
        }
    })
    .await
}

fn delete_with(policy: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(policy),
        ..Default::default()
    }
}

#[tokio::test]
async fn deleting_an_owner_in_the_background_removes_its_dependents() -> TestResult {
    let c = cluster().await?;
    let _gc = start(&c, ControllerContext::new(CA_PEM), "garbage-collector");
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), NS);
    let secrets = Api::<Secret>::namespaced(c.client.clone(), NS);
    let owner = config_map(&cms, "owner", vec![]).await?;
    let other = config_map(&cms, "other-owner", vec![]).await?;
    config_map(&cms, "dep-cm", vec![owned_by(&owner, false)]).await?;
    secret(&secrets, "dep-secret", vec![owned_by(&owner, false)]).await?;
    // A dependent with a second owner stays and loses the reference to the gone one.
    config_map(
        &cms,
        "shared",
        vec![owned_by(&owner, false), owned_by(&other, false)],
    )
    .await?;
    cms.delete("owner", &DeleteParams::default()).await?;
    gone(&cms, "dep-cm").await;
    gone(&secrets, "dep-secret").await;
    let shared = wait_for("shared to keep only its live owner", || {
        let cms = cms.clone();
        async move {
            let cm = cms.get_opt("shared").await.ok()??;
            (cm.owner_references().len() == 1).then_some(cm)
        }
    })
    .await;
    assert_eq!(shared.owner_references()[0].uid, other.uid().unwrap());
    assert!(cms.get_opt("other-owner").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn a_dependent_whose_owner_never_existed_is_collected() -> TestResult {
    let c = cluster().await?;
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), NS);
    let elsewhere = Api::<ConfigMap>::namespaced(c.client.clone(), "kube-public");
    let real = config_map(&cms, "real-owner", vec![]).await?;
    let foreign = config_map(&elsewhere, "foreign-owner", vec![]).await?;
    let bogus = OwnerReference {
        uid: "00000000-0000-0000-0000-000000000000".into(),
        ..owned_by(&real, false)
    };
    config_map(&cms, "orphaned", vec![bogus]).await?;
    // An owner in another namespace is no owner: the reference dangles.
    config_map(&cms, "cross-namespace", vec![owned_by(&foreign, false)]).await?;
    config_map(&cms, "kept", vec![owned_by(&real, false)]).await?;
    // Started after the objects exist: the initial list is checked too.
    let _gc = start(&c, ControllerContext::new(CA_PEM), "garbage-collector");
    gone(&cms, "orphaned").await;
    gone(&cms, "cross-namespace").await;
    assert!(
        cms.get_opt("kept").await?.is_some(),
        "a live owner keeps it"
    );
    assert!(elsewhere.get_opt("foreign-owner").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents_and_goes_leaves_first() -> TestResult {
    let c = cluster().await?;
    let _gc = start(&c, ControllerContext::new(CA_PEM), "garbage-collector");
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), NS);
    let owner = config_map(&cms, "owner", vec![]).await?;
    let child = config_map(&cms, "child", vec![owned_by(&owner, true)]).await?;
    let mut grandchild = ConfigMap {
        metadata: meta("grandchild", vec![owned_by(&child, true)]),
        ..Default::default()
    };
    // Held by a finalizer so the wait is visible.
    grandchild.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &grandchild).await?;

    let mut deletions = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    // The watch is established once its initial list is done.
    while let Some(ev) = deletions.next().await {
        if matches!(ev?, watcher::Event::InitDone) {
            break;
        }
    }
    cms.delete("owner", &delete_with(PropagationPolicy::Foreground))
        .await?;
    wait_for(
        "the grandchild to be deleted (held by its finalizer)",
        || {
            let cms = cms.clone();
            async move {
                let g = cms.get_opt("grandchild").await.ok()??;
                g.metadata.deletion_timestamp.map(|_| ())
            }
        },
    )
    .await;
    let child_now = cms.get_opt("child").await?.expect("child waits");
    assert!(
        child_now
            .finalizers()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "the child is deleted in the foreground too: {:?}",
        child_now.finalizers()
    );
    let owner_now = cms.get_opt("owner").await?.expect("owner waits");
    assert!(owner_now.metadata.deletion_timestamp.is_some());

    cms.patch(
        "grandchild",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    let mut order = Vec::new();
    let collect = async {
        while let Some(ev) = deletions.next().await {
            if let Ok(watcher::Event::Delete(cm)) = ev {
                order.push(cm.name_any());
                if cm.name_any() == "owner" {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), collect).await?;
    assert_eq!(order, ["grandchild", "child", "owner"]);
    Ok(())
}

#[tokio::test]
async fn orphan_deletion_leaves_dependents_without_the_owner_reference() -> TestResult {
    let c = cluster().await?;
    let _gc = start(&c, ControllerContext::new(CA_PEM), "garbage-collector");
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), NS);
    let secrets = Api::<Secret>::namespaced(c.client.clone(), NS);
    let owner = config_map(&cms, "owner", vec![]).await?;
    let other = config_map(&cms, "other", vec![]).await?;
    config_map(&cms, "dep", vec![owned_by(&owner, true)]).await?;
    secret(
        &secrets,
        "dep-secret",
        vec![owned_by(&owner, false), owned_by(&other, false)],
    )
    .await?;
    cms.delete("owner", &delete_with(PropagationPolicy::Orphan))
        .await?;
    gone(&cms, "owner").await;
    let dep = cms.get("dep").await?;
    assert!(
        dep.owner_references().is_empty(),
        "{:?}",
        dep.owner_references()
    );
    let s = secrets.get("dep-secret").await?;
    let uids: Vec<&str> = s
        .owner_references()
        .iter()
        .map(|o| o.uid.as_str())
        .collect();
    assert_eq!(uids, [other.uid().unwrap().as_str()]);
    Ok(())
}
