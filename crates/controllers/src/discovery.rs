//! API discovery shared by the controllers that act on every resource type (the garbage
//! collector and the namespace controller): upstream's `ServerPreferredResources`, one
//! version per group (the group's preferred one), with each resource's scope and verbs.
//!
//! As upstream's discovery client, a group version that fails to answer does not fail the
//! whole discovery: its resources are missing and the failure is reported beside the
//! result ([`Discovered::failed`], rendered as upstream's `ErrGroupDiscoveryFailed`), so
//! callers can act on what was found and say what was not.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::discovery::ApiResource;
use kube::Client;

/// One resource the server serves, at its group's preferred version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Group, version, kind and plural, for `Api::<DynamicObject>::*_with`.
    pub api: ApiResource,
    /// Namespaced (else cluster-scoped).
    pub namespaced: bool,
    /// The verbs discovery lists for it.
    pub verbs: Vec<String>,
}

impl Resource {
    /// Whether the resource supports every verb in `verbs` (upstream's `SupportsAllVerbs`).
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs
            .iter()
            .all(|v| self.verbs.iter().any(|have| have == v))
    }

    /// `resource.group`, the form upstream prints a `GroupResource` in (`configmaps.` for
    /// the core group).
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.api.plural, self.api.group)
    }
}

/// What discovery found, and which group versions failed to answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    pub resources: Vec<Resource>,
    /// Group version (`metrics.k8s.io/v1beta1`) to the error it answered with.
    pub failed: BTreeMap<String, String>,
}

impl Discovered {
    /// The resources that support all of `verbs`.
    pub fn supporting<'a>(&'a self, verbs: &'a [&'a str]) -> impl Iterator<Item = &'a Resource> {
        self.resources.iter().filter(move |r| r.supports(verbs))
    }

    /// The resource serving `kind` in the group of `api_version` (any version of the group
    /// serves the same objects, so the preferred one is used), as upstream's REST mapper.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&Resource> {
        let group = match api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        };
        self.resources
            .iter()
            .find(|r| r.api.group == group && r.api.kind == kind)
    }

    /// Upstream's `ErrGroupDiscoveryFailed` text, if any group version failed.
    pub fn failure_message(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let groups: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, err)| format!("{gv}: {err}"))
            .collect();
        Some(format!(
            "unable to retrieve the complete list of server APIs: {}",
            groups.join(", ")
        ))
    }
}

/// The resources (not subresources) of one `APIResourceList`.
pub fn parse_resource_list(list: &APIResourceList) -> Vec<Resource> {
    let (group, version) = match list.group_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), list.group_version.clone()),
    };
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| Resource {
            api: ApiResource {
                group: r.group.clone().unwrap_or_else(|| group.clone()),
                version: r.version.clone().unwrap_or_else(|| version.clone()),
                api_version: list.group_version.clone(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            },
            namespaced: r.namespaced,
            verbs: r.verbs.clone(),
        })
        .collect()
}

/// Upstream's `ServerPreferredResources`: every resource at its group's preferred version.
/// Fails only when the group lists themselves (`/api`, `/apis`) cannot be read.
pub async fn preferred_resources(client: &Client) -> Result<Discovered, kube::Error> {
    let mut out = Discovered::default();
    let core = client.list_core_api_versions().await?;
    let groups = client.list_api_groups().await?;
    let mut versions: Vec<String> = core.versions.into_iter().take(1).collect();
    for g in groups.groups {
        let preferred = g
            .preferred_version
            .map(|p| p.group_version)
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
        versions.extend(preferred);
    }
    for gv in versions {
        let list = if gv.contains('/') {
            client.list_api_group_resources(&gv).await
        } else {
            client.list_core_api_resources(&gv).await
        };
        match list {
            Ok(list) => out.resources.extend(parse_resource_list(&list)),
            Err(e) => {
                out.failed.insert(gv, e.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn res(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn resource_lists_skip_subresources_and_keep_scope_and_verbs() {
        let core = APIResourceList {
            group_version: "v1".into(),
            resources: vec![
                res("pods", "Pod", true, &["list", "watch", "delete"]),
                res("pods/status", "Pod", true, &["get", "patch"]),
                res("nodes", "Node", false, &["get", "list"]),
            ],
        };
        let apps = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![res("deployments", "Deployment", true, &["list"])],
        };
        let d = Discovered {
            resources: [parse_resource_list(&core), parse_resource_list(&apps)].concat(),
            failed: BTreeMap::new(),
        };
        let names: Vec<String> = d.resources.iter().map(|r| r.group_resource()).collect();
        assert_eq!(names, ["pods.", "nodes.", "deployments.apps"]);
        let pods = &d.resources[0];
        assert!(pods.namespaced && pods.supports(&["list", "delete"]));
        assert!(!d.resources[1].namespaced && !d.resources[1].supports(&["delete"]));
        assert_eq!(d.supporting(&["watch"]).count(), 1);
        assert_eq!(
            d.for_kind("apps/v1beta2", "Deployment")
                .map(|r| &r.api.version),
            Some(&"v1".to_string()),
            "any version of the group resolves"
        );
        assert!(d.for_kind("v1", "Deployment").is_none());
        assert_eq!(d.failure_message(), None);
    }

    #[test]
    fn failed_groups_read_like_upstreams_error() {
        let d = Discovered {
            resources: vec![],
            failed: BTreeMap::from([
                ("metrics.k8s.io/v1beta1".into(), "unavailable".into()),
                ("a.io/v1".into(), "boom".into()),
            ]),
        };
        assert_eq!(
            d.failure_message().as_deref(),
            Some("unable to retrieve the complete list of server APIs: a.io/v1: boom, metrics.k8s.io/v1beta1: unavailable")
        );
    }
}
