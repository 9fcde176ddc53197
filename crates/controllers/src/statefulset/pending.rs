//! What a StatefulSet's sync wrote and its pod cache has yet to show: the uids of pods it
//! created and of pods it deleted. Until the cache shows them (or [`EXPECTATIONS_TIMEOUT`]
//! passes), the set is not synced again, so a lagging cache never makes it create or delete
//! the same pod twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;

use crate::controller_utils::EXPECTATIONS_TIMEOUT;

/// Pod creations (by uid) and deletions (by uid) a set made that its cache has not shown yet.
#[derive(Debug, Default)]
pub(super) struct Pending {
    inner: Mutex<HashMap<String, Awaited>>,
}

#[derive(Debug)]
struct Awaited {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Instant,
}

impl Pending {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Awaited>) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn expect(&self, key: &str, uid: Option<String>, created: bool) {
        let Some(uid) = uid else { return };
        self.with(|m| {
            let a = m.entry(key.to_string()).or_insert_with(|| Awaited {
                created: HashSet::new(),
                deleted: HashSet::new(),
                since: Instant::now(),
            });
            a.since = Instant::now();
            if created {
                a.created.insert(uid);
            } else {
                a.deleted.insert(uid);
            }
        });
    }

    /// A deletion that did not happen.
    pub(super) fn unexpect_deletion(&self, key: &str, uid: Option<&str>) {
        self.with(|m| {
            if let (Some(a), Some(uid)) = (m.get_mut(key), uid) {
                a.deleted.remove(uid);
            }
        });
    }

    /// The cache dropped pod `uid`: neither its creation nor its deletion is awaited any more
    /// (a pod created and deleted before the cache showed it is never in the cache).
    pub(super) fn gone(&self, key: &str, uid: &str) {
        self.with(|m| {
            if let Some(a) = m.get_mut(key) {
                a.created.remove(uid);
                a.deleted.remove(uid);
            }
        });
    }

    /// Whether the cache (`pods` by uid) shows everything awaited for `key`.
    pub(super) fn satisfied(&self, key: &str, pods: &HashMap<&str, &Pod>) -> bool {
        self.with(|m| {
            let Some(a) = m.get_mut(key) else {
                return true;
            };
            a.created.retain(|uid| !pods.contains_key(uid.as_str()));
            a.deleted.retain(|uid| {
                pods.get(uid.as_str())
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
            });
            let done = (a.created.is_empty() && a.deleted.is_empty())
                || a.since.elapsed() > EXPECTATIONS_TIMEOUT;
            if done {
                m.remove(key);
            }
            done
        })
    }

    pub(super) fn forget(&self, key: &str) {
        self.with(|m| m.remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn pod(uid: &str, terminating: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.uid = Some(uid.into());
        if terminating {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        }
        p
    }

    #[test]
    fn syncs_wait_until_the_cache_shows_creations_and_deletions() {
        let (created, old, terminating) = (pod("new", false), pod("old", false), pod("old", true));
        let cache = |pods: &[&Pod]| -> HashMap<String, Pod> {
            pods.iter()
                .map(|p| (p.metadata.uid.clone().unwrap(), (*p).clone()))
                .collect()
        };
        // (what the sync did, the cache's pods, satisfied?)
        type Case<'a> = (&'a str, Vec<(&'a str, bool)>, Vec<&'a Pod>, bool);
        let cases: Vec<Case> = vec![
            ("nothing awaited", vec![], vec![], true),
            (
                "a creation not yet seen",
                vec![("new", true)],
                vec![],
                false,
            ),
            ("a creation seen", vec![("new", true)], vec![&created], true),
            (
                "a deletion not yet seen",
                vec![("old", false)],
                vec![&old],
                false,
            ),
            (
                "a deletion seen as terminating",
                vec![("old", false)],
                vec![&terminating],
                true,
            ),
            (
                "a deletion seen as gone",
                vec![("old", false)],
                vec![],
                true,
            ),
            (
                "both, one seen",
                vec![("new", true), ("old", false)],
                vec![&created, &old],
                false,
            ),
        ];
        for (what, writes, pods, want) in cases {
            let p = Pending::default();
            for (uid, created) in writes {
                p.expect("ns/web", Some(uid.to_string()), created);
            }
            let owned = cache(&pods);
            let by_uid: HashMap<&str, &Pod> = owned.iter().map(|(k, v)| (k.as_str(), v)).collect();
            assert_eq!(p.satisfied("ns/web", &by_uid), want, "{what}");
            assert!(
                p.satisfied("ns/other", &by_uid),
                "{what}: other sets are not held"
            );
        }
    }

    #[test]
    fn a_pod_gone_unseen_or_a_failed_deletion_is_no_longer_awaited() {
        let p = Pending::default();
        p.expect("ns/web", Some("new".into()), true);
        p.expect("ns/web", Some("old".into()), false);
        let old = pod("old", false);
        let cache: HashMap<&str, &Pod> = HashMap::from([("old", &old)]);
        assert!(!p.satisfied("ns/web", &cache));
        p.gone("ns/web", "new");
        p.unexpect_deletion("ns/web", Some("old"));
        assert!(p.satisfied("ns/web", &cache));
        p.expect("ns/web", Some("x".into()), true);
        p.forget("ns/web");
        assert!(p.satisfied("ns/web", &HashMap::new()));
    }
}
