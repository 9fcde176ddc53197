//! The authorizers' view of the caches: RBAC's roles and bindings as typed objects, rebuilt
//! only when one of the four RBAC caches has changed, and the node graph over pods and
//! volumes.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use parking_lot::RwLock;
use rkube_api::rbac::{NodeGraph, PolicySource};
use serde_json::Value;

use crate::server::ApiServer;

const RBAC: &str = "rbac.authorization.k8s.io";

/// Typed RBAC objects, as of `changes`.
#[derive(Debug, Default)]
pub struct RbacSnapshot {
    changes: u64,
    cluster_roles: HashMap<String, Arc<ClusterRole>>,
    roles: HashMap<(String, String), Arc<Role>>,
    cluster_role_bindings: Vec<Arc<ClusterRoleBinding>>,
    role_bindings: HashMap<String, Vec<Arc<RoleBinding>>>,
}

impl PolicySource for RbacSnapshot {
    fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>> {
        self.cluster_roles.get(name).cloned()
    }

    fn role(&self, ns: &str, name: &str) -> Option<Arc<Role>> {
        self.roles.get(&(ns.to_string(), name.to_string())).cloned()
    }

    fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>> {
        self.cluster_role_bindings.clone()
    }

    fn role_bindings(&self, ns: &str) -> Vec<Arc<RoleBinding>> {
        self.role_bindings.get(ns).cloned().unwrap_or_default()
    }
}

/// The current snapshot, rebuilt on demand.
#[derive(Debug, Default)]
pub struct RbacIndex {
    current: RwLock<Arc<RbacSnapshot>>,
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

impl RbacIndex {
    /// The snapshot current with the caches.
    pub fn snapshot(&self, server: &ApiServer) -> Arc<RbacSnapshot> {
        let changes = server.cache_changes(
            RBAC,
            &[
                "clusterroles",
                "roles",
                "clusterrolebindings",
                "rolebindings",
            ],
        );
        {
            let cur = self.current.read();
            if cur.changes == changes && changes != 0 {
                return cur.clone();
            }
        }
        let mut snap = RbacSnapshot {
            changes,
            ..RbacSnapshot::default()
        };
        for o in server.cached_list(RBAC, "clusterroles", None) {
            if let Some(r) = typed::<ClusterRole>(&o.value) {
                snap.cluster_roles.insert(o.name().to_string(), Arc::new(r));
            }
        }
        for o in server.cached_list(RBAC, "roles", None) {
            if let Some(r) = typed::<Role>(&o.value) {
                snap.roles.insert(
                    (o.namespace().to_string(), o.name().to_string()),
                    Arc::new(r),
                );
            }
        }
        for o in server.cached_list(RBAC, "clusterrolebindings", None) {
            if let Some(b) = typed::<ClusterRoleBinding>(&o.value) {
                snap.cluster_role_bindings.push(Arc::new(b));
            }
        }
        for o in server.cached_list(RBAC, "rolebindings", None) {
            if let Some(b) = typed::<RoleBinding>(&o.value) {
                snap.role_bindings
                    .entry(o.namespace().to_string())
                    .or_default()
                    .push(Arc::new(b));
            }
        }
        let snap = Arc::new(snap);
        *self.current.write() = snap.clone();
        snap
    }
}

/// The node authorizer's graph, read from the caches on demand.
#[derive(Debug)]
pub struct CacheGraph<'a>(pub &'a ApiServer);

impl NodeGraph for CacheGraph<'_> {
    fn pods_on_node(&self, node: &str) -> Vec<Arc<Value>> {
        // Only the node's pods are copied; the scan itself still visits every cached pod.
        let on_node = |p: &crate::watch_cache::CachedObject| {
            p.value.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
        };
        self.0
            .cached_matching("", "pods", None, &on_node)
            .into_iter()
            .map(|p| Arc::new(p.value.clone()))
            .collect()
    }

    fn persistent_volume(&self, name: &str) -> Option<Arc<Value>> {
        self.0
            .cached("", "persistentvolumes", "", name)
            .map(|o| Arc::new(o.value.clone()))
    }

    fn persistent_volumes_for_claim(&self, namespace: &str, claim: &str) -> Vec<Arc<Value>> {
        let claimed = |pv: &crate::watch_cache::CachedObject| {
            let r = pv.value.pointer("/spec/claimRef");
            r.and_then(|r| r.get("namespace")).and_then(Value::as_str) == Some(namespace)
                && r.and_then(|r| r.get("name")).and_then(Value::as_str) == Some(claim)
        };
        self.0
            .cached_matching("", "persistentvolumes", None, &claimed)
            .into_iter()
            .map(|o| Arc::new(o.value.clone()))
            .collect()
    }

    fn volume_attachment(&self, name: &str) -> Option<Arc<Value>> {
        self.0
            .cached("storage.k8s.io", "volumeattachments", "", name)
            .map(|o| Arc::new(o.value.clone()))
    }

    fn resource_slice(&self, _name: &str) -> Option<Arc<Value>> {
        // resource.k8s.io is not served yet.
        None
    }
}
