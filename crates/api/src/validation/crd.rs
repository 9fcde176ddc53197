//! Custom resource definitions: the name is `<plural>.<group>`, names are DNS labels,
//! exactly one storage version, every version has a schema; group and scope are fixed.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::meta::{immutable, json};
use super::names::{is_dns1035_label, is_dns1123_subdomain, name_is_dns_subdomain};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

fn crd_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_subdomain(name, prefix)
}

fn dns1035_joined(v: &str) -> Option<String> {
    let errs = is_dns1035_label(v);
    (!errs.is_empty()).then(|| errs.join(","))
}

pub(crate) fn crd_rules() -> Rules<CustomResourceDefinition> {
    Rules {
        meta: MetaRule::Generic(crd_name),
        create: |crd, _| {
            let mut errs = ErrorList::new();
            let spec = &crd.spec;
            let sp = FieldPath::new("spec");
            let name = crd.metadata.name.clone().unwrap_or_default();
            if !name.is_empty() && name != format!("{}.{}", spec.names.plural, spec.group) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("metadata").child("name"),
                    name.as_str(),
                    "must be spec.names.plural+\".\"+spec.group",
                ));
            }
            if spec.group.is_empty() {
                errs.push(FieldError::required(&sp.child("group"), ""));
            } else {
                let msgs = is_dns1123_subdomain(&spec.group);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &sp.child("group"),
                        spec.group.as_str(),
                        &msgs.join(","),
                    ));
                } else if spec.group.split('.').count() < 2 {
                    errs.push(FieldError::invalid(
                        &sp.child("group"),
                        spec.group.as_str(),
                        "should be a domain with at least one dot",
                    ));
                }
            }
            match spec.scope.as_str() {
                "Cluster" | "Namespaced" => {}
                "" => errs.push(FieldError::required(&sp.child("scope"), "")),
                other => errs.push(FieldError::not_supported(
                    &sp.child("scope"),
                    other,
                    &["Cluster", "Namespaced"],
                )),
            }
            let np = sp.child("names");
            let n = &spec.names;
            if n.plural.is_empty() {
                errs.push(FieldError::required(&np.child("plural"), ""));
            } else if let Some(m) = dns1035_joined(&n.plural) {
                errs.push(FieldError::invalid(
                    &np.child("plural"),
                    n.plural.as_str(),
                    &m,
                ));
            }
            match n.singular.as_deref() {
                Some("") => errs.push(FieldError::required(&np.child("singular"), "")),
                Some(s) => {
                    if let Some(m) = dns1035_joined(s) {
                        errs.push(FieldError::invalid(&np.child("singular"), s, &m));
                    }
                }
                None => {}
            }
            if n.kind.is_empty() {
                errs.push(FieldError::required(&np.child("kind"), ""));
            } else if let Some(m) = dns1035_joined(&n.kind.to_lowercase()) {
                errs.push(FieldError::invalid(
                    &np.child("kind"),
                    n.kind.as_str(),
                    &format!("may have mixed case, but should otherwise match: {m}"),
                ));
            }
            match n.list_kind.as_deref() {
                Some("") => errs.push(FieldError::required(&np.child("listKind"), "")),
                Some(lk) => {
                    if let Some(m) = dns1035_joined(&lk.to_lowercase()) {
                        errs.push(FieldError::invalid(
                            &np.child("listKind"),
                            lk,
                            &format!("may have mixed case, but should otherwise match: {m}"),
                        ));
                    }
                    if !n.kind.is_empty() && lk == n.kind {
                        errs.push(FieldError::invalid(
                            &np.child("listKind"),
                            lk,
                            "kind and listKind may not be the same",
                        ));
                    }
                }
                None => {}
            }
            for (i, s) in n.short_names.iter().flatten().enumerate() {
                if let Some(m) = dns1035_joined(s) {
                    errs.push(FieldError::invalid(
                        &np.child("shortNames").index(i),
                        s.as_str(),
                        &m,
                    ));
                }
            }
            for (i, c) in n.categories.iter().flatten().enumerate() {
                if let Some(m) = dns1035_joined(c) {
                    errs.push(FieldError::invalid(
                        &np.child("categories").index(i),
                        c.as_str(),
                        &m,
                    ));
                }
            }
            let vp = sp.child("versions");
            if spec.versions.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must have exactly one version marked as storage version",
                ));
            }
            let mut seen = BTreeSet::new();
            let mut unique = true;
            let mut storage = 0;
            for (i, v) in spec.versions.iter().enumerate() {
                if v.storage {
                    storage += 1;
                }
                if !seen.insert(v.name.as_str()) {
                    unique = false;
                }
                if let Some(m) = dns1035_joined(&v.name) {
                    errs.push(FieldError::invalid(
                        &vp.index(i).child("name"),
                        v.name.as_str(),
                        &m,
                    ));
                }
                if v.schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .is_none()
                {
                    errs.push(FieldError::required(
                        &vp.index(i).child("schema").child("openAPIV3Schema"),
                        "schemas are required",
                    ));
                }
            }
            if !unique {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must contain unique version names",
                ));
            }
            if !spec.versions.is_empty() && storage != 1 {
                errs.push(FieldError::invalid(
                    &vp,
                    json(&spec.versions),
                    "must have exactly one version marked as storage version",
                ));
            }
            if spec.preserve_unknown_fields == Some(true) {
                errs.push(FieldError::invalid(
                    &sp.child("preserveUnknownFields"),
                    true,
                    "must be false in order to use defaults in the schema",
                ));
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            immutable(&n.spec.group, &o.spec.group, &sp.child("group"), &mut errs);
            immutable(&n.spec.scope, &o.spec.scope, &sp.child("scope"), &mut errs);
            immutable(
                &n.spec.names.plural,
                &o.spec.names.plural,
                &sp.child("names").child("plural"),
                &mut errs,
            );
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
    fn crd_rules() {
        let g = "apiextensions.k8s.io";
        let schema = json!({"openAPIV3Schema": {"type": "object"}});
        let crd = |name: &str, spec: Value| {
            obj(
                g,
                "v1",
                "CustomResourceDefinition",
                false,
                json!({"metadata": {"name": name}, "spec": spec}),
            )
        };
        let ok = json!({"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": schema}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", ok.clone())
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.other.com", ok.clone())
            )),
            want(vec![("metadata.name", Invalid)])
        );
        let two_storage = json!({"group": "example.com", "scope": "Cluster", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": schema}, {"name": "v2", "served": true, "storage": true, "schema": schema}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", two_storage)
            )),
            want(vec![("spec.versions", Invalid)])
        );
        let bad = json!({"group": "example", "scope": "Global", "names": {"plural": "Widgets", "kind": ""},
            "versions": [{"name": "V1", "served": true, "storage": true}]});
        assert_eq!(
            kinds(&validate_create(
                g,
                "CustomResourceDefinition",
                &crd("Widgets.example", bad)
            )),
            want(vec![
                ("metadata.name", Invalid),
                ("spec.group", Invalid),
                ("spec.scope", NotSupported),
                ("spec.names.plural", Invalid),
                ("spec.names.kind", Required),
                ("spec.versions[0].name", Invalid),
                ("spec.versions[0].schema.openAPIV3Schema", Required),
            ])
        );
        let mut moved = ok.clone();
        moved["scope"] = json!("Cluster");
        assert_eq!(
            kinds(&validate_update(
                g,
                "CustomResourceDefinition",
                &crd("widgets.example.com", moved),
                &crd("widgets.example.com", ok)
            )),
            want(vec![("spec.scope", Invalid)])
        );
    }
}
