//! A real API server for tests: the embedded store in a temporary directory, served over TLS
//! on a loopback port with authentication, RBAC and admission on, a kube-rs client holding
//! an admin (`system:masters`) client certificate, and a raw helper that reaches the router
//! in-process (as the admin unless told otherwise) for status codes and headers.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use rkube_apiserver::{ApiServer, Config};
use rkube_store::embedded::EmbeddedStore;
use rkube_store::Store;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub client: kube::Client,
    pub ca: Arc<rkube_pki::Ca>,
    pub url: String,
    pub server: Arc<ApiServer>,
    pub store: Arc<dyn Store>,
    pub dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A raw response.
pub struct Raw {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config {
            bookmark_interval: Duration::from_secs(60),
            ..Config::default()
        })
        .await
    }

    pub async fn start_with(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
        Self::on_store(store, dir, config).await
    }

    /// A server over an existing store (to test restarts).
    pub async fn on_store(store: Arc<dyn Store>, dir: tempfile::TempDir, config: Config) -> Self {
        let sec = security(dir.path());
        Self::on_store_with(store, dir, config, sec).await
    }

    /// A server over an existing store with the given security.
    pub async fn on_store_with(
        store: Arc<dyn Store>,
        dir: tempfile::TempDir,
        mut config: Config,
        security: rkube_apiserver::Security,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.server_address = addr.to_string();
        let server = ApiServer::new(store.clone(), config, security)
            .await
            .expect("api server");
        let ca = rkube_pki::Ca::load_or_create(&dir.path().join("tls")).expect("ca");
        let ips = ["127.0.0.1".parse().expect("ip")];
        let serving = ca
            .issue_serving("localhost", &["localhost".to_string()], &ips)
            .expect("serving cert");
        let tls = rkube_pki::server_tls_config(&serving, ca.cert_pem()).expect("tls");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(rkube_apiserver::tls::serve_tls(
            server.clone(),
            listener,
            tls,
            async move {
                let _ = rx.await;
            },
        ));
        let url = format!("https://{addr}");
        let admin = ca
            .issue_client("system:admin", &["system:masters".to_string()])
            .expect("admin cert");
        let client = client_for(&url, &ca, rkube_pki::Credential::Cert(admin)).await;
        TestServer {
            client,
            ca: Arc::new(ca),
            url,
            server,
            store,
            dir: Some(dir),
            shutdown: Some(tx),
        }
    }

    /// Starts controllers (by `--controllers` names) in-process, each under its own
    /// identity as `rkube server` runs them; they stop with the runtime.
    pub fn start_controllers(&self, names: &[&str]) {
        let enabled =
            rkube_controllers::Controllers::from_list(names.iter().map(|n| n.to_string()))
                .expect("known controllers");
        let mut ctx = rkube_controllers::ControllerContext::new(self.ca.cert_pem());
        ctx.csr_signer = Some(self.ca.clone());
        ctx.token_generator = Some(Arc::new(LegacyTokens(self.server.clone())));
        ctx.informer_client = Some(self.server.client(rkube_controllers::identity("")));
        let server = self.server.clone();
        let client_for = move |sa: &str| server.client(rkube_controllers::identity(sa));
        let _ = rkube_controllers::start_all(&client_for, Arc::new(ctx), &enabled);
    }

    /// A kube client over HTTPS with the given credential.
    pub async fn client_with(&self, cred: rkube_pki::Credential) -> kube::Client {
        client_for(&self.url, &self.ca, cred).await
    }

    /// A kube client over HTTPS with a client certificate for `user` in `groups`.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> kube::Client {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let cert = self.ca.issue_client(user, &groups).expect("client cert");
        self.client_with(rkube_pki::Credential::Cert(cert)).await
    }

    /// Sends a request straight to the router (no socket) as the admin.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Raw {
        self.raw_as(Some(admin()), method, path, headers, body)
            .await
    }

    /// Sends a request straight to the router (no socket) as `user` through the in-process
    /// transport, or with no identity at all (so headers alone authenticate it).
    pub async fn raw_as(
        &self,
        user: Option<rkube_apiserver::authz::User>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Raw {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.into())).expect("request");
        if let Some(user) = user {
            req.extensions_mut()
                .insert(rkube_apiserver::authn::InProcessIdentity(user));
        }
        let resp = self.server.router().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Raw {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Raw {
        self.raw(Method::GET, path, &[], Vec::new()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Raw {
        self.raw(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Raw {
        self.raw(
            Method::PUT,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Raw {
        self.raw(
            Method::PATCH,
            path,
            &[("content-type", content_type)],
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    pub async fn delete(&self, path: &str, body: Option<&Value>) -> Raw {
        let b = body
            .map(|b| serde_json::to_vec(b).expect("json"))
            .unwrap_or_default();
        self.raw(
            Method::DELETE,
            path,
            &[("content-type", "application/json")],
            b,
        )
        .await
    }

    /// Stops serving; returns the store and directory for a restart.
    pub fn stop(mut self) -> (Arc<dyn Store>, tempfile::TempDir) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let dir = self.dir.take().expect("directory");
        (self.store.clone(), dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The API tests' security: authentication and authorization on, service-account tokens
/// signed with a key in `dir`, and the default admission plugins but ServiceAccount, whose
/// `default` accounts come from a controller these tests do not run (upstream's integration
/// tests do the same).
pub fn security(dir: &std::path::Path) -> rkube_apiserver::Security {
    let mut s = rkube_apiserver::Security {
        admission: rkube_apiserver::admission::Admission::from_flags(
            &[],
            &["ServiceAccount".into()],
        )
        .expect("known plugin"),
        ..Default::default()
    };
    let key = rkube_pki::jwt::SigningKey::load_or_create(&dir.join("tls").join("sa.key"))
        .expect("service-account key");
    s.service_accounts = Some(rkube_apiserver::sa_token::ServiceAccountTokens::new(
        key,
        "https://kubernetes.default.svc.cluster.local".to_string(),
    ));
    s
}

/// Legacy service-account tokens signed with the server's key, as `rkube server` provides.
struct LegacyTokens(Arc<ApiServer>);

impl rkube_controllers::TokenGenerator for LegacyTokens {
    fn legacy_token(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> Result<String, String> {
        let tokens = self
            .0
            .security()
            .service_accounts
            .as_ref()
            .ok_or("no key")?;
        tokens
            .legacy_token(namespace, sa_name, sa_uid, secret_name)
            .ok_or_else(|| "signing failed".to_string())
    }
}

/// The admin identity of in-process requests.
pub fn admin() -> rkube_apiserver::authz::User {
    rkube_apiserver::authz::User {
        name: "system:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    }
}

/// A kube client for `url`, trusting `ca`, with a credential.
pub async fn client_for(
    url: &str,
    ca: &rkube_pki::Ca,
    cred: rkube_pki::Credential,
) -> kube::Client {
    let yaml = rkube_pki::kubeconfig(url, ca.cert_pem(), "test", "test", &cred);
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("client config");
    kube::Client::try_from(cfg).expect("client")
}

/// A minimal valid pod.
pub fn pod(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    })
}

/// A minimal valid deployment.
pub fn deployment(name: &str, replicas: i64) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80}]}]},
            },
        },
    })
}

/// Polls `f` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
