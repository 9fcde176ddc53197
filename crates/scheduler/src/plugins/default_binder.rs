//! DefaultBinder: binds the pod through the `pods/binding` subresource, which the API server
//! applies only if the pod is still unbound and has the same uid.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use crate::framework::{BindPlugin, CycleState, Plugin, PodInfo, Status};
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "DefaultBinder";

/// See the module documentation.
pub struct DefaultBinder {
    client: Option<kube::Client>,
}

impl std::fmt::Debug for DefaultBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NAME)
    }
}

/// The factory.
pub fn new(_args: &serde_json::Value, handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultBinder {
        client: handle.client.clone(),
    }))
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

/// The Binding object for `pod` and `node`.
pub fn binding(pod: &PodInfo, node: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

#[async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, _state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        let Some(client) = &self.client else {
            return Status::error("DefaultBinder has no API client");
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        let body = binding(pod, node);
        match api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                &body,
            )
            .await
        {
            Ok(_) => Status::success(),
            Err(e) => Status::error(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testing::pod;

    #[test]
    fn binding_names_pod_uid_and_node() {
        let p = pod(json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}));
        let b = binding(&p, "n1");
        assert_eq!(
            b["metadata"],
            json!({"name": "web", "namespace": "ns", "uid": "u1"})
        );
        assert_eq!(b["target"]["name"], "n1");
        assert_eq!(b["kind"], "Binding");
    }
}
