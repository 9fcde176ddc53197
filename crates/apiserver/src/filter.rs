//! Which objects a list or watch returns: the path's namespace and the label and field
//! selectors of the query, parsed and matched as upstream does.

use rkube_api::selector::{FieldSelector, LabelSelector};
use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::object;
use crate::request::Query;
use crate::status::{ApiError, ApiResult};

/// A list or watch filter.
#[derive(Debug, Clone)]
pub struct Filter {
    pub namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    group: &'static str,
    kind: &'static str,
}

impl Filter {
    pub fn from_query(
        res: &ResourceInfo,
        namespace: Option<&str>,
        query: &Query,
    ) -> ApiResult<Self> {
        let labels = match query.get("labelSelector") {
            None => LabelSelector::everything(),
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        };
        let fields = match query.get("fieldSelector") {
            None => FieldSelector::everything(),
            Some(s) => FieldSelector::parse(s)
                .and_then(|f| f.convert(res.group, res.kind))
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        };
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
            group: res.group,
            kind: res.kind,
        })
    }

    /// Narrows the filter to one object name.
    pub fn with_name(mut self, name: &str) -> Self {
        let mut terms: Vec<String> = self
            .fields
            .requirements()
            .iter()
            .map(ToString::to_string)
            .collect();
        terms.push(FieldSelector::one_term_equal("metadata.name", name).to_string());
        if let Ok(f) = FieldSelector::parse(&terms.join(",")) {
            self.fields = f;
        }
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
        self.labels.matches_object(obj)
            && (self.fields.is_empty() || self.fields.matches_object(self.group, self.kind, obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(q: &str) -> Query {
        Query::parse(Some(q)).expect("query")
    }

    #[test]
    fn selectors_filter_by_labels_fields_and_namespace() {
        let pods = rkube_api::catalogue::find("", "v1", "pods").expect("pods");
        let f = Filter::from_query(
            pods,
            Some("default"),
            &query("labelSelector=app%20in%20(web,db),tier!=cache&fieldSelector=spec.nodeName=n1"),
        )
        .expect("filter");
        let pod = |ns: &str, app: &str, node: &str| json!({"metadata": {"namespace": ns, "labels": {"app": app}}, "spec": {"nodeName": node}});
        assert!(f.matches(&pod("default", "web", "n1")));
        assert!(!f.matches(&pod("other", "web", "n1")));
        assert!(!f.matches(&pod("default", "api", "n1")));
        assert!(!f.matches(&pod("default", "db", "n2")));
    }

    #[test]
    fn unsupported_field_labels_are_bad_requests() {
        let pods = rkube_api::catalogue::find("", "v1", "pods").expect("pods");
        let e =
            Filter::from_query(pods, None, &query("fieldSelector=spec.bogus=1")).expect_err("400");
        assert_eq!(e.code, 400);
        assert!(
            e.message.contains("field label not supported: spec.bogus"),
            "{}",
            e.message
        );
    }
}
