//! Label and field selectors: the `?labelSelector=` and `?fieldSelector=` of list and watch
//! requests, and the typed `LabelSelector` of workload specs.
//!
//! - [`label`]: [`LabelSelector`] and its [`Requirement`]s, parsed with upstream's
//!   `labels.Parse` grammar or built from a typed `metav1.LabelSelector`;
//! - [`field`]: [`FieldSelector`], parsed with upstream's `fields.ParseSelector` grammar;
//! - [`field_sets`]: which field labels each kind supports, and the values an object has
//!   for them;
//! - [`names`]: label key and value syntax.
//!
//! Errors carry upstream's message text, since the API server returns it verbatim in a
//! `BadRequest` status.

pub mod field;
pub mod field_sets;
pub mod label;
mod label_parse;
pub mod names;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::field_error::ErrorList;

pub use field::{FieldOperator, FieldRequirement, FieldSelector};
pub use field_sets::{convert_field_label, field_set, supported_fields};
pub use label::{format_label_selector, LabelSelector, Operator, Requirement};

/// Why a selector could not be parsed, built or applied. `Display` gives upstream's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectorError {
    /// A syntax error in a selector string, e.g.
    /// `found ',', expected: !, identifier, or 'end of string'`.
    #[error("{0}")]
    Syntax(String),
    /// A requirement that breaks upstream's `NewRequirement` rules (bad key or value,
    /// wrong number of values); rendered as upstream's aggregate of field errors.
    #[error("{}", aggregate(.0))]
    InvalidRequirement(ErrorList),
    /// [`InvalidRequirement`](Self::InvalidRequirement) met while parsing a selector
    /// string, which upstream prefixes with `unable to parse requirement: `.
    #[error("unable to parse requirement: {}", aggregate(.0))]
    InvalidParsedRequirement(ErrorList),
    /// A field label the kind does not support, e.g. `field label not supported: foo`.
    #[error("{0}")]
    UnsupportedField(String),
}

/// Upstream's `utilerrors.Aggregate` text: one message as is, several deduplicated in
/// brackets.
fn aggregate(errs: &ErrorList) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Something labels or fields can be looked up in: a map of strings, a JSON object
/// (`metadata.labels` as stored), or nothing at all.
pub trait Lookup {
    /// The value of `key`, if present.
    fn lookup(&self, key: &str) -> Option<&str>;
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON object's string members; members of other types count as absent.
impl Lookup for Map<String, Value> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// A JSON object's string members; anything but an object has no members.
impl Lookup for Value {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.as_object().and_then(|m| m.lookup(key))
    }
}

/// An absent map (e.g. an object without labels) has no members.
impl<L: Lookup> Lookup for Option<L> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|l| l.lookup(key))
    }
}

impl<L: Lookup + ?Sized> Lookup for &L {
    fn lookup(&self, key: &str) -> Option<&str> {
        (**self).lookup(key)
    }
}

impl Lookup for [(&str, &str)] {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::{FieldError, FieldPath};

    #[test]
    fn aggregates_render_like_upstream() {
        let a = FieldError::invalid(&FieldPath::new("key"), "x", "bad");
        let b = FieldError::invalid(&FieldPath::new("values"), "y", "worse");
        assert_eq!(
            SelectorError::InvalidRequirement(vec![a.clone()]).to_string(),
            "key: Invalid value: \"x\": bad"
        );
        assert_eq!(
            SelectorError::InvalidRequirement(vec![a.clone(), b.clone(), a.clone()]).to_string(),
            "[key: Invalid value: \"x\": bad, values: Invalid value: \"y\": worse]"
        );
        assert_eq!(
            SelectorError::InvalidParsedRequirement(vec![a]).to_string(),
            "unable to parse requirement: key: Invalid value: \"x\": bad"
        );
    }

    #[test]
    fn lookups_read_strings_only() {
        let v = serde_json::json!({"a": "1", "b": 2});
        assert_eq!(v.lookup("a"), Some("1"));
        assert_eq!(v.lookup("b"), None);
        assert_eq!(serde_json::json!("x").lookup("a"), None);
        let none: Option<BTreeMap<String, String>> = None;
        assert_eq!(none.lookup("a"), None);
        let pairs: &[(&str, &str)] = &[("k", "v")];
        assert_eq!(pairs.lookup("k"), Some("v"));
    }
}
