//! What the volume and pod tests add to the shared API server fixture: a namespace with its
//! default service account and `kube-root-ca.crt` (what the controllers would make), and Node
//! objects with allocatable resources.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, ServiceAccount};

use super::apiserver::TestApi;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The issuer (and API audience) of the test server's service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The API server of the volume and pod tests: [`TestApi`] with service-account admission.
pub type VolApi = TestApi;

impl TestApi {
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
