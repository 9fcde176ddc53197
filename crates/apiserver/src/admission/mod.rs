//! What happens to an object between decoding and storing, in upstream's order: decoding
//! and defaulting, the mutating admission plugins, the resource's strategy and validation,
//! then the validating admission plugins. Deletes pass the validating plugins too.

pub mod plugins;

use std::sync::Arc;

use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::authn::User;
use crate::handlers::Ctx;
use crate::object;
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult};
use crate::strategy;
pub use plugins::{Admission, Plugin};

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// What a plugin sees of a request.
#[derive(Debug)]
pub struct Request<'a> {
    pub server: &'a Arc<ApiServer>,
    pub user: &'a User,
    pub op: Operation,
    pub resource: &'static ResourceInfo,
    pub subresource: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The stored object, for updates and deletes.
    pub old: Option<&'a Value>,
    pub dry_run: bool,
    warnings: &'a parking_lot::Mutex<Vec<String>>,
    audit_annotations: &'a parking_lot::Mutex<Vec<(String, String)>>,
}

impl Request<'_> {
    /// `("", "pods")`-style check of the resource being admitted.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.resource.group == group && self.resource.plural == plural
    }

    pub fn subresource(&self) -> &str {
        self.subresource.unwrap_or("")
    }

    /// Adds a `Warning` header to the response.
    pub fn warn(&self, message: impl Into<String>) {
        self.warnings.lock().push(message.into());
    }

    /// Records an audit annotation for the request's audit event.
    pub fn annotate(&self, key: impl Into<String>, value: impl Into<String>) {
        self.audit_annotations
            .lock()
            .push((key.into(), value.into()));
    }

    /// Upstream's admission 403: `pods "x" is forbidden: <why>`.
    pub fn forbidden(&self, why: &str) -> ApiError {
        ApiError::forbidden(self.resource, self.name, why)
    }
}

fn request<'a>(
    ctx: &'a Ctx,
    op: Operation,
    name: &'a str,
    old: Option<&'a Value>,
    dry: bool,
) -> Request<'a> {
    Request {
        server: &ctx.server,
        user: &ctx.user,
        op,
        resource: ctx.req.resource,
        subresource: ctx.req.subresource.as_deref(),
        namespace: ctx.req.namespace.as_deref().unwrap_or(""),
        name,
        old,
        dry_run: dry,
        warnings: &ctx.warnings,
        audit_annotations: &ctx.audit_annotations,
    }
}

/// Admits a new object: decode, defaults, mutating plugins, strategy, validation,
/// validating plugins.
pub(crate) async fn admit_create(ctx: &Ctx, obj: &mut Value, dry: bool) -> ApiResult<()> {
    let res = ctx.req.resource;
    decode(res, obj)?;
    rkube_api::defaults::apply(res.group, res.version, res.kind, obj);
    let name = object::name(obj).to_string();
    let namespace = object::namespace(obj).to_string();
    let mut req = request(ctx, Operation::Create, &name, None, dry);
    if res.namespaced {
        req.namespace = &namespace;
    }
    if res.group == "certificates.k8s.io" && res.kind == "CertificateSigningRequest" {
        crate::csr::prepare_create(obj, &ctx.user);
    }
    let admission = &ctx.server.security.admission;
    admission.admit(&req, obj).await?;
    create(res, obj)?;
    rbac_escalation(ctx, &req, obj, None)?;
    admission.validate(&req, obj).await
}

/// Admits an update of `old` to `new` through the main resource or a subresource.
pub(crate) async fn admit_update(
    ctx: &Ctx,
    new: &mut Value,
    old: &Value,
    dry: bool,
) -> ApiResult<()> {
    let res = ctx.req.resource;
    let sub = ctx.req.subresource.as_deref();
    decode(res, new)?;
    rkube_api::defaults::apply(res.group, res.version, res.kind, new);
    let req = request(ctx, Operation::Update, ctx.name(), Some(old), dry);
    if res.group == "certificates.k8s.io" && res.kind == "CertificateSigningRequest" {
        crate::csr::prepare_update(new, old, sub);
    }
    let admission = &ctx.server.security.admission;
    admission.admit(&req, new).await?;
    update(res, new, old, sub)?;
    rbac_escalation(ctx, &req, new, Some(old))?;
    admission.validate(&req, new).await
}

/// RBAC writes may not grant what the writer does not hold (upstream checks this in the
/// RBAC storage, so it cannot be turned off with the admission plugins).
fn rbac_escalation(
    ctx: &Ctx,
    req: &Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if req.resource.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    crate::authz::escalation::check(
        &ctx.server,
        &ctx.user,
        req.resource.plural,
        req.namespace,
        req.name,
        obj,
        old,
    )
}

/// Admits the deletion of `old`.
pub(crate) async fn admit_delete(ctx: &Ctx, old: &Value, dry: bool) -> ApiResult<()> {
    let name = object::name(old);
    let req = request(ctx, Operation::Delete, name, Some(old), dry);
    ctx.server.security.admission.validate(&req, old).await
}

/// Prepares and validates a new object (after defaults and mutating admission).
fn create(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    strategy::prepare_for_create(res, obj);
    let errors = rkube_api::validation::validate_create(res.group, res.kind, obj);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, object::name(obj), &errors))
    }
}

/// Prepares and validates an update of `old` to `new`, through the main resource
/// (`subresource == None`) or a subresource.
fn update(
    res: &ResourceInfo,
    new: &mut Value,
    old: &Value,
    subresource: Option<&str>,
) -> ApiResult<()> {
    let errors = match subresource {
        Some("status") => {
            strategy::prepare_for_status_update(new, old);
            rkube_api::validation::validate_status_update(res.group, res.kind, new, old)
        }
        // Approval changes only conditions, which `csr::prepare_update` has settled.
        Some("approval") => rkube_api::validation::validate_update(res.group, res.kind, new, old),
        // A binding sets spec.nodeName and the PodScheduled condition, which the pod's own
        // update rules forbid; the binding handler checks what it may change.
        Some("binding") => Vec::new(),
        Some("finalize") => {
            // Only spec.finalizers change through finalize.
            let finalizers = new.pointer("/spec/finalizers").cloned();
            let rv = new.pointer("/metadata/resourceVersion").cloned();
            *new = old.clone();
            if let (Some(f), Some(spec)) = (
                finalizers,
                new.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert("finalizers".into(), f);
            }
            if let Some(rv) = rv {
                strategy::set_meta(new, "resourceVersion", rv);
            }
            rkube_api::validation::validate_update(res.group, res.kind, new, old)
        }
        _ => {
            strategy::prepare_for_update(res, new, old);
            rkube_api::validation::validate_update(res.group, res.kind, new, old)
        }
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, object::name(new), &errors))
    }
}

/// Decodes as upstream's typed decoder: unknown and null fields dropped, wrong types a 400.
fn decode(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    rkube_api::schema::prune(res.group, res.version, res.kind, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = res.kind,
            v = res.version
        ))
    })
}
