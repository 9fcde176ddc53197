//! The image manager against a real containerd (the supervised one, through CRI), a real
//! registry (docker-registry on loopback) and a real API server (for pull secrets): pull
//! policies, pulls, upstream's pull errors and back-off, and private registries.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::apiserver_vol::VolApi as Api;
use common::registry::{Login, Registry};
use common::runtime::Runtime;
use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Pod, PodSpec, Secret};
use k8s_openapi::ByteString;
use parking_lot::Mutex;
use rkube_kubelet::images::{self, EnsuredImage, ImageEvent, ImageManager, PullError};
use rkube_kubelet::oci;

/// The kubelet prerequisites, and the registry these tests start.
fn prerequisites() -> bool {
    if !common::prerequisites() {
        return false;
    }
    if std::path::Path::new("/usr/bin/docker-registry").exists() {
        return true;
    }
    let msg = "image tests need /usr/bin/docker-registry (run scripts/setup.sh as root)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn busybox_image() -> oci::Image {
    oci::build(
        &common::images::busybox_entries(),
        &oci::ImageConfig {
            cmd: vec!["sh".into()],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            ..Default::default()
        },
    )
    .expect("building the busybox image")
}

fn pod(uid: &str, pull_secrets: &[&str]) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("pod-{uid}")),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            image_pull_secrets: (!pull_secrets.is_empty()).then(|| {
                pull_secrets
                    .iter()
                    .map(|n| LocalObjectReference {
                        name: n.to_string(),
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(image: &str, policy: Option<&str>) -> Container {
    Container {
        name: "c".into(),
        image: Some(image.into()),
        image_pull_policy: policy.map(str::to_string),
        ..Default::default()
    }
}

type Events = Arc<Mutex<Vec<ImageEvent>>>;

fn manager(rt: &Runtime, api: &Api) -> (ImageManager, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let manager = ImageManager::new(rt.cri.clone(), api.admin.clone()).with_events(Arc::new(
        move |_: &Pod, _: &Container, e: ImageEvent| sink.lock().push(e),
    ));
    (manager, events)
}

fn reasons(events: &Events) -> Vec<&'static str> {
    events.lock().iter().map(|e| e.reason).collect()
}

/// The id the runtime reports for an image, if it has it.
async fn image_id(rt: &Runtime, image: &str) -> Option<String> {
    images::list_images(&rt.cri)
        .await
        .expect("ListImages")
        .get(&rkube_kubelet::images::reference::normalize(image).expect("a valid name"))
        .cloned()
}

fn pulled(result: Result<EnsuredImage, PullError>) -> EnsuredImage {
    match result {
        Ok(e) => e,
        Err(e) => panic!("expected the image, got {e}"),
    }
}

fn failed(result: Result<EnsuredImage, PullError>) -> PullError {
    match result {
        Ok(e) => panic!("expected a pull error, got {e:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn if_not_present_uses_the_present_image_without_pulling() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let (images, events) = manager(&rt, &api);
    let id = image_id(&rt, common::images::BUSYBOX)
        .await
        .expect("busybox imported");
    // BUSYBOX lives on no registry (localhost:80 answers nothing): only a pull-free path works
    for policy in [Some("IfNotPresent"), None] {
        let got = pulled(
            images
                .ensure(&pod("u1", &[]), &container(common::images::BUSYBOX, policy))
                .await,
        );
        assert_eq!(got.image_ref, id);
        assert_eq!(got.pulled, None);
        assert_eq!(
            got.message,
            format!(
                "Container image \"{}\" already present on machine",
                common::images::BUSYBOX
            )
        );
    }
    // Never uses a present image too
    let got = pulled(
        images
            .ensure(
                &pod("u1", &[]),
                &container(common::images::BUSYBOX, Some("Never")),
            )
            .await,
    );
    assert_eq!(got.image_ref, id);
    assert_eq!(reasons(&events), ["Pulled", "Pulled", "Pulled"]);
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_from_the_local_registry_succeeds_and_always_pulls_again() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let registry = Registry::start().await;
    let busybox = busybox_image();
    registry.push("rkube/busybox", "1", &busybox).await;
    let name = registry.image("rkube/busybox", "1");
    let (images, events) = manager(&rt, &api);
    assert_eq!(image_id(&rt, &name).await, None);

    // absent: IfNotPresent pulls it
    let got = pulled(
        images
            .ensure(&pod("u1", &[]), &container(&name, Some("IfNotPresent")))
            .await,
    );
    assert_eq!(
        got.image_ref, busybox.config_digest,
        "the runtime's image id"
    );
    assert!(got.pulled.is_some());
    assert!(
        got.message
            .starts_with(&format!("Successfully pulled image \"{name}\" in "))
            && got.message.contains(" including waiting). Image size: ")
            && got.message.ends_with(" bytes."),
        "{}",
        got.message
    );
    assert_eq!(
        image_id(&rt, &name).await.as_deref(),
        Some(busybox.config_digest.as_str())
    );
    assert_eq!(reasons(&events), ["Pulling", "Pulled"]);

    // present: Always pulls again, IfNotPresent does not
    let got = pulled(
        images
            .ensure(&pod("u1", &[]), &container(&name, Some("Always")))
            .await,
    );
    assert!(got.pulled.is_some(), "{got:?}");
    // the default for a tag other than latest is IfNotPresent
    let got = pulled(
        images
            .ensure(&pod("u1", &[]), &container(&name, None))
            .await,
    );
    assert_eq!(got.pulled, None);

    // with the registry gone, Always fails (so it did ask the registry) and IfNotPresent
    // still has the image
    drop(registry);
    let err = failed(
        images
            .ensure(&pod("u2", &[]), &container(&name, Some("Always")))
            .await,
    );
    assert_eq!(err.reason, "ErrImagePull", "{err}");
    let got = pulled(
        images
            .ensure(&pod("u2", &[]), &container(&name, Some("IfNotPresent")))
            .await,
    );
    assert_eq!(got.image_ref, busybox.config_digest);
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn never_with_a_missing_image_is_err_image_never_pull_and_bad_names_are_invalid() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let (images, events) = manager(&rt, &api);
    let err = failed(
        images
            .ensure(
                &pod("u1", &[]),
                &container("example.invalid/none:1", Some("Never")),
            )
            .await,
    );
    assert_eq!(err.reason, "ErrImageNeverPull");
    assert_eq!(
        err.message,
        "Container image \"example.invalid/none:1\" is not present with pull policy of Never"
    );
    let err = failed(
        images
            .ensure(&pod("u1", &[]), &container("Bad/Name:1", Some("Always")))
            .await,
    );
    assert_eq!(err.reason, "InvalidImageName");
    assert_eq!(
        err.message,
        "Failed to apply default image tag \"Bad/Name:1\": couldn't parse image name \"Bad/Name:1\": invalid reference format: repository name (Name) must be lowercase"
    );
    assert_eq!(reasons(&events), ["ErrImageNeverPull", "InspectFailed"]);
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_gives_err_image_pull_then_image_pull_back_off() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let registry = Registry::start().await;
    let (images, events) = manager(&rt, &api);
    let images = images.with_backoff(Duration::from_millis(500), Duration::from_secs(5));
    let name = registry.image("rkube/missing", "1");
    let c = container(&name, None);
    let p = pod("u1", &[]);

    let first = failed(images.ensure(&p, &c).await);
    assert_eq!(first.reason, "ErrImagePull", "{first}");
    assert!(
        first
            .message
            .starts_with("rpc error: code = NotFound desc = failed to pull and unpack image"),
        "{}",
        first.message
    );
    let failed_at = Instant::now();
    // at once: backing off, with the last error in the message, and no pull
    let second = failed(images.ensure(&p, &c).await);
    assert_eq!(second.reason, "ImagePullBackOff");
    assert_eq!(
        second.message,
        format!(
            "Back-off pulling image \"{name}\": ErrImagePull: {}",
            first.message
        )
    );
    assert_eq!(reasons(&events), ["Pulling", "Failed", "BackOff"]);
    // another pod is not in this pod's back-off
    let other = failed(images.ensure(&pod("u2", &[]), &c).await);
    assert_eq!(other.reason, "ErrImagePull");

    // once the back-off has passed it pulls again, fails, and backs off for twice as long
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        let e = failed(images.ensure(&p, &c).await);
        if e.reason != "ImagePullBackOff" {
            break e;
        }
        assert!(Instant::now() < deadline, "still backing off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(third.reason, "ErrImagePull");
    assert!(failed_at.elapsed() >= Duration::from_millis(500));
    let retried_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = failed(images.ensure(&p, &c).await);
        if e.reason != "ImagePullBackOff" {
            break;
        }
        assert!(Instant::now() < deadline, "still backing off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        retried_at.elapsed() >= Duration::from_millis(1000),
        "the second back-off is twice the first: {:?}",
        retried_at.elapsed()
    );

    // pushed meanwhile: the next pull after the back-off succeeds
    registry.push("rkube/missing", "1", &busybox_image()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        match images.ensure(&p, &c).await {
            Ok(got) => break got,
            Err(e) => assert!(Instant::now() < deadline, "never pulled: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(got.pulled.is_some());
    drop(registry);
    rt.stop().await;
}

fn docker_config_secret(name: &str, type_: &str, registry: &str, login: &Login) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.username, login.password));
    let (key, json) = match type_ {
        "kubernetes.io/dockerconfigjson" => (
            ".dockerconfigjson",
            serde_json::json!({"auths": {registry: {"auth": auth}}}),
        ),
        _ => (
            ".dockercfg",
            serde_json::json!({format!("http://{registry}"): {"username": login.username, "password": login.password}}),
        ),
    };
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some([(key.to_string(), ByteString(json.to_string().into_bytes()))].into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registry_pulls_with_the_pull_secret_and_fails_without() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let login = Login {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let registry = Registry::start_private(login.clone()).await;
    let busybox = busybox_image();
    registry.push("private/busybox", "1", &busybox).await;
    let name = registry.image("private/busybox", "1");
    let secrets: kube::Api<Secret> = kube::Api::namespaced(api.admin.clone(), "default");
    let pp = kube::api::PostParams::default();
    for (n, t) in [
        ("regcred", "kubernetes.io/dockerconfigjson"),
        ("legacy", "kubernetes.io/dockercfg"),
    ] {
        secrets
            .create(&pp, &docker_config_secret(n, t, &registry.host, &login))
            .await
            .expect("creating the pull secret");
    }
    let wrong = Login {
        username: "alice".into(),
        password: "wrong".into(),
    };
    secrets
        .create(
            &pp,
            &docker_config_secret(
                "wrong",
                "kubernetes.io/dockerconfigjson",
                &registry.host,
                &wrong,
            ),
        )
        .await
        .expect("creating the wrong pull secret");
    let (images, events) = manager(&rt, &api);
    let c = container(&name, Some("Always"));

    // without credentials, or with wrong ones: refused
    let err = failed(images.ensure(&pod("anon", &[]), &c).await);
    assert_eq!(err.reason, "ErrImagePull");
    assert!(err.message.contains("401 Unauthorized"), "{}", err.message);
    let err = failed(images.ensure(&pod("wrong", &["wrong"]), &c).await);
    assert_eq!(err.reason, "ErrImagePull");
    assert!(err.message.contains("401 Unauthorized"), "{}", err.message);
    assert_eq!(image_id(&rt, &name).await, None);

    // with the pull secret (either docker type): pulled
    let got = pulled(images.ensure(&pod("cred", &["regcred"]), &c).await);
    assert_eq!(got.image_ref, busybox.config_digest);
    let got = pulled(images.ensure(&pod("legacy", &["legacy"]), &c).await);
    assert!(got.pulled.is_some());
    // a missing secret is reported and skipped; the next one works
    events.lock().clear();
    let got = pulled(
        images
            .ensure(&pod("partial", &["absent", "wrong", "regcred"]), &c)
            .await,
    );
    assert!(got.pulled.is_some());
    let warning = events
        .lock()
        .iter()
        .find(|e| e.reason == "FailedToRetrieveImagePullSecret")
        .cloned()
        .expect("a FailedToRetrieveImagePullSecret event");
    assert_eq!(
        warning.message,
        "Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed."
    );
    drop(registry);
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_toml_sends_a_registry_to_another_address() {
    if !prerequisites() {
        return;
    }
    let rt = Runtime::start().await;
    let api = Api::with_service_accounts().await;
    let registry = Registry::start().await;
    let busybox = busybox_image();
    registry.push("rkube/busybox", "1", &busybox).await;
    // a loopback port nothing listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let name = format!("{dead}/rkube/busybox:1");
    let (images, _) = manager(&rt, &api);
    let c = container(&name, Some("Always"));
    let err = failed(images.ensure(&pod("before", &[]), &c).await);
    assert_eq!(err.reason, "ErrImagePull");
    assert!(
        err.message.contains("connection refused"),
        "{}",
        err.message
    );

    let path = images::hosts::write(
        &rt.layout.certs_d,
        &images::hosts::RegistryHost {
            server: format!("http://{}", registry.host),
            ..images::hosts::RegistryHost::plain_http(&dead.to_string())
        },
    )
    .unwrap();
    assert!(path.starts_with(&rt.layout.certs_d));
    // containerd reads the file at the next pull: no restart
    let got = pulled(images.ensure(&pod("after", &[]), &c).await);
    assert_eq!(got.image_ref, busybox.config_digest);
    assert_eq!(
        image_id(&rt, &name).await.as_deref(),
        Some(busybox.config_digest.as_str())
    );
    drop(registry);
    rt.stop().await;
}
