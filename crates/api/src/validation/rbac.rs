//! RBAC kinds: roles and cluster roles (rules need verbs, and resources or URLs) and
//! their bindings (the role reference is fixed once created).

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::meta::{json, validate_label_selector};
use super::names::{name_is_dns_subdomain, name_is_path_segment};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

fn policy_rules(rules: &[PolicyRule], namespaced: bool, path: &FieldPath, errs: &mut ErrorList) {
    for (i, r) in rules.iter().enumerate() {
        let p = path.index(i);
        if r.verbs.is_empty() {
            errs.push(FieldError::required(
                &p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = r.non_resource_urls.as_deref().unwrap_or_default();
        let groups = r.api_groups.as_deref().unwrap_or_default();
        let resources = r.resources.as_deref().unwrap_or_default();
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    json(&urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !groups.is_empty()
                || !resources.is_empty()
                || r.resource_names.as_ref().is_some_and(|n| !n.is_empty())
            {
                errs.push(FieldError::invalid(
                    &p.child("nonResourceURLs"),
                    json(&urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if groups.is_empty() {
            errs.push(FieldError::required(
                &p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if resources.is_empty() {
            errs.push(FieldError::required(
                &p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

pub(crate) fn role_rules() -> Rules<Role> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |r, _| {
            let mut errs = ErrorList::new();
            policy_rules(
                r.rules.as_deref().unwrap_or_default(),
                true,
                &FieldPath::new("rules"),
                &mut errs,
            );
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn cluster_role_rules() -> Rules<ClusterRole> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |r, _| {
            let mut errs = ErrorList::new();
            policy_rules(
                r.rules.as_deref().unwrap_or_default(),
                false,
                &FieldPath::new("rules"),
                &mut errs,
            );
            if let Some(a) = &r.aggregation_rule {
                let ap = FieldPath::new("aggregationRule").child("clusterRoleSelectors");
                let sels = a.cluster_role_selectors.as_deref().unwrap_or_default();
                if sels.is_empty() {
                    errs.push(FieldError::required(
                        &ap,
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    ));
                }
                for (i, s) in sels.iter().enumerate() {
                    errs.extend(validate_label_selector(Some(s), &ap.index(i)));
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn binding_rules(role_ref: &RoleRef, subjects: &[Subject], namespaced: bool, errs: &mut ErrorList) {
    let rp = FieldPath::new("roleRef");
    if role_ref.api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            &rp.child("apiGroup"),
            role_ref.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            &rp.child("kind"),
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        for m in name_is_path_segment(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                &rp.child("name"),
                role_ref.name.as_str(),
                &m,
            ));
        }
    }
    for (i, s) in subjects.iter().enumerate() {
        let p = FieldPath::new("subjects").index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        let group = s.api_group.as_deref().unwrap_or_default();
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    for m in name_is_dns_subdomain(&s.name, false) {
                        errs.push(FieldError::invalid(&p.child("name"), s.name.as_str(), &m));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(&p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                // Defaulting fills the group for users and groups.
                if s.api_group.is_some() && group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn role_ref_changed(n: &RoleRef, o: &RoleRef, errs: &mut ErrorList) {
    if n != o {
        errs.push(FieldError::invalid(
            &FieldPath::new("roleRef"),
            json(n),
            "cannot change roleRef",
        ));
    }
}

pub(crate) fn role_binding_rules() -> Rules<RoleBinding> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |b, _| {
            let mut errs = ErrorList::new();
            binding_rules(
                &b.role_ref,
                b.subjects.as_deref().unwrap_or_default(),
                true,
                &mut errs,
            );
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            role_ref_changed(&n.role_ref, &o.role_ref, &mut errs);
            errs
        },
        status: no_update,
    }
}

pub(crate) fn cluster_role_binding_rules() -> Rules<ClusterRoleBinding> {
    Rules {
        meta: MetaRule::Standard(name_is_path_segment),
        create: |b, _| {
            let mut errs = ErrorList::new();
            binding_rules(
                &b.role_ref,
                b.subjects.as_deref().unwrap_or_default(),
                false,
                &mut errs,
            );
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            role_ref_changed(&n.role_ref, &o.role_ref, &mut errs);
            errs
        },
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn obj(group: &str, version: &str, kind: &str, ns: bool, body: Value) -> Value {
        let mut o = json!({"apiVersion": format!("{group}/{version}"), "kind": kind, "metadata": {"name": "x", "resourceVersion": "1"}});
        if ns {
            o["metadata"]["namespace"] = json!("d");
        }
        for (k, v) in body.as_object().into_iter().flatten() {
            if k == "metadata" {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    o["metadata"][mk] = mv.clone();
                }
            } else {
                o[k] = v.clone();
            }
        }
        o
    }

    #[test]
    fn rbac_rules() {
        let g = "rbac.authorization.k8s.io";
        let role = |rules: Value| obj(g, "v1", "Role", true, json!({"rules": rules}));
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": []}]))
            )),
            want(vec![("rules[0].verbs", Required)])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"verbs": ["get"]}]))
            )),
            want(vec![
                ("rules[0].apiGroups", Required),
                ("rules[0].resources", Required)
            ])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "Role",
                &role(json!([{"nonResourceURLs": ["/x"], "verbs": ["get"]}]))
            )),
            want(vec![("rules[0].nonResourceURLs", Invalid)])
        );
        let named = obj(
            g,
            "v1",
            "ClusterRole",
            false,
            json!({"metadata": {"name": "system:aggregate-to-view"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRole", &named)),
            want(vec![])
        );
        let bad_name = obj(
            g,
            "v1",
            "ClusterRole",
            false,
            json!({"metadata": {"name": "a/b"}}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRole", &bad_name)),
            want(vec![("metadata.name", Invalid)])
        );
        let rb = |rr: Value, subjects: Value| {
            obj(
                g,
                "v1",
                "RoleBinding",
                true,
                json!({"roleRef": rr, "subjects": subjects}),
            )
        };
        let rr = json!({"apiGroup": g, "kind": "Role", "name": "r"});
        assert_eq!(
            kinds(&validate_create(
                g,
                "RoleBinding",
                &rb(
                    rr.clone(),
                    json!([{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "jane", "apiGroup": g}])
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "RoleBinding",
                &rb(
                    json!({"apiGroup": "x", "kind": "Thing", "name": ""}),
                    json!([{"kind": "Robot", "name": "r"}])
                )
            )),
            want(vec![
                ("roleRef.apiGroup", NotSupported),
                ("roleRef.kind", NotSupported),
                ("roleRef.name", Required),
                ("subjects[0].kind", NotSupported)
            ])
        );
        let changed = rb(
            json!({"apiGroup": g, "kind": "ClusterRole", "name": "r"}),
            json!([]),
        );
        assert_eq!(
            kinds(&validate_update(
                g,
                "RoleBinding",
                &changed,
                &rb(rr, json!([]))
            )),
            want(vec![("roleRef", Invalid)])
        );
        let crb = obj(
            g,
            "v1",
            "ClusterRoleBinding",
            false,
            json!({"roleRef": {"apiGroup": g, "kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
        );
        assert_eq!(
            kinds(&validate_create(g, "ClusterRoleBinding", &crb)),
            want(vec![("subjects[0].namespace", Required)])
        );
    }
}
