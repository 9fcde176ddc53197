//! The admission plugins, one file each, and the chain that runs them in upstream's fixed
//! order. `--enable-admission-plugins` and `--disable-admission-plugins` adjust the default
//! set as upstream's flags do; the order never changes.

mod certificates;
mod default_ingress_class;
mod default_storage_class;
mod default_toleration_seconds;
mod limit_ranger;
mod namespace_lifecycle;
mod node_restriction;
mod pod_security;
mod priority;
mod resource_quota;
mod service_account;
mod taint_nodes_by_condition;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use priority::SYSTEM_CLASSES as SYSTEM_PRIORITY_CLASSES;

use super::Request;
use crate::status::ApiResult;

/// One admission plugin. A plugin implements the phases it needs.
#[async_trait]
pub trait Plugin: Send + Sync + std::fmt::Debug {
    /// Mutating phase: may change the object.
    async fn admit(&self, _req: &Request<'_>, _obj: &mut Value) -> ApiResult<()> {
        Ok(())
    }

    /// Validating phase: may only refuse. For deletes, `obj` is the stored object.
    async fn validate(&self, _req: &Request<'_>, _obj: &Value) -> ApiResult<()> {
        Ok(())
    }
}

type Factory = fn() -> Arc<dyn Plugin>;

/// Every plugin rkube has, in upstream's order, with whether it is on by default.
const PLUGINS: &[(&str, bool, Factory)] = &[
    ("NamespaceLifecycle", true, || {
        Arc::new(namespace_lifecycle::NamespaceLifecycle)
    }),
    ("LimitRanger", true, || {
        Arc::new(limit_ranger::LimitRanger::default())
    }),
    ("ServiceAccount", true, || {
        Arc::new(service_account::ServiceAccount)
    }),
    ("NodeRestriction", true, || {
        Arc::new(node_restriction::NodeRestriction)
    }),
    ("TaintNodesByCondition", true, || {
        Arc::new(taint_nodes_by_condition::TaintNodesByCondition)
    }),
    ("PodSecurity", true, || {
        Arc::new(pod_security::PodSecurity::default())
    }),
    ("Priority", true, || Arc::new(priority::Priority)),
    ("DefaultTolerationSeconds", true, || {
        Arc::new(default_toleration_seconds::DefaultTolerationSeconds)
    }),
    ("DefaultStorageClass", true, || {
        Arc::new(default_storage_class::DefaultStorageClass)
    }),
    ("CertificateApproval", true, || {
        Arc::new(certificates::CertificateApproval)
    }),
    ("CertificateSigning", true, || {
        Arc::new(certificates::CertificateSigning)
    }),
    ("CertificateSubjectRestriction", true, || {
        Arc::new(certificates::CertificateSubjectRestriction)
    }),
    ("DefaultIngressClass", true, || {
        Arc::new(default_ingress_class::DefaultIngressClass)
    }),
    // Last, so only requests every other plugin admitted are charged.
    ("ResourceQuota", true, || {
        Arc::new(resource_quota::ResourceQuota)
    }),
];

/// The names of every plugin, in order.
pub fn plugin_names() -> impl Iterator<Item = &'static str> {
    PLUGINS.iter().map(|(n, _, _)| *n)
}

/// The enabled plugins, in order. The default is upstream's default set: a server built
/// without flags admits as a secure one should.
#[derive(Debug, Clone)]
pub struct Admission {
    plugins: Vec<(&'static str, Arc<dyn Plugin>)>,
}

/// A plugin name that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("admission plugin {0:?} is unknown; known plugins: {known}", known = plugin_names().collect::<Vec<_>>().join(", "))]
pub struct UnknownPlugin(pub String);

impl Default for Admission {
    fn default() -> Self {
        Self::default_plugins()
    }
}

impl Admission {
    /// The default set, plus `enable`, minus `disable`.
    pub fn from_flags(enable: &[String], disable: &[String]) -> Result<Self, UnknownPlugin> {
        for name in enable.iter().chain(disable) {
            if !PLUGINS.iter().any(|(n, _, _)| n == name) {
                return Err(UnknownPlugin(name.clone()));
            }
        }
        let plugins = PLUGINS
            .iter()
            .filter(|(n, on, _)| {
                (*on || enable.iter().any(|e| e == n)) && !disable.iter().any(|d| d == n)
            })
            .map(|(n, _, f)| (*n, f()))
            .collect();
        Ok(Admission { plugins })
    }

    /// Upstream's default set.
    pub fn default_plugins() -> Self {
        let plugins = PLUGINS
            .iter()
            .filter(|(_, on, _)| *on)
            .map(|(n, _, f)| (*n, f()))
            .collect();
        Admission { plugins }
    }

    pub fn enabled(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.plugins.iter().map(|(n, _)| *n)
    }

    pub(crate) async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        for (_, p) in &self.plugins {
            p.admit(req, obj).await?;
        }
        Ok(())
    }

    pub(crate) async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        for (_, p) in &self.plugins {
            p.validate(req, obj).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_adjust_the_default_set_and_keep_the_order() {
        let a = Admission::from_flags(&[], &["Priority".into()]).expect("known");
        let names: Vec<_> = a.enabled().collect();
        assert!(!names.contains(&"Priority"));
        assert_eq!(names.first(), Some(&"NamespaceLifecycle"));
        assert!(Admission::from_flags(&["Nope".into()], &[]).is_err());
        let default: Vec<_> = Admission::default().enabled().collect();
        assert_eq!(
            default,
            Admission::from_flags(&[], &[])
                .expect("known")
                .enabled()
                .collect::<Vec<_>>()
        );
        assert!(default.contains(&"ServiceAccount") && default.contains(&"NodeRestriction"));
    }
}
