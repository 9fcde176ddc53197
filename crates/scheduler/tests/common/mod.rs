//! What the scheduler's integration tests share: a real API server on an embedded store in a
//! temporary directory with RBAC on, the scheduler running in-process as
//! `system:kube-scheduler` (so the bootstrap policy must allow everything it does), Node
//! objects without kubelets, and waiting on conditions with deadlines.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A running API server, an admin client, and the scheduler.
pub struct Cluster {
    pub admin: kube::Client,
    pub server: Arc<rkube_apiserver::ApiServer>,
    pub metrics: Arc<rkube_scheduler::Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The scheduler's identity, as `rkube server` gives it.
pub fn scheduler_user() -> rkube_apiserver::authz::User {
    rkube_apiserver::authz::User {
        name: "system:kube-scheduler".into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    }
}

/// Starts an API server (RBAC on; ServiceAccount admission off, as no controller creates
/// service accounts here) and a scheduler with `config` (YAML; empty for the defaults).
pub async fn cluster(config: &str) -> Result<Cluster, BoxError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn rkube_store::Store> =
        Arc::new(rkube_store::embedded::EmbeddedStore::open(dir.path()).await?);
    let security = rkube_apiserver::Security {
        admission: rkube_apiserver::admission::Admission::from_flags(
            &[],
            &["ServiceAccount".into()],
        )?,
        ..Default::default()
    };
    let server =
        rkube_apiserver::ApiServer::new(store, rkube_apiserver::Config::default(), security)
            .await?;
    let admin = server.client(rkube_apiserver::authz::User {
        name: "test-admin".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    let cfg = if config.is_empty() {
        rkube_scheduler::KubeSchedulerConfiguration::default()
    } else {
        rkube_scheduler::KubeSchedulerConfiguration::parse(config)?
    };
    let metrics = Arc::new(rkube_scheduler::Metrics::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let client = server.client(scheduler_user());
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = rkube_scheduler::run(client, cfg, m, stop).await {
            panic!("scheduler failed: {e}");
        }
    });
    Ok(Cluster {
        admin,
        server,
        metrics,
        stop: Some(tx),
        task: Some(task),
        _dir: dir,
    })
}

/// Waits until `check` returns `Some`, polling every 20 ms, for at most `deadline`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > end {
            return Err(format!("timed out after {deadline:?} waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Ready node with this allocatable cpu (millicores), memory (MiB), labels and taints.
pub fn node_json(name: &str, cpu_m: i64, mem_mi: i64, labels: Value, taints: Value) -> Value {
    let mut l = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    if let (Some(l), Some(extra)) = (l.as_object_mut(), labels.as_object()) {
        for (k, v) in extra {
            l.insert(k.clone(), v.clone());
        }
    }
    let alloc = json!({"cpu": format!("{cpu_m}m"), "memory": format!("{mem_mi}Mi"), "pods": "110"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {"taints": taints},
        "status": {"capacity": alloc, "allocatable": alloc,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// Creates a node as a kubelet registers it: with status, still carrying the not-ready taint
/// that admission puts on new nodes.
pub async fn add_node_not_ready(c: &Cluster, node: Value) -> Result<(), BoxError> {
    let api: Api<Node> = Api::all(c.admin.clone());
    let n: Node = serde_json::from_value(node)?;
    let created = api.create(&PostParams::default(), &n).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let mut with_status = created;
    with_status.status = n.status;
    api.replace_status(&name, &PostParams::default(), &with_status)
        .await?;
    Ok(())
}

/// Removes the not-ready taint, as the node lifecycle controller does for a Ready node.
pub async fn mark_ready(c: &Cluster, name: &str) -> Result<(), BoxError> {
    let api: Api<Node> = Api::all(c.admin.clone());
    let mut n = api.get(name).await?;
    if let Some(spec) = n.spec.as_mut() {
        if let Some(t) = spec.taints.as_mut() {
            t.retain(|t| t.key != "node.kubernetes.io/not-ready");
        }
    }
    api.replace(name, &PostParams::default(), &n).await?;
    Ok(())
}

/// Creates a Ready node with exactly the taints `node` lists (the not-ready taint admission
/// adds is replaced, as the node lifecycle controller would remove it).
pub async fn add_node(c: &Cluster, node: Value) -> Result<(), BoxError> {
    let name = node["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let taints = node["spec"]["taints"].clone();
    add_node_not_ready(c, node).await?;
    let api: Api<Node> = Api::all(c.admin.clone());
    let mut n = api.get(&name).await?;
    n.spec.get_or_insert_with(Default::default).taints = serde_json::from_value(taints)?;
    api.replace(&name, &PostParams::default(), &n).await?;
    Ok(())
}

/// A pod with one container requesting `cpu_m` millicores, plus `extra` merged into its spec.
pub fn pod_json(name: &str, cpu_m: i64, labels: Value, extra_spec: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": format!("{cpu_m}m"), "memory": "10Mi"}}}]});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec})
}

/// Creates a pod in `default`.
pub async fn add_pod(c: &Cluster, pod: Value) -> Result<Pod, BoxError> {
    let api: Api<Pod> = Api::namespaced(c.admin.clone(), "default");
    Ok(api
        .create(&PostParams::default(), &serde_json::from_value(pod)?)
        .await?)
}

/// The pod, now.
pub async fn get_pod(c: &Cluster, name: &str) -> Result<Pod, BoxError> {
    let api: Api<Pod> = Api::namespaced(c.admin.clone(), "default");
    Ok(api.get(name).await?)
}

/// The node the pod is bound to, if any.
pub async fn node_of(c: &Cluster, name: &str) -> Option<String> {
    get_pod(c, name)
        .await
        .ok()?
        .spec?
        .node_name
        .filter(|n| !n.is_empty())
}

/// Waits until the pod is bound; returns its node.
pub async fn wait_bound(c: &Cluster, name: &str, deadline: Duration) -> Result<String, BoxError> {
    match wait_for(&format!("pod {name} bound"), deadline, || node_of(c, name)).await {
        Ok(n) => Ok(n),
        Err(e) => {
            // say why: the scheduler's condition on the pod
            let cond = get_pod(c, name)
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.conditions)
                .and_then(|cs| cs.into_iter().find(|c| c.type_ == "PodScheduled"));
            Err(format!("{e}; PodScheduled: {cond:?}").into())
        }
    }
}

/// Waits until the pod's `PodScheduled` condition is False with reason Unschedulable; returns
/// the message.
pub async fn wait_unschedulable(c: &Cluster, name: &str) -> Result<String, BoxError> {
    wait_for(
        &format!("pod {name} unschedulable"),
        Duration::from_secs(10),
        || async {
            let p = get_pod(c, name).await.ok()?;
            let cond = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (cond.status == "False" && cond.reason.as_deref() == Some("Unschedulable"))
                .then(|| cond.message.unwrap_or_default())
        },
    )
    .await
}

/// Core/v1 events about pod `name` with `reason`.
pub async fn events_for(c: &Cluster, name: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(c.admin.clone(), "default");
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    api.list(&lp)
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .collect()
        })
        .unwrap_or_default()
}
