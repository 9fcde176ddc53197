//! What a pod or persistent volume (as stored JSON) gives its node access to: the
//! references upstream's node authorizer graph records as edges (`AddPod`, `AddPV`,
//! `podutil.VisitPodSecretNames`/`VisitPodConfigmapNames`,
//! `pvutil.VisitPVSecretNames`).

use serde_json::Value;

/// Annotation marking a mirror pod (the API copy of a kubelet's static pod).
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Pushes `name` unless it is empty (upstream skips empty names).
fn push<'a>(out: &mut Vec<&'a str>, name: Option<&'a str>) {
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        out.push(n);
    }
}

/// The pod's namespace and name.
pub(crate) fn pod_key(pod: &Value) -> (&str, &str) {
    (
        str_at(pod, "/metadata/namespace").unwrap_or_default(),
        str_at(pod, "/metadata/name").unwrap_or_default(),
    )
}

/// Whether the pod is a mirror pod. A node creates those itself, so they grant it
/// nothing beyond the pod: upstream adds no edges from them.
pub(crate) fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// Init containers, containers and ephemeral containers.
fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    array(pod, "/spec/initContainers")
        .iter()
        .chain(array(pod, "/spec/containers"))
        .chain(array(pod, "/spec/ephemeralContainers"))
}

/// The volume's source kind: the first of upstream's switch cases present.
fn volume_source<'a>(volume: &'a Value, kinds: &[&'a str]) -> Option<(&'a str, &'a Value)> {
    kinds
        .iter()
        .find_map(|k| volume.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// The secrets the pod references in its namespace: image pull secrets, containers'
/// `envFrom` and `env[].valueFrom.secretKeyRef`, and secret-backed volumes.
pub fn pod_secret_names(pod: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for r in array(pod, "/spec/imagePullSecrets") {
        push(&mut out, str_at(r, "/name"));
    }
    for c in all_containers(pod) {
        for e in array(c, "/envFrom") {
            push(&mut out, str_at(e, "/secretRef/name"));
        }
        for e in array(c, "/env") {
            push(&mut out, str_at(e, "/valueFrom/secretKeyRef/name"));
        }
    }
    const KINDS: [&str; 11] = [
        "azureFile",
        "cephfs",
        "cinder",
        "flexVolume",
        "projected",
        "rbd",
        "secret",
        "scaleIO",
        "iscsi",
        "storageos",
        "csi",
    ];
    for v in array(pod, "/spec/volumes") {
        let Some((kind, src)) = volume_source(v, &KINDS) else {
            continue;
        };
        match kind {
            "azureFile" => push(&mut out, str_at(src, "/secretName")),
            "projected" => {
                for s in array(src, "/sources") {
                    push(&mut out, str_at(s, "/secret/name"));
                }
            }
            "secret" => push(&mut out, str_at(src, "/secretName")),
            "csi" => push(&mut out, str_at(src, "/nodePublishSecretRef/name")),
            _ => push(&mut out, str_at(src, "/secretRef/name")),
        }
    }
    out
}

/// The config maps the pod references in its namespace: containers' `envFrom` and
/// `env[].valueFrom.configMapKeyRef`, `configMap` volumes and projected sources.
pub fn pod_configmap_names(pod: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for c in all_containers(pod) {
        for e in array(c, "/envFrom") {
            push(&mut out, str_at(e, "/configMapRef/name"));
        }
        for e in array(c, "/env") {
            push(&mut out, str_at(e, "/valueFrom/configMapKeyRef/name"));
        }
    }
    for v in array(pod, "/spec/volumes") {
        match volume_source(v, &["projected", "configMap"]) {
            Some(("projected", src)) => {
                for s in array(src, "/sources") {
                    push(&mut out, str_at(s, "/configMap/name"));
                }
            }
            Some((_, src)) => push(&mut out, str_at(src, "/name")),
            None => {}
        }
    }
    out
}

/// The persistent volume claims the pod uses: `persistentVolumeClaim` volumes, and the
/// `<pod>-<volume>` claims of generic ephemeral volumes.
pub fn pod_claim_names(pod: &Value) -> Vec<String> {
    let (_, pod_name) = pod_key(pod);
    let mut out = Vec::new();
    for v in array(pod, "/spec/volumes") {
        if let Some(claim) = str_at(v, "/persistentVolumeClaim/claimName") {
            if !claim.is_empty() {
                out.push(claim.to_string());
            }
        } else if v.get("ephemeral").is_some_and(|e| !e.is_null()) {
            let volume = str_at(v, "/name").unwrap_or_default();
            out.push(format!("{pod_name}-{volume}"));
        }
    }
    out
}

/// The resource claims the pod uses: named ones, and those the resource claim
/// controller generated from templates (recorded in `status.resourceClaimStatuses`).
pub(crate) fn pod_resource_claim_names(pod: &Value) -> Vec<&str> {
    let statuses = array(pod, "/status/resourceClaimStatuses");
    let mut out = Vec::new();
    for c in array(pod, "/spec/resourceClaims") {
        if let Some(name) = str_at(c, "/resourceClaimName") {
            out.push(name);
        } else if c
            .get("resourceClaimTemplateName")
            .is_some_and(|t| !t.is_null())
        {
            let entry = str_at(c, "/name").unwrap_or_default();
            let generated = statuses
                .iter()
                .find(|s| str_at(s, "/name") == Some(entry))
                .and_then(|s| str_at(s, "/resourceClaimName"));
            if let Some(name) = generated {
                out.push(name);
            }
        }
    }
    out
}

/// The pod's service account.
pub(crate) fn pod_service_account(pod: &Value) -> Option<&str> {
    str_at(pod, "/spec/serviceAccountName").filter(|s| !s.is_empty())
}

/// The claim a persistent volume is bound to (`spec.claimRef`).
pub(crate) fn pv_claim_ref(pv: &Value) -> Option<(&str, &str)> {
    let claim = pv.pointer("/spec/claimRef").filter(|c| !c.is_null())?;
    Some((
        str_at(claim, "/namespace").unwrap_or_default(),
        str_at(claim, "/name").unwrap_or_default(),
    ))
}

/// The secrets (namespace, name) a persistent volume's plugin hands the kubelet. A
/// reference without a namespace means the claim's namespace, except for Cinder,
/// StorageOS and CSI, whose references are taken as written; CSI controller secrets
/// are not the kubelet's.
pub(crate) fn pv_kubelet_secrets(pv: &Value) -> Vec<(&str, &str)> {
    let claim_ns = pv_claim_ref(pv).map(|(ns, _)| ns).unwrap_or_default();
    let mut out = Vec::new();
    let Some(spec) = pv.get("spec") else {
        return out;
    };
    const KINDS: [&str; 9] = [
        "azureFile",
        "cephfs",
        "cinder",
        "flexVolume",
        "rbd",
        "scaleIO",
        "iscsi",
        "storageos",
        "csi",
    ];
    let Some((kind, src)) = volume_source(spec, &KINDS) else {
        return out;
    };
    match kind {
        "azureFile" => {
            let ns = str_at(src, "/secretNamespace")
                .filter(|n| !n.is_empty())
                .unwrap_or(claim_ns);
            if let Some(name) = str_at(src, "/secretName").filter(|n| !n.is_empty()) {
                out.push((ns, name));
            }
        }
        "cinder" | "storageos" => {
            if let Some(name) = str_at(src, "/secretRef/name").filter(|n| !n.is_empty()) {
                out.push((
                    str_at(src, "/secretRef/namespace").unwrap_or_default(),
                    name,
                ));
            }
        }
        "csi" => {
            for r in [
                "nodePublishSecretRef",
                "nodeStageSecretRef",
                "nodeExpandSecretRef",
            ] {
                let Some(secret) = src.get(r) else { continue };
                if let Some(name) = str_at(secret, "/name").filter(|n| !n.is_empty()) {
                    out.push((str_at(secret, "/namespace").unwrap_or_default(), name));
                }
            }
        }
        _ => {
            if let Some(name) = str_at(src, "/secretRef/name").filter(|n| !n.is_empty()) {
                let ns = str_at(src, "/secretRef/namespace")
                    .filter(|n| !n.is_empty())
                    .unwrap_or(claim_ns);
                out.push((ns, name));
            }
        }
    }
    out
}
