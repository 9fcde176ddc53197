//! The supervised containerd, driven over CRI: a sandbox from rkube's own pause image, on the
//! CNI bridge, with a busybox container in it.

mod common;

use k8s_cri::v1 as c;

#[tokio::test(flavor = "multi_thread")]
async fn supervised_containerd_runs_a_networked_sandbox_and_a_container() {
    if !common::prerequisites() {
        return;
    }
    let rt = common::runtime::Runtime::start().await;
    let bridge = format!("rkt{}", std::process::id() % 100000);
    rkube_kubelet::cni::write(
        &rkube_kubelet::cni::CniConfig {
            conf_dir: rt.cni_conf_dir.clone(),
            bridge: bridge.clone(),
            ipam_dir: rt.dir.path().join("ipam"),
            mtu: 0,
        },
        &["10.244.213.0/24".into()],
    )
    .unwrap();
    let version = rt.cri.version().await.unwrap();
    assert_eq!(version.runtime_name, "containerd");
    // containerd notices the conflist asynchronously
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = rt.cri.status().await.unwrap();
        let net = status
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.r#type == "NetworkReady")
            .unwrap();
        if net.status {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "network never ready: {net:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut runtime = rt.cri.runtime.clone();
    let cgroup = format!("/rkube-test-{}/pod1", std::process::id());
    let sandbox_config = c::PodSandboxConfig {
        metadata: Some(c::PodSandboxMetadata {
            name: "p".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "p".into(),
        log_directory: rt.dir.path().join("logs").display().to_string(),
        linux: Some(c::LinuxPodSandboxConfig {
            cgroup_parent: cgroup.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = runtime
        .run_pod_sandbox(c::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let status = runtime
        .pod_sandbox_status(c::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let ip = status.network.unwrap().ip;
    assert!(ip.starts_with("10.244.213."), "pod IP {ip}");
    let container = runtime
        .create_container(c::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(c::ContainerConfig {
                metadata: Some(c::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                image: Some(c::ImageSpec {
                    image: common::images::BUSYBOX.into(),
                    ..Default::default()
                }),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo hello; exec httpd -f -p 8080 -h /etc".into(),
                ],
                log_path: "c/0.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    runtime
        .start_container(c::StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .expect("StartContainer");
    let cs = runtime
        .container_status(c::ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(cs.state, c::ContainerState::ContainerRunning as i32);
    // the container's server answers from the host through the bridge
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let body = loop {
        use std::io::{Read, Write};
        let attempt = std::net::TcpStream::connect((ip.as_str(), 8080)).and_then(|mut s| {
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
            s.write_all(b"GET /passwd HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        });
        match attempt {
            Ok(body) => break body,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{ip}:8080: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(body.contains("root:x:0:0"), "{body}");
    let log = rt.dir.path().join("logs/c/0.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("stdout F hello") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "log {text:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    runtime
        .stop_container(c::StopContainerRequest {
            container_id: container.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    runtime
        .stop_pod_sandbox(c::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(c::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await
        .unwrap();
    rt.stop().await;
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .status();
    rkube_kubelet::cgroups::remove(&format!("/rkube-test-{}", std::process::id())).unwrap();
    for dir in rkube_kubelet::cgroups::hierarchy_dirs(&cgroup) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
