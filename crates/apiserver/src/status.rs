//! API errors as Kubernetes `Status` objects.
//!
//! Every failure a handler can meet becomes an [`ApiError`], which renders as a `meta/v1
//! Status` with upstream's code, reason, message and details, so that clients' error
//! handling (kubectl's messages, kube-rs's `ErrorResponse`, client-go's `IsConflict`) works.

use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use rkube_api::{FieldError, ResourceInfo};
use rkube_store::StoreError;
use serde_json::{json, Value};

/// The largest request body accepted, as upstream's `MaxRequestBodyBytes` (3 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// One `StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed request, rendered as a `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` (the resource, as upstream puts it).
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// The result of a handler step.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    fn about(mut self, res: &ResourceInfo, name: &str) -> Self {
        self.name = Some(name.to_string());
        self.group = Some(res.group.to_string());
        self.kind = Some(res.plural.to_string());
        self
    }

    /// `pods "x" not found` as upstream formats it, with the group for named groups
    /// (`deployments.apps "x" not found`).
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", qualified(res));
        ApiError::new(404, "NotFound", message).about(res, name)
    }

    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", qualified(res));
        ApiError::new(409, "AlreadyExists", message).about(res, name)
    }

    pub fn conflict(res: &ResourceInfo, name: &str, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            qualified(res)
        );
        ApiError::new(409, "Conflict", message).about(res, name)
    }

    /// The optimistic-concurrency conflict clients retry on.
    pub fn stale(res: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error, formatted as upstream's `NewInvalid`.
    pub fn invalid(res: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let kind_name = if res.group.is_empty() {
            res.kind.to_string()
        } else {
            format!("{}.{}", res.kind, res.group)
        };
        // Upstream's aggregate lists a repeated error once (the causes keep every one).
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<String> = errors
            .iter()
            .map(ToString::to_string)
            .filter(|l| seen.insert(l.clone()))
            .collect();
        let list = match lines.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let message = format!("{kind_name} \"{name}\" is invalid: {list}");
        let mut e = ApiError::new(422, "Invalid", message);
        e.name = Some(name.to_string());
        e.group = Some(res.group.to_string());
        e.kind = Some(res.kind.to_string());
        e.causes = errors
            .iter()
            .map(|f| Cause {
                reason: f.kind.reason().to_string(),
                message: f.body(),
                field: f.field.to_string(),
            })
            .collect();
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(res: &ResourceInfo, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", qualified(res))
        } else {
            format!("{} \"{name}\" is forbidden: {why}", qualified(res))
        };
        ApiError::new(403, "Forbidden", message).about(res, name)
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn not_acceptable(accept: &str) -> Self {
        ApiError::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io (requested {accept})"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json (got {content_type:?})"),
        )
    }

    pub fn too_large() -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
        )
    }

    /// 410 for a resourceVersion older than the history kept.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(429, "TooManyRequests", message);
        e.retry_after_seconds = Some(1);
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(503, "ServiceUnavailable", message);
        e.retry_after_seconds = Some(1);
        e
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(504, "Timeout", message);
        e.retry_after_seconds = Some(1);
        e
    }

    /// A store failure seen while serving `res`.
    pub fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::Compacted {
                requested,
                compact_revision,
            } => ApiError::expired(format!(
                "too old resource version: {requested} ({compact_revision})"
            )),
            StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StoreError::RequestTooLarge { .. } => ApiError::too_large(),
            StoreError::Unavailable(m) => ApiError::unavailable(m),
            other => ApiError::internal(other.to_string()),
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = self.group.as_ref().filter(|g| !g.is_empty()) {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &self.kind {
            details.insert("kind".into(), json!(k));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(s) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `pods` for the core group, `deployments.apps` otherwise.
pub fn qualified(res: &ResourceInfo) -> String {
    if res.group.is_empty() {
        res.plural.to_string()
    } else {
        format!("{}.{}", res.plural, res.group)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::from_store(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(s) = self.retry_after_seconds {
            if let Ok(v) = http::HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::FieldPath;

    fn pods() -> &'static ResourceInfo {
        rkube_api::catalogue::find("", "v1", "pods").expect("pods")
    }

    #[test]
    fn not_found_names_group_qualified_resource() {
        let deploy = rkube_api::catalogue::find("apps", "v1", "deployments").expect("deployments");
        let s = ApiError::not_found(deploy, "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "deployments");
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_each_field_as_a_cause() {
        let errs = vec![
            FieldError::required(&FieldPath::new("spec").child("containers"), ""),
            FieldError::invalid(&FieldPath::new("metadata").child("name"), "A", "bad"),
        ];
        let s = ApiError::invalid(pods(), "A", &errs).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "Pod \"A\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\": bad]"
        );
        assert_eq!(s["details"]["causes"][1]["field"], "metadata.name");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    }

    #[test]
    fn a_repeated_error_is_listed_once_and_kept_as_a_cause() {
        let twice = FieldError::invalid(&FieldPath::new("reason"), "b", "field is immutable");
        let s = ApiError::invalid(pods(), "A", &[twice.clone(), twice]).to_status();
        assert_eq!(
            s["message"],
            "Pod \"A\" is invalid: reason: Invalid value: \"b\": field is immutable"
        );
        assert_eq!(s["details"]["causes"].as_array().map(Vec::len), Some(2));
    }
}
