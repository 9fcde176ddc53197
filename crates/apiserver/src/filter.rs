//! Which objects a list or watch returns: the path's namespace and the label and field
//! selectors of the query.

use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::object;
use crate::request::Query;
use crate::status::{ApiError, ApiResult};

/// A list or watch filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    labels: Vec<(String, String)>,
    fields: Vec<(String, String)>,
    group: &'static str,
    kind: &'static str,
}

impl Filter {
    pub fn from_query(
        res: &ResourceInfo,
        namespace: Option<&str>,
        query: &Query,
    ) -> ApiResult<Self> {
        let mut f = Filter {
            namespace: namespace.map(str::to_string),
            group: res.group,
            kind: res.kind,
            ..Filter::default()
        };
        if let Some(sel) = query.get("labelSelector") {
            for part in sel.split(',') {
                let (k, v) = part.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!("unable to parse requirement: {part}"))
                })?;
                f.labels.push((
                    k.trim().trim_end_matches('=').to_string(),
                    v.trim_start_matches('=').trim().to_string(),
                ));
            }
        }
        if let Some(sel) = query.get("fieldSelector") {
            for part in sel.split(',') {
                let (k, v) = part.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid selector: '{sel}'; can't understand '{part}'"
                    ))
                })?;
                f.fields
                    .push((k.trim().to_string(), v.trim_start_matches('=').to_string()));
            }
        }
        Ok(f)
    }

    /// Narrows the filter to one object name.
    pub fn with_name(mut self, name: &str) -> Self {
        self.fields.push(("metadata.name".into(), name.to_string()));
        self
    }

    /// Whether any selector is set (then `remainingItemCount` is not reported).
    pub fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace {
            if object::namespace(obj) != ns {
                return false;
            }
        }
        let labels = object::labels(obj);
        if !self.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
        self.fields.iter().all(|(k, v)| match k.as_str() {
            "metadata.name" => object::name(obj) == v,
            "metadata.namespace" => object::namespace(obj) == v,
            _ => {
                let _ = (self.group, self.kind);
                false
            }
        })
    }
}
