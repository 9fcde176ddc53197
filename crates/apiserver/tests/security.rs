//! Authentication and authorization across identities and verbs, against a real server
//! over HTTPS: anonymous and bad credentials get 401, RBAC's default roles grant what
//! upstream's do, the Node authorizer and NodeRestriction confine kubelets, service-account
//! tokens honour their audience and expiry, escalation is refused, and the reviews answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn status_of(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn bind_cluster_role(t: &TestServer, name: &str, role: &str, user: &str, ns: Option<&str>) {
    let (path, kind) = match ns {
        Some(ns) => (
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            "RoleBinding",
        ),
        None => (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string(),
            "ClusterRoleBinding",
        ),
    };
    let body = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    });
    let r = t.post_json(&path, &body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn namespace(t: &TestServer, name: &str) {
    let r = t
        .post_json(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn anonymous_requests_get_401_except_health_and_version() {
    let t = TestServer::start().await;
    for path in [
        "/api/v1/pods",
        "/api",
        "/apis",
        "/metrics",
        "/openapi/v2",
        "/api/v1/namespaces/default/secrets",
    ] {
        let r = t.raw_as(None, Method::GET, path, &[], Vec::new()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.json()["reason"], "Unauthorized");
    }
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        let r = t.raw_as(None, Method::GET, path, &[], Vec::new()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    // Over the wire too: a client without a certificate or token.
    let anon = t
        .client_with(rkube_pki::Credential::Token(String::new()))
        .await;
    let err = Api::<Pod>::all(anon)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 401);
}

#[tokio::test]
async fn a_bad_token_or_a_foreign_certificate_gets_401() {
    let t = TestServer::start().await;
    let bad = t
        .client_with(rkube_pki::Credential::Token("not-a-token".into()))
        .await;
    let err = Api::<Pod>::all(bad)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 401);
    let r = t
        .raw_as(
            None,
            Method::GET,
            "/healthz",
            &[("authorization", "Bearer nope")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a bad token is refused even where anonymous is allowed"
    );
    // A certificate from another CA fails the TLS handshake.
    let other = rkube_pki::Ca::generate().expect("ca");
    let cert = other
        .issue_client("mallory", &["system:masters".into()])
        .expect("cert");
    let yaml = rkube_pki::kubeconfig(
        &t.url,
        t.ca.cert_pem(),
        "x",
        "x",
        &rkube_pki::Credential::Cert(cert),
    );
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    assert!(Api::<Pod>::all(client)
        .list(&ListParams::default())
        .await
        .is_err());
}

#[tokio::test]
async fn a_user_without_bindings_is_forbidden_everywhere() {
    let t = TestServer::start().await;
    let nobody = t.client_as("nobody", &[]).await;
    for res in rkube_api::RESOURCES
        .iter()
        .filter(|r| r.is_stored() && r.has_verb("list"))
    {
        let path = if res.group.is_empty() {
            format!("/api/{}/{}", res.version, res.plural)
        } else {
            format!("/apis/{}/{}/{}", res.group, res.version, res.plural)
        };
        let req = http::Request::get(&path).body(Vec::new()).expect("request");
        let err = nobody.request_text(req).await.unwrap_err();
        let (code, message) = status_of(err);
        assert_eq!(code, 403, "{path}");
        assert!(
            message.contains("User \"nobody\" cannot list resource"),
            "{message}"
        );
    }
    let err = Api::<ConfigMap>::namespaced(nobody.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_of(err),
        (403, "configmaps is forbidden: User \"nobody\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\"".into())
    );
    // Discovery is open to every authenticated user.
    assert!(nobody.apiserver_version().await.is_ok());
    let req = http::Request::get("/apis").body(Vec::new()).unwrap();
    assert!(nobody.request_text(req).await.is_ok());
}

#[tokio::test]
async fn view_lists_but_cannot_create_and_edit_cannot_read_rbac() {
    let t = TestServer::start().await;
    // view and edit are aggregated roles: their rules come from the aggregation controller.
    t.start_controllers(&["clusterrole-aggregation"]);
    namespace(&t, "team").await;
    bind_cluster_role(&t, "viewer", "view", "vic", Some("team")).await;
    bind_cluster_role(&t, "editor", "edit", "eddie", Some("team")).await;
    let vic = t.client_as("vic", &[]).await;
    let eddie = t.client_as("eddie", &[]).await;
    // The RBAC index follows the cache; wait until the binding is visible.
    common::eventually(std::time::Duration::from_secs(5), || {
        let vic = vic.clone();
        async move {
            Api::<Pod>::namespaced(vic, "team")
                .list(&ListParams::default())
                .await
                .ok()
        }
    })
    .await;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let err = Api::<ConfigMap>::namespaced(vic.clone(), "team")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 403);
    // view does not read secrets.
    let err = Api::<Secret>::namespaced(vic.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 403);
    // Nor anything in another namespace.
    let err = Api::<Pod>::namespaced(vic, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 403);
    common::eventually(std::time::Duration::from_secs(5), || {
        let eddie = eddie.clone();
        let cm = cm.clone();
        async move {
            Api::<ConfigMap>::namespaced(eddie, "team")
                .create(&PostParams::default(), &cm)
                .await
                .ok()
        }
    })
    .await;
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(eddie.clone(), "team");
    let err = roles.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status_of(err).0, 403, "edit cannot read RBAC");
    let rbs: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(eddie, "team");
    assert_eq!(
        status_of(rbs.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );
}

#[tokio::test]
async fn kubelets_reach_only_their_own_pods_secrets_and_node() {
    let t = TestServer::start().await;
    for node in ["n1", "n2"] {
        let r = t
            .post_json(
                "/api/v1/nodes",
                &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    for (secret, node) in [("s1", "n1"), ("s2", "n2")] {
        let r = t
            .post_json(
                "/api/v1/namespaces/default/secrets",
                &json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret}, "stringData": {"k": "v"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let mut pod = common::pod(&format!("p-{node}"), &[]);
        pod["spec"]["nodeName"] = json!(node);
        pod["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": secret}}]);
        let r = t.post_json("/api/v1/namespaces/default/pods", &pod).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let kubelet = t.client_as("system:node:n1", &["system:nodes"]).await;
    let secrets: Api<Secret> = Api::namespaced(kubelet.clone(), "default");
    let own = common::eventually(std::time::Duration::from_secs(5), || {
        let secrets = secrets.clone();
        async move { secrets.get("s1").await.ok() }
    })
    .await;
    assert_eq!(own.metadata.name.as_deref(), Some("s1"));
    let (code, message) = status_of(secrets.get("s2").await.unwrap_err());
    assert_eq!(code, 403);
    assert!(
        message.contains("no relationship found between node 'n1' and this object"),
        "{message}"
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(kubelet.clone());
    let patch = json!({"metadata": {"labels": {"x": "y"}}});
    assert!(nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .is_ok());
    let (code, message) = status_of(
        nodes
            .patch("n2", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("node \"n1\" is not allowed to modify node \"n2\""),
        "{message}"
    );
    // A kubelet may not delete another node's pod.
    let pods: Api<Pod> = Api::namespaced(kubelet.clone(), "default");
    let (code, _) = status_of(pods.delete("p-n2", &Default::default()).await.unwrap_err());
    assert_eq!(code, 403);
    // It lists and watches pods only with its own spec.nodeName field selector.
    let all: Api<Pod> = Api::all(kubelet);
    let own = all
        .list(&kube::api::ListParams::default().fields("spec.nodeName=n1"))
        .await
        .expect("listing own pods");
    let names: Vec<_> = own
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["p-n1".to_string()]);
    let (code, message) = status_of(all.list(&Default::default()).await.unwrap_err());
    assert_eq!(code, 403);
    assert!(
        message.contains("can only list/watch pods with spec.nodeName field selector"),
        "{message}"
    );
    let (code, _) = status_of(
        all.list(&kube::api::ListParams::default().fields("spec.nodeName=n2"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
}

async fn service_account(t: &TestServer, ns: &str, name: &str) -> String {
    let r = t
        .post_json(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    r.json()["metadata"]["uid"].as_str().unwrap().to_string()
}

async fn token_request(t: &TestServer, ns: &str, name: &str, spec: Value) -> (StatusCode, Value) {
    let r = t.post_json(&format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})).await;
    (r.status, r.json())
}

#[tokio::test]
async fn service_account_tokens_authenticate_only_for_their_audience_and_lifetime() {
    let t = TestServer::start().await;
    service_account(&t, "default", "robot").await;
    let (code, tr) = token_request(&t, "default", "robot", json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    assert!(tr["status"]["expirationTimestamp"].is_string());
    let robot = common::eventually(std::time::Duration::from_secs(5), || {
        let t = &t;
        let token = token.clone();
        async move {
            let r = t.raw_as(None, Method::POST, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &[("authorization", &format!("Bearer {token}")), ("content-type", "application/json")],
                serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})).unwrap()).await;
            (r.status == StatusCode::CREATED).then(|| r.json())
        }
    })
    .await;
    assert_eq!(
        robot["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );
    let groups = robot["status"]["userInfo"]["groups"].as_array().unwrap();
    assert!(groups.contains(&json!("system:serviceaccounts:default")));
    // Another audience is refused.
    let (_, tr) = token_request(&t, "default", "robot", json!({"audiences": ["vault"]})).await;
    let other = tr["status"]["token"].as_str().unwrap();
    let r = t
        .raw_as(
            None,
            Method::GET,
            "/api",
            &[("authorization", &format!("Bearer {other}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // TokenReview with the right audience accepts it and says which.
    let r = t
        .post_json(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview", "spec": {"token": other, "audiences": ["vault"]}}),
        )
        .await;
    assert_eq!(r.json()["status"]["authenticated"], true);
    assert_eq!(r.json()["status"]["audiences"], json!(["vault"]));
    // An expired token is refused.
    let tokens = t.server.security().service_accounts.as_ref().unwrap();
    let sa_uid = t
        .get("/api/v1/namespaces/default/serviceaccounts/robot")
        .await
        .json()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let past = jiff::Timestamp::now().as_second() - 7200;
    let claims = tokens.bound_claims(
        "default",
        "robot",
        &sa_uid,
        &tokens.api_audiences,
        std::time::Duration::from_secs(600),
        None,
        None,
        past,
    );
    let expired = tokens.sign(&claims).unwrap();
    let r = t
        .raw_as(
            None,
            Method::GET,
            "/api",
            &[("authorization", &format!("Bearer {expired}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Deleting the account revokes its tokens.
    assert_eq!(
        t.delete("/api/v1/namespaces/default/serviceaccounts/robot", None)
            .await
            .status,
        StatusCode::OK
    );
    common::eventually(std::time::Duration::from_secs(5), || {
        let t = &t;
        let token = token.clone();
        async move {
            let r = t
                .raw_as(
                    None,
                    Method::GET,
                    "/api",
                    &[("authorization", &format!("Bearer {token}"))],
                    Vec::new(),
                )
                .await;
            (r.status == StatusCode::UNAUTHORIZED).then_some(())
        }
    })
    .await;
    // Lifetimes under ten minutes are invalid.
    service_account(&t, "default", "short").await;
    let (code, body) =
        token_request(&t, "default", "short", json!({"expirationSeconds": 60})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn granting_permissions_one_does_not_hold_is_refused() {
    let t = TestServer::start().await;
    namespace(&t, "dev").await;
    // Mallory may manage roles and bindings in dev (without `escalate` or `bind`, which a
    // `*` verb would include), and read config maps, nothing more.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "rbac-manager"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                   "verbs": ["create", "get", "list", "update", "delete"]},
                  {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]});
    assert_eq!(
        t.post_json(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/roles",
            &role
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "m"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rbac-manager"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]});
    assert_eq!(
        t.post_json(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings",
            &rb
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let mallory = t.client_as("mallory", &[]).await;
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(mallory.clone(), "dev");
    let ok: k8s_openapi::api::rbac::v1::Role =
        serde_json::from_value(json!({"metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}))
        .unwrap();
    common::eventually(std::time::Duration::from_secs(5), || {
        let roles = roles.clone();
        let ok = ok.clone();
        async move { roles.create(&PostParams::default(), &ok).await.ok() }
    })
    .await;
    let bad: k8s_openapi::api::rbac::v1::Role =
        serde_json::from_value(json!({"metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}))
        .unwrap();
    let (code, message) = status_of(
        roles
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(message.starts_with("roles.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"mallory\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"), "{message}");
    // Binding cluster-admin to oneself is refused too.
    let rbs: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(mallory, "dev");
    let grab: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({"metadata": {"name": "grab"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]})).unwrap();
    let (code, message) = status_of(rbs.create(&PostParams::default(), &grab).await.unwrap_err());
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("is attempting to grant RBAC permissions not currently held"),
        "{message}"
    );
}

#[tokio::test]
async fn access_reviews_answer_for_oneself_and_others() {
    let t = TestServer::start().await;
    t.start_controllers(&["clusterrole-aggregation"]);
    namespace(&t, "rev").await;
    bind_cluster_role(&t, "viewer", "view", "vic", Some("rev")).await;
    let vic = t.client_as("vic", &[]).await;
    let ssar = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"namespace": "rev", "verb": verb, "resource": resource}}})
    };
    let ask = |body: Value| {
        let vic = vic.clone();
        async move {
            let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            let text = vic.request_text(req).await.expect("review");
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let allowed = common::eventually(std::time::Duration::from_secs(5), || {
        let ask = &ask;
        async move {
            let r = ask(ssar("list", "pods")).await;
            (r["status"]["allowed"] == true).then_some(r)
        }
    })
    .await;
    assert!(allowed["status"]["reason"].as_str().unwrap().contains(
        "RBAC: allowed by RoleBinding \"viewer/rev\" of ClusterRole \"view\" to User \"vic\""
    ));
    assert_eq!(
        ask(ssar("create", "pods")).await["status"]["allowed"],
        false
    );
    // SubjectAccessReview asks about someone else (admins only).
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "vic", "resourceAttributes": {"namespace": "rev", "verb": "get", "resource": "pods"}}});
    let r = t
        .post_json("/apis/authorization.k8s.io/v1/subjectaccessreviews", &sar)
        .await;
    assert_eq!(r.json()["status"]["allowed"], true);
    let r = t.post_json("/apis/authorization.k8s.io/v1/subjectaccessreviews", &json!({"apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview", "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A LocalSubjectAccessReview must agree with its namespace.
    let r = t.post_json("/apis/authorization.k8s.io/v1/namespaces/rev/localsubjectaccessreviews", &json!({"apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview", "spec": {"user": "vic", "resourceAttributes": {"namespace": "other", "verb": "get", "resource": "pods"}}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The rules review lists view's rules.
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "rev"}})).unwrap())
        .unwrap();
    let rules: Value = serde_json::from_str(&vic.request_text(req).await.unwrap()).unwrap();
    let resource_rules = rules["status"]["resourceRules"].as_array().unwrap();
    assert!(resource_rules.iter().any(|r| r["resources"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("pods")))
        && r["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("list")))));
    // A non-admin may not ask about others.
    let req = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&sar).unwrap())
        .unwrap();
    assert_eq!(status_of(vic.request_text(req).await.unwrap_err()).0, 403);
}

#[tokio::test]
async fn issuer_discovery_is_served_to_service_accounts() {
    let t = TestServer::start().await;
    let doc = t.get("/.well-known/openid-configuration").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(
        doc.json()["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        doc.json()["jwks_uri"],
        "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    );
    let jwks = t.get("/openid/v1/jwks").await;
    assert_eq!(jwks.headers["content-type"], "application/jwk-set+json");
    assert_eq!(jwks.json()["keys"][0]["alg"], "ES256");
    let r = t
        .raw_as(None, Method::GET, "/openid/v1/jwks", &[], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_node_joins_with_a_bootstrap_token_and_a_csr() {
    use base64::Engine;
    let t = TestServer::start().await;
    t.start_controllers(&["csrapproving", "csrsigning"]);
    // kubeadm's bootstrap policy: bootstrappers may request node client certificates.
    bind_group(
        &t,
        "node-bootstrapper",
        "system:node-bootstrapper",
        "system:bootstrappers",
    )
    .await;
    bind_group(
        &t,
        "node-autoapprove",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:bootstrappers",
    )
    .await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let r = t
        .post_json(
            "/api/v1/namespaces/kube-system/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "bootstrap-token-abcdef"}, "type": "bootstrap.kubernetes.io/token",
        "data": {"token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef"),
                 "usage-bootstrap-authentication": b64("true")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let joiner = t
        .client_with(rkube_pki::Credential::Token(
            "abcdef.0123456789abcdef".into(),
        ))
        .await;
    let key =
        rkube_pki::create_csr("system:node:n9", &["system:nodes".into()], &[], &[]).expect("csr");
    let csr: k8s_openapi::api::certificates::v1::CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": "node-csr-n9"},
        "spec": {"request": b64(&key.csr_pem), "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "key encipherment", "client auth"]}})).unwrap();
    let csrs: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> =
        Api::all(joiner.clone());
    let created = common::eventually(std::time::Duration::from_secs(5), || {
        let csrs = csrs.clone();
        let csr = csr.clone();
        async move { csrs.create(&PostParams::default(), &csr).await.ok() }
    })
    .await;
    assert_eq!(
        created.spec.username.as_deref(),
        Some("system:bootstrap:abcdef")
    );
    let cert = common::eventually(std::time::Duration::from_secs(10), || {
        let csrs = csrs.clone();
        async move {
            let c = csrs.get("node-csr-n9").await.ok()?;
            c.status?
                .certificate
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        }
    })
    .await;
    let approved = csrs.get("node-csr-n9").await.unwrap();
    let cond = &approved.status.unwrap().conditions.unwrap()[0];
    assert_eq!(
        (cond.type_.as_str(), cond.reason.as_deref()),
        ("Approved", Some("AutoApproved"))
    );
    // The issued certificate authenticates the node.
    let node = t
        .client_with(rkube_pki::Credential::Cert(rkube_pki::CertKey {
            cert_pem: cert,
            key_pem: key.key_pem,
        }))
        .await;
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .unwrap(),
        )
        .unwrap();
    let who: Value = serde_json::from_str(&node.request_text(req).await.unwrap()).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "system:node:n9");
    // A bootstrap identity may not ask for a system:masters client certificate.
    let masters = rkube_pki::create_csr("eve", &["system:masters".into()], &[], &[]).expect("csr");
    let bad: k8s_openapi::api::certificates::v1::CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": "grab"},
        "spec": {"request": b64(&masters.csr_pem), "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"]}})).unwrap();
    let err =
        Api::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>::all(t.client.clone())
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err();
    let (code, message) = status_of(err);
    assert_eq!(code, 403);
    assert!(message.contains("use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"), "{message}");
}

async fn bind_group(t: &TestServer, name: &str, role: &str, group: &str) {
    let body = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    });
    let r = t
        .post_json(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &body,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn static_tokens_from_the_token_file_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn rkube_store::Store> = std::sync::Arc::new(
        rkube_store::embedded::EmbeddedStore::open(dir.path())
            .await
            .unwrap(),
    );
    let mut sec = common::security(dir.path());
    sec.authn.token_file = Some(
        rkube_apiserver::authn::token_file::TokenFile::parse("s3cret,alice,1001,\"ops,dev\"\n")
            .unwrap(),
    );
    let t = TestServer::on_store_with(store, dir, Default::default(), sec).await;
    let alice = t
        .client_with(rkube_pki::Credential::Token("s3cret".into()))
        .await;
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .unwrap(),
        )
        .unwrap();
    let who: Value = serde_json::from_str(&alice.request_text(req).await.unwrap()).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    assert_eq!(who["status"]["userInfo"]["uid"], "1001");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["ops", "dev", "system:authenticated"])
    );
}

#[tokio::test]
async fn legacy_secret_tokens_are_filled_and_authenticate_while_the_secret_exists() {
    let t = TestServer::start().await;
    t.start_controllers(&["serviceaccount-token"]);
    service_account(&t, "default", "old-style").await;
    let r = t.post_json("/api/v1/namespaces/default/secrets", &json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "old-style-token", "annotations": {"kubernetes.io/service-account.name": "old-style"}},
        "type": "kubernetes.io/service-account-token"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = common::eventually(std::time::Duration::from_secs(10), || {
        let t = &t;
        async move {
            let s = t
                .get("/api/v1/namespaces/default/secrets/old-style-token")
                .await
                .json();
            let b64 = s["data"]["token"].as_str()?.to_string();
            use base64::Engine;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
        }
    })
    .await;
    let who = |token: String| {
        let t = &t;
        async move {
            t.raw_as(
                None,
                Method::POST,
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &[
                    ("authorization", &format!("Bearer {token}")),
                    ("content-type", "application/json"),
                ],
                serde_json::to_vec(
                    &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
                )
                .unwrap(),
            )
            .await
        }
    };
    let r = common::eventually(std::time::Duration::from_secs(5), || {
        let who = &who;
        let token = token.clone();
        async move {
            let r = who(token).await;
            (r.status == StatusCode::CREATED).then_some(r)
        }
    })
    .await;
    assert_eq!(
        r.json()["status"]["userInfo"]["username"],
        "system:serviceaccount:default:old-style"
    );
    assert_eq!(
        t.delete("/api/v1/namespaces/default/secrets/old-style-token", None)
            .await
            .status,
        StatusCode::OK
    );
    common::eventually(std::time::Duration::from_secs(5), || {
        let who = &who;
        let token = token.clone();
        async move { (who(token).await.status == StatusCode::UNAUTHORIZED).then_some(()) }
    })
    .await;
}
