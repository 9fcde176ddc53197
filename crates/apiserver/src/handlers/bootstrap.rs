//! What the API server writes at start, as upstream's post-start hooks do: the system
//! namespaces, the system priority classes, and the bootstrap RBAC policy, reconciled so
//! that missing permissions come back while an administrator's additions (and objects
//! annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`) are kept.

use std::sync::Arc;

use rkube_api::rbac::{self, BindingChange};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{create_if_missing, internal_ctx, write, SYSTEM_NAMESPACES};
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult};

const RBAC: &str = "rbac.authorization.k8s.io";

pub(crate) async fn bootstrap(server: &Arc<ApiServer>) -> ApiResult<()> {
    for ns in SYSTEM_NAMESPACES {
        let obj =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        create_if_missing(server, "", "namespaces", obj).await?;
    }
    for (name, value, description) in crate::admission::plugins::SYSTEM_PRIORITY_CLASSES {
        let obj = serde_json::json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        create_if_missing(server, "scheduling.k8s.io", "priorityclasses", obj).await?;
    }
    reconcile_rbac(server).await
}

async fn reconcile_rbac(server: &Arc<ApiServer>) -> ApiResult<()> {
    let policy = rbac::bootstrap_policy();
    for desired in &policy.cluster_roles {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let existing = read_typed(server, "clusterroles", "", &name).await?;
        if let Some(new) = rbac::reconcile_cluster_role(existing.as_ref(), desired) {
            write_typed(
                server,
                "clusterroles",
                "ClusterRole",
                "",
                &name,
                &new,
                existing.is_some(),
            )
            .await?;
        }
    }
    for desired in &policy.roles {
        let ns = desired.metadata.namespace.clone().unwrap_or_default();
        let name = desired.metadata.name.clone().unwrap_or_default();
        let existing = read_typed(server, "roles", &ns, &name).await?;
        if let Some(new) = rbac::reconcile_role(existing.as_ref(), desired) {
            write_typed(
                server,
                "roles",
                "Role",
                &ns,
                &name,
                &new,
                existing.is_some(),
            )
            .await?;
        }
    }
    for desired in &policy.cluster_role_bindings {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let existing = read_typed(server, "clusterrolebindings", "", &name).await?;
        let change = rbac::reconcile_cluster_role_binding(existing.as_ref(), desired);
        apply_binding(
            server,
            "clusterrolebindings",
            "ClusterRoleBinding",
            "",
            &name,
            change,
        )
        .await?;
    }
    for desired in &policy.role_bindings {
        let ns = desired.metadata.namespace.clone().unwrap_or_default();
        let name = desired.metadata.name.clone().unwrap_or_default();
        let existing = read_typed(server, "rolebindings", &ns, &name).await?;
        let change = rbac::reconcile_role_binding(existing.as_ref(), desired);
        apply_binding(server, "rolebindings", "RoleBinding", &ns, &name, change).await?;
    }
    Ok(())
}

async fn read_typed<T: DeserializeOwned>(
    server: &Arc<ApiServer>,
    plural: &str,
    ns: &str,
    name: &str,
) -> ApiResult<Option<T>> {
    match server.read_object(RBAC, plural, ns, name).await? {
        Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
            ApiError::internal(format!("stored {plural} {name} does not decode: {e}"))
        }),
        None => Ok(None),
    }
}

fn to_value<T: Serialize>(obj: &T, kind: &str) -> ApiResult<Value> {
    let mut v = serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(format!("{RBAC}/v1")));
        o.insert("kind".into(), Value::String(kind.to_string()));
    }
    Ok(v)
}

async fn write_typed<T: Serialize>(
    server: &Arc<ApiServer>,
    plural: &str,
    kind: &str,
    ns: &str,
    name: &str,
    obj: &T,
    exists: bool,
) -> ApiResult<()> {
    let mut value = to_value(obj, kind)?;
    let Some(res) = rkube_api::catalogue::find(RBAC, "v1", plural) else {
        return Ok(());
    };
    let ns_opt = (!ns.is_empty()).then_some(ns);
    let ctx = internal_ctx(server, res, ns_opt, name);
    if exists {
        // The reconciled object carries the live resourceVersion; the update is conditional.
        let rv = value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        write::guaranteed_update(&ctx, false, rv.as_deref(), |_| Ok(value.clone()), None).await?;
    } else {
        if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        match write::create_object(&ctx, value, false).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn apply_binding<T: Serialize>(
    server: &Arc<ApiServer>,
    plural: &str,
    kind: &str,
    ns: &str,
    name: &str,
    change: Option<BindingChange<T>>,
) -> ApiResult<()> {
    match change {
        None => Ok(()),
        Some(BindingChange::Create(b)) => {
            write_typed(server, plural, kind, ns, name, &b, false).await
        }
        Some(BindingChange::Update(b)) => {
            write_typed(server, plural, kind, ns, name, &b, true).await
        }
        Some(BindingChange::Recreate(b)) => {
            if let Some(res) = rkube_api::catalogue::find(RBAC, "v1", plural) {
                let key = crate::object::key(res, ns, name);
                if let Some((_, rev)) = server.read_key(&key, 0).await? {
                    server
                        .store
                        .txn(rkube_store::TxnRequest::delete(key, rev))
                        .await?;
                }
            }
            write_typed(server, plural, kind, ns, name, &b, false).await
        }
    }
}
