//! Field errors: what validation reports about one field of an object.
//!
//! The shape follows upstream's `field.Error`: a dotted path such as
//! `spec.containers[0].image`, an error type whose reason string (`FieldValueRequired`)
//! becomes a `StatusCause.reason`, the bad value, and a detail. The message text matches
//! upstream's `ErrorBody`, because clients and users compare it.

use std::fmt;

use serde_json::Value;

/// A path to a field: `metadata.name`, `spec.containers[0].ports[1].containerPort`,
/// `metadata.labels[app]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(String);

impl FieldPath {
    /// The root of a path, e.g. `FieldPath::new("spec")`.
    pub fn new(root: &str) -> Self {
        FieldPath(root.to_string())
    }

    /// `self.name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// `self[key]`, for maps such as labels.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field error upstream defines, with their reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The `StatusCause.reason`, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human text, e.g. `Required value`.
    pub fn text(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
            FieldErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    pub field: FieldPath,
    /// The offending value; `None` leaves it out of the message.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn make(kind: FieldErrorType, field: &FieldPath, value: Option<Value>, detail: &str) -> Self {
        FieldError {
            kind,
            field: field.clone(),
            value,
            detail: detail.to_string(),
        }
    }

    pub fn required(field: &FieldPath, detail: &str) -> Self {
        Self::make(FieldErrorType::Required, field, None, detail)
    }

    pub fn invalid(field: &FieldPath, value: impl Into<Value>, detail: &str) -> Self {
        Self::make(FieldErrorType::Invalid, field, Some(value.into()), detail)
    }

    pub fn duplicate(field: &FieldPath, value: impl Into<Value>) -> Self {
        Self::make(FieldErrorType::Duplicate, field, Some(value.into()), "")
    }

    pub fn not_found(field: &FieldPath, value: impl Into<Value>) -> Self {
        Self::make(FieldErrorType::NotFound, field, Some(value.into()), "")
    }

    pub fn forbidden(field: &FieldPath, detail: &str) -> Self {
        Self::make(FieldErrorType::Forbidden, field, None, detail)
    }

    pub fn too_long(field: &FieldPath, max: usize) -> Self {
        let detail = format!("may not be more than {max} bytes");
        Self::make(FieldErrorType::TooLong, field, None, &detail)
    }

    pub fn too_many(field: &FieldPath, actual: usize, max: usize) -> Self {
        let detail = format!("must have at most {max} items");
        Self::make(
            FieldErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            &detail,
        )
    }

    pub fn internal(field: &FieldPath, detail: &str) -> Self {
        Self::make(FieldErrorType::Internal, field, None, detail)
    }

    /// A value outside a fixed set; the detail lists the supported values as upstream does.
    pub fn not_supported(field: &FieldPath, value: impl Into<Value>, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::make(
            FieldErrorType::NotSupported,
            field,
            Some(value.into()),
            &detail,
        )
    }

    /// The message without the field path: upstream's `ErrorBody`, used as
    /// `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (
                FieldErrorType::Required
                | FieldErrorType::Forbidden
                | FieldErrorType::TooLong
                | FieldErrorType::Internal,
                _,
            )
            | (_, None) => self.kind.text().to_string(),
            (_, Some(v)) => format!("{}: {}", self.kind.text(), render_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// Strings are quoted, numbers and booleans bare, null as `null`, anything else as JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Validation results: empty means valid.
pub type ErrorList = Vec<FieldError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_upstream() {
        let p = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        let l = FieldPath::new("metadata").child("labels").key("app");
        assert_eq!(l.as_str(), "metadata.labels[app]");
    }

    #[test]
    fn bodies_match_upstream_text() {
        let f = FieldPath::new("metadata").child("name");
        assert_eq!(
            FieldError::required(&f, "").to_string(),
            "metadata.name: Required value"
        );
        assert_eq!(
            FieldError::invalid(&f, "Bad_Name", "a lowercase RFC 1123 subdomain").body(),
            "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        );
        assert_eq!(
            FieldError::not_supported(&f, "Sometimes", &["Always", "Never"]).body(),
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(
            FieldError::invalid(&f, 70000, "").body(),
            "Invalid value: 70000"
        );
    }
}
