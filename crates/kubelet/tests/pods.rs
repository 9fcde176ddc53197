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

/// Waits until the pod's status satisfies `f`, returning the pod.
async fn pod_until(
    c: &Cluster,
    name: &str,
    what: &str,
    limit: Duration,
    f: impl Fn(&Pod) -> bool,
) -> Pod {
    let api = c.pods("default");
    c.wait(&format!("pod {name}: {what}"), limit, || {
        let api = api.clone();
        let name = name.to_string();
        let ok = &f;
        async move { api.get(&name).await.ok().filter(|p| ok(p)) }
    })
    .await
}

fn container_status(p: &Pod, name: &str) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    let st = p.status.as_ref()?;
    st.container_statuses
        .iter()
        .flatten()
        .chain(st.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_containers_run_in_order_before_the_containers() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let mut spec = serde_json::json!({
        "initContainers": [busybox("first", "sleep 1"), busybox("second", "true")],
        "containers": [busybox("main", "exec sleep 3600")],
    });
    spec["terminationGracePeriodSeconds"] = serde_json::json!(0);
    c.pods("default")
        .create(&PostParams::default(), &pod("init", &c.node, spec))
        .await
        .expect("create");
    // while the first runs, the pod is Pending and not initialized
    let p = pod_until(&c, "init", "initializing", Duration::from_secs(20), |p| {
        container_status(p, "first")
            .is_some_and(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
    })
    .await;
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    let main = container_status(&p, "main").unwrap();
    assert_eq!(
        main.state.unwrap().waiting.unwrap().reason.as_deref(),
        Some("PodInitializing")
    );
    let p = running_pod(&c, "init").await;
    let first = container_status(&p, "first")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    let second = container_status(&p, "second")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    let main = container_status(&p, "main")
        .unwrap()
        .state
        .unwrap()
        .running
        .unwrap();
    assert_eq!(
        (first.reason.as_deref(), first.exit_code),
        (Some("Completed"), 0)
    );
    assert!(
        first.finished_at.unwrap().0 <= second.started_at.clone().unwrap().0,
        "second started before first finished"
    );
    assert!(
        second.finished_at.unwrap().0 <= main.started_at.unwrap().0,
        "main started before the init containers finished"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashing_container_restarts_with_backoff_and_keeps_its_last_state() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let spec = serde_json::json!({
        "containers": [busybox("crash", "echo bye > /dev/termination-log; exit 3")],
        "terminationGracePeriodSeconds": 0,
    });
    c.pods("default")
        .create(&PostParams::default(), &pod("crash", &c.node, spec))
        .await
        .expect("create");
    let p = pod_until(
        &c,
        "crash",
        "CrashLoopBackOff after a restart",
        Duration::from_secs(30),
        |p| {
            container_status(p, "crash").is_some_and(|s| {
                s.restart_count >= 1
                    && s.state
                        .as_ref()
                        .and_then(|st| st.waiting.as_ref())
                        .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
            })
        },
    )
    .await;
    let s = container_status(&p, "crash").unwrap();
    let last = s.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert_eq!(
        last.message.as_deref(),
        Some("bye\n"),
        "the termination message"
    );
    let waiting = s.state.unwrap().waiting.unwrap();
    assert!(waiting
        .message
        .unwrap()
        .starts_with("back-off 10s restarting failed container=crash"));
    // under backoff the next restart waits: the count stays for the 10 s backoff
    let count = s.restart_count;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = c.pods("default").get("crash").await.unwrap();
    assert_eq!(
        container_status(&p, "crash").unwrap().restart_count,
        count,
        "restarted during backoff"
    );
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_policy_never_ends_in_succeeded_or_failed() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    for (name, code) in [("ok", 0), ("bad", 1)] {
        let spec = serde_json::json!({
            "containers": [busybox("c", &format!("exit {code}"))],
            "restartPolicy": "Never",
        });
        c.pods("default")
            .create(&PostParams::default(), &pod(name, &c.node, spec))
            .await
            .expect("create");
    }
    let ok = pod_until(&c, "ok", "Succeeded", Duration::from_secs(20), |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await;
    let bad = pod_until(&c, "bad", "Failed", Duration::from_secs(20), |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await;
    assert_eq!(container_status(&ok, "c").unwrap().restart_count, 0);
    let t = container_status(&bad, "c")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.exit_code, 1);
    let ready = bad
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    // a finished pod's sandbox is stopped: nothing of it runs
    let ctx = c.kubelet.as_ref().unwrap().ctx.clone();
    let uid = ok.metadata.uid.clone().unwrap();
    c.wait(
        "the finished pod's sandbox stopped",
        Duration::from_secs(10),
        || {
            let ctx = ctx.clone();
            let uid = uid.clone();
            async move { (!ctx.runtime.observe(&uid).await.ok()?.anything_running()).then_some(()) }
        },
    )
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probes_flip_readiness_and_restart_an_unhealthy_container() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let mut ready = busybox("ready", "sleep 2; touch /tmp/ready; exec sleep 3600");
    ready["readinessProbe"] =
        serde_json::json!({"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1});
    let mut live = busybox("live", "touch /tmp/alive; exec sleep 3600");
    live["livenessProbe"] = serde_json::json!({
        "exec": {"command": ["cat", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 1});
    let spec = serde_json::json!({"containers": [ready], "terminationGracePeriodSeconds": 1});
    c.pods("default")
        .create(&PostParams::default(), &pod("readiness", &c.node, spec))
        .await
        .expect("create");
    let p = pod_until(
        &c,
        "readiness",
        "running, not ready",
        Duration::from_secs(20),
        |p| {
            container_status(p, "ready")
                .is_some_and(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
        },
    )
    .await;
    assert!(
        !container_status(&p, "ready").unwrap().ready,
        "ready before the probe passed"
    );
    running_pod(&c, "readiness").await;
    // liveness: the probe passes until the file goes (the container removes it after a while)
    live["command"] = serde_json::json!([
        "sh",
        "-c",
        "touch /tmp/alive; sleep 2; rm /tmp/alive; exec sleep 3600"
    ]);
    let spec = serde_json::json!({"containers": [live], "terminationGracePeriodSeconds": 1});
    c.pods("default")
        .create(&PostParams::default(), &pod("liveness", &c.node, spec))
        .await
        .expect("create");
    let p = pod_until(
        &c,
        "liveness",
        "restarted by its liveness probe",
        Duration::from_secs(30),
        |p| container_status(p, "live").is_some_and(|s| s.restart_count >= 1),
    )
    .await;
    let last = container_status(&p, "live")
        .unwrap()
        .last_state
        .unwrap()
        .terminated
        .unwrap();
    assert_ne!(last.exit_code, 0, "killed, not exited");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_container_over_its_memory_limit_is_oom_killed() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let mut hog = busybox(
        "hog",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 1",
    );
    hog["resources"] = serde_json::json!({"limits": {"memory": "32Mi"}});
    let spec = serde_json::json!({"containers": [hog], "restartPolicy": "Never"});
    c.pods("default")
        .create(&PostParams::default(), &pod("oom", &c.node, spec))
        .await
        .expect("create");
    let p = pod_until(&c, "oom", "terminated", Duration::from_secs(30), |p| {
        container_status(p, "hog")
            .is_some_and(|s| s.state.as_ref().is_some_and(|st| st.terminated.is_some()))
    })
    .await;
    let t = container_status(&p, "hog")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.reason.as_deref(), Some("OOMKilled"), "{t:?}");
    assert_eq!(t.exit_code, 137);
    // the pod's own cgroup (Burstable: a limit without a request) carries the summed limit
    let cgroup = rkube_kubelet::cgroups::pod_cgroup(
        &c.config.cgroup_root,
        rkube_kubelet::cgroups::Qos::Burstable,
        p.metadata.uid.as_deref().unwrap(),
    );
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"
    ))
    .expect("the pod cgroup");
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kubelet_restart_adopts_running_containers() {
    if !common::prerequisites() {
        return;
    }
    let mut c = Cluster::start().await;
    let spec = serde_json::json!({"containers": [busybox("c", "exec sleep 3600")], "terminationGracePeriodSeconds": 0});
    c.pods("default")
        .create(&PostParams::default(), &pod("adopt", &c.node, spec))
        .await
        .expect("create");
    let before = running_pod(&c, "adopt").await;
    let id = container_status(&before, "c")
        .unwrap()
        .container_id
        .unwrap();
    c.restart_kubelet().await;
    // the kubelet is back (a new containerd too) and the same container still runs
    let ctx = c.kubelet.as_ref().unwrap().ctx.clone();
    let uid = before.metadata.uid.clone().unwrap();
    let rt = ctx.runtime.observe(&uid).await.expect("observe");
    let cid = id.trim_start_matches("containerd://");
    let same = rt
        .containers
        .iter()
        .find(|x| x.id == cid)
        .expect("the container is still there");
    assert_eq!(same.state, rkube_kubelet::pod::observed::State::Running);
    assert_eq!(rt.containers.len(), 1, "no second container was started");
    // and the new kubelet still carries the pod through its deletion
    c.pods("default")
        .delete("adopt", &DeleteParams::default())
        .await
        .expect("delete");
    c.wait("the adopted pod removed", Duration::from_secs(15), || {
        let api = c.pods("default");
        async move {
            api.get_opt("adopt")
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        }
    })
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volumes_share_an_empty_dir_and_a_config_map_update_reaches_the_pod() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(c.admin.clone(), "default");
    let cm = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "site"}, "data": {"index.html": "v1"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("configmap");
    let mut writer = busybox(
        "writer",
        "echo shared-by-writer > /data/note; exec sleep 3600",
    );
    writer["volumeMounts"] = serde_json::json!([{"name": "scratch", "mountPath": "/data"}]);
    let mut server = busybox("server", "exec httpd -f -p 8080 -h /srv");
    server["volumeMounts"] = serde_json::json!([
        {"name": "scratch", "mountPath": "/srv/scratch"},
        {"name": "site", "mountPath": "/srv/site"},
    ]);
    let spec = serde_json::json!({
        "containers": [writer, server],
        "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "site", "configMap": {"name": "site"}}],
        "terminationGracePeriodSeconds": 0,
    });
    c.pods("default")
        .create(&PostParams::default(), &pod("vols", &c.node, spec))
        .await
        .expect("create");
    let p = running_pod(&c, "vols").await;
    let ip = p.status.unwrap().pod_ip.unwrap();
    let note = c
        .wait(
            "the writer's file served by the other container",
            Duration::from_secs(10),
            || {
                let ip = ip.clone();
                async move {
                    let body = http_get(&ip, 8080, "/scratch/note").await;
                    body.contains("shared-by-writer").then_some(body)
                }
            },
        )
        .await;
    assert!(note.starts_with("HTTP/1.1 200"), "{note}");
    assert!(http_get(&ip, 8080, "/site/index.html")
        .await
        .ends_with("v1"));
    let patch = serde_json::json!({"data": {"index.html": "v2"}});
    cms.patch(
        "site",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("update");
    c.wait(
        "the configMap update inside the pod",
        Duration::from_secs(15),
        || {
            let ip = ip.clone();
            async move {
                http_get(&ip, 8080, "/site/index.html")
                    .await
                    .ends_with("v2")
                    .then_some(())
            }
        },
    )
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_pod_runs_from_its_manifest_with_a_mirror_pod() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let dir = c.config.static_pod_path.clone().expect("static pod path");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  labels:\n    tier: static\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: web\n    image: {}\n    imagePullPolicy: Never\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/etc\"]\n",
        common::images::BUSYBOX
    );
    std::fs::write(dir.join("web.yaml"), &manifest).unwrap();
    let name = format!("static-web-{}", c.node);
    let mirror = running_pod(&c, &name).await;
    let ann = mirror.metadata.annotations.clone().unwrap();
    assert_eq!(ann["kubernetes.io/config.source"], "file");
    assert!(ann.contains_key("kubernetes.io/config.mirror"));
    let owner = &mirror.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", c.node.as_str())
    );
    let ip = mirror.status.clone().unwrap().pod_ip.unwrap();
    assert!(http_get(&ip, 8080, "/passwd").await.contains("root:x:0:0"));
    // deleting the mirror does not stop the pod: the kubelet makes a new mirror
    let api = c.pods("default");
    api.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete mirror");
    let again = running_pod(&c, &name).await;
    assert_ne!(again.metadata.uid, mirror.metadata.uid, "a new mirror");
    assert!(
        http_get(&ip, 8080, "/passwd").await.contains("root:x:0:0"),
        "the pod kept running"
    );
    // removing the manifest stops the pod and removes the mirror
    std::fs::remove_file(dir.join("web.yaml")).unwrap();
    c.wait("the mirror pod gone", Duration::from_secs(15), || {
        let api = api.clone();
        let name = name.clone();
        async move {
            api.get_opt(&name)
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        }
    })
    .await;
    let ctx = c.kubelet.as_ref().unwrap().ctx.clone();
    let node = c.node.clone();
    c.wait(
        "the static pod's sandbox removed",
        Duration::from_secs(15),
        || {
            let ctx = ctx.clone();
            let node = node.clone();
            async move {
                let (s, _) = ctx.runtime.list_all(&node).await.ok()?;
                s.is_empty().then_some(())
            }
        },
    )
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_reach_each_other_and_host_network_pods_share_the_host() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let spec = serde_json::json!({
        "containers": [busybox("server", "exec httpd -f -p 8080 -h /etc")],
        "terminationGracePeriodSeconds": 0,
    });
    c.pods("default")
        .create(&PostParams::default(), &pod("server", &c.node, spec))
        .await
        .expect("create");
    let server_ip = running_pod(&c, "server")
        .await
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    // the client is Ready only while its probe fetches the server's page over the pod network
    let mut client = busybox("client", "exec sleep 3600");
    client["readinessProbe"] = serde_json::json!({
        "exec": {"command": ["sh", "-c", format!("wget -qO- http://{server_ip}:8080/passwd | grep -q root:x:0:0")]},
        "periodSeconds": 1, "timeoutSeconds": 5,
    });
    let spec = serde_json::json!({"containers": [client], "terminationGracePeriodSeconds": 0});
    c.pods("default")
        .create(&PostParams::default(), &pod("client", &c.node, spec))
        .await
        .expect("create");
    running_pod(&c, "client").await;
    // a host-network pod: the host's address, its port open on the host
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spec = serde_json::json!({
        "hostNetwork": true,
        "containers": [busybox("host", &format!("exec httpd -f -p 127.0.0.1:{port} -h /etc"))],
        "terminationGracePeriodSeconds": 0,
    });
    c.pods("default")
        .create(&PostParams::default(), &pod("hostnet", &c.node, spec))
        .await
        .expect("create");
    let p = running_pod(&c, "hostnet").await;
    let st = p.status.unwrap();
    assert_eq!(
        st.pod_ip, st.host_ip,
        "a host-network pod has the host's IP"
    );
    c.wait(
        "the host-network server on the host's loopback",
        Duration::from_secs(10),
        || async move {
            let r = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await;
            matches!(r, Ok(Ok(_))).then_some(())
        },
    )
    .await;
    assert!(http_get("127.0.0.1", port, "/passwd")
        .await
        .contains("root:x:0:0"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sidecar_starts_before_the_containers_and_keeps_running_beside_them() {
    if !common::prerequisites() {
        return;
    }
    let c = Cluster::start().await;
    let mut sidecar = busybox("proxy", "exec httpd -f -p 8080 -h /etc");
    sidecar["restartPolicy"] = serde_json::json!("Always");
    let mut main = busybox("main", "exec sleep 3600");
    // ready only while the sidecar answers on the pod's shared loopback
    main["readinessProbe"] = serde_json::json!({
        "exec": {"command": ["sh", "-c", "wget -qO- http://127.0.0.1:8080/passwd | grep -q root"]},
        "periodSeconds": 1, "timeoutSeconds": 5,
    });
    let spec = serde_json::json!({
        "initContainers": [sidecar],
        "containers": [main],
        "terminationGracePeriodSeconds": 0,
    });
    c.pods("default")
        .create(&PostParams::default(), &pod("sidecar", &c.node, spec))
        .await
        .expect("create");
    let p = running_pod(&c, "sidecar").await;
    let proxy = container_status(&p, "proxy").unwrap();
    let main = container_status(&p, "main").unwrap();
    let proxy_started = proxy
        .state
        .unwrap()
        .running
        .expect("the sidecar keeps running")
        .started_at
        .unwrap();
    let main_started = main.state.unwrap().running.unwrap().started_at.unwrap();
    assert!(
        proxy_started.0 <= main_started.0,
        "the sidecar started first"
    );
    assert!(proxy.ready && main.ready);
    let init = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(init.status, "True");
    c.stop().await;
}
