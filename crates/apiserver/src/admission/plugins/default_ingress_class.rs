//! DefaultIngressClass: an Ingress that names no class gets the default IngressClass
//! (annotated `ingressclass.kubernetes.io/is-default-class: "true"`).

use async_trait::async_trait;
use serde_json::{json, Value};

use super::default_storage_class::newest_default;
use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

const IS_DEFAULT: &str = "ingressclass.kubernetes.io/is-default-class";

#[derive(Debug)]
pub struct DefaultIngressClass;

#[async_trait]
impl Plugin for DefaultIngressClass {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if req.op != Operation::Create
            || !req.is("networking.k8s.io", "ingresses")
            || req.subresource.is_some()
        {
            return Ok(());
        }
        let has_class = obj
            .pointer("/spec/ingressClassName")
            .is_some_and(|v| !v.is_null())
            || obj
                .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
                .is_some();
        if has_class {
            return Ok(());
        }
        let classes = req
            .server
            .cached_list("networking.k8s.io", "ingressclasses", None);
        if let Some(name) = newest_default(classes.iter().map(|c| &c.value), IS_DEFAULT) {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("ingressClassName".into(), json!(name));
            }
        }
        Ok(())
    }
}
