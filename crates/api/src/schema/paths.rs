//! The REST operations of the served resources, in a form both OpenAPI documents render:
//! one [`PathItem`] per URL template with its operations, named and parameterised as
//! kube-apiserver names them (`listCoreV1NamespacedPod`, `patchAppsV1NamespacedDeploymentScale`).
//!
//! Clients read two things from these operations: `kubectl explain` takes the kind from the
//! `x-kubernetes-group-version-kind` of any get/post/put/patch/delete operation on the
//! resource's paths, and kubectl's `QueryParamVerifierV3` looks for a `fieldValidation`
//! parameter among the operation-level parameters of the first PATCH operation whose
//! `x-kubernetes-group-version-kind` is the object's kind. So every PATCH operation here
//! carries the kind and, at operation level, `fieldValidation`.

use std::borrow::Cow;

use super::definitions::{definitions, DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT};
use super::params::{
    Param, ATTACH_PARAMS, DELETE_COLLECTION_PARAMS, DELETE_PARAMS, EXEC_PARAMS, LIST_PARAMS,
    LOG_PARAMS, NAME, NAMESPACE, PATCH_PARAMS, PORTFORWARD_PARAMS, PRETTY, PROXY_PARAMS,
    PROXY_PATH, WRITE_PARAMS,
};
use crate::catalogue::{self, ResourceInfo, Subresource};

/// `x-kubernetes-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    List,
    Watch,
    WatchList,
    Post,
    Put,
    Patch,
    Delete,
    DeleteCollection,
    Connect,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::List => "list",
            Action::Watch => "watch",
            Action::WatchList => "watchlist",
            Action::Post => "post",
            Action::Put => "put",
            Action::Patch => "patch",
            Action::Delete => "delete",
            Action::DeleteCollection => "deletecollection",
            Action::Connect => "connect",
        }
    }
}

/// The request body an operation takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A required object of this definition.
    Object(String),
    /// A patch document in one of the four patch content types.
    Patch,
    /// Optional DeleteOptions.
    DeleteOptions,
}

/// What an operation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// An object of this definition.
    Object(String),
    /// A list of this definition, also streamable as a watch.
    List(String),
    /// A stream of watch events.
    Watch,
    /// Free text (exec, attach, port-forward, proxy).
    Text,
    /// A container log.
    Log,
}

/// A group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: Option<Action>,
    pub gvk: Option<Gvk>,
    pub params: &'static [Param],
    pub body: Option<Body>,
    pub response: Response,
    /// Success codes besides 200 (`201`, `202`).
    pub also: &'static [(&'static str, &'static str)],
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub ops: Vec<Operation>,
}

const CREATED: &[(&str, &str)] = &[("201", "Created")];
const CREATED_ACCEPTED: &[(&str, &str)] = &[("201", "Created"), ("202", "Accepted")];
const ACCEPTED: &[(&str, &str)] = &[("202", "Accepted")];

/// `Core` for the core group, `RbacAuthorization` for `rbac.authorization.k8s.io`.
pub fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The tag of a group (`core`, `apps`, `rbacAuthorization`).
pub fn group_tag(group: &str) -> String {
    lower_first(&group_camel(group))
}

/// The tag of a group-version (`core_v1`, `rbacAuthorization_v1`).
pub fn group_version_tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_tag(group))
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn group_version_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Gvk {
    Gvk {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
    }
}

/// Deleting these returns the object (they delete gracefully or carry finalizers the
/// caller wants to see); the rest return a Status.
fn delete_returns_object(r: &ResourceInfo) -> bool {
    r.group.is_empty()
        && matches!(
            r.kind,
            "Pod" | "Service" | "PersistentVolume" | "PersistentVolumeClaim"
        )
}

