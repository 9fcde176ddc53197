//! The runtime side of the pod workers: reading a pod's sandboxes and containers from CRI,
//! and the CRI calls that carry out a plan. Statuses of exited containers never change, so
//! they are cached by id.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use parking_lot::Mutex;

use super::observed::{self, PodRuntime};
use crate::cri::{CallExt, Cri, CriError};
use crate::labels;

/// CRI access with the caches the workers share.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub cri: Cri,
    /// Exited containers' statuses, by id.
    exited: Arc<Mutex<HashMap<String, cri::ContainerStatus>>>,
    /// Sandboxes' IPs, by id (they never change).
    ips: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

/// A stop or remove of something the runtime no longer has is done, not failed.
fn gone_is_done<T>(r: Result<T, CriError>) -> Result<(), CriError> {
    match r {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    [(labels::POD_UID.to_string(), uid.to_string())].into()
}

impl Runtime {
    pub fn new(cri: Cri) -> Runtime {
        Runtime {
            cri,
            exited: Arc::default(),
            ips: Arc::default(),
        }
    }

    /// Every sandbox and container of the pod with this uid.
    pub async fn observe(&self, uid: &str) -> Result<PodRuntime, CriError> {
        let mut rt = self.cri.runtime.clone();
        let sandboxes = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: uid_filter(uid),
                    ..Default::default()
                }),
            })
            .await
            .call("ListPodSandbox")?
            .items;
        let containers = rt
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    label_selector: uid_filter(uid),
                    ..Default::default()
                }),
            })
            .await
            .call("ListContainers")?
            .containers;
        self.assemble(sandboxes, containers)
            .await
            .map(|mut m| m.remove(uid).unwrap_or_default())
    }

    /// Groups listed sandboxes and containers by pod uid, with their statuses.
    pub async fn assemble(
        &self,
        sandboxes: Vec<cri::PodSandbox>,
        containers: Vec<cri::Container>,
    ) -> Result<HashMap<String, PodRuntime>, CriError> {
        let mut rt = self.cri.runtime.clone();
        let mut ips = HashMap::new();
        for sb in &sandboxes {
            let known = self.ips.lock().get(&sb.id).cloned();
            let got = match known {
                Some(v) => v,
                None if sb.state == cri::PodSandboxState::SandboxReady as i32 => {
                    match rt
                        .pod_sandbox_status(cri::PodSandboxStatusRequest {
                            pod_sandbox_id: sb.id.clone(),
                            verbose: false,
                        })
                        .await
                        .call("PodSandboxStatus")
                    {
                        Ok(st) => {
                            let net = st.status.and_then(|s| s.network);
                            let mut v = Vec::new();
                            if let Some(n) = net {
                                if !n.ip.is_empty() {
                                    v.push(n.ip);
                                }
                                v.extend(n.additional_ips.into_iter().map(|i| i.ip));
                            }
                            self.ips.lock().insert(sb.id.clone(), v.clone());
                            v
                        }
                        Err(e) if e.is_not_found() => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
                None => Vec::new(),
            };
            ips.insert(sb.id.clone(), got);
        }
        let mut statuses = Vec::with_capacity(containers.len());
        for c in containers {
            let cached = self.exited.lock().get(&c.id).cloned();
            let status = match cached {
                Some(s) => s,
                None => {
                    match rt
                        .container_status(cri::ContainerStatusRequest {
                            container_id: c.id.clone(),
                            verbose: false,
                        })
                        .await
                        .call("ContainerStatus")
                    {
                        Ok(r) => {
                            let Some(s) = r.status else { continue };
                            if s.state == cri::ContainerState::ContainerExited as i32 {
                                self.exited.lock().insert(c.id.clone(), s.clone());
                            }
                            s
                        }
                        // removed between the list and the status call
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            statuses.push((status, c.pod_sandbox_id));
        }
        Ok(observed::group(sandboxes, &ips, statuses))
    }

    /// Lists everything this node's kubelet created (for the relist and orphan cleanup).
    pub async fn list_all(
        &self,
        node: &str,
    ) -> Result<(Vec<cri::PodSandbox>, Vec<cri::Container>), CriError> {
        let mut rt = self.cri.runtime.clone();
        let selector: HashMap<String, String> =
            [(labels::NODE.to_string(), node.to_string())].into();
        let sandboxes = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: selector.clone(),
                    ..Default::default()
                }),
            })
            .await
            .call("ListPodSandbox")?
            .items;
        let containers = rt
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    label_selector: selector,
                    ..Default::default()
                }),
            })
            .await
            .call("ListContainers")?
            .containers;
        Ok((sandboxes, containers))
    }

    pub async fn run_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String, CriError> {
        Ok(self
            .cri
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .call("RunPodSandbox")?
            .pod_sandbox_id)
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<(), CriError> {
        gone_is_done(
            self.cri
                .runtime
                .clone()
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.to_string(),
                })
                .await
                .call("StopPodSandbox"),
        )
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<(), CriError> {
        self.ips.lock().remove(id);
        gone_is_done(
            self.cri
                .runtime
                .clone()
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: id.to_string(),
                })
                .await
                .call("RemovePodSandbox"),
        )
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, CriError> {
        Ok(self
            .cri
            .runtime
            .clone()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .call("CreateContainer")?
            .container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        self.cri
            .runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .call("StartContainer")
            .map(|_| ())
    }

    /// Stops a container: SIGTERM (or the image's stop signal), SIGKILL after `grace` seconds.
    pub async fn stop_container(&self, id: &str, grace: i64) -> Result<(), CriError> {
        gone_is_done(
            self.cri
                .runtime
                .clone()
                .stop_container(cri::StopContainerRequest {
                    container_id: id.to_string(),
                    timeout: grace.max(0),
                })
                .await
                .call("StopContainer"),
        )
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        self.exited.lock().remove(id);
        gone_is_done(
            self.cri
                .runtime
                .clone()
                .remove_container(cri::RemoveContainerRequest {
                    container_id: id.to_string(),
                })
                .await
                .call("RemoveContainer"),
        )
    }

    /// Forgets cached statuses of containers the runtime no longer has.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.exited.lock().retain(|id, _| live.contains(id));
        self.ips.lock().retain(|id, _| live.contains(id));
    }
}
