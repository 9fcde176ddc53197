//! Audit events (`audit.k8s.io/v1` `Event`) and how a request fills one in.
//!
//! The JSON is upstream's field for field and in upstream's order, so log shippers and
//! tools written for kube-apiserver's audit log read ours. What an event carries depends
//! on its level, as upstream's `audit/request.go` decides: metadata always; the request
//! object from `Request` up; the response object only at `RequestResponse`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{AuditAttributes, Level, Stage};

const MAX_USER_AGENT_LENGTH: usize = 1024;
const USER_AGENT_TRUNCATE_SUFFIX: &str = "...TRUNCATED";

/// One audit event: a request at one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub level: Level,
    pub audit_id: String,
    pub stage: Stage,
    /// The request URI as sent, path and query.
    pub request_uri: String,
    pub verb: String,
    pub user: UserInfo,
    pub impersonated_user: Option<UserInfo>,
    pub source_ips: Vec<String>,
    pub user_agent: String,
    /// Set for resource requests.
    pub object_ref: Option<ObjectReference>,
    pub response_status: Option<ResponseStatus>,
    pub request_object: Option<Value>,
    pub response_object: Option<Value>,
    pub request_received_timestamp: Timestamp,
    pub stage_timestamp: Timestamp,
    pub annotations: BTreeMap<String, String>,
}

/// Upstream's `authentication/v1` `UserInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a resource request is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The bounded part of a `meta/v1` `Status` that upstream records for every response:
/// the code always, the rest when the response was a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseStatus {
    /// Always `{}`, as upstream's `ListMeta` renders.
    metadata: EmptyObject,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub code: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct EmptyObject {}

fn is_zero(code: &i32) -> bool {
    *code == 0
}

impl ResponseStatus {
    /// A status with only the HTTP code, as upstream records non-`Status` responses.
    pub fn from_code(code: u16) -> Self {
        ResponseStatus {
            code: i32::from(code),
            ..Default::default()
        }
    }

    /// The recorded part of a `Status` response body; `code` fills in when the body has
    /// none. A body that is not a `Status` gives just the code.
    pub fn from_response(code: u16, body: Option<&Value>) -> Self {
        let Some(status) = body.filter(|b| b.get("kind").and_then(Value::as_str) == Some("Status"))
        else {
            return Self::from_code(code);
        };
        let text = |field: &str| {
            status
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let body_code = status
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .filter(|c| *c != 0);
        ResponseStatus {
            metadata: EmptyObject {},
            status: text("status"),
            message: text("message"),
            reason: text("reason"),
            details: status.get("details").filter(|d| !d.is_null()).cloned(),
            code: body_code.unwrap_or(i32::from(code)),
        }
    }
}

impl AuditEvent {
    /// The `RequestReceived` event for a request: a new audit ID, the user and verb from
    /// `attrs`, and for resource requests the object reference. The caller fills the
    /// fields the attributes do not carry (uid, extra, source IPs, user agent,
    /// impersonation) directly.
    pub fn new(
        level: Level,
        attrs: &AuditAttributes,
        request_uri: impl Into<String>,
        received: Timestamp,
    ) -> Self {
        let object_ref = attrs.resource_request.then(|| ObjectReference {
            resource: attrs.resource.clone(),
            namespace: attrs.namespace.clone(),
            name: attrs.name.clone(),
            api_group: attrs.api_group.clone(),
            api_version: attrs.api_version.clone(),
            subresource: attrs.subresource.clone(),
            ..Default::default()
        });
        AuditEvent {
            level,
            audit_id: crate::object::new_uid(),
            stage: Stage::RequestReceived,
            request_uri: request_uri.into(),
            verb: attrs.verb.clone(),
            user: UserInfo {
                username: attrs.user.clone(),
                groups: attrs.groups.clone(),
                ..Default::default()
            },
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: String::new(),
            object_ref,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: received,
            stage_timestamp: received,
            annotations: BTreeMap::new(),
        }
    }

