//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): parsing, upstream's defaults,
//! and building each profile's [`Framework`] with upstream's merge rules.
//!
//! The default profile enables upstream's default plugins through `multiPoint`. A profile's
//! `multiPoint` entries are merged over those defaults (same name: the user's weight; `disabled`
//! removes; `*` removes all), and its per-point `enabled`/`disabled` lists then adjust each
//! extension point, as upstream's `mergePlugins` and `expandMultiPointPlugins`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::framework::runtime::ExtensionPoint;
use crate::framework::{Framework, Plugin};
use crate::registry::{self, Handle};

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The configuration file.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    /// kubescheduler.config.k8s.io/v1
    #[serde(default)]
    pub api_version: String,
    /// KubeSchedulerConfiguration
    #[serde(default)]
    pub kind: String,
    /// Workers for filtering and scoring (upstream's default 16; rkube uses the core count
    /// when unset).
    pub parallelism: Option<i32>,
    /// Leader election.
    #[serde(default)]
    pub leader_election: LeaderElectionConfiguration,
    /// The connection to the API server.
    #[serde(default)]
    pub client_connection: ClientConnection,
    /// 0 (or unset) means upstream's adaptive percentage.
    pub percentage_of_nodes_to_score: Option<i32>,
    /// The first backoff, 1 s by default.
    pub pod_initial_backoff_seconds: Option<i64>,
    /// The longest backoff, 10 s by default.
    pub pod_max_backoff_seconds: Option<i64>,
    /// The profiles; one `default-scheduler` profile when empty.
    #[serde(default)]
    pub profiles: Vec<Profile>,
    /// Scheduler extenders (webhooks); rkube has none and refuses a configuration with some.
    #[serde(default)]
    pub extenders: Vec<serde_json::Value>,
    /// Accepted for compatibility; rkube's server serves health and metrics itself.
    pub health_bind_address: Option<String>,
    /// Accepted for compatibility.
    pub metrics_bind_address: Option<String>,
    /// Accepted for compatibility.
    pub enable_profiling: Option<bool>,
    /// Accepted for compatibility.
    pub enable_contention_profiling: Option<bool>,
    /// Accepted for compatibility.
    pub delay_cache_until_active: Option<bool>,
}

/// `leaderElection`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaderElectionConfiguration {
    /// Whether to elect a leader (upstream's default: true).
    pub leader_elect: bool,
    /// How long a lease lasts without renewal.
    pub lease_duration: String,
    /// How long the leader keeps trying to renew before giving up.
    pub renew_deadline: String,
    /// How often to try.
    pub retry_period: String,
    /// `leases`.
    pub resource_lock: String,
    /// The Lease's name.
    pub resource_name: String,
    /// The Lease's namespace.
    pub resource_namespace: String,
}

impl Default for LeaderElectionConfiguration {
    fn default() -> Self {
        LeaderElectionConfiguration {
            leader_elect: true,
            lease_duration: "15s".into(),
            renew_deadline: "10s".into(),
            retry_period: "2s".into(),
            resource_lock: "leases".into(),
            resource_name: "kube-scheduler".into(),
            resource_namespace: "kube-system".into(),
        }
    }
}

/// `clientConnection`.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnection {
    /// The kubeconfig to use.
    pub kubeconfig: String,
    /// Accepted for compatibility; rkube's client does not throttle.
    pub qps: Option<f64>,
    /// Accepted for compatibility.
    pub burst: Option<i64>,
    /// Accepted for compatibility.
    pub content_type: Option<String>,
    /// Accepted for compatibility.
    pub accept_content_types: Option<String>,
}

/// One profile.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// The name pods select it by.
    #[serde(default)]
    pub scheduler_name: String,
    /// Overrides the global percentage.
    pub percentage_of_nodes_to_score: Option<i32>,
    /// Plugin sets per extension point.
    #[serde(default)]
    pub plugins: Plugins,
    /// Plugin args.
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `plugins`.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Plugins {
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
    #[serde(default)]
    pub multi_point: PluginSet,
}

impl Plugins {
    fn at(&self, point: ExtensionPoint) -> &PluginSet {
        match point {
            ExtensionPoint::PreEnqueue => &self.pre_enqueue,
            ExtensionPoint::QueueSort => &self.queue_sort,
            ExtensionPoint::PreFilter => &self.pre_filter,
            ExtensionPoint::Filter => &self.filter,
            ExtensionPoint::PostFilter => &self.post_filter,
            ExtensionPoint::PreScore => &self.pre_score,
            ExtensionPoint::Score => &self.score,
            ExtensionPoint::Reserve => &self.reserve,
            ExtensionPoint::Permit => &self.permit,
            ExtensionPoint::PreBind => &self.pre_bind,
            ExtensionPoint::Bind => &self.bind,
            ExtensionPoint::PostBind => &self.post_bind,
        }
    }
}

/// `enabled` and `disabled` plugins.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PluginSet {
    /// Enabled, in order.
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    /// Disabled (`*` for all defaults).
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// A plugin and its score weight.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// The name.
    pub name: String,
    /// The score weight (0 means the default).
    #[serde(default)]
    pub weight: Option<i32>,
}

