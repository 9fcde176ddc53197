//! Service fixtures the Endpoints and EndpointSlice tests share: a node and the default
//! service account, services, pods on the node, and the kubelet's status writes.

use k8s_openapi::api::core::v1::{Node, Pod, Service, ServiceAccount};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

use super::{wait_for, TestResult};

pub const NS: &str = "default";

/// Node `n1` in zone `z1`, and the namespace's default service account (pods need it).
pub async fn prepare(client: &kube::Client) -> TestResult {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1",
        "labels": {"topology.kubernetes.io/zone": "z1"}}}))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    wait_for("the default service account", || {
        let sas = sas.clone();
        async move { sas.get_opt("default").await.ok()? }
    })
    .await;
    Ok(())
}

pub async fn create_service(client: &kube::Client, name: &str, spec: Value) -> TestResult {
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))?;
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &svc)
        .await?;
    Ok(())
}

/// A pod labelled `app` on n1 whose container names port `http` as `http_port`.
pub async fn create_pod(
    client: &kube::Client,
    name: &str,
    app: &str,
    http_port: i32,
) -> TestResult {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
            "ports": [{"name": "http", "containerPort": http_port}]}]}}))?;
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

/// Plays the kubelet: the pod runs with `ip` and is Ready or not.
pub async fn set_status(client: &kube::Client, name: &str, ip: &str, ready: bool) -> TestResult {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    Api::<Pod>::namespaced(client.clone(), NS)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}
