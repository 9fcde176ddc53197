//! PodSecurity: the Pod Security Standards a namespace's `pod-security.kubernetes.io/*`
//! labels select. Pods are checked in all three modes (enforce refuses, audit annotates,
//! warn adds `Warning` headers); workload pod templates only in audit and warn, so a bad
//! Deployment is created with a warning and its pods are refused later. Namespace writes have
//! their labels validated, and raising a namespace's enforce level warns about the existing
//! pods it would refuse. The decisions are `rkube_api::podsecurity`'s; this file fetches the
//! namespace (and its pods) and applies the outcome, in upstream's order of short cuts.

use async_trait::async_trait;
use rkube_api::podsecurity::{
    self, Evaluation, Exemption, Exemptions, Level, LevelVersion, NamespaceOutcome, NamespacePolicy,
};
use serde_json::Value;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::{ApiError, ApiResult};

/// The plugin, with upstream's `PodSecurityConfiguration` settings: exemptions (none by
/// default) and the policy of unlabelled namespaces (`privileged:latest` in every mode).
#[derive(Debug)]
pub struct PodSecurity {
    pub exemptions: Exemptions,
    pub defaults: NamespacePolicy,
}

impl Default for PodSecurity {
    fn default() -> Self {
        PodSecurity {
            exemptions: Exemptions::default(),
            defaults: NamespacePolicy::DEFAULT,
        }
    }
}

#[async_trait]
impl Plugin for PodSecurity {
    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if req.op == Operation::Delete {
            return Ok(());
        }
        if req.is("", "namespaces") {
            return self.validate_namespace(req, obj);
        }
        let is_pod = req.is("", "pods");
        if !is_pod && !podsecurity::has_pod_spec(req.resource.group, req.resource.plural) {
            return Ok(());
        }
        let write = PodWrite {
            enforce: is_pod,
            kind: req.resource.kind,
            op: req.op,
            subresource: req.subresource(),
            namespace: req.namespace,
            user: &req.user.name,
            obj,
            old: req.old,
        };
        let eval = match self.precheck(&write) {
            Some(eval) => eval,
            None => {
                // Read from the store, not the cache, so a label set a moment ago already
                // applies (NamespaceLifecycle reads it the same way).
                let ns = req
                    .server
                    .read_object("", "namespaces", "", req.namespace)
                    .await?;
                self.decide(&write, ns.as_ref())
            }
        };
        apply(req, &eval)
    }
}

/// A create or update of a pod (`enforce`) or of a workload with a pod template.
#[derive(Debug, Clone, Copy)]
struct PodWrite<'a> {
    enforce: bool,
    kind: &'a str,
    op: Operation,
    subresource: &'a str,
    namespace: &'a str,
    user: &'a str,
    obj: &'a Value,
    old: Option<&'a Value>,
}

impl PodSecurity {
    fn validate_namespace(&self, req: &Request<'_>, ns: &Value) -> ApiResult<()> {
        if req.subresource.is_some() {
            return Ok(());
        }
        // Upstream's request info names the namespace itself on an update, nothing on a
        // create; the namespace exemption is matched on that.
        let (old, request_namespace) = match req.op {
            Operation::Update => (req.old, req.name),
            _ => (None, ""),
        };
        match podsecurity::validate_namespace(
            ns,
            old,
            request_namespace,
            &self.exemptions,
            &self.defaults,
        ) {
            NamespaceOutcome::Allowed { warnings } => {
                warnings.into_iter().for_each(|w| req.warn(w));
                Ok(())
            }
            NamespaceOutcome::Invalid(errs) => {
                Err(ApiError::invalid(req.resource, req.name, &errs))
            }
            NamespaceOutcome::CheckPods(enforce) => {
                let name = crate::object::name(ns);
                let pods: Vec<Value> = req
                    .server
                    .cached_list("", "pods", Some(name))
                    .iter()
                    .map(|p| p.value.clone())
                    .collect();
                podsecurity::namespace_pod_warnings(name, &enforce, &pods, &self.exemptions)
                    .into_iter()
                    .for_each(|w| req.warn(w));
                Ok(())
            }
        }
    }

