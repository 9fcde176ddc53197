//! `serviceaccount-token` against a real API server, with a token generator that writes down
//! what it was asked.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::serviceaccount_token::{
    SECRET_TYPE, SERVICE_ACCOUNT_NAME_ANNOTATION, SERVICE_ACCOUNT_UID_ANNOTATION,
};
use rkube_controllers::{ControllerContext, TokenGenerator};

/// Tokens that spell out their claims, so the test can check them.
struct SpelledTokens;

impl TokenGenerator for SpelledTokens {
    fn legacy_token(
        &self,
        namespace: &str,
        sa: &str,
        uid: &str,
        secret: &str,
    ) -> Result<String, String> {
        Ok(format!("jwt:{namespace}:{sa}:{uid}:{secret}"))
    }
}

fn context() -> ControllerContext {
    let mut ctx = ControllerContext::new(CA_PEM);
    ctx.token_generator = Some(Arc::new(SpelledTokens));
    ctx
}

async fn create_account(client: &kube::Client, name: &str) -> Result<ServiceAccount, kube::Error> {
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &sa)
        .await
}

async fn create_token_secret(
    client: &kube::Client,
    name: &str,
    annotations: &[(&str, &str)],
) -> Result<Secret, kube::Error> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
}

async fn wait_gone(api: &Api<Secret>, name: &str) {
    wait_for(&format!("secret {name} to be deleted"), || {
        let api = api.clone();
        let name = name.to_string();
        async move { matches!(api.get_opt(&name).await, Ok(None)).then_some(()) }
    })
    .await
}

#[tokio::test]
async fn legacy_token_secret_is_filled_for_its_account() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, context(), "serviceaccount-token");
    let sa = create_account(&c.client, "builder").await?;
    create_token_secret(
        &c.client,
        "builder-token",
        &[(SERVICE_ACCOUNT_NAME_ANNOTATION, "builder")],
    )
    .await?;
    let api = Api::<Secret>::namespaced(c.client.clone(), "default");
    let filled = wait_for("the token secret to be filled", || {
        let api = api.clone();
        async move {
            let s = api.get_opt("builder-token").await.ok()??;
            s.data.as_ref()?.contains_key("token").then_some(s)
        }
    })
    .await;
    let data = filled.data.as_ref().ok_or("no data")?;
    let uid = sa.uid().ok_or("account without uid")?;
    assert_eq!(
        String::from_utf8_lossy(&data["token"].0),
        format!("jwt:default:builder:{uid}:builder-token")
    );
    assert_eq!(data["ca.crt"].0, CA_PEM.as_bytes());
    assert_eq!(data["namespace"].0, b"default");
    assert_eq!(filled.annotations()[SERVICE_ACCOUNT_UID_ANNOTATION], uid);

    // Deleting the account deletes its token.
    Api::<ServiceAccount>::namespaced(c.client.clone(), "default")
        .delete("builder", &DeleteParams::default())
        .await?;
    wait_gone(&api, "builder-token").await;
    Ok(())
}

#[tokio::test]
async fn token_secrets_without_their_account_are_deleted() -> TestResult {
    let c = cluster().await?;
    create_account(&c.client, "deployer").await?;
    let api = Api::<Secret>::namespaced(c.client.clone(), "default");
    // One names an account that does not exist, one the right name with another uid.
    create_token_secret(
        &c.client,
        "orphan-token",
        &[(SERVICE_ACCOUNT_NAME_ANNOTATION, "nobody")],
    )
    .await?;
    create_token_secret(
        &c.client,
        "stale-token",
        &[
            (SERVICE_ACCOUNT_NAME_ANNOTATION, "deployer"),
            (SERVICE_ACCOUNT_UID_ANNOTATION, "an-old-uid"),
        ],
    )
    .await?;
    let _controllers = start(&c, context(), "serviceaccount-token");
    wait_gone(&api, "orphan-token").await;
    wait_gone(&api, "stale-token").await;
    Ok(())
}
