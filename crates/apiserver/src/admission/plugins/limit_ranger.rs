//! LimitRanger: a namespace's LimitRanges default the requests and limits of a new pod's
//! containers (mutating phase) and bound pods and claims (validating phase). A refusal is
//! upstream's 403, `pods "x" is forbidden: [maximum cpu usage per Container is 1, but
//! limit is 2, ...]`. The decisions are `rkube_api::limitrange`'s; this file finds the
//! LimitRanges and says when to ask.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;

use super::Plugin;
use crate::admission::{Operation, Request};
use crate::status::ApiResult;

/// How long a store lookup that the watch cache could not answer is reused, as upstream's
/// `liveTTL`; a LimitRange created meanwhile reaches the watch cache within milliseconds.
const LIVE_TTL: Duration = Duration::from_secs(30);
/// At most this many namespaces' lookups are kept (upstream's `liveLookupCache` size).
const LIVE_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct LimitRanger {
    /// Namespace → when its LimitRanges were read from the store, and what was read.
    live: Mutex<HashMap<String, LiveLookup>>,
}

/// When a namespace's LimitRanges were read from the store, and what was read.
type LiveLookup = (Instant, Arc<Vec<Value>>);

#[async_trait]
impl Plugin for LimitRanger {
    async fn admit(&self, req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
        if !applies(req) || !req.is("", "pods") {
            return Ok(());
        }
        let ranges = self.limit_ranges(req).await?;
        rkube_api::limitrange::default_pod(obj, &ranges);
        Ok(())
    }

    async fn validate(&self, req: &Request<'_>, obj: &Value) -> ApiResult<()> {
        if !applies(req) {
            return Ok(());
        }
        let ranges = self.limit_ranges(req).await?;
        let checked = if req.is("", "pods") {
            rkube_api::limitrange::validate_pod(obj, &ranges)
        } else {
            rkube_api::limitrange::validate_pvc(obj, &ranges)
        };
        checked.map_err(|why| req.forbidden(&why))
    }
}

fn applies(req: &Request<'_>) -> bool {
    applies_to(
        req.op,
        req.resource.group,
        req.resource.plural,
        req.subresource(),
        req.namespace,
        req.old,
    )
}

/// Pod creates and resizes and claim writes in a namespace, as `limitrange::applies` says;
/// never deletes.
fn applies_to(
    op: Operation,
    group: &str,
    plural: &str,
    subresource: &str,
    namespace: &str,
    old: Option<&Value>,
) -> bool {
    op != Operation::Delete
        && group.is_empty()
        && !namespace.is_empty()
        && rkube_api::limitrange::applies(plural, subresource, old)
}

impl LimitRanger {
    /// The namespace's LimitRanges, from the watch cache; when the cache has none, from the
    /// store (reused for [`LIVE_TTL`]), as upstream falls back to a live lookup so a
    /// LimitRange created a moment ago already applies.
    async fn limit_ranges(&self, req: &Request<'_>) -> ApiResult<Arc<Vec<Value>>> {
        let cached: Vec<Value> = req
            .server
            .cached_list("", "limitranges", Some(req.namespace))
            .iter()
            .map(|c| c.value.clone())
            .collect();
        if !cached.is_empty() {
            return Ok(Arc::new(cached));
        }
        if let Some((at, ranges)) = self.live.lock().get(req.namespace) {
            if at.elapsed() < LIVE_TTL {
                return Ok(ranges.clone());
            }
        }
        let ranges: Arc<Vec<Value>> = Arc::new(
            req.server
                .read_objects("", "limitranges", Some(req.namespace))
                .await?
                .into_iter()
                .map(|(v, _)| v)
                .collect(),
        );
        let mut live = self.live.lock();
        if live.len() >= LIVE_ENTRIES {
            live.retain(|_, (at, _)| at.elapsed() < LIVE_TTL);
            if live.len() >= LIVE_ENTRIES {
                live.clear();
            }
        }
        live.insert(req.namespace.to_string(), (Instant::now(), ranges.clone()));
        Ok(ranges)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// (operation, resource, subresource, namespace, stored object, looked at).
    type Case<'a> = (
        Operation,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a Value>,
        bool,
    );

    #[test]
    fn only_pod_creates_and_resizes_and_claim_writes_are_looked_at() {
        let stored = json!({"metadata": {"name": "x"}});
        let deleting =
            json!({"metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"}});
        let cases: &[Case<'_>] = &[
            (Operation::Create, "pods", "", "ns", None, true),
            (Operation::Update, "pods", "", "ns", Some(&stored), false),
            (
                Operation::Update,
                "pods",
                "resize",
                "ns",
                Some(&stored),
                true,
            ),
            (
                Operation::Update,
                "pods",
                "status",
                "ns",
                Some(&stored),
                false,
            ),
            (
                Operation::Create,
                "persistentvolumeclaims",
                "",
                "ns",
                None,
                true,
            ),
            (
                Operation::Update,
                "persistentvolumeclaims",
                "",
                "ns",
                Some(&stored),
                true,
            ),
            (
                Operation::Update,
                "persistentvolumeclaims",
                "",
                "ns",
                Some(&deleting),
                false,
            ),
            (Operation::Delete, "pods", "", "ns", Some(&stored), false),
            (Operation::Create, "configmaps", "", "ns", None, false),
            (Operation::Create, "pods", "", "", None, false),
        ];
        for (op, plural, sub, ns, old, want) in cases {
            assert_eq!(
                applies_to(*op, "", plural, sub, ns, *old),
                *want,
                "{op:?} {plural}/{sub} in {ns:?}"
            );
        }
        assert!(!applies_to(
            Operation::Create,
            "apps",
            "pods",
            "",
            "ns",
            None
        ));
    }
}
