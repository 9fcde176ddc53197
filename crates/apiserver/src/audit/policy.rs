//! The audit policy (`--audit-policy-file`, `audit.k8s.io/v1` `Policy`) and the rule
//! matching that decides how much of a request is recorded.
//!
//! Matching follows upstream's `policy/checker.go`: the first rule whose every field
//! matches wins; an empty field matches everything; no matching rule means level `None`.
//! Validation follows `apis/audit/validation`, with the same field paths and messages.

use std::path::{Path, PathBuf};

use rkube_api::selector::names::dns1123_subdomain_errors;
use rkube_api::{FieldError, FieldPath};
use serde::Deserialize;

use super::{Level, Stage};

const API_VERSION: &str = "audit.k8s.io/v1";
const KIND: &str = "Policy";

/// Why a policy did not load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("failed to read file path {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed decoding: {0}")]
    Decode(String),
    #[error("{}", render_field_errors(.0))]
    Invalid(Vec<FieldError>),
    #[error("loaded illegal policy with 0 rules")]
    NoRules,
}

/// One error as itself, several as upstream's aggregate: `[a, b]`.
fn render_field_errors(errs: &[FieldError]) -> String {
    let parts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// What the request path knows about a request when it asks the policy: upstream's
/// authorizer attributes, flattened. The caller fills every field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditAttributes {
    pub user: String,
    pub groups: Vec<String>,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, ...) for resource requests,
    /// the lower-cased HTTP method for others.
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    /// Empty for cluster-scoped resources.
    pub namespace: String,
    pub name: String,
    /// The URL path, used for non-resource requests.
    pub path: String,
}

/// A loaded, validated audit policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    rules: Vec<PolicyRule>,
    omit_stages: Vec<Stage>,
    omit_managed_fields: bool,
}

/// One rule; requests must match every non-empty field.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    /// The rule's own stages joined with the policy's, as upstream's checker does.
    pub omit_stages: Vec<Stage>,
    /// `None` defers to the policy-wide setting.
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResources {
    /// Empty for the core group.
    pub group: String,
    /// `pods`, `pods/log`, `pods/*`, `*/status`, `*`; empty means all.
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
}

// The file as written. Unknown fields are ignored, as upstream's (non-strict) decoder does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPolicy {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    level: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<RawGroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Vec<String>,
    omit_managed_fields: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

impl Policy {
    /// Reads and validates a policy file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let data = std::fs::read(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&data)
    }

    /// Parses and validates a policy document.
    pub fn from_bytes(data: &[u8]) -> Result<Self, PolicyError> {
        let raw: RawPolicy =
            serde_yaml_ng::from_slice(data).map_err(|e| PolicyError::Decode(e.to_string()))?;
        let api_version = raw.api_version.as_deref().unwrap_or("");
        let kind = raw.kind.as_deref().unwrap_or("");
        if kind.is_empty() {
            return Err(PolicyError::Decode(
                "Object 'Kind' is missing in the audit policy".to_string(),
            ));
        }
        if api_version != API_VERSION || kind != KIND {
            return Err(PolicyError::Decode(format!(
                "no kind {kind:?} is registered for version {api_version:?}: expected \
                 apiVersion {API_VERSION:?} and kind {KIND:?}"
            )));
        }

        let mut errs = Vec::new();
        let omit_stages = parse_stages(&raw.omit_stages, &FieldPath::new("omitStages"), &mut errs);
        let rules_path = FieldPath::new("rules");
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            if let Some(rule) = validate_rule(rule, &rules_path.index(i), &omit_stages, &mut errs) {
                rules.push(rule);
            }
        }
        if !errs.is_empty() {
            return Err(PolicyError::Invalid(errs));
        }
        if rules.is_empty() {
            return Err(PolicyError::NoRules);
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: raw.omit_managed_fields,
        })
    }

    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// The level for a request, the stages not to record, and whether to strip
    /// `managedFields` from recorded objects. The first matching rule decides; with none
    /// the level is `None` and the policy-wide settings apply.
    pub fn evaluate(&self, attrs: &AuditAttributes) -> (Level, Vec<Stage>, bool) {
        match self.rules.iter().find(|r| r.matches(attrs)) {
            Some(rule) => (
                rule.level,
                rule.omit_stages.clone(),
                rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            ),
            None => (
                Level::None,
                self.omit_stages.clone(),
                self.omit_managed_fields,
            ),
        }
    }
}

