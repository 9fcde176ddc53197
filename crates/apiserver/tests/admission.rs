//! The LimitRanger, PodSecurity and ResourceQuota admission plugins through the API: the
//! defaults and refusals clients see, with upstream's messages and warnings.

mod common;

use std::time::Duration;

use common::{deployment, eventually, pod, TestServer};
use http::StatusCode;
use serde_json::{json, Value};

async fn create_namespace(t: &TestServer, name: &str, labels: Value) {
    let r = t
        .post_json(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": name, "labels": labels}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}

/// The `Warning` headers of a response, unescaped.
fn warnings(r: &common::Raw) -> Vec<String> {
    r.headers
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            let quoted = v.strip_prefix("299 - ").unwrap_or(v);
            let text = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or(quoted);
            text.replace("\\\"", "\"").replace("\\\\", "\\")
        })
        .collect()
}

fn message(r: &common::Raw) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

fn privileged_pod(name: &str) -> Value {
    let mut p = pod(name, &[]);
    p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    p
}

#[tokio::test]
async fn limit_range_defaults_land_on_new_pods_and_its_maximum_refuses_bigger_ones() {
    let t = TestServer::start().await;
    let r = t
        .post_json(
            "/api/v1/namespaces/default/limitranges",
            &json!({
                "metadata": {"name": "limits"},
                "spec": {"limits": [{
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "128Mi"},
                    "defaultRequest": {"cpu": "250m"},
                    "max": {"cpu": "1", "memory": "1Gi"},
                }]},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());

    let r = t
        .post_json("/api/v1/namespaces/default/pods", &pod("small", &[]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let created = r.json();
    let resources = &created["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources,
        &json!({
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "250m", "memory": "128Mi"},
        }),
        "requests default to the limits where no default request is given"
    );
    assert_eq!(
        created["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );

    let mut big = pod("big", &[]);
    big["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "2"}});
    let r = t.post_json("/api/v1/namespaces/default/pods", &big).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(r.json()["reason"], "Forbidden");
    assert_eq!(
        message(&r),
        "pods \"big\" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, \
         maximum memory usage per Container is 1Gi, but limit is 2Gi]"
    );
}

#[tokio::test]
async fn enforce_restricted_refuses_a_privileged_pod_and_admits_a_compliant_one() {
    let t = TestServer::start().await;
    create_namespace(
        &t,
        "secure",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let r = t
        .post_json("/api/v1/namespaces/secure/pods", &privileged_pod("priv"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(
        message(&r),
        "pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": \
         privileged (container \"c\" must not set securityContext.privileged=true), \
         allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    assert!(
        warnings(&r).is_empty(),
        "a refused pod gets no warnings: {:?}",
        warnings(&r)
    );

    let mut good = pod("good", &[]);
    good["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    good["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let r = t.post_json("/api/v1/namespaces/secure/pods", &good).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert!(warnings(&r).is_empty(), "{:?}", warnings(&r));
}

#[tokio::test]
async fn warn_mode_creates_the_pod_with_a_warning_header() {
    let t = TestServer::start().await;
    create_namespace(
        &t,
        "warned",
        json!({"pod-security.kubernetes.io/warn": "baseline"}),
    )
    .await;
    let r = t
        .post_json("/api/v1/namespaces/warned/pods", &privileged_pod("priv"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(
        warnings(&r),
        ["would violate PodSecurity \"baseline:latest\": privileged \
          (container \"c\" must not set securityContext.privileged=true)"]
    );
}

#[tokio::test]
async fn a_deployment_with_a_bad_template_is_created_with_a_warning_under_enforce() {
    let t = TestServer::start().await;
    create_namespace(
        &t,
        "secure",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let r = t
        .post_json(
            "/apis/apps/v1/namespaces/secure/deployments",
            &deployment("web", 1),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"
        ),
        "{w:?}"
    );
}

#[tokio::test]
async fn namespace_labels_are_validated_and_raising_enforce_warns_about_existing_pods() {
    let t = TestServer::start().await;
    let r = t
        .post_json(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "bad", "labels": {"pod-security.kubernetes.io/enforce": "bogus"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json());
    assert_eq!(
        message(&r),
        "Namespace \"bad\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
         Invalid value: \"bogus\": must be one of privileged, baseline, restricted"
    );

    create_namespace(&t, "apps", json!({})).await;
    for name in ["priv-b", "priv-a"] {
        let r = t
            .post_json("/api/v1/namespaces/apps/pods", &privileged_pod(name))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    }
    // The existing pods are listed from the watch cache: wait until it holds both.
    eventually(Duration::from_secs(5), || async {
        let r = t
            .get("/api/v1/namespaces/apps/pods?resourceVersion=0")
            .await;
        (r.json()["items"].as_array().map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    let r = t
        .patch(
            "/api/v1/namespaces/apps",
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        warnings(&r),
        [
            "existing pods in namespace \"apps\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "priv-a (and 1 other pod): privileged",
        ]
    );
}

const QUOTA: &str = "/api/v1/namespaces/default/resourcequotas/q1";

/// Sets a quota's status as the quota controller does: through the status subresource.
async fn set_quota_status(t: &TestServer, status: Value) {
    let r = t
        .patch(
            &format!("{QUOTA}/status"),
            "application/merge-patch+json",
            &json!({"status": status}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

async fn create_quota(t: &TestServer) {
    let r = t
        .post_json(
            "/api/v1/namespaces/default/resourcequotas",
            &json!({"metadata": {"name": "q1"}, "spec": {"hard": {"pods": "1"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}

#[tokio::test]
async fn a_pod_quota_admits_one_pod_refuses_the_second_and_records_the_usage() {
    let t = TestServer::start().await;
    create_quota(&t).await;
    set_quota_status(&t, json!({"hard": {"pods": "1"}, "used": {"pods": "0"}})).await;

    // A dry run is checked but charges nothing.
    let r = t
        .post_json("/api/v1/namespaces/default/pods?dryRun=All", &pod("a", &[]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(t.get(QUOTA).await.json()["status"]["used"]["pods"], "0");

    let r = t
        .post_json("/api/v1/namespaces/default/pods", &pod("a", &[]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(t.get(QUOTA).await.json()["status"]["used"]["pods"], "1");

    let r = t
        .post_json("/api/v1/namespaces/default/pods", &pod("b", &[]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(
        message(&r),
        "pods \"b\" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=1, limited: pods=1"
    );
    let quota = t.get(QUOTA).await.json();
    assert_eq!(quota["status"]["used"], json!({"pods": "1"}));
    assert_eq!(quota["spec"]["hard"], json!({"pods": "1"}));
}

#[tokio::test]
async fn a_quota_the_controller_has_not_counted_refuses_what_it_limits() {
    let t = TestServer::start().await;
    create_quota(&t).await;
    // Quotas match on status.hard: one with no status yet limits nothing, as upstream.
    let r = t
        .post_json("/api/v1/namespaces/default/pods?dryRun=All", &pod("a", &[]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    // Hard limits recorded, usage not yet counted.
    set_quota_status(&t, json!({"hard": {"pods": "1"}})).await;
    let r = t
        .post_json("/api/v1/namespaces/default/pods", &pod("a", &[]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(
        message(&r),
        "pods \"a\" is forbidden: status unknown for quota: q1, resources: pods"
    );
    // What the quota does not limit is not held up.
    let r = t
        .post_json(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "cm"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}

#[tokio::test]
async fn racing_creates_never_overrun_a_quota_and_the_usage_matches_what_was_stored() {
    let t = TestServer::start().await;
    let r = t
        .post_json(
            "/api/v1/namespaces/default/resourcequotas",
            &json!({"metadata": {"name": "q1"}, "spec": {"hard": {"pods": "3"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    set_quota_status(&t, json!({"hard": {"pods": "3"}, "used": {"pods": "0"}})).await;

    let creates = (0..8).map(|i| {
        let t = &t;
        async move {
            t.post_json(
                "/api/v1/namespaces/default/pods",
                &pod(&format!("p{i}"), &[]),
            )
            .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        // Refused for the quota, or (after the retries) for losing every race on it.
        let m = message(r);
        assert!(
            (r.status == StatusCode::FORBIDDEN && m.contains("exceeded quota: q1"))
                || (r.status == StatusCode::CONFLICT
                    && m.starts_with("Operation cannot be fulfilled on resourcequotas \"q1\"")),
            "{} {m}",
            r.status
        );
    }
    assert!((1..=3).contains(&created), "{created} pods created");
    let stored = t.get("/api/v1/namespaces/default/pods").await.json()["items"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(stored, created);
    assert_eq!(
        t.get(QUOTA).await.json()["status"]["used"]["pods"],
        created.to_string()
    );
}

#[tokio::test]
async fn the_quota_controller_counts_usage_that_admission_enforces() {
    let t = TestServer::start().await;
    t.start_controllers(&["resourcequota"]);
    let ns = "counted";
    let r = t
        .post_json(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t
        .post_json(
            &format!("/api/v1/namespaces/{ns}/resourcequotas"),
            &json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q1"},
                    "spec": {"hard": {"pods": "1"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let quota_path = format!("/api/v1/namespaces/{ns}/resourcequotas/q1");
    let used = |want: &'static str| {
        let t = &t;
        let quota_path = quota_path.clone();
        async move {
            let q = t.get(&quota_path).await.json();
            (q["status"]["used"]["pods"] == want && q["status"]["hard"]["pods"] == "1")
                .then_some(())
        }
    };
    common::eventually(std::time::Duration::from_secs(10), || used("0")).await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    assert_eq!(
        t.post_json(&pods, &common::pod("p1", &[])).await.status,
        StatusCode::CREATED
    );
    let refused = t.post_json(&pods, &common::pod("p2", &[])).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json()["message"],
        "pods \"p2\" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=1, limited: pods=1"
    );
    // Deleting the pod frees its share once the controller recounts.
    let del = t
        .delete(&format!("{pods}/p1?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(del.status, StatusCode::OK);
    common::eventually(std::time::Duration::from_secs(10), || used("0")).await;
    assert_eq!(
        t.post_json(&pods, &common::pod("p2", &[])).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn pods_wait_for_their_service_account_and_get_the_token_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn rkube_store::Store> = std::sync::Arc::new(
        rkube_store::embedded::EmbeddedStore::open(dir.path())
            .await
            .expect("store"),
    );
    let mut sec = common::security(dir.path());
    sec.admission = rkube_apiserver::admission::Admission::default_plugins();
    let t = TestServer::on_store_with(store, dir, Default::default(), sec).await;
    let r = t
        .post_json(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sa"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // No controller yet: upstream refuses the pod until `default` exists.
    let early = t
        .post_json("/api/v1/namespaces/sa/pods", &pod("p", &[]))
        .await;
    assert_eq!(early.status, StatusCode::FORBIDDEN);
    assert_eq!(
        early.json()["message"],
        "pods \"p\" is forbidden: error looking up service account sa/default: serviceaccount \"default\" not found"
    );
    t.start_controllers(&["serviceaccount"]);
    let created = eventually(Duration::from_secs(10), || {
        let t = &t;
        async move {
            let r = t
                .post_json("/api/v1/namespaces/sa/pods", &pod("p", &[]))
                .await;
            (r.status == StatusCode::CREATED).then(|| r.json())
        }
    })
    .await;
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    let volume = &created["spec"]["volumes"][0];
    assert!(
        volume["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("kube-api-access-"),
        "{volume}"
    );
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3607
    );
    assert_eq!(
        created["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    // DefaultTolerationSeconds and Priority ran too.
    let tolerations = created["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(tolerations
        .iter()
        .any(|t| t["key"] == "node.kubernetes.io/not-ready" && t["tolerationSeconds"] == 300));
    assert_eq!(created["spec"]["priority"], 0);
}