/// The discovery paths of a v3 document key: `/api/`, `/apis/`, `/apis/<group>/`.
pub fn discovery_path(key: &str) -> Option<PathItem> {
    let defs = definitions();
    let object = |kind: &str| defs.definition_name("", "v1", kind).map(str::to_string);
    let (path, id, description, kind, tag) = match key {
        "api" => (
            "/api/".to_string(),
            "getCoreAPIVersions".to_string(),
            "get available API versions",
            "APIVersions",
            "core".to_string(),
        ),
        "apis" => (
            "/apis/".to_string(),
            "getAPIVersions".to_string(),
            "get available API versions",
            "APIGroupList",
            "apis".to_string(),
        ),
        _ => {
            let group = key.strip_prefix("apis/")?;
            if !catalogue::groups().iter().any(|g| g.name == group) {
                return None;
            }
            (
                format!("/apis/{group}/"),
                format!("get{}APIGroup", group_camel(group)),
                "get information of a group",
                "APIGroup",
                group_tag(group),
            )
        }
    };
    Some(PathItem {
        path,
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id,
            description: description.to_string(),
            action: None,
            gvk: None,
            params: &[],
            body: None,
            response: Response::Object(object(kind)?),
            also: &[],
            tag,
        }],
    })
}

/// Every path of one served group-version, sorted by URL, including its discovery path
/// (`/api/v1/`). Empty if the group-version is not served.
pub fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let resources: Vec<&ResourceInfo> = catalogue::resources_in(group, version).collect();
    if resources.is_empty() {
        return Vec::new();
    }
    let prefix = group_version_prefix(group, version);
    let mut items = Vec::new();
    if let Some(list) = definitions().definition_name("", "v1", "APIResourceList") {
        items.push(PathItem {
            path: format!("{prefix}/"),
            params: Vec::new(),
            ops: vec![Operation {
                method: "get",
                id: format!(
                    "get{}{}APIResources",
                    group_camel(group),
                    capitalize(version)
                ),
                description: "get available resources".to_string(),
                action: None,
                gvk: None,
                params: &[],
                body: None,
                response: Response::Object(list.to_string()),
                also: &[],
                tag: group_version_tag(group, version),
            }],
        });
    }
    for r in resources {
        resource_paths(r, &prefix, &mut items);
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

struct Names {
    /// `CoreV1`, `AppsV1`.
    gv: String,
    /// `Namespaced` or empty.
    ns: &'static str,
    tag: String,
}

fn resource_paths(r: &ResourceInfo, prefix: &str, items: &mut Vec<PathItem>) {
    let defs = definitions();
    let Some(object) = defs.definition_name(r.group, r.version, r.kind) else {
        return;
    };
    let object = object.to_string();
    let list = defs
        .definition_name(r.group, r.version, &format!("{}List", r.kind))
        .map(str::to_string);
    let names = Names {
        gv: format!("{}{}", group_camel(r.group), capitalize(r.version)),
        ns: if r.namespaced { "Namespaced" } else { "" },
        tag: group_version_tag(r.group, r.version),
    };
    let kind_gvk = gvk(r.group, r.version, r.kind);
    let op = |method: &'static str, verb: &str, description: String, action: Action| Operation {
        method,
        id: format!("{verb}{}{}{}", names.gv, names.ns, r.kind),
        description,
        action: Some(action),
        gvk: Some(kind_gvk.clone()),
        params: &[],
        body: None,
        response: Response::Object(object.clone()),
        also: &[],
        tag: names.tag.clone(),
    };

    let (collection, mut scope_params) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            vec![NAMESPACE],
        )
    } else {
        (format!("{prefix}/{}", r.plural), Vec::new())
    };
    scope_params.push(PRETTY);

    // The collection.
    let mut ops = Vec::new();
    if let (true, Some(list)) = (r.has_verb("list"), &list) {
        ops.push(Operation {
            params: LIST_PARAMS,
            response: Response::List(list.clone()),
            ..op(
                "get",
                "list",
                format!("list or watch objects of kind {}", r.kind),
                Action::List,
            )
        });
    }
    if r.has_verb("create") {
        ops.push(Operation {
            params: WRITE_PARAMS,
            body: Some(Body::Object(object.clone())),
            also: CREATED_ACCEPTED,
            ..op(
                "post",
                "create",
                format!("create a {}", r.kind),
                Action::Post,
            )
        });
    }
    if r.has_verb("deletecollection") {
        ops.push(Operation {
            id: format!("delete{}Collection{}{}", names.gv, names.ns, r.kind),
            params: DELETE_COLLECTION_PARAMS,
            body: Some(Body::DeleteOptions),
            response: Response::Object(STATUS.to_string()),
            ..op(
                "delete",
                "delete",
                format!("delete collection of {}", r.kind),
                Action::DeleteCollection,
            )
        });
    }
    push_item(items, &collection, &scope_params, ops);

    // The object.
    let item = format!("{collection}/{{name}}");
    let mut item_params = vec![with_description(NAME, r.kind)];
    item_params.extend(scope_params.iter().cloned());
    let mut ops = Vec::new();
    if r.has_verb("get") {
        ops.push(op(
            "get",
            "read",
            format!("read the specified {}", r.kind),
            Action::Get,
        ));
    }
    if r.has_verb("update") {
        ops.push(Operation {
            params: WRITE_PARAMS,
            body: Some(Body::Object(object.clone())),
            also: CREATED,
            ..op(
                "put",
                "replace",
                format!("replace the specified {}", r.kind),
                Action::Put,
            )
        });
    }
    if r.has_verb("patch") {
        ops.push(Operation {
            params: PATCH_PARAMS,
            body: Some(Body::Patch),
            also: CREATED,
            ..op(
                "patch",
                "patch",
                format!("partially update the specified {}", r.kind),
                Action::Patch,
            )
        });
    }
    if r.has_verb("delete") {
        let response = if delete_returns_object(r) {
            Response::Object(object.clone())
        } else {
            Response::Object(STATUS.to_string())
        };
        ops.push(Operation {
            params: DELETE_PARAMS,
            body: Some(Body::DeleteOptions),
            response,
            also: ACCEPTED,
            ..op(
                "delete",
                "delete",
                format!("delete a {}", r.kind),
                Action::Delete,
            )
        });
    }
    push_item(items, &item, &item_params, ops);

    // Listing across namespaces.
    if r.namespaced && r.has_verb("list") {
        if let Some(list) = &list {
            let ops = vec![Operation {
                id: format!("list{}{}ForAllNamespaces", names.gv, r.kind),
                params: LIST_PARAMS,
                response: Response::List(list.clone()),
                ..op(
                    "get",
                    "list",
                    format!("list or watch objects of kind {}", r.kind),
                    Action::List,
                )
            }];
            push_item(items, &format!("{prefix}/{}", r.plural), &[PRETTY], ops);
        }
    }

    // The deprecated watch paths, still used by older clients.
    if r.has_verb("watch") {
        let watch_op = |id: String, description: String, action: Action| Operation {
            id,
            params: LIST_PARAMS,
            response: Response::Watch,
            ..op("get", "watch", description, action)
        };
        let watch_prefix = format!("{prefix}/watch");
        let watch_collection = collection.replacen(prefix, &watch_prefix, 1);
        push_item(
            items,
            &watch_collection,
            &scope_params,
            vec![watch_op(
                format!("watch{}{}{}List", names.gv, names.ns, r.kind),
                format!("watch individual changes to a list of {}. deprecated: use the 'watch' parameter with a list operation instead.", r.kind),
                Action::WatchList,
            )],
        );
        push_item(
            items,
            &format!("{watch_collection}/{{name}}"),
            &item_params,
            vec![watch_op(
                format!("watch{}{}{}", names.gv, names.ns, r.kind),
                format!("watch changes to an object of kind {}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.", r.kind),
                Action::Watch,
            )],
        );
        if r.namespaced {
            push_item(
                items,
                &format!("{watch_prefix}/{}", r.plural),
                &[PRETTY],
                vec![watch_op(
                    format!("watch{}{}ListForAllNamespaces", names.gv, r.kind),
                    format!("watch individual changes to a list of {}. deprecated: use the 'watch' parameter with a list operation instead.", r.kind),
                    Action::WatchList,
                )],
            );
        }
    }

    for s in r.subresources {
        subresource_paths(r, s, &names, &item, &item_params, items);
    }
}

