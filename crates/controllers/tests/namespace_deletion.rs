//! The namespace controller against a real API server: a deleted namespace is emptied of every
//! kind of content, reports what remains in its conditions, and goes once it is empty.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, NamespaceCondition, Pod, PodSpec, Secret, Service,
    ServiceAccount, ServicePort, ServiceSpec,
};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::ControllerContext;
use serde_json::json;

/// Like `wait_for`, with a deadline long enough for the controller's own requeue (content
/// held by finalizers is looked at again after upstream's 15 s / 2 + 1).
async fn wait_long<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn pod(name: &str, node: Option<&str>, grace: Option<i64>) -> Pod {
    Pod {
        metadata: named(name),
        spec: Some(PodSpec {
            node_name: node.map(String::from),
            termination_grace_period_seconds: grace,
            containers: vec![Container {
                name: "c".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn condition<'a>(ns: &'a Namespace, ty: &str) -> Option<&'a NamespaceCondition> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_content_reports_what_remains_then_goes() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,namespace",
    );
    let namespaces = Api::<Namespace>::all(c.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: named("doomed"),
                ..Default::default()
            },
        )
        .await?;
    let ns = "doomed";
    let pp = PostParams::default();
    let sas = Api::<ServiceAccount>::namespaced(c.client.clone(), ns);
    wait_for("serviceaccount default", || {
        let sas = sas.clone();
        async move { sas.get_opt("default").await.ok()? }
    })
    .await;
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), ns);
    let secrets = Api::<Secret>::namespaced(c.client.clone(), ns);
    let services = Api::<Service>::namespaced(c.client.clone(), ns);
    let pods = Api::<Pod>::namespaced(c.client.clone(), ns);
    cms.create(
        &pp,
        &ConfigMap {
            metadata: named("plain"),
            data: Some(BTreeMap::from([("k".into(), "v".into())])),
            ..Default::default()
        },
    )
    .await?;
    let mut held = named("held");
    held.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(
        &pp,
        &ConfigMap {
            metadata: held,
            ..Default::default()
        },
    )
    .await?;
    secrets
        .create(
            &pp,
            &Secret {
                metadata: named("s"),
                ..Default::default()
            },
        )
        .await?;
    services
        .create(
            &pp,
            &Service {
                metadata: named("svc"),
                spec: Some(ServiceSpec {
                    ports: Some(vec![ServicePort {
                        port: 80,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await?;
    pods.create(&pp, &pod("unbound", None, None)).await?;
    pods.create(&pp, &pod("bound-no-grace", Some("node-a"), Some(0)))
        .await?;

    namespaces.delete(ns, &DeleteParams::default()).await?;
    let terminating = wait_for("the conditions to report the held ConfigMap", || {
        let namespaces = namespaces.clone();
        async move {
            let n = namespaces.get_opt(ns).await.ok()??;
            let remaining = condition(&n, "NamespaceContentRemaining")?;
            (remaining.status == "True").then_some(n)
        }
    })
    .await;
    assert_eq!(
        terminating.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    let remaining = condition(&terminating, "NamespaceContentRemaining").unwrap();
    assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
    assert_eq!(
        remaining.message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    let finalizers = condition(&terminating, "NamespaceFinalizersRemaining").unwrap();
    assert_eq!(
        (finalizers.status.as_str(), finalizers.reason.as_deref()),
        ("True", Some("SomeFinalizersRemain"))
    );
    assert_eq!(
        finalizers.message.as_deref(),
        Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
    );
    let failure = condition(&terminating, "NamespaceDeletionContentFailure").unwrap();
    assert_eq!(
        (failure.status.as_str(), failure.reason.as_deref()),
        ("False", Some("ContentDeleted"))
    );
    let discovery = condition(&terminating, "NamespaceDeletionDiscoveryFailure").unwrap();
    assert_eq!(discovery.reason.as_deref(), Some("ResourcesDiscovered"));

    // Everything else is gone already; the held ConfigMap waits with a deletionTimestamp.
    let lp = ListParams::default();
    let left: Vec<String> = cms.list(&lp).await?.iter().map(|c| c.name_any()).collect();
    assert_eq!(left, ["held"]);
    assert!(cms.get("held").await?.metadata.deletion_timestamp.is_some());
    assert!(secrets.list(&lp).await?.items.is_empty());
    assert!(services.list(&lp).await?.items.is_empty());
    assert!(pods.list(&lp).await?.items.is_empty());
    assert!(sas.list(&lp).await?.items.is_empty());
    assert!(namespaces.get_opt(ns).await?.is_some(), "not finalized yet");

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    wait_long("the namespace to be gone", || {
        let namespaces = namespaces.clone();
        async move {
            match namespaces.get_opt(ns).await {
                Ok(None) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn a_namespace_with_other_finalizers_keeps_them_after_ours_is_removed() -> TestResult {
    let c = cluster().await?;
    let _controllers = start(&c, ControllerContext::new(CA_PEM), "namespace");
    let namespaces = Api::<Namespace>::all(c.client.clone());
    let mut ns = Namespace {
        metadata: named("kept"),
        ..Default::default()
    };
    ns.spec = Some(k8s_openapi::api::core::v1::NamespaceSpec {
        finalizers: Some(vec!["kubernetes".into(), "example.com/other".into()]),
    });
    namespaces.create(&PostParams::default(), &ns).await?;
    Api::<ConfigMap>::namespaced(c.client.clone(), "kept")
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: named("cm"),
                ..Default::default()
            },
        )
        .await?;
    namespaces.delete("kept", &DeleteParams::default()).await?;
    let n = wait_for("our finalizer to be removed", || {
        let namespaces = namespaces.clone();
        async move {
            let n = namespaces.get_opt("kept").await.ok()??;
            let f = n.spec.as_ref()?.finalizers.clone()?;
            (f == ["example.com/other"]).then_some(n)
        }
    })
    .await;
    let remaining = condition(&n, "NamespaceContentRemaining").expect("conditions written");
    assert_eq!(
        (remaining.status.as_str(), remaining.reason.as_deref()),
        ("False", Some("ContentRemoved"))
    );
    assert!(Api::<ConfigMap>::namespaced(c.client.clone(), "kept")
        .list(&ListParams::default())
        .await?
        .items
        .is_empty());
    Ok(())
}