    /// Records the client's user agent, cut at 1024 bytes as upstream does (clients
    /// choose it, so it must not grow the log without bound).
    pub fn set_user_agent(&mut self, user_agent: &str) {
        self.user_agent = if user_agent.len() > MAX_USER_AGENT_LENGTH {
            let mut end = MAX_USER_AGENT_LENGTH;
            while !user_agent.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}{USER_AGENT_TRUNCATE_SUFFIX}", &user_agent[..end])
        } else {
            user_agent.to_string()
        };
    }

    /// Records the request body, at level `Request` and above. The object reference
    /// picks up the object's uid and resourceVersion, as upstream's does.
    pub fn set_request_object(&mut self, object: &Value, omit_managed_fields: bool) {
        if self.level < Level::Metadata {
            return;
        }
        if let Some(meta) = object.get("metadata") {
            let field = |f: &str| meta.get(f).and_then(Value::as_str).unwrap_or_default();
            let reference = self.object_ref.get_or_insert_with(Default::default);
            for (target, source) in [
                (&mut reference.namespace, "namespace"),
                (&mut reference.name, "name"),
                (&mut reference.uid, "uid"),
                (&mut reference.resource_version, "resourceVersion"),
            ] {
                if target.is_empty() {
                    *target = field(source).to_string();
                }
            }
        }
        if self.level < Level::Request {
            return;
        }
        self.request_object = Some(prepare(object, omit_managed_fields));
    }

    /// Records the response: the status always (at `Metadata` and above), the body only
    /// at `RequestResponse`.
    pub fn set_response(&mut self, code: u16, body: Option<&Value>, omit_managed_fields: bool) {
        if self.level < Level::Metadata {
            return;
        }
        self.response_status = Some(ResponseStatus::from_response(code, body));
        if self.level < Level::RequestResponse {
            return;
        }
        self.response_object = body.map(|b| prepare(b, omit_managed_fields));
    }

    /// This event as recorded at `stage`, at `now`.
    pub fn at_stage(&self, stage: Stage, now: Timestamp) -> AuditEvent {
        AuditEvent {
            stage,
            stage_timestamp: now,
            ..self.clone()
        }
    }
}

/// A copy of `object` to record, without managed fields if asked: on the object itself,
/// on each item of a list, and on each row object of a table, as upstream strips them.
fn prepare(object: &Value, omit_managed_fields: bool) -> Value {
    let mut copy = object.clone();
    if omit_managed_fields {
        strip_managed_fields(&mut copy);
        if let Some(items) = copy.get_mut("items").and_then(Value::as_array_mut) {
            items.iter_mut().for_each(strip_managed_fields);
        }
        if copy.get("kind").and_then(Value::as_str) == Some("Table") {
            if let Some(rows) = copy.get_mut("rows").and_then(Value::as_array_mut) {
                for row in rows {
                    if let Some(obj) = row.get_mut("object") {
                        strip_managed_fields(obj);
                    }
                }
            }
        }
    }
    copy
}

fn strip_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
pub fn micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The wire form: upstream's field order, `kind` and `apiVersion` first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: Level,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: Stage,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: &'a UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<&'a UserInfo>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "<[String]>::is_empty")]
    source_ips: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<&'a ObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<&'a ResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<&'a Value>,
    request_received_timestamp: String,
    stage_timestamp: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

impl Serialize for AuditEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: self.level,
            audit_id: &self.audit_id,
            stage: self.stage,
            request_uri: &self.request_uri,
            verb: &self.verb,
            user: &self.user,
            impersonated_user: self.impersonated_user.as_ref(),
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: self.object_ref.as_ref(),
            response_status: self.response_status.as_ref(),
            request_object: self.request_object.as_ref(),
            response_object: self.response_object.as_ref(),
            request_received_timestamp: micro_time(self.request_received_timestamp),
            stage_timestamp: micro_time(self.stage_timestamp),
            annotations: &self.annotations,
        }
        .serialize(serializer)
    }
}