impl PolicyRule {
    /// Upstream's `ruleMatches`.
    pub fn matches(&self, attrs: &AuditAttributes) -> bool {
        if !self.users.is_empty() && !self.users.contains(&attrs.user) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(&attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, attrs: &AuditAttributes) -> bool {
        if !attrs.resource_request {
            return false;
        }
        // Cluster-scoped resources have the empty namespace, which a rule can name.
        if !self.namespaces.is_empty() && !self.namespaces.contains(&attrs.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        self.resources
            .iter()
            .filter(|gr| gr.group == attrs.api_group)
            .any(|gr| gr.matches(attrs))
    }
}

impl GroupResources {
    fn matches(&self, attrs: &AuditAttributes) -> bool {
        if self.resources.is_empty() {
            return true;
        }
        if !self.resource_names.is_empty() && !self.resource_names.contains(&attrs.name) {
            return false;
        }
        let resource = attrs.resource.as_str();
        let subresource = attrs.subresource.as_str();
        self.resources.iter().any(|res| {
            if res == "*" {
                return true;
            }
            // A subresource request matches only "resource/subresource" forms.
            let combined_matches = if subresource.is_empty() {
                res == resource
            } else {
                res.split_once('/') == Some((resource, subresource))
            };
            combined_matches
                || (!subresource.is_empty() && res.strip_prefix("*/") == Some(subresource))
                || res.strip_suffix("/*") == Some(resource)
        })
    }
}

/// `*` matches every path, `/foo*` every path starting `/foo`, anything else exactly.
fn path_matches(path: &str, spec: &str) -> bool {
    if spec == "*" || spec == path {
        return true;
    }
    spec.strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

const LEVELS: &[&str] = &["None", "Metadata", "Request", "RequestResponse"];
const STAGES: &[&str] = &[
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

fn validate_rule(
    raw: RawRule,
    path: &FieldPath,
    policy_omit: &[Stage],
    errs: &mut Vec<FieldError>,
) -> Option<PolicyRule> {
    let before = errs.len();
    let level_path = path.child("level");
    let level = match raw.level.as_str() {
        "" => {
            errs.push(FieldError::required(&level_path, ""));
            None
        }
        s => {
            let level = Level::parse(s);
            if level.is_none() {
                errs.push(FieldError::not_supported(&level_path, s, LEVELS));
            }
            level
        }
    };

    let urls_path = path.child("nonResourceURLs");
    for (i, url) in raw.non_resource_urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errs.push(FieldError::invalid(
                &urls_path.index(i),
                url.as_str(),
                "non-resource URL rules must begin with a '/' character",
            ));
        }
        if url.len() > 1 && url[..url.len() - 1].contains('*') {
            errs.push(FieldError::invalid(
                &urls_path.index(i),
                url.as_str(),
                "non-resource URL wildcards '*' must be the final character of the rule",
            ));
        }
    }

    let resources_path = path.child("resources");
    for gr in &raw.resources {
        if !gr.group.is_empty() {
            let msgs = dns1123_subdomain_errors(&gr.group);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &resources_path.child("group"),
                    gr.group.as_str(),
                    &msgs.join(","),
                ));
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(FieldError::invalid(
                &resources_path.child("resourceNames"),
                serde_json::json!(gr.resource_names),
                "using resourceNames requires at least one resource",
            ));
        }
    }

    let mut omit_stages = parse_stages(&raw.omit_stages, &path.child("omitStages"), errs);

    if !raw.non_resource_urls.is_empty()
        && (!raw.resources.is_empty() || !raw.namespaces.is_empty())
    {
        errs.push(FieldError::invalid(
            &urls_path,
            serde_json::json!(raw.non_resource_urls),
            "rules cannot apply to both regular resources and non-resource URLs",
        ));
    }

    if errs.len() != before {
        return None;
    }
    omit_stages.extend_from_slice(policy_omit);
    omit_stages.sort();
    omit_stages.dedup();
    Some(PolicyRule {
        level: level?,
        users: raw.users,
        user_groups: raw.user_groups,
        verbs: raw.verbs,
        resources: raw
            .resources
            .into_iter()
            .map(|gr| GroupResources {
                group: gr.group,
                resources: gr.resources,
                resource_names: gr.resource_names,
            })
            .collect(),
        namespaces: raw.namespaces,
        non_resource_urls: raw.non_resource_urls,
        omit_stages,
        omit_managed_fields: raw.omit_managed_fields,
    })
}

fn parse_stages(raw: &[String], path: &FieldPath, errs: &mut Vec<FieldError>) -> Vec<Stage> {
    let mut stages = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        match Stage::parse(s) {
            Some(stage) => stages.push(stage),
            None => errs.push(FieldError::invalid(
                &path.index(i),
                s.as_str(),
                &format!("allowed stages are {}", STAGES.join(",")),
            )),
        }
    }
    stages.sort();
    stages.dedup();
    stages
}
