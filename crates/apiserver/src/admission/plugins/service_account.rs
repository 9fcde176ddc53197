//! ServiceAccount: a new pod runs as a service account that exists (`default` unless it
//! names one), gets the account's image pull secrets if it has none, and, unless
//! automounting is turned off, a projected `kube-api-access-*` volume (a bound token, the
//! cluster CA and the namespace) mounted into every container.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

pub const DEFAULT_ACCOUNT: &str = "default";
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const VOLUME_PREFIX: &str = "kube-api-access-";
/// Upstream's token lifetime for the projected volume: an hour and seven seconds, which marks
/// tokens the kubelet refreshes.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

#[derive(Debug)]
pub struct ServiceAccount;

#[async_trait]
impl Plugin for ServiceAccount {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op != Operation::Create || !req.is("", "pods") || req.subresource.is_some() {
            return Ok(());
        }
        if obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(rkube_api::rbac::node_refs::MIRROR_POD_ANNOTATION))
            .is_some()
        {
            // Static pods from a kubelet get no service account.
            return Ok(());
        }
        let sa_name = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_ACCOUNT)
            .to_string();
        let sa = match req
            .server
            .cached("", "serviceaccounts", req.namespace, &sa_name)
        {
            Some(sa) => Some(sa.value.clone()),
            // The cache may lag a moment behind an account created just now.
            None => {
                req.server
                    .read_object("", "serviceaccounts", req.namespace, &sa_name)
                    .await?
            }
        };
        let Some(sa) = sa else {
            return Err(req.forbidden(&format!(
                "error looking up service account {}/{sa_name}: serviceaccount \"{sa_name}\" not found",
                req.namespace
            )));
        };
        let suffix = crate::object::random_suffix();
        apply(obj, &sa, &sa_name, &suffix);
        Ok(())
    }
}

/// Sets the account, pull secrets, token volume and mounts; `suffix` names the volume.
pub fn apply(pod: &mut Value, sa: &Value, sa_name: &str, suffix: &str) {
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert("serviceAccountName".into(), json!(sa_name));
    let no_pull_secrets = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_pull_secrets {
        if let Some(secrets) = sa.get("imagePullSecrets").and_then(Value::as_array) {
            if !secrets.is_empty() {
                spec.insert("imagePullSecrets".into(), Value::Array(secrets.clone()));
            }
        }
    }
    if !automount {
        return;
    }
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    let Some(volumes) = volumes.as_array_mut() else {
        return;
    };
    let existing = volumes.iter().find_map(|v| {
        v.get("name")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with(VOLUME_PREFIX))
            .map(str::to_string)
    });
    let volume_name = match existing {
        Some(n) => n,
        None => {
            let name = format!("{VOLUME_PREFIX}{suffix}");
            volumes.push(token_volume(&name));
            name
        }
    };
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH));
            if !taken {
                mounts.push(json!({
                    "name": volume_name,
                    "readOnly": true,
                    "mountPath": MOUNT_PATH,
                }));
            }
        }
    }
}

fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": 420,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
                {"name": "own", "mountPath": MOUNT_PATH}]}],
            "initContainers": [{"name": "i"}]}})
    }

    #[test]
    fn pods_get_the_token_volume_mounted_where_nothing_else_is() {
        let mut p = pod();
        apply(
            &mut p,
            &json!({"imagePullSecrets": [{"name": "reg"}]}),
            "default",
            "x7k2q",
        );
        assert_eq!(p["spec"]["serviceAccountName"], json!("default"));
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        assert_eq!(
            p["spec"]["volumes"][0]["name"],
            json!("kube-api-access-x7k2q")
        );
        assert_eq!(
            p["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
                ["expirationSeconds"],
            json!(3607)
        );
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"][0]["name"],
            json!("kube-api-access-x7k2q")
        );
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"][0]["readOnly"],
            json!(true)
        );
    }

    #[test]
    fn automount_off_on_the_pod_or_account_adds_no_volume() {
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(false);
        apply(&mut p, &json!({}), "default", "aaaaa");
        assert!(p["spec"].get("volumes").is_none());
        let mut p = pod();
        apply(
            &mut p,
            &json!({"automountServiceAccountToken": false}),
            "default",
            "aaaaa",
        );
        assert!(p["spec"].get("volumes").is_none());
        // The pod's own setting wins over the account's.
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(true);
        apply(
            &mut p,
            &json!({"automountServiceAccountToken": false}),
            "default",
            "aaaaa",
        );
        assert!(p["spec"]["volumes"].is_array());
    }
}
