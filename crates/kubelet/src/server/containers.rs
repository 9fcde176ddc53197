//! Finding a pod's containers in the runtime: every container the kubelet creates carries
//! the pod's uid and the container's name as CRI labels ([`crate::labels`]), so the runtime
//! itself says which instance of a container is current and which ran before it.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;

use crate::cri::{CallExt, Cri, CriError};
use crate::labels;

/// One instance of a container, as the runtime lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The CRI attempt (the restart count when it was created).
    pub attempt: u32,
    pub state: cri::ContainerState,
    pub created_at: i64,
}

/// The instances of container `name` of the pod with `uid`, newest first.
pub async fn instances(cri: &Cri, uid: &str, name: &str) -> Result<Vec<Instance>, CriError> {
    let mut selector = HashMap::new();
    selector.insert(labels::POD_UID.to_string(), uid.to_string());
    selector.insert(labels::CONTAINER_NAME.to_string(), name.to_string());
    let list = cri
        .runtime
        .clone()
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }),
        })
        .await
        .call("ListContainers")?;
    let mut out: Vec<Instance> = list
        .containers
        .into_iter()
        .map(|c| Instance {
            attempt: c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            state: cri::ContainerState::try_from(c.state)
                .unwrap_or(cri::ContainerState::ContainerUnknown),
            created_at: c.created_at,
            id: c.id,
        })
        .collect();
    newest_first(&mut out);
    Ok(out)
}

/// Sorts instances newest first: by attempt, then creation time.
pub fn newest_first(instances: &mut [Instance]) {
    instances.sort_by(|a, b| {
        b.attempt
            .cmp(&a.attempt)
            .then(b.created_at.cmp(&a.created_at))
    });
}

/// Whether the pod's spec has a container (regular, init or ephemeral) of that name.
pub fn pod_has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.containers.iter().any(|c| c.name == name)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
}

/// Which instance's log to read: the newest, or with `previous` the one before it; else
/// upstream's message for why there is none.
pub fn log_instance<'a>(
    pod: &Pod,
    container: &str,
    instances: &'a [Instance],
    previous: bool,
) -> Result<&'a Instance, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    if previous {
        return instances.get(1).ok_or_else(|| {
            format!("previous terminated container {container:?} in pod {pod_name:?} not found")
        });
    }
    match instances.first() {
        Some(i) if i.state != cri::ContainerState::ContainerCreated => Ok(i),
        first => {
            // Not started yet: say why, from the pod's status when the kubelet wrote one.
            let waiting = pod
                .status
                .as_ref()
                .into_iter()
                .flat_map(|s| {
                    s.container_statuses
                        .iter()
                        .flatten()
                        .chain(s.init_container_statuses.iter().flatten())
                        .chain(s.ephemeral_container_statuses.iter().flatten())
                })
                .find(|cs| cs.name == container)
                .and_then(|cs| cs.state.as_ref())
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.clone());
            match (waiting, first) {
                (Some(reason), _) => Err(format!(
                    "container {container:?} in pod {pod_name:?} is waiting to start: {reason}"
                )),
                (None, Some(_)) => Err(format!(
                    "container {container:?} in pod {pod_name:?} is waiting to start: ContainerCreating"
                )),
                (None, None) => Err(format!(
                    "container {container:?} in pod {pod_name:?} is not available"
                )),
            }
        }
    }
}

/// The running instance exec and attach go to.
pub fn running_instance<'a>(
    instances: &'a [Instance],
    container: &str,
) -> Result<&'a Instance, String> {
    instances
        .iter()
        .find(|i| i.state == cri::ContainerState::ContainerRunning)
        .ok_or_else(|| format!("container not found ({container:?})"))
}

/// The pod's sandbox that is ready (for port-forwarding), newest first.
pub async fn ready_sandbox(cri: &Cri, uid: &str) -> Result<Option<String>, CriError> {
    let mut selector = HashMap::new();
    selector.insert(labels::POD_UID.to_string(), uid.to_string());
    let list = cri
        .runtime
        .clone()
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: selector,
                state: Some(cri::PodSandboxStateValue {
                    state: cri::PodSandboxState::SandboxReady as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .call("ListPodSandbox")?;
    Ok(list
        .items
        .into_iter()
        .max_by_key(|s| s.created_at)
        .map(|s| s.id))
}

/// The log file of a container instance.
pub async fn log_path(cri: &Cri, id: &str) -> Result<String, CriError> {
    let status = cri
        .runtime
        .clone()
        .container_status(cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
        .call("ContainerStatus")?;
    Ok(status.status.map(|s| s.log_path).unwrap_or_default())
}

/// Whether a container instance is running now.
pub async fn is_running(cri: &Cri, id: &str) -> bool {
    cri.runtime
        .clone()
        .container_status(cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().status)
        .is_some_and(|s| s.state == cri::ContainerState::ContainerRunning as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateWaiting, ContainerStatus, PodSpec, PodStatus,
    };

    fn inst(id: &str, attempt: u32, state: cri::ContainerState, created: i64) -> Instance {
        Instance {
            id: id.into(),
            attempt,
            state,
            created_at: created,
        }
    }

    fn pod(waiting: Option<&str>) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                init_containers: Some(vec![Container {
                    name: "init".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: waiting.map(|reason| PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "c".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_newest_instance_is_current_and_the_one_before_is_previous() {
        use cri::ContainerState::*;
        let mut all = vec![
            inst("a", 0, ContainerExited, 10),
            inst("c", 2, ContainerRunning, 30),
            inst("b", 1, ContainerExited, 20),
        ];
        newest_first(&mut all);
        let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        let p = pod(None);
        assert_eq!(
            log_instance(&p, "c", &all, false).map(|i| &i.id[..]),
            Ok("c")
        );
        assert_eq!(
            log_instance(&p, "c", &all, true).map(|i| &i.id[..]),
            Ok("b")
        );
        assert_eq!(
            log_instance(&p, "c", &all[..1], true),
            Err(r#"previous terminated container "c" in pod "p" not found"#.into())
        );
        // an exited newest instance still has the current log
        let exited = [inst("x", 0, ContainerExited, 1)];
        assert_eq!(
            log_instance(&p, "c", &exited, false).map(|i| &i.id[..]),
            Ok("x")
        );
    }

    #[test]
    fn a_container_not_started_says_why() {
        let created = [inst("x", 0, cri::ContainerState::ContainerCreated, 1)];
        assert_eq!(
            log_instance(&pod(Some("ImagePullBackOff")), "c", &[], false),
            Err(r#"container "c" in pod "p" is waiting to start: ImagePullBackOff"#.into())
        );
        assert_eq!(
            log_instance(&pod(None), "c", &created, false),
            Err(r#"container "c" in pod "p" is waiting to start: ContainerCreating"#.into())
        );
        assert_eq!(
            log_instance(&pod(None), "c", &[], false),
            Err(r#"container "c" in pod "p" is not available"#.into())
        );
    }

    #[test]
    fn exec_needs_a_running_instance_and_specs_name_containers() {
        use cri::ContainerState::*;
        let all = [
            inst("b", 1, ContainerExited, 2),
            inst("a", 0, ContainerRunning, 1),
        ];
        assert_eq!(running_instance(&all, "c").map(|i| &i.id[..]), Ok("a"));
        assert_eq!(
            running_instance(&all[..1], "c"),
            Err(r#"container not found ("c")"#.into())
        );
        let p = pod(None);
        assert!(pod_has_container(&p, "c"));
        assert!(pod_has_container(&p, "init"));
        assert!(!pod_has_container(&p, "other"));
    }
}
