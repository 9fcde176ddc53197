//! Plugin name to factory, as upstream's in-tree registry. A factory gets the plugin's
//! `pluginConfig` args (JSON `null` when none) and the [`Handle`], and applies the args'
//! defaults itself.

use std::sync::Arc;

use crate::framework::{Plugin, WaitingPods};

/// What a plugin may use besides its args.
#[derive(Clone, Default)]
pub struct Handle {
    /// The API client (DefaultBinder binds through it). `None` in unit tests.
    pub client: Option<kube::Client>,
    /// Pods held by Permit plugins; a plugin allows or rejects them here.
    pub waiting: Arc<WaitingPods>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// Builds a plugin from its args.
pub type Factory = fn(&serde_json::Value, &Handle) -> Result<Arc<dyn Plugin>, String>;

/// A registered plugin.
#[derive(Debug)]
pub struct Registration {
    /// The plugin's name.
    pub name: &'static str,
    /// Its factory.
    pub factory: Factory,
}

/// The factory of plugin `name`.
pub fn factory(name: &str) -> Option<Factory> {
    crate::plugins::REGISTRY
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.factory)
}

/// Upstream's in-tree plugins that rkube does not implement (the volume plugins need
/// PersistentVolume binding, which rkube does not have yet). Disabling them is accepted so that
/// upstream configurations load; enabling one is an error.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "DynamicResources",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
    "CinderLimits",
];

/// Parses plugin args into `T`, with `null` giving `T::default()`; unknown fields are an error,
/// as upstream's strict decoding.
pub fn parse_args<T: serde::de::DeserializeOwned + Default>(
    plugin: &str,
    args: &serde_json::Value,
) -> Result<T, String> {
    if args.is_null() {
        return Ok(T::default());
    }
    let mut args = args.clone();
    if let Some(m) = args.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    serde_json::from_value(args).map_err(|e| format!("decoding args of plugin {plugin:?}: {e}"))
}