fn with_description(mut param: Param, kind: &str) -> Param {
    param.description = Cow::Owned(format!("name of the {kind}"));
    param
}

fn push_item(items: &mut Vec<PathItem>, path: &str, params: &[Param], ops: Vec<Operation>) {
    if ops.is_empty() {
        return;
    }
    items.push(PathItem {
        path: path.to_string(),
        params: params.to_vec(),
        ops,
    });
}

fn method_of(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "get" => "get",
        "create" => "post",
        "update" => "put",
        "patch" => "patch",
        "delete" => "delete",
        _ => return None,
    })
}

fn subresource_paths(
    r: &ResourceInfo,
    s: &Subresource,
    names: &Names,
    item: &str,
    item_params: &[Param],
    items: &mut Vec<PathItem>,
) {
    let defs = definitions();
    let (group, version) = if s.group.is_empty() && s.version.is_empty() {
        (r.group, r.version)
    } else {
        (s.group, s.version)
    };
    let sub_gvk = gvk(group, version, s.kind);
    let suffix = capitalize(s.name);
    let path = format!("{item}/{}", s.name);
    let base = |method: &'static str, id: String, description: String, action: Action| Operation {
        method,
        id,
        description,
        action: Some(action),
        gvk: Some(sub_gvk.clone()),
        params: &[],
        body: None,
        response: Response::Text,
        also: &[],
        tag: names.tag.clone(),
    };

    let connect_params: Option<&'static [Param]> = match s.name {
        "exec" => Some(EXEC_PARAMS),
        "attach" => Some(ATTACH_PARAMS),
        "portforward" => Some(PORTFORWARD_PARAMS),
        "proxy" => Some(PROXY_PARAMS),
        _ => None,
    };
    if let Some(params) = connect_params {
        let connect_ops = |with_path: bool| -> Vec<Operation> {
            s.verbs
                .iter()
                .filter_map(|v| method_of(v))
                .map(|method| {
                    let id = format!(
                        "connect{}{}{}{}{}{}",
                        names.gv,
                        capitalize(method),
                        names.ns,
                        r.kind,
                        suffix,
                        if with_path { "WithPath" } else { "" }
                    );
                    let description = format!(
                        "connect {} requests to {} of {}",
                        method.to_uppercase(),
                        s.name,
                        r.kind
                    );
                    Operation {
                        params: if with_path { &[] } else { params },
                        ..base(method, id, description, Action::Connect)
                    }
                })
                .collect()
        };
        push_item(items, &path, item_params, connect_ops(false));
        if s.name == "proxy" {
            let mut params = vec![PROXY_PATH];
            params.extend(item_params.iter().cloned());
            push_item(
                items,
                &format!("{path}/{{path}}"),
                &params,
                connect_ops(true),
            );
        }
        return;
    }

    if s.name == "log" {
        let op = Operation {
            params: LOG_PARAMS,
            response: Response::Log,
            ..base(
                "get",
                format!("read{}{}{}{}", names.gv, names.ns, r.kind, suffix),
                format!("read log of the specified {}", r.kind),
                Action::Get,
            )
        };
        push_item(items, &path, item_params, vec![op]);
        return;
    }

    let Some(object) = defs.definition_name(group, version, s.kind) else {
        return;
    };
    let object = object.to_string();
    let mut ops = Vec::new();
    for verb in s.verbs {
        let Some(method) = method_of(verb) else {
            continue;
        };
        let (id_verb, what, action) = match method {
            "get" => ("read", "read", Action::Get),
            "post" => ("create", "create", Action::Post),
            "put" => ("replace", "replace", Action::Put),
            "patch" => ("patch", "partially update", Action::Patch),
            _ => continue,
        };
        let (params, body, also) = match action {
            Action::Post => (
                WRITE_PARAMS,
                Some(Body::Object(object.clone())),
                CREATED_ACCEPTED,
            ),
            Action::Put => (WRITE_PARAMS, Some(Body::Object(object.clone())), CREATED),
            Action::Patch => (PATCH_PARAMS, Some(Body::Patch), CREATED),
            _ => (&[][..], None, &[][..]),
        };
        let description = match action {
            Action::Post => format!("create {} of a {}", s.name, r.kind),
            _ => format!("{what} {} of the specified {}", s.name, r.kind),
        };
        ops.push(Operation {
            params,
            body,
            also,
            response: Response::Object(object.clone()),
            ..base(
                method,
                format!("{id_verb}{}{}{}{}", names.gv, names.ns, r.kind, suffix),
                description,
                action,
            )
        });
    }
    push_item(items, &path, item_params, ops);
}

