//! Probes and lifecycle hooks against real containers: a supervised containerd, a networked
//! sandbox on a CNI bridge and busybox containers created directly through CRI.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_cri::v1 as c;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, ExecAction, HTTPGetAction, LifecycleHandler, Pod, PodSpec,
    Probe, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rkube_kubelet::cri::Cri;
use rkube_kubelet::probes::{run_handler, ProbeManager, ProbeView, RunningContainer};

/// A sandbox on its own CNI bridge, torn down by [`Sandbox::cleanup`].
struct Sandbox {
    rt: common::runtime::Runtime,
    bridge: String,
    cgroup_root: String,
    config: c::PodSandboxConfig,
    id: String,
    ip: String,
}

impl Sandbox {
    /// A containerd, a bridge `rkp<pid><n>` over 10.244.(220+n).0/24 and a sandbox on it.
    async fn start(n: u8) -> Sandbox {
        let rt = common::runtime::Runtime::start().await;
        let bridge = format!("rkp{}{n}", std::process::id() % 100000);
        rkube_kubelet::cni::write(
            &rkube_kubelet::cni::CniConfig {
                conf_dir: rt.cni_conf_dir.clone(),
                bridge: bridge.clone(),
                ipam_dir: rt.dir.path().join("ipam"),
                mtu: 0,
            },
            &[format!("10.244.{}.0/24", 220 + u16::from(n))],
        )
        .unwrap();
        wait_for("the network to be ready", Duration::from_secs(10), || {
            let cri = rt.cri.clone();
            async move {
                cri.status()
                    .await
                    .ok()
                    .and_then(|s| s.status)
                    .is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.r#type == "NetworkReady" && c.status)
                    })
            }
        })
        .await;
        let cgroup_root = format!("/rkube-test-{}-probes{n}", std::process::id());
        let config = c::PodSandboxConfig {
            metadata: Some(c::PodSandboxMetadata {
                name: "p".into(),
                uid: format!("sandbox-{n}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "p".into(),
            log_directory: rt.dir.path().join("logs").display().to_string(),
            linux: Some(c::LinuxPodSandboxConfig {
                cgroup_parent: format!("{cgroup_root}/pod"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut runtime = rt.cri.runtime.clone();
        let id = runtime
            .run_pod_sandbox(c::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        let ip = runtime
            .pod_sandbox_status(c::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
            .network
            .unwrap()
            .ip;
        assert!(!ip.is_empty());
        Sandbox {
            rt,
            bridge,
            cgroup_root,
            config,
            id,
            ip,
        }
    }

    fn cri(&self) -> Cri {
        self.rt.cri.clone()
    }

    /// Starts a busybox container running `script`; returns it as the probes see it.
    async fn container(&self, name: &str, script: &str) -> RunningContainer {
        let mut runtime = self.rt.cri.runtime.clone();
        let id = runtime
            .create_container(c::CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(c::ContainerConfig {
                    metadata: Some(c::ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(c::ImageSpec {
                        image: common::images::BUSYBOX.into(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into(), script.into()],
                    log_path: format!("{name}/0.log"),
                    ..Default::default()
                }),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        runtime
            .start_container(c::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("StartContainer");
        let status = runtime
            .container_status(c::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(status.state, c::ContainerState::ContainerRunning as i32);
        RunningContainer {
            name: name.into(),
            id,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_nanos(status.started_at as u64),
        }
    }

    /// Runs a command in a container (test set-up, not a probe).
    async fn exec(&self, id: &str, script: &str) -> String {
        let r = self
            .rt
            .cri
            .runtime
            .clone()
            .exec_sync(c::ExecSyncRequest {
                container_id: id.into(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                timeout: 10,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8_lossy(&r.stdout).into_owned()
    }

    /// Removes the sandbox and its containers, stops containerd, deletes the bridge and the
    /// cgroups.
    async fn cleanup(self) {
        let mut runtime = self.rt.cri.runtime.clone();
        runtime
            .stop_pod_sandbox(c::StopPodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .unwrap();
        runtime
            .remove_pod_sandbox(c::RemovePodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .unwrap();
        self.rt.stop().await;
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        rkube_kubelet::cgroups::remove(&self.cgroup_root).unwrap();
        for dir in rkube_kubelet::cgroups::hierarchy_dirs(&self.cgroup_root) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}

/// Waits until `cond` holds, polling every 50 ms; fails the test after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, cond: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the pod's probe results satisfy `cond` (20 s at most).
async fn wait_view(
    m: &ProbeManager,
    uid: &str,
    what: &str,
    cond: impl Fn(&ProbeView) -> bool,
) -> ProbeView {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = m.results(uid);
        if cond(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until one of the pod's probe events (kept in `seen`) satisfies `cond`.
async fn wait_event(
    m: &ProbeManager,
    uid: &str,
    seen: &mut Vec<String>,
    cond: impl Fn(&str) -> bool,
) {
    wait_events(m, uid, seen, |all| all.iter().any(|e| cond(e))).await
}

/// Waits until the probe events of the pod seen so far (kept in `seen`) satisfy `cond`.
async fn wait_events(
    m: &ProbeManager,
    uid: &str,
    seen: &mut Vec<String>,
    cond: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        seen.extend(m.take_events(uid).into_iter().map(|e| e.message));
        if cond(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for an event: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(uid: &str, containers: Vec<Container>) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some("p".into());
    pod.metadata.namespace = Some("default".into());
    pod.metadata.uid = Some(uid.into());
    pod.spec = Some(PodSpec {
        containers,
        ..Default::default()
    });
    pod
}

fn exec_probe(script: &str, failure_threshold: i32) -> Option<Probe> {
    Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        }),
        period_seconds: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    })
}

fn manager(wakes: &Arc<AtomicUsize>) -> impl FnOnce(Cri) -> ProbeManager {
    let wakes = wakes.clone();
    move |cri| {
        ProbeManager::new(
            cri,
            Arc::new(move |_: &str| {
                wakes.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_probes_run_in_the_container() {
    if !common::prerequisites() {
        return;
    }
    let sb = Sandbox::start(1).await;
    let wakes = Arc::new(AtomicUsize::new(0));
    let m = manager(&wakes)(sb.cri());
    // one container serves every case below; each case is its own pod to the manager
    let running = sb.container("c", "exec sleep 1000").await;
    let ip = Some(sb.ip.as_str());
    let named = |name: &str| RunningContainer {
        name: name.into(),
        ..running.clone()
    };

    // readiness flips when a file appears in the container
    let ready = pod(
        "ready",
        vec![Container {
            name: "c".into(),
            readiness_probe: exec_probe("cat /tmp/ready", 1),
            ..Default::default()
        }],
    );
    m.sync_pod(&ready, ip, &[named("c")]);
    let mut events = Vec::new();
    wait_event(&m, "ready", &mut events, |e| {
        e == "Readiness probe failed: cat: can't open '/tmp/ready': No such file or directory\n"
    })
    .await;
    assert!(!m.results("ready").ready["c"]);
    sb.exec(&running.id, "touch /tmp/ready").await;
    wait_view(&m, "ready", "ready", |v| v.ready.get("c") == Some(&true)).await;
    assert!(wakes.load(Ordering::SeqCst) >= 1);

    // a failing liveness probe asks for a restart after failureThreshold failures
    let live = pod(
        "live",
        vec![Container {
            name: "c".into(),
            liveness_probe: exec_probe("echo dead; exit 1", 2),
            ..Default::default()
        }],
    );
    m.sync_pod(&live, ip, &[named("c")]);
    let mut events = Vec::new();
    wait_event(&m, "live", &mut events, |e| {
        e == "Liveness probe failed: dead\n"
    })
    .await;
    let view = wait_view(&m, "live", "a restart", |v| v.restart.contains_key("c")).await;
    assert_eq!(
        view.restart["c"],
        (
            running.id.clone(),
            "Container c failed liveness probe, will be restarted".into()
        )
    );
    events.extend(m.take_events("live").into_iter().map(|e| e.message));
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "Liveness probe failed: dead\n")
            .count(),
        2,
        "{events:?}"
    );

    // a startup probe holds back liveness until it passes
    let startup = pod(
        "startup",
        vec![Container {
            name: "c".into(),
            startup_probe: exec_probe("cat /tmp/started", 100),
            liveness_probe: exec_probe("exit 1", 1),
            ..Default::default()
        }],
    );
    m.sync_pod(&startup, ip, &[named("c")]);
    let mut events = Vec::new();
    wait_events(&m, "startup", &mut events, |all| {
        all.iter()
            .filter(|e| e.starts_with("Startup probe failed: cat: can't open '/tmp/started'"))
            .count()
            >= 2
    })
    .await;
    let view = m.results("startup");
    assert!(!view.started["c"]);
    assert!(view.restart.is_empty(), "{view:?}");
    assert!(
        !events.iter().any(|e| e.starts_with("Liveness")),
        "{events:?}"
    );
    sb.exec(&running.id, "touch /tmp/started").await;
    let view = wait_view(&m, "startup", "started, then liveness failed", |v| {
        v.started.get("c") == Some(&true) && v.restart.contains_key("c")
    })
    .await;
    assert_eq!(
        view.restart["c"].1,
        "Container c failed liveness probe, will be restarted"
    );

    // an exec probe that outlives its timeout fails
    let slow = pod(
        "slow",
        vec![Container {
            name: "c".into(),
            readiness_probe: Some(Probe {
                timeout_seconds: Some(1),
                ..exec_probe("sleep 5", 1).unwrap()
            }),
            ..Default::default()
        }],
    );
    let start = Instant::now();
    m.sync_pod(&slow, ip, &[named("c")]);
    let mut events = Vec::new();
    wait_event(&m, "slow", &mut events, |e| {
        e == "Readiness probe failed: command \"sh -c sleep 5\" timed out"
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(!m.results("slow").ready["c"]);

    // the command expands $(VAR) from the container's env
    let expand = pod(
        "expand",
        vec![Container {
            name: "c".into(),
            env: Some(vec![EnvVar {
                name: "MARK".into(),
                value: Some("yes".into()),
                ..Default::default()
            }]),
            readiness_probe: exec_probe("test $(MARK) = yes", 1),
            ..Default::default()
        }],
    );
    m.sync_pod(&expand, ip, &[named("c")]);
    wait_view(&m, "expand", "ready", |v| v.ready.get("c") == Some(&true)).await;

    for uid in ["ready", "live", "startup", "slow", "expand"] {
        m.remove_pod(uid);
    }
    drop(m);
    sb.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_tcp_probes_reach_busybox_httpd_at_the_pod_ip() {
    if !common::prerequisites() {
        return;
    }
    let sb = Sandbox::start(2).await;
    let wakes = Arc::new(AtomicUsize::new(0));
    let m = manager(&wakes)(sb.cri());
    let running = sb
        .container(
            "web",
            "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www",
        )
        .await;
    let ip = Some(sb.ip.as_str());
    let http = |path: &str, port: IntOrString, failure_threshold: i32| {
        Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port,
                ..Default::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(failure_threshold),
            ..Default::default()
        })
    };
    let tcp = |port: i32| {
        Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                host: None,
            }),
            period_seconds: Some(1),
            failure_threshold: Some(1),
            ..Default::default()
        })
    };
    let web = Container {
        name: "web".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..Default::default()
        }]),
        ..Default::default()
    };

    // readiness by httpGet on the named port, liveness failing on a 404
    let p = pod(
        "http",
        vec![Container {
            readiness_probe: http("/index.html", IntOrString::String("http".into()), 1),
            liveness_probe: http("/missing", IntOrString::Int(8080), 2),
            ..web.clone()
        }],
    );
    m.sync_pod(&p, ip, std::slice::from_ref(&running));
    let view = wait_view(&m, "http", "ready and a restart", |v| {
        v.ready.get("web") == Some(&true) && v.restart.contains_key("web")
    })
    .await;
    assert_eq!(
        view.restart["web"],
        (
            running.id.clone(),
            "Container web failed liveness probe, will be restarted".into()
        )
    );
    let events: Vec<_> = m
        .take_events("http")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        events
            .contains(&"Liveness probe failed: HTTP probe failed with statuscode: 404".to_string()),
        "{events:?}"
    );

    // tcpSocket: the open port is ready, a closed one is not
    let p = pod(
        "tcp",
        vec![
            Container {
                readiness_probe: tcp(8080),
                ..web.clone()
            },
            Container {
                name: "closed".into(),
                readiness_probe: tcp(8081),
                ..Default::default()
            },
        ],
    );
    let closed = RunningContainer {
        name: "closed".into(),
        ..running.clone()
    };
    m.sync_pod(&p, ip, &[running.clone(), closed]);
    wait_view(&m, "tcp", "the open port ready", |v| {
        v.ready.get("web") == Some(&true)
    })
    .await;
    let mut events = Vec::new();
    let want = format!(
        "Readiness probe failed: dial tcp {}:8081: connect: connection refused",
        sb.ip
    );
    wait_event(&m, "tcp", &mut events, |e| e == want).await;
    assert!(!m.results("tcp").ready["closed"]);

    m.remove_pod("http");
    m.remove_pod("tcp");
    drop(m);
    sb.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_handlers_run_in_and_against_the_container() {
    if !common::prerequisites() {
        return;
    }
    let sb = Sandbox::start(3).await;
    let cri = sb.cri();
    let running = sb
        .container(
            "c",
            "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www",
        )
        .await;
    let ip = Some(sb.ip.as_str());
    let p = pod("uid-h", vec![]);
    let container = Container {
        name: "c".into(),
        ..Default::default()
    };
    let exec = |script: &str| LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        }),
        ..Default::default()
    };
    let http = |port: i32| LifecycleHandler {
        http_get: Some(HTTPGetAction {
            path: Some("/index.html".into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        ..Default::default()
    };

    // exec runs in the container
    run_handler(
        &cri,
        &p,
        &container,
        &running.id,
        &exec("echo hook > /tmp/hook"),
        ip,
    )
    .await
    .unwrap();
    assert_eq!(sb.exec(&running.id, "cat /tmp/hook").await, "hook\n");
    let err = run_handler(
        &cri,
        &p,
        &container,
        &running.id,
        &exec("echo oops; exit 3"),
        ip,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        "Exec lifecycle hook ([sh -c echo oops; exit 3]) for Container \"c\" in Pod \
         \"p_default(uid-h)\" failed - error: command 'sh -c echo oops; exit 3' exited with 3: \
         , message: \"oops\\n\""
    );

    // httpGet reaches the pod's IP
    run_handler(&cri, &p, &container, &running.id, &http(8080), ip)
        .await
        .unwrap();
    let err = run_handler(&cri, &p, &container, &running.id, &http(8081), ip)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "HTTP lifecycle hook (/index.html) for Container \"c\" in Pod \"p_default(uid-h)\" \
             failed - error: Get \"http://{ip}:8081/index.html\": dial tcp {ip}:8081: connect: \
             connection refused",
            ip = sb.ip
        )
    );

    // sleep waits
    let start = Instant::now();
    let sleep = LifecycleHandler {
        sleep: Some(SleepAction { seconds: 1 }),
        ..Default::default()
    };
    run_handler(&cri, &p, &container, &running.id, &sleep, ip)
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));

    // tcpSocket is accepted by the API but never run, as upstream
    let tcp = LifecycleHandler {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(8080),
            host: None,
        }),
        ..Default::default()
    };
    let err = run_handler(&cri, &p, &container, &running.id, &tcp, ip)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("Cannot run handler: invalid handler: &LifecycleHandler{"),
        "{err}"
    );

    // exec in a container that is gone fails with the runtime's error
    sb.rt
        .cri
        .runtime
        .clone()
        .stop_container(c::StopContainerRequest {
            container_id: running.id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    let err = run_handler(&cri, &p, &container, &running.id, &exec("true"), ip)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("Exec lifecycle hook ([sh -c true]) for Container \"c\" in Pod \"p_default(uid-h)\" failed - error: rpc error: code = "),
        "{err}"
    );
    sb.cleanup().await;
}
