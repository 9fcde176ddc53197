//! A supervised containerd in a temporary directory, with the sandbox and busybox images
//! imported, torn down (daemon stopped, bridge deleted, directory removed) on drop.

use std::path::PathBuf;

use rkube_kubelet::containerd::{Containerd, CriSettings, Layout};
use rkube_kubelet::cri::Cri;

#[derive(Debug)]
pub struct Runtime {
    pub dir: tempfile::TempDir,
    pub cri: Cri,
    pub containerd: Option<Containerd>,
    pub cni_conf_dir: PathBuf,
    pub layout: Layout,
}

impl Runtime {
    pub async fn start() -> Runtime {
        let dir = tempfile::Builder::new()
            .prefix("rkt")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let agent = dir.path().join("agent");
        let layout = Layout::new(&agent);
        let cni_conf_dir = agent.join("cni").join("net.d");
        let settings = CriSettings {
            sandbox_image: rkube_kubelet::pause::image_name(),
            cni_bin_dir: "/usr/lib/cni".into(),
            cni_conf_dir: cni_conf_dir.clone(),
        };
        let (containerd, cri) = Containerd::start(layout.clone(), &settings)
            .await
            .expect("starting containerd");
        let archive = rkube_kubelet::pause::image_archive().expect("pause image");
        rkube_kubelet::import::import_bytes(&layout.socket, "pause", &archive)
            .await
            .expect("importing the pause image");
        let busybox = super::images::busybox_archive(super::images::BUSYBOX);
        let names = rkube_kubelet::import::import_bytes(&layout.socket, "busybox", &busybox)
            .await
            .expect("importing busybox");
        assert!(
            names.iter().any(|n| n == super::images::BUSYBOX),
            "{names:?}"
        );
        Runtime {
            dir,
            cri,
            containerd: Some(containerd),
            cni_conf_dir,
            layout,
        }
    }

    /// Removes every sandbox (and so every container) the runtime has, then stops it.
    pub async fn stop(mut self) {
        let containerd = self.containerd.take();
        teardown(self.cri.clone(), containerd).await;
    }
}

impl Drop for Runtime {
    /// A test that panicked still removes its sandboxes and stops its containerd.
    fn drop(&mut self) {
        let Some(containerd) = self.containerd.take() else {
            return;
        };
        let cri = self.cri.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                rt.block_on(teardown(cri, Some(containerd)));
            }
        })
        .join();
    }
}

async fn teardown(cri: Cri, containerd: Option<Containerd>) {
    {
        use k8s_cri::v1 as c;
        let mut rt = cri.runtime.clone();
        if let Ok(list) = rt
            .list_pod_sandbox(c::ListPodSandboxRequest { filter: None })
            .await
        {
            for sb in list.into_inner().items {
                let _ = rt
                    .stop_pod_sandbox(c::StopPodSandboxRequest {
                        pod_sandbox_id: sb.id.clone(),
                    })
                    .await;
                let _ = rt
                    .remove_pod_sandbox(c::RemovePodSandboxRequest {
                        pod_sandbox_id: sb.id,
                    })
                    .await;
            }
        }
    }
    if let Some(c) = containerd {
        c.stop().await;
    }
}
