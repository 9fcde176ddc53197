//! CertificateSigningRequests (certificates.k8s.io/v1): reading the PKCS#10 request, stamping
//! the requester's identity on create, and what the `approval` and `status` subresources may
//! change.

use base64::Engine;
use serde_json::{json, Value};

use crate::authn::User;

/// The subject (CN, O list) of `spec.request` (base64 of a PEM certificate request, as JSON
/// carries it).
pub fn subject(request_b64: &str) -> Option<(String, Vec<String>)> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request_b64)
        .ok()?;
    let s = rkube_pki::parse_csr(&pem).ok()?;
    Some((s.common_name, s.organizations))
}

/// Upstream's create strategy: the requester's identity goes into the spec, status starts empty.
pub fn prepare_create(csr: &mut Value, user: &User) {
    if let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("username".into(), json!(user.name));
        if user.uid.is_empty() {
            spec.remove("uid");
        } else {
            spec.insert("uid".into(), json!(user.uid));
        }
        if user.groups.is_empty() {
            spec.remove("groups");
        } else {
            spec.insert("groups".into(), json!(user.groups));
        }
        if user.extra.is_empty() {
            spec.remove("extra");
        } else {
            spec.insert("extra".into(), json!(user.extra));
        }
    }
    if let Some(o) = csr.as_object_mut() {
        o.remove("status");
    }
}

/// What an update through `subresource` keeps of `new`: the main resource cannot change the
/// status; `approval` changes only the Approved/Denied conditions; `status` changes the
/// status but not the approval conditions.
pub fn prepare_update(new: &mut Value, old: &Value, subresource: Option<&str>) {
    let old_status = old.get("status").cloned().unwrap_or_else(|| json!({}));
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let is_approval = |c: &Value| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("Approved" | "Denied")
        )
    };
    let conditions = |s: &Value| -> Vec<Value> {
        s.get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let Some(obj) = new.as_object_mut() else {
        return;
    };
    // The spec is immutable through every path; validation reports a change on the main path.
    if subresource.is_some() {
        obj.insert("spec".into(), old_spec);
    }
    match subresource {
        None => {
            obj.insert("status".into(), old_status);
        }
        Some("approval") => {
            let new_status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            let mut status = old_status.clone();
            let mut conds: Vec<Value> = conditions(&old_status)
                .into_iter()
                .filter(|c| !is_approval(c))
                .collect();
            conds.extend(conditions(&new_status).into_iter().filter(is_approval));
            stamp_conditions(&mut conds, &conditions(&old_status));
            if let Some(s) = status.as_object_mut() {
                s.insert("conditions".into(), Value::Array(conds));
            }
            obj.insert("status".into(), status);
        }
        Some("status") => {
            let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            let mut conds: Vec<Value> = conditions(&status)
                .into_iter()
                .filter(|c| !is_approval(c))
                .collect();
            conds.extend(conditions(&old_status).into_iter().filter(is_approval));
            stamp_conditions(&mut conds, &conditions(&old_status));
            if let Some(s) = status.as_object_mut() {
                s.insert("conditions".into(), Value::Array(conds));
            }
            obj.insert("status".into(), status);
        }
        _ => {}
    }
}

/// Upstream fills `lastUpdateTime` and `lastTransitionTime` of new or changed conditions.
fn stamp_conditions(conds: &mut [Value], old: &[Value]) {
    let now = crate::object::now_rfc3339();
    for c in conds.iter_mut() {
        let same = old.iter().find(|o| o.get("type") == c.get("type"));
        let Some(m) = c.as_object_mut() else { continue };
        if !m.contains_key("lastUpdateTime") {
            m.insert("lastUpdateTime".into(), json!(now));
        }
        let status_changed = same.is_none_or(|o| o.get("status") != m.get("status"));
        if status_changed && !m.contains_key("lastTransitionTime") {
            m.insert("lastTransitionTime".into(), json!(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stamps_the_requester_and_drops_status() {
        let mut csr =
            json!({"spec": {"username": "forged", "request": "x"}, "status": {"certificate": "y"}});
        let user = User {
            name: "system:bootstrap:abcdef".into(),
            groups: vec!["system:bootstrappers".into()],
            ..User::default()
        };
        prepare_create(&mut csr, &user);
        assert_eq!(csr["spec"]["username"], json!("system:bootstrap:abcdef"));
        assert_eq!(csr["spec"]["groups"], json!(["system:bootstrappers"]));
        assert!(csr.get("status").is_none());
    }

    #[test]
    fn subresources_change_only_their_part() {
        let old = json!({"spec": {"request": "r"}, "status": {}});
        let mut via_main = json!({"spec": {"request": "r"}, "status": {"certificate": "c"}});
        prepare_update(&mut via_main, &old, None);
        assert_eq!(via_main["status"], json!({}));
        let mut approve = json!({"spec": {"request": "changed"}, "status": {"certificate": "c",
            "conditions": [{"type": "Approved", "status": "True", "reason": "R"}]}});
        prepare_update(&mut approve, &old, Some("approval"));
        assert_eq!(approve["spec"]["request"], json!("r"));
        assert!(approve["status"].get("certificate").is_none());
        assert_eq!(
            approve["status"]["conditions"][0]["type"],
            json!("Approved")
        );
        assert!(approve["status"]["conditions"][0]
            .get("lastUpdateTime")
            .is_some());
        let mut sign = json!({"spec": {"request": "r"}, "status": {"certificate": "c",
            "conditions": [{"type": "Approved", "status": "True"}]}});
        prepare_update(&mut sign, &old, Some("status"));
        assert_eq!(sign["status"]["certificate"], json!("c"));
        assert_eq!(sign["status"]["conditions"], json!([]));
    }

    #[test]
    fn garbage_requests_have_no_subject() {
        assert_eq!(subject("bm90IGEgY3Ny"), None);
        assert_eq!(subject("%%%"), None);
    }
}
