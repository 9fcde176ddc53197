//! Static pods: pods the kubelet runs from manifest files in a directory (k3s's
//! `agent/pod-manifests`, upstream's `staticPodPath`) rather than from the API, each with a
//! mirror pod in the API so that `kubectl get pods` shows it and its status.
//!
//! As upstream: a static pod's name gets `-<node>` appended, its uid is a hash of the
//! manifest and the node, it carries `kubernetes.io/config.source: file` and
//! `kubernetes.io/config.hash: <uid>`; its mirror pod carries `kubernetes.io/config.mirror:
//! <hash>` and an owner reference to the Node. Deleting the mirror pod does not stop the pod
//! (the kubelet recreates the mirror); removing or changing the file does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub const SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";

/// Whether a pod the kubelet runs came from a manifest file.
pub fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SOURCE_ANNOTATION))
        .is_some_and(|s| s == "file")
}

/// Whether an API pod is a mirror of a static pod.
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// A manifest that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("static pod manifest {file}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub message: String,
}

fn hex_hash(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
        ctx.update(b"\0");
    }
    let d = ctx.finish();
    // 32 hex characters, as upstream's md5-based uid
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The static pod a manifest describes, for node `node` (upstream's `applyDefaults` for file
/// sources).
pub fn from_manifest(file: &Path, text: &str, node: &str) -> Result<Pod, ManifestError> {
    let err = |message: String| ManifestError {
        file: file.display().to_string(),
        message,
    };
    let value: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
    if value.get("kind").and_then(|k| k.as_str()) != Some("Pod") {
        return Err(err(
            "the manifest must be a single object of kind Pod".into()
        ));
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("metadata.name is required".into()))?;
    let spec = pod
        .spec
        .as_mut()
        .ok_or_else(|| err("spec is required".into()))?;
    if spec.containers.is_empty() {
        return Err(err(
            "spec.containers: at least one container is required".into()
        ));
    }
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let uid = hex_hash(&[
        text.as_bytes(),
        node.as_bytes(),
        file.display().to_string().as_bytes(),
    ]);
    spec.node_name = Some(node.to_string());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    // static pods tolerate every NoExecute taint, as upstream's file source makes them
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata.namespace = Some(namespace);
    pod.metadata.uid = Some(uid.clone());
    let ann = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(SOURCE_ANNOTATION.into(), "file".into());
    ann.insert(HASH_ANNOTATION.into(), uid);
    pod.status = None;
    Ok(pod)
}

/// The mirror pod of a static pod, owned by the Node.
pub fn mirror(pod: &Pod, node: &Node) -> Pod {
    let mut m = pod.clone();
    m.metadata.uid = None;
    m.metadata.resource_version = None;
    let hash = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HASH_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    m.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(MIRROR_ANNOTATION.into(), hash);
    if let (Some(name), Some(uid)) = (node.metadata.name.clone(), node.metadata.uid.clone()) {
        m.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name,
            uid,
            controller: Some(true),
            ..Default::default()
        }]);
    }
    m.status = None;
    m
}

/// Whether an API pod is the current mirror of this static pod.
pub fn mirror_is_current(api: &Pod, pod: &Pod) -> bool {
    let want = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HASH_ANNOTATION));
    let have = api
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MIRROR_ANNOTATION));
    want.is_some() && want == have && api.metadata.deletion_timestamp.is_none()
}

/// The manifests of a directory: regular files, not hidden, in name order.
pub fn manifest_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: kube-system\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn a_manifest_becomes_a_static_pod_named_for_the_node() {
        let p = from_manifest(Path::new("/m/web.yaml"), MANIFEST, "n1").unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("kube-system"));
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        assert!(is_static(&p));
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()[HASH_ANNOTATION],
            uid
        );
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert!(spec
            .tolerations
            .as_ref()
            .unwrap()
            .iter()
            .any(|t| t.effect.as_deref() == Some("NoExecute")));
        // the same manifest on another node, or a changed one, is another pod
        let other = from_manifest(Path::new("/m/web.yaml"), MANIFEST, "n2").unwrap();
        assert_ne!(other.metadata.uid, p.metadata.uid);
        let changed = from_manifest(
            Path::new("/m/web.yaml"),
            &MANIFEST.replace("busybox", "nginx"),
            "n1",
        )
        .unwrap();
        assert_ne!(changed.metadata.uid, p.metadata.uid);
        assert_eq!(
            from_manifest(Path::new("/m/web.yaml"), MANIFEST, "n1")
                .unwrap()
                .metadata
                .uid,
            p.metadata.uid
        );
    }

    #[test]
    fn bad_manifests_are_refused_with_the_file_named() {
        let e = from_manifest(Path::new("/m/x.yaml"), "kind: Service\n", "n1").unwrap_err();
        assert!(
            e.to_string().starts_with("static pod manifest /m/x.yaml:"),
            "{e}"
        );
        assert!(from_manifest(
            Path::new("/m/x.yaml"),
            "kind: Pod\nspec: {containers: []}\nmetadata: {name: a}\n",
            "n1"
        )
        .is_err());
        assert!(from_manifest(Path::new("/m/x.yaml"), ": : :", "n1").is_err());
    }

    #[test]
    fn mirrors_are_owned_by_the_node_and_match_their_hash() {
        let p = from_manifest(Path::new("/m/web.yaml"), MANIFEST, "n1").unwrap();
        let node = Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("n1".into()),
                uid: Some("node-uid".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let m = mirror(&p, &node);
        assert!(is_mirror(&m));
        assert_eq!(m.metadata.uid, None);
        assert_eq!(
            m.metadata.owner_references.as_ref().unwrap()[0].kind,
            "Node"
        );
        assert!(mirror_is_current(&m, &p));
        let changed = from_manifest(
            Path::new("/m/web.yaml"),
            &MANIFEST.replace("busybox", "nginx"),
            "n1",
        )
        .unwrap();
        assert!(!mirror_is_current(&m, &changed));
    }
}