    /// The short cuts taken before the namespace is read: subresources that cannot change a
    /// pod spec, and exempt namespaces and users. `None`: the namespace decides.
    fn precheck(&self, w: &PodWrite<'_>) -> Option<Evaluation> {
        let skipped = if w.enforce {
            podsecurity::ignored_pod_subresource(w.subresource)
        } else {
            !w.subresource.is_empty()
        };
        if skipped {
            Some(Evaluation::default())
        } else if self.exemptions.namespace(w.namespace) {
            Some(Evaluation::exempt(Exemption::Namespace))
        } else if self.exemptions.user(w.user) {
            Some(Evaluation::exempt(Exemption::User))
        } else {
            None
        }
    }

    /// The outcome for a write that passed [`PodSecurity::precheck`], given its namespace
    /// (`None` when it could not be found: allowed with an audit annotation, as upstream
    /// fails open here; NamespaceLifecycle refuses content in missing namespaces).
    fn decide(&self, w: &PodWrite<'_>, namespace: Option<&Value>) -> Evaluation {
        let Some(namespace) = namespace else {
            let ns = w.namespace;
            return Evaluation {
                audit_annotations: [(
                    podsecurity::ERROR_ANNOTATION.to_string(),
                    format!("failed to lookup namespace \"{ns}\": namespaces \"{ns}\" not found"),
                )]
                .into(),
                ..Evaluation::default()
            };
        };
        let labels = podsecurity::level::labels_of(namespace);
        let (policy, errs) = NamespacePolicy::from_labels_with_defaults(&labels, &self.defaults);
        if errs.is_empty() {
            if w.enforce && policy.fully_privileged() {
                return Evaluation {
                    audit_annotations: [(
                        podsecurity::ENFORCE_POLICY_ANNOTATION.to_string(),
                        LevelVersion::PRIVILEGED_LATEST.to_string(),
                    )]
                    .into(),
                    ..Evaluation::default()
                };
            }
            if !w.enforce
                && policy.warn.level == Level::Privileged
                && policy.audit.level == Level::Privileged
            {
                return Evaluation::default();
            }
        }
        if let (true, Operation::Update, Some(old)) = (w.enforce, w.op, w.old) {
            if !podsecurity::is_significant_pod_update(w.obj, old) {
                return Evaluation::default();
            }
        }
        // A ReplicationController may have no template: nothing to check.
        let Some((meta, spec)) = podsecurity::pod_template_of(w.kind, w.obj) else {
            return Evaluation::default();
        };
        if self
            .exemptions
            .runtime_class(spec.get("runtimeClassName").and_then(Value::as_str))
        {
            return Evaluation::exempt(Exemption::RuntimeClass);
        }
        podsecurity::evaluate_pod(&policy, &errs, meta, spec, w.enforce)
    }
}