/// `pluginConfig` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin.
    pub name: String,
    /// Its args.
    #[serde(default)]
    pub args: serde_json::Value,
}

/// Upstream v1's default plugins (all through `multiPoint`) with their score weights, minus
/// the volume plugins rkube does not implement.
pub const DEFAULT_PLUGINS: &[(&str, i32)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// A configuration problem, reported before the scheduler starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error("reading scheduler configuration: {0}")]
    Parse(String),
    /// The configuration is not valid.
    #[error("invalid scheduler configuration: {0}")]
    Invalid(String),
}

/// Go's duration syntax for the few units configurations use (`1.5s`, `15s`, `2m`, `1h30m`).
pub fn parse_go_duration(s: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::Invalid(format!("invalid duration {s:?}"));
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
}

impl KubeSchedulerConfiguration {
    /// Parses a YAML or JSON configuration.
    pub fn parse(text: &str) -> Result<KubeSchedulerConfiguration, ConfigError> {
        let cfg: KubeSchedulerConfiguration =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if !cfg.api_version.is_empty() && cfg.api_version != "kubescheduler.config.k8s.io/v1" {
            return Err(ConfigError::Parse(format!(
                "no kind \"KubeSchedulerConfiguration\" is registered for version {:?}",
                cfg.api_version
            )));
        }
        if !cfg.kind.is_empty() && cfg.kind != "KubeSchedulerConfiguration" {
            return Err(ConfigError::Parse(format!(
                "no kind {:?} is registered for version \"kubescheduler.config.k8s.io/v1\"",
                cfg.kind
            )));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Upstream's validation of the global fields and profiles.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.extenders.is_empty() {
            return Err(ConfigError::Invalid(
                "extenders: rkube does not support scheduler extenders".into(),
            ));
        }
        if let Some(p) = self.percentage_of_nodes_to_score {
            if !(0..=100).contains(&p) {
                return Err(ConfigError::Invalid(format!(
                    "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
                )));
            }
        }
        if let Some(p) = self.parallelism {
            if p <= 0 {
                return Err(ConfigError::Invalid(format!(
                    "parallelism: Invalid value: {p}: should be an integer value greater than zero"
                )));
            }
        }
        let initial = self.pod_initial_backoff_seconds.unwrap_or(1);
        let max = self.pod_max_backoff_seconds.unwrap_or(10);
        if initial <= 0 {
            return Err(ConfigError::Invalid(format!(
                "podInitialBackoffSeconds: Invalid value: {initial}: must be greater than 0"
            )));
        }
        if max < initial {
            return Err(ConfigError::Invalid(format!(
                "podMaxBackoffSeconds: Invalid value: {max}: must be greater than or equal to PodInitialBackoffSeconds"
            )));
        }
        let mut names = HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let name = if p.scheduler_name.is_empty() {
                DEFAULT_SCHEDULER_NAME
            } else {
                &p.scheduler_name
            };
            if !names.insert(name.to_string()) {
                return Err(ConfigError::Invalid(format!(
                    "profiles[{i}].schedulerName: Duplicate value: {name:?}"
                )));
            }
            if let Some(pct) = p.percentage_of_nodes_to_score {
                if !(0..=100).contains(&pct) {
                    return Err(ConfigError::Invalid(format!(
                        "profiles[{i}].percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]"
                    )));
                }
            }
            let mut seen = HashSet::new();
            for c in &p.plugin_config {
                if !seen.insert(c.name.clone()) {
                    return Err(ConfigError::Invalid(format!(
                        "profiles[{i}].pluginConfig: Duplicate value: {:?}",
                        c.name
                    )));
                }
            }
        }
        self.leader_durations()?;
        Ok(())
    }

    /// The first and longest backoff.
    pub fn backoff(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.pod_initial_backoff_seconds.unwrap_or(1).max(1) as u64),
            Duration::from_secs(self.pod_max_backoff_seconds.unwrap_or(10).max(1) as u64),
        )
    }

    /// Lease duration, renew deadline and retry period.
    pub fn leader_durations(&self) -> Result<(Duration, Duration, Duration), ConfigError> {
        let le = &self.leader_election;
        Ok((
            parse_go_duration(&le.lease_duration)?,
            parse_go_duration(&le.renew_deadline)?,
            parse_go_duration(&le.retry_period)?,
        ))
    }

    /// The profiles, or the one default profile.
    pub fn profiles(&self) -> Vec<Profile> {
        if self.profiles.is_empty() {
            vec![Profile::default()]
        } else {
            self.profiles.clone()
        }
    }

    /// Builds every profile's framework.
    pub fn build(&self, handle: &Handle) -> Result<Vec<Arc<Framework>>, ConfigError> {
        let profiles = self.profiles();
        let fws = profiles
            .iter()
            .map(|p| build_profile(p, handle).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        // upstream: every profile must use the same queue sort (one queue serves them all)
        let sorts: HashSet<Vec<&str>> = fws
            .iter()
            .map(|f| {
                f.plugins_at(ExtensionPoint::QueueSort)
                    .iter()
                    .map(|p| p.name())
                    .collect()
            })
            .collect();
        if sorts.len() > 1 {
            return Err(ConfigError::Invalid(
                "profiles: Invalid value: queueSort: must be the same for all profiles".into(),
            ));
        }
        Ok(fws)
    }
}

