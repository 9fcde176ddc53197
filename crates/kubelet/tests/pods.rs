//! The kubelet runs real pods through the supervised containerd: lifecycle, status, logs,
//! restarts, graceful deletion, and adoption after a restart.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};

fn pod(name: &str, node: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = serde_json::json!(node);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("pod")
}

fn busybox(name: &str, command: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "image": common::images::BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", command],
    })
}

/// A plain HTTP/1.0 GET (busybox httpd), with a deadline.
async fn http_get(ip: &str, port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, port))
            .await
            .expect("connect");
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("HTTP GET timed out")
}

async fn running_pod(c: &Cluster, name: &str) -> Pod {
    let api = c.pods("default");
    c.wait(
        &format!("pod {name} Running and Ready"),
        Duration::from_secs(30),
        || {
            let api = api.clone();
            let name = name.to_string();
            async move {
                let p = api.get(&name).await.ok()?;
                let st = p.status.as_ref()?;
                let ready = st
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                (st.phase.as_deref() == Some("Running") && ready).then_some(p)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_runs_gets_an_ip_and_logs_and_is_removed_on_delete() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let api = c.pods("default");
    let p = pod(
        "web",
        &c.node,
        serde_json::json!({"containers": [busybox("main", "echo hello from $(POD_NAME); exec httpd -f -p 8080 -h /etc")],
            "terminationGracePeriodSeconds": 3}),
    );
    let mut p = p;
    p.spec.as_mut().unwrap().containers[0].env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
        name: "POD_NAME".into(),
        value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
            field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                field_path: "metadata.name".into(),
                api_version: None,
            }),
            ..Default::default()
        }),
        value: None,
    }]);
    api.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let running = running_pod(&c, "web").await;
    let st = running.status.clone().unwrap();
    let ip = st.pod_ip.clone().expect("pod IP");
    let prefix = c.pod_cidr.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "pod IP {ip} outside {}", c.pod_cidr);
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.ready);
    assert_eq!(cs.restart_count, 0);
    assert!(cs
        .container_id
        .as_deref()
        .unwrap()
        .starts_with("containerd://"));
    assert!(cs.state.as_ref().unwrap().running.is_some());
    // the log file, CRI format, where the pod's log directory is
    let log = c
        .config
        .agent_dir
        .join("logs/pods")
        .join(format!(
            "default_web_{}",
            running.metadata.uid.clone().unwrap()
        ))
        .join("main/0.log");
    c.wait("the container's log line", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains("stdout F hello from web"))
                .map(|_| ())
        }
    })
    .await;
    // the pod's server answers from the host over the bridge
    let body = http_get(&ip, 8080, "/passwd").await;
    assert!(body.contains("root:x:0:0"), "{body}");
    // a graceful delete: httpd, the first process of its pid namespace, has no SIGTERM
    // handler, so the signal is ignored and the kill comes when the 3 s grace period ends
    let started = std::time::Instant::now();
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    c.wait("the pod gone from the API", Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            api.get_opt("web")
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "deletion took {:?}",
        started.elapsed()
    );
    c.stop().await;
}