/// The definitions an operation's bodies and responses name.
pub fn referenced_definitions(item: &PathItem) -> Vec<String> {
    let mut out = Vec::new();
    for op in &item.ops {
        match &op.body {
            Some(Body::Object(d)) => out.push(d.clone()),
            Some(Body::Patch) => out.push(PATCH.to_string()),
            Some(Body::DeleteOptions) => out.push(DELETE_OPTIONS.to_string()),
            None => {}
        }
        match &op.response {
            Response::Object(d) | Response::List(d) => out.push(d.clone()),
            Response::Watch => out.push(WATCH_EVENT.to_string()),
            Response::Text | Response::Log => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(items: &'a [PathItem], path: &str) -> Option<&'a PathItem> {
        items.iter().find(|i| i.path == path)
    }

    fn op_ids(items: &[PathItem]) -> Vec<&str> {
        items
            .iter()
            .flat_map(|i| i.ops.iter().map(|o| o.id.as_str()))
            .collect()
    }

    #[test]
    fn group_names_follow_upstream_operation_ids() {
        let cases = [
            ("", "Core", "core_v1"),
            ("apps", "Apps", "apps_v1"),
            (
                "rbac.authorization.k8s.io",
                "RbacAuthorization",
                "rbacAuthorization_v1",
            ),
            ("networking.k8s.io", "Networking", "networking_v1"),
            ("apiextensions.k8s.io", "Apiextensions", "apiextensions_v1"),
        ];
        for (group, camel, tag) in cases {
            assert_eq!(group_camel(group), camel);
            assert_eq!(group_version_tag(group, "v1"), tag);
        }
    }

    #[test]
    fn pods_have_upstream_operation_ids() {
        let items = group_version_paths("", "v1");
        let ids = op_ids(&items);
        for want in [
            "listCoreV1NamespacedPod",
            "createCoreV1NamespacedPod",
            "deleteCoreV1CollectionNamespacedPod",
            "readCoreV1NamespacedPod",
            "replaceCoreV1NamespacedPod",
            "patchCoreV1NamespacedPod",
            "deleteCoreV1NamespacedPod",
            "listCoreV1PodForAllNamespaces",
            "watchCoreV1NamespacedPodList",
            "watchCoreV1NamespacedPod",
            "watchCoreV1PodListForAllNamespaces",
            "patchCoreV1NamespacedPodStatus",
            "createCoreV1NamespacedPodBinding",
            "createCoreV1NamespacedPodEviction",
            "readCoreV1NamespacedPodLog",
            "connectCoreV1GetNamespacedPodExec",
            "connectCoreV1PostNamespacedPodExec",
            "connectCoreV1GetNamespacedPodProxyWithPath",
            "listCoreV1Node",
            "watchCoreV1NodeList",
            "replaceCoreV1NamespaceFinalize",
            "createCoreV1NamespacedServiceAccountToken",
            "getCoreV1APIResources",
        ] {
            assert!(ids.contains(&want), "{want} missing");
        }
        // Namespaces are not deleted as a collection.
        assert!(!ids.contains(&"deleteCoreV1CollectionNamespace"));
    }

    #[test]
    fn scale_operations_carry_the_scale_kind() {
        let items = group_version_paths("apps", "v1");
        let scale = find(
            &items,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        );
        let patch = scale.and_then(|i| i.ops.iter().find(|o| o.method == "patch"));
        assert_eq!(
            patch.map(|o| (o.id.as_str(), o.gvk.clone())),
            Some((
                "patchAppsV1NamespacedDeploymentScale",
                Some(gvk("autoscaling", "v1", "Scale"))
            ))
        );
    }

    #[test]
    fn every_patch_operation_takes_field_validation() {
        for (group, version) in super::super::definitions::served_group_versions() {
            for item in group_version_paths(group, version) {
                for op in item
                    .ops
                    .iter()
                    .filter(|o| o.method == "patch" && o.action == Some(Action::Patch))
                {
                    assert!(
                        op.params.iter().any(|p| p.name == "fieldValidation"),
                        "{} lacks fieldValidation",
                        op.id
                    );
                    assert!(op.gvk.is_some(), "{} lacks its kind", op.id);
                }
            }
        }
    }

    #[test]
    fn unserved_group_versions_have_no_paths() {
        assert!(group_version_paths("apps", "v1beta1").is_empty());
        assert!(discovery_path("apis/nosuch.k8s.io").is_none());
        assert_eq!(
            discovery_path("apis/apps").map(|i| i.ops[0].id.clone()),
            Some("getAppsAPIGroup".to_string())
        );
    }
}
