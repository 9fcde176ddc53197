//! An in-process API server for the volume tests: an embedded store in a temporary
//! directory, RBAC and the Node authorizer on, the default admission plugins (ServiceAccount
//! included, so pods get the `kube-api-access-*` projected volume), and service-account
//! tokens signed with a key of its own, so TokenRequest and TokenReview work.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

/// The issuer (and API audience) of the test server's service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

pub struct VolApi {
    pub server: Arc<rkube_apiserver::ApiServer>,
    /// A cluster admin (the test itself).
    pub admin: kube::Client,
    _dir: tempfile::TempDir,
}

impl VolApi {
    pub async fn start() -> VolApi {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn rkube_store::Store> = Arc::new(
            rkube_store::embedded::EmbeddedStore::open(&dir.path().join("store"))
                .await
                .expect("store"),
        );
        let key = rkube_pki::jwt::SigningKey::load_or_create(&dir.path().join("sa.key"))
            .expect("service-account key");
        let security = rkube_apiserver::Security {
            admission: rkube_apiserver::admission::Admission::default_plugins(),
            service_accounts: Some(rkube_apiserver::sa_token::ServiceAccountTokens::new(
                key,
                ISSUER.to_string(),
            )),
            ..Default::default()
        };
        let server =
            rkube_apiserver::ApiServer::new(store, rkube_apiserver::Config::default(), security)
                .await
                .expect("API server");
        let admin = server.client(rkube_apiserver::authz::User {
            name: "test-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        });
        VolApi {
            server,
            admin,
            _dir: dir,
        }
    }

    /// A client acting as the kubelet of `node` (`system:node:<node>` in `system:nodes`),
    /// confined by the Node authorizer and NodeRestriction.
    pub fn node_client(&self, node: &str) -> kube::Client {
        self.server.client(rkube_apiserver::authz::User {
            name: format!("system:node:{node}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            ..Default::default()
        })
    }

    /// A namespace with what the controllers would have made in it: the `default`
    /// service account and the `kube-root-ca.crt` config map.
    pub async fn namespace(&self, ns: &str) {
        if ns != "default" {
            let nss: Api<Namespace> = Api::all(self.admin.clone());
            nss.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
            )
            .await
            .expect("creating the namespace");
        }
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), ns);
        sas.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa"),
        )
        .await
        .expect("creating the default service account");
        let cms: Api<ConfigMap> = Api::namespaced(self.admin.clone(), ns);
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "kube-root-ca.crt"},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----\n"},
            }))
            .expect("configmap"),
        )
        .await
        .expect("creating kube-root-ca.crt");
    }

    /// The Node object of `name`, with allocatable resources.
    pub async fn node(&self, name: &str, cpu: &str, memory: &str) {
        let nodes: Api<Node> = Api::all(self.admin.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "status": {
                        "allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": "10Gi", "pods": "110"},
                        "capacity": {"cpu": cpu, "memory": memory, "ephemeral-storage": "10Gi", "pods": "110"},
                    },
                }))
                .expect("node"),
            )
            .await
            .expect("creating the node");
    }
}