/// Carries out an evaluation: its audit annotations and warnings, then its refusal
/// (`pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`).
fn apply(req: &Request<'_>, eval: &Evaluation) -> ApiResult<()> {
    for (k, v) in &eval.audit_annotations {
        req.annotate(k.clone(), v.clone());
    }
    for w in &eval.warnings {
        req.warn(w.clone());
    }
    match &eval.forbidden {
        Some(why) => Err(req.forbidden(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn namespace(labels: Value) -> Value {
        json!({"metadata": {"name": "ns", "labels": labels}})
    }

    fn privileged_pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "securityContext": {"privileged": true}}
        ]}})
    }

    fn write<'a>(kind: &'a str, obj: &'a Value) -> PodWrite<'a> {
        PodWrite {
            enforce: kind == "Pod",
            kind,
            op: Operation::Create,
            subresource: "",
            namespace: "ns",
            user: "alice",
            obj,
            old: None,
        }
    }

    #[test]
    fn enforce_refuses_a_pod_with_upstreams_message_and_annotates_the_level() {
        let plugin = PodSecurity::default();
        let pod = privileged_pod();
        let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        let eval = plugin.decide(&write("Pod", &pod), Some(&ns));
        assert_eq!(
            eval.forbidden.as_deref(),
            Some(
                "violates PodSecurity \"baseline:latest\": privileged \
                 (container \"c\" must not set securityContext.privileged=true)"
            )
        );
        // No warnings on a refused request, even though warn follows enforce.
        assert!(eval.warnings.is_empty());
        assert_eq!(
            eval.audit_annotations
                .get(podsecurity::ENFORCE_POLICY_ANNOTATION)
                .map(String::as_str),
            Some("baseline:latest")
        );
    }

    #[test]
    fn workload_templates_are_warned_about_never_refused() {
        let plugin = PodSecurity::default();
        let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        let template = json!({"metadata": {}, "spec": privileged_pod()["spec"].clone()});
        let deployment = json!({"spec": {"template": template}});
        let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": template}}}});
        for (kind, obj) in [("Deployment", &deployment), ("CronJob", &cronjob)] {
            let eval = plugin.decide(&write(kind, obj), Some(&ns));
            assert!(eval.allowed(), "{kind}");
            assert_eq!(eval.warnings.len(), 1, "{kind}");
            assert!(eval.warnings[0]
                .starts_with("would violate PodSecurity \"baseline:latest\": privileged"));
        }
        // Audit and warn privileged: nothing to say, even though enforce is not.
        let only_enforce = namespace(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "privileged",
        }));
        assert_eq!(
            plugin.decide(&write("Deployment", &deployment), Some(&only_enforce)),
            Evaluation::default()
        );
    }

    #[test]
    fn unlabelled_namespaces_allow_everything_with_the_privileged_annotation() {
        let plugin = PodSecurity::default();
        let pod = privileged_pod();
        let eval = plugin.decide(&write("Pod", &pod), Some(&namespace(json!({}))));
        assert!(eval.allowed() && eval.warnings.is_empty());
        assert_eq!(
            eval.audit_annotations
                .get(podsecurity::ENFORCE_POLICY_ANNOTATION)
                .map(String::as_str),
            Some("privileged:latest")
        );
    }

    #[test]
    fn only_significant_pod_updates_are_checked() {
        let plugin = PodSecurity::default();
        let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        let old = privileged_pod();
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        let mut reimaged = old.clone();
        reimaged["spec"]["containers"][0]["image"] = json!("j");
        for (new, refused) in [(&relabelled, false), (&reimaged, true)] {
            let w = PodWrite {
                op: Operation::Update,
                old: Some(&old),
                ..write("Pod", new)
            };
            assert_eq!(!plugin.decide(&w, Some(&ns)).allowed(), refused);
        }
    }

    #[test]
    fn exemptions_and_ignored_subresources_skip_the_namespace_read() {
        let plugin = PodSecurity {
            exemptions: Exemptions {
                usernames: vec!["robot".into()],
                namespaces: vec!["kube-system".into()],
                runtime_classes: vec!["kata".into()],
            },
            ..PodSecurity::default()
        };
        let pod = privileged_pod();
        assert_eq!(plugin.precheck(&write("Pod", &pod)), None);
        let status = PodWrite {
            subresource: "status",
            ..write("Pod", &pod)
        };
        assert_eq!(plugin.precheck(&status), Some(Evaluation::default()));
        let scale = PodWrite {
            subresource: "scale",
            ..write("Deployment", &pod)
        };
        assert_eq!(plugin.precheck(&scale), Some(Evaluation::default()));
        let exempt = |w: PodWrite<'_>| {
            plugin
                .precheck(&w)
                .map(|e| e.audit_annotations[podsecurity::EXEMPT_ANNOTATION].clone())
        };
        let system = PodWrite {
            namespace: "kube-system",
            ..write("Pod", &pod)
        };
        assert_eq!(exempt(system).as_deref(), Some("namespace"));
        let robot = PodWrite {
            user: "robot",
            ..write("Pod", &pod)
        };
        assert_eq!(exempt(robot).as_deref(), Some("user"));
        let mut kata = pod.clone();
        kata["spec"]["runtimeClassName"] = json!("kata");
        let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
        let eval = plugin.decide(&write("Pod", &kata), Some(&ns));
        assert!(eval.allowed());
        assert_eq!(
            eval.audit_annotations[podsecurity::EXEMPT_ANNOTATION],
            "runtimeClass"
        );
    }

    #[test]
    fn a_missing_namespace_is_allowed_with_an_error_annotation() {
        let pod = privileged_pod();
        let eval = PodSecurity::default().decide(&write("Pod", &pod), None);
        assert!(eval.allowed());
        assert_eq!(
            eval.audit_annotations[podsecurity::ERROR_ANNOTATION],
            "failed to lookup namespace \"ns\": namespaces \"ns\" not found"
        );
    }

    #[test]
    fn invalid_labels_are_evaluated_fail_closed_and_reported() {
        let pod = privileged_pod();
        let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "bogus"}));
        let eval = PodSecurity::default().decide(&write("Pod", &pod), Some(&ns));
        assert!(eval
            .forbidden
            .as_deref()
            .is_some_and(|f| f.starts_with("violates PodSecurity \"restricted:latest\"")));
        assert!(eval
            .audit_annotations
            .contains_key(podsecurity::ERROR_ANNOTATION));
    }
}
