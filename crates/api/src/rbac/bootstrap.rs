//! The RBAC policy kube-apiserver v1.33 creates at start: upstream's `bootstrappolicy`
//! package, kept as the expected output upstream checks it against
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/*.yaml`, default feature
//! gates) and embedded from `policy/`.
//!
//! Every object carries the label `kubernetes.io/bootstrapping: rbac-defaults` and the
//! annotation `rbac.authorization.kubernetes.io/autoupdate: "true"`, which lets the API
//! server [reconcile](super::reconcile) it at each start; setting the annotation to
//! `"false"` on a live object opts it out.

use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The label every bootstrap object carries.
pub const BOOTSTRAPPING_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The annotation that lets reconciliation update an object (`"false"` protects it).
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// Label prefix that aggregates a cluster role into `admin`, `edit` or `view`.
pub const AGGREGATE_TO_PREFIX: &str = "rbac.authorization.k8s.io/aggregate-to-";

const CLUSTER_ROLES: &str = include_str!("policy/cluster-roles.yaml");
const CONTROLLER_ROLES: &str = include_str!("policy/controller-roles.yaml");
const CLUSTER_ROLE_BINDINGS: &str = include_str!("policy/cluster-role-bindings.yaml");
const CONTROLLER_ROLE_BINDINGS: &str = include_str!("policy/controller-role-bindings.yaml");
const NAMESPACE_ROLES: &str = include_str!("policy/namespace-roles.yaml");
const NAMESPACE_ROLE_BINDINGS: &str = include_str!("policy/namespace-role-bindings.yaml");

/// The bootstrap policy: what upstream's `storage_rbac.go` post-start hook ensures.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapPolicy {
    /// The cluster roles (`cluster-admin`, `admin`, `edit`, `view`, `system:*`) followed
    /// by the controllers' roles (`system:controller:*`).
    pub cluster_roles: Vec<ClusterRole>,
    /// Their bindings, the controllers' last; each controller's binds its service
    /// account in `kube-system`.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Roles in `kube-system` and `kube-public`, each with its namespace set.
    pub roles: Vec<Role>,
    /// Role bindings in `kube-system` and `kube-public`, each with its namespace set.
    pub role_bindings: Vec<RoleBinding>,
}

impl BootstrapPolicy {
    /// The bootstrap cluster role `name`.
    pub fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
    }

    /// The bootstrap cluster role binding `name`.
    pub fn cluster_role_binding(&self, name: &str) -> Option<&ClusterRoleBinding> {
        self.cluster_role_bindings
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
    }

    /// The bootstrap role `namespace/name`.
    pub fn role(&self, namespace: &str, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| {
            r.metadata.namespace.as_deref() == Some(namespace)
                && r.metadata.name.as_deref() == Some(name)
        })
    }

    /// The bootstrap role binding `namespace/name`.
    pub fn role_binding(&self, namespace: &str, name: &str) -> Option<&RoleBinding> {
        self.role_bindings.iter().find(|r| {
            r.metadata.namespace.as_deref() == Some(namespace)
                && r.metadata.name.as_deref() == Some(name)
        })
    }
}

/// Why the embedded policy could not be read; only a broken build can cause it, and a
/// test reads it.
#[derive(Debug, thiserror::Error)]
#[error("bootstrap policy {file}: {source}")]
pub struct BootstrapPolicyError {
    file: &'static str,
    #[source]
    source: serde_yaml_ng::Error,
}

/// The `kind: List` documents the testdata are.
#[derive(Deserialize)]
struct ItemList<T> {
    items: Vec<T>,
}

fn parse<T: DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<Vec<T>, BootstrapPolicyError> {
    serde_yaml_ng::from_str::<ItemList<T>>(text)
        .map(|l| l.items)
        .map_err(|source| BootstrapPolicyError { file, source })
}

/// Parses the embedded policy files.
pub fn load_bootstrap_policy() -> Result<BootstrapPolicy, BootstrapPolicyError> {
    let mut cluster_roles: Vec<ClusterRole> = parse("cluster-roles.yaml", CLUSTER_ROLES)?;
    cluster_roles.extend(parse::<ClusterRole>(
        "controller-roles.yaml",
        CONTROLLER_ROLES,
    )?);
    let mut cluster_role_bindings: Vec<ClusterRoleBinding> =
        parse("cluster-role-bindings.yaml", CLUSTER_ROLE_BINDINGS)?;
    cluster_role_bindings.extend(parse::<ClusterRoleBinding>(
        "controller-role-bindings.yaml",
        CONTROLLER_ROLE_BINDINGS,
    )?);
    Ok(BootstrapPolicy {
        cluster_roles,
        cluster_role_bindings,
        roles: parse("namespace-roles.yaml", NAMESPACE_ROLES)?,
        role_bindings: parse("namespace-role-bindings.yaml", NAMESPACE_ROLE_BINDINGS)?,
    })
}

static POLICY: LazyLock<BootstrapPolicy> = LazyLock::new(|| {
    // The files are compiled in and `bootstrap_policy_loads` parses them, so this can
    // only fail in a build whose tests fail.
    #[allow(clippy::expect_used)]
    load_bootstrap_policy().expect("embedded bootstrap RBAC policy parses")
});

/// The bootstrap policy, parsed once.
pub fn bootstrap_policy() -> &'static BootstrapPolicy {
    &POLICY
}
