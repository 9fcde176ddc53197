//! An in-process API server over HTTPS (the embedded store in a temporary directory,
//! authentication, RBAC and admission on) set up to reach kubelets as `rkube server` does:
//! a `kube-apiserver-kubelet-client` certificate bound to `system:kubelet-api-admin`, and
//! kubelet serving certificates verified against the cluster CA. Also a kubeconfig with an
//! admin certificate for kubectl, and the real kubectl builds found on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use rkube_apiserver::{ApiServer, Config};
use rkube_store::embedded::EmbeddedStore;
use rkube_store::Store;

/// The API server's identity to kubelets.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

pub struct TestApi {
    pub server: Arc<ApiServer>,
    pub ca: Arc<rkube_pki::Ca>,
    pub url: String,
    /// An admin (`system:masters`) client over HTTPS: upgrades (exec, port-forward) need a
    /// real connection.
    pub admin: kube::Client,
    /// An admin kubeconfig file for kubectl.
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApi {
    /// Without the ServiceAccount admission plugin (pods need no service account).
    pub async fn start() -> TestApi {
        TestApi::start_with(false).await
    }

    /// With the default admission plugins, ServiceAccount included: pods get the
    /// `kube-api-access-*` projected volume, so their namespace needs what the controllers
    /// would make (see `namespace`).
    pub async fn with_service_accounts() -> TestApi {
        TestApi::start_with(true).await
    }

    async fn start_with(service_accounts: bool) -> TestApi {
        let dir = tempfile::Builder::new()
            .prefix("rkapi")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
        let ca = rkube_pki::Ca::load_or_create(&dir.path().join("tls")).expect("ca");
        let kubelet_cert = ca
            .issue_client(KUBELET_CLIENT_USER, &[])
            .expect("kubelet client cert");
        let admission = if service_accounts {
            rkube_apiserver::admission::Admission::default_plugins()
        } else {
            // The ServiceAccount plugin wants `default` accounts a controller makes; no
            // controller runs here.
            rkube_apiserver::admission::Admission::from_flags(&[], &["ServiceAccount".into()])
                .expect("admission plugins")
        };
        let mut security = rkube_apiserver::Security {
            admission,
            ..Default::default()
        };
        let key =
            rkube_pki::jwt::SigningKey::load_or_create(&dir.path().join("tls").join("sa.key"))
                .expect("service-account key");
        security.service_accounts = Some(rkube_apiserver::sa_token::ServiceAccountTokens::new(
            key,
            super::apiserver_vol::ISSUER.to_string(),
        ));
        security.kubelet = rkube_apiserver::kubelet_client::KubeletClient::new(
            &rkube_apiserver::kubelet_client::KubeletClientConfig {
                client_cert: Some(kubelet_cert),
                ca_pem: Some(ca.cert_pem().to_string()),
            },
        )
        .expect("kubelet client");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = ApiServer::new(
            store,
            Config {
                server_address: addr.to_string(),
                ..Config::default()
            },
            security,
        )
        .await
        .expect("api server");
        let serving = ca
            .issue_serving(
                "localhost",
                &["localhost".to_string()],
                &["127.0.0.1".parse().expect("ip")],
            )
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
        let admin_cert = ca
            .issue_client("test-admin", &["system:masters".to_string()])
            .expect("admin cert");
        let yaml = rkube_pki::kubeconfig(
            &url,
            ca.cert_pem(),
            "test",
            "test",
            &rkube_pki::Credential::Cert(admin_cert),
        );
        let kubeconfig = dir.path().join("admin.kubeconfig");
        std::fs::write(&kubeconfig, &yaml).expect("kubeconfig");
        let admin = client_from_yaml(&yaml).await;
        let api = TestApi {
            server,
            ca: Arc::new(ca),
            url,
            admin,
            kubeconfig,
            dir,
            shutdown: Some(tx),
        };
        api.bind_kubelet_api_admin().await;
        api
    }

    /// `system:kubelet-api-admin` for the API server's kubelet client user.
    async fn bind_kubelet_api_admin(&self) {
        let api: kube::Api<ClusterRoleBinding> = kube::Api::all(self.admin.clone());
        api.create(
            &Default::default(),
            &ClusterRoleBinding {
                metadata: kube::api::ObjectMeta {
                    name: Some("kube-apiserver-kubelet-api-admin".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: "system:kubelet-api-admin".into(),
                },
                subjects: Some(vec![Subject {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "User".into(),
                    name: KUBELET_CLIENT_USER.into(),
                    namespace: None,
                }]),
            },
        )
        .await
        .expect("binding");
    }

    /// A client acting as a node (what a kubelet uses for its reviews), in-process.
    pub fn node_client(&self, node: &str) -> kube::Client {
        self.server.client(rkube_apiserver::authz::User {
            name: format!("system:node:{node}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            ..Default::default()
        })
    }

    /// A client over HTTPS with a client certificate for `user` in `groups`.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> kube::Client {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let cert = self.ca.issue_client(user, &groups).expect("client cert");
        let yaml = rkube_pki::kubeconfig(
            &self.url,
            self.ca.cert_pem(),
            "test",
            "test",
            &rkube_pki::Credential::Cert(cert),
        );
        client_from_yaml(&yaml).await
    }
}

async fn client_from_yaml(yaml: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("client config");
    kube::Client::try_from(cfg).expect("client")
}

/// The kubectl builds on this machine: every `kubectl.1.NN` beside the `kubectl` on PATH.
/// Under CI none found is a failure. `RKUBE_KUBECTL_ONLY=1.33` keeps one.
pub fn kubectl_builds() -> Vec<PathBuf> {
    let path = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut builds: Vec<PathBuf> = Path::new(&path)
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("kubectl.1."))
                })
                .collect()
        })
        .unwrap_or_default();
    builds.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.trim_start_matches("kubectl.1.").parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Ok(only) = std::env::var("RKUBE_KUBECTL_ONLY") {
        builds.retain(|b| b.to_string_lossy().ends_with(&format!("kubectl.{only}")));
    }
    if builds.is_empty() && std::env::var_os("CI").is_some() {
        panic!("no kubectl.1.* build beside the kubectl on PATH");
    }
    builds
}

/// A build's minor version (`kubectl.1.30` → 30).
pub fn kubectl_minor(bin: &Path) -> u32 {
    bin.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.trim_start_matches("kubectl.1.").parse().ok())
        .unwrap_or(0)
}
