//! The per-namespace controllers against a real API server: `serviceaccount` and
//! `root-ca-cert-publisher`.

mod common;

use std::collections::BTreeMap;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::root_ca_cert_publisher::{
    CONFIG_MAP_NAME, DESCRIPTION, DESCRIPTION_ANNOTATION,
};
use rkube_controllers::ControllerContext;

async fn create_namespace(client: &kube::Client, name: &str) -> TestResult {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// The CA ConfigMap of `ns`, once it publishes `CA_PEM`.
async fn published_ca(client: &kube::Client, ns: &str) -> ConfigMap {
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    wait_for(&format!("kube-root-ca.crt in {ns} to hold the CA"), || {
        let api = api.clone();
        async move {
            let cm = api.get_opt(CONFIG_MAP_NAME).await.ok()??;
            let data = cm.data.as_ref()?;
            (data.get("ca.crt").map(String::as_str) == Some(CA_PEM) && data.len() == 1)
                .then_some(cm)
        }
    })
    .await
}

async fn default_account(client: &kube::Client, ns: &str) -> ServiceAccount {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), ns);
    wait_for(&format!("serviceaccount default in {ns}"), || {
        let api = api.clone();
        async move { api.get_opt("default").await.ok()? }
    })
    .await
}

#[tokio::test]
async fn new_namespace_gets_default_service_account_and_root_ca() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,root-ca-cert-publisher",
    );
    create_namespace(&c.client, "team-a").await?;
    default_account(&c.client, "team-a").await;
    let cm = published_ca(&c.client, "team-a").await;
    assert_eq!(cm.annotations()[DESCRIPTION_ANNOTATION], DESCRIPTION);

    // Namespaces that existed before the controllers started are covered too.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        default_account(&c.client, ns).await;
        published_ca(&c.client, ns).await;
    }
    Ok(())
}

#[tokio::test]
async fn deleted_default_service_account_is_recreated() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ControllerContext::new(CA_PEM), "serviceaccount");
    create_namespace(&c.client, "team-b").await?;
    let first = default_account(&c.client, "team-b").await;
    let api = Api::<ServiceAccount>::namespaced(c.client.clone(), "team-b");
    api.delete("default", &DeleteParams::default()).await?;
    wait_for("a new serviceaccount default", || {
        let api = api.clone();
        let old_uid = first.uid();
        async move {
            let sa = api.get_opt("default").await.ok()??;
            (sa.uid() != old_uid).then_some(())
        }
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn root_ca_config_map_is_restored_when_changed_or_deleted() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ControllerContext::new(CA_PEM), "root-ca-cert-publisher");
    create_namespace(&c.client, "team-c").await?;
    let mut cm = published_ca(&c.client, "team-c").await;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), "team-c");

    // Someone overwrites the CA and drops the description; other annotations survive.
    cm.data = Some(BTreeMap::from([(
        "ca.crt".to_string(),
        "forged".to_string(),
    )]));
    cm.metadata.annotations = Some(BTreeMap::from([("team".to_string(), "c".to_string())]));
    api.replace(CONFIG_MAP_NAME, &PostParams::default(), &cm)
        .await?;
    let restored = wait_for("the CA and description to be restored", || {
        let api = api.clone();
        async move {
            let cm = api.get_opt(CONFIG_MAP_NAME).await.ok()??;
            let ok = cm.data.as_ref()?.get("ca.crt").map(String::as_str) == Some(CA_PEM)
                && cm
                    .annotations()
                    .get(DESCRIPTION_ANNOTATION)
                    .map(String::as_str)
                    == Some(DESCRIPTION);
            ok.then_some(cm)
        }
    })
    .await;
    assert_eq!(restored.annotations()["team"], "c");

    let uid = restored.uid();
    api.delete(CONFIG_MAP_NAME, &DeleteParams::default())
        .await?;
    wait_for("kube-root-ca.crt to be recreated", || {
        let api = api.clone();
        let uid = uid.clone();
        async move {
            let cm = api.get_opt(CONFIG_MAP_NAME).await.ok()??;
            (cm.uid() != uid && cm.data.as_ref()?.get("ca.crt").map(String::as_str) == Some(CA_PEM))
                .then_some(())
        }
    })
    .await;
    Ok(())
}