/// upstream's `mergePluginSet`: defaults not disabled (a custom entry with the same name takes
/// its place), then the remaining custom entries.
fn merge_set(defaults: &[PluginRef], custom: &PluginSet) -> Vec<PluginRef> {
    let disabled: HashSet<&str> = custom.disabled.iter().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();
    let mut used = HashSet::new();
    if !disabled.contains("*") {
        for d in defaults {
            if disabled.contains(d.name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    out.push(custom.enabled[i].clone());
                    used.insert(i);
                }
                None => out.push(d.clone()),
            }
        }
    }
    for (i, c) in custom.enabled.iter().enumerate() {
        if !used.contains(&i) {
            out.push(c.clone());
        }
    }
    out
}

/// Builds one profile's framework.
pub fn build_profile(profile: &Profile, handle: &Handle) -> Result<Framework, ConfigError> {
    let name = if profile.scheduler_name.is_empty() {
        DEFAULT_SCHEDULER_NAME
    } else {
        profile.scheduler_name.as_str()
    };
    let invalid = |msg: String| ConfigError::Invalid(format!("profile {name:?}: {msg}"));
    let defaults: Vec<PluginRef> = DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| PluginRef {
            name: n.to_string(),
            weight: (*w > 0).then_some(*w),
        })
        .collect();
    let multi = merge_set(&defaults, &profile.plugins.multi_point);
    let args: HashMap<&str, &serde_json::Value> = profile
        .plugin_config
        .iter()
        .map(|c| (c.name.as_str(), &c.args))
        .collect();

    let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
    let mut instance = |plugin: &str| -> Result<Arc<dyn Plugin>, ConfigError> {
        if let Some(p) = instances.get(plugin) {
            return Ok(p.clone());
        }
        let Some(factory) = registry::factory(plugin) else {
            if registry::NOT_IMPLEMENTED.contains(&plugin) {
                return Err(invalid(format!(
                    "plugin {plugin:?} is an upstream plugin rkube does not implement"
                )));
            }
            return Err(invalid(format!("plugin {plugin:?} not found in registry")));
        };
        let a = args.get(plugin).copied().cloned().unwrap_or_default();
        let p = factory(&a, handle).map_err(&invalid)?;
        instances.insert(plugin.to_string(), p.clone());
        Ok(p)
    };

    let mut fw = Framework::new(name);
    fw.percentage_of_nodes_to_score = profile.percentage_of_nodes_to_score;
    for point in ExtensionPoint::ALL {
        let set = profile.plugins.at(point);
        let disabled: HashSet<&str> = set.disabled.iter().map(|p| p.name.as_str()).collect();
        let explicit: HashSet<&str> = set.enabled.iter().map(|p| p.name.as_str()).collect();
        let mut order: Vec<(String, i64)> = Vec::new();
        // part 1: plugins of multiPoint also enabled explicitly here, in the explicit order
        let multi_names: HashSet<&str> = multi.iter().map(|p| p.name.as_str()).collect();
        for e in &set.enabled {
            if multi_names.contains(e.name.as_str()) {
                order.push((e.name.clone(), e.weight.unwrap_or(0) as i64));
            }
        }
        // part 2: multiPoint plugins that implement this point
        for m in &multi {
            if explicit.contains(m.name.as_str())
                || disabled.contains("*")
                || disabled.contains(m.name.as_str())
            {
                continue;
            }
            if registry::NOT_IMPLEMENTED.contains(&m.name.as_str())
                && registry::factory(&m.name).is_none()
            {
                return Err(invalid(format!(
                    "plugin {:?} is an upstream plugin rkube does not implement",
                    m.name
                )));
            }
            let p = instance(&m.name)?;
            if point.implemented_by(p.as_ref()) {
                order.push((m.name.clone(), m.weight.unwrap_or(0) as i64));
            }
        }
        // part 3: the other explicitly enabled plugins
        for e in &set.enabled {
            if !multi_names.contains(e.name.as_str()) {
                order.push((e.name.clone(), e.weight.unwrap_or(0) as i64));
            }
        }
        for (plugin, weight) in order {
            let p = instance(&plugin)?;
            let weight = if weight > 0 {
                weight
            } else {
                DEFAULT_PLUGINS
                    .iter()
                    .find(|(n, _)| *n == plugin)
                    .map(|(_, w)| (*w).max(1) as i64)
                    .unwrap_or(1)
            };
            fw.enable(point, p, weight).map_err(&invalid)?;
        }
    }
    for c in &profile.plugin_config {
        if !instances.contains_key(&c.name)
            && registry::factory(&c.name).is_none()
            && !registry::NOT_IMPLEMENTED.contains(&c.name.as_str())
        {
            return Err(invalid(format!(
                "pluginConfig: plugin {:?} not found in registry",
                c.name
            )));
        }
    }
    fw.validate().map_err(invalid)?;
    Ok(fw)
}
