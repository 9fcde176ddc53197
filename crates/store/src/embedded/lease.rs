//! Lease bookkeeping: granted TTLs (persisted), expiry deadlines and attached keys (in memory,
//! rebuilt at start-up). As in etcd, keep-alives are not written to disk: after a restart every
//! lease gets its full TTL again.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::types::LeaseId;

#[derive(Debug)]
pub(crate) struct LeaseState {
    pub ttl: i64,
    pub expiry: Instant,
    pub keys: BTreeSet<Vec<u8>>,
}

/// Every live lease.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    map: HashMap<LeaseId, LeaseState>,
}

fn ttl_duration(ttl: i64) -> Duration {
    Duration::from_secs(ttl.max(0) as u64)
}

impl Leases {
    pub fn insert(&mut self, id: LeaseId, ttl: i64, now: Instant) {
        self.map.insert(
            id,
            LeaseState {
                ttl,
                expiry: now + ttl_duration(ttl),
                keys: BTreeSet::new(),
            },
        );
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.map.contains_key(&id)
    }

    pub fn remove(&mut self, id: LeaseId) -> Option<LeaseState> {
        self.map.remove(&id)
    }

    pub fn get(&self, id: LeaseId) -> Option<&LeaseState> {
        self.map.get(&id)
    }

    /// A fresh random id that no live lease has (etcd's ids are random positive int64s too).
    pub fn new_id(&self) -> LeaseId {
        loop {
            let id = rand::random::<i64>() & i64::MAX;
            if id != 0 && !self.map.contains_key(&id) {
                return id;
            }
        }
    }

    /// Moves `key` from lease `from` to lease `to` (0 means none).
    pub fn reattach(&mut self, key: &[u8], from: LeaseId, to: LeaseId) {
        if from == to {
            return;
        }
        if let Some(l) = self.map.get_mut(&from) {
            l.keys.remove(key);
        }
        if let Some(l) = self.map.get_mut(&to) {
            l.keys.insert(key.to_vec());
        }
    }

    /// Renews a lease that has not expired yet; returns its TTL.
    pub fn keep_alive(&mut self, id: LeaseId, now: Instant) -> Option<i64> {
        let l = self.map.get_mut(&id).filter(|l| l.expiry > now)?;
        l.expiry = now + ttl_duration(l.ttl);
        Some(l.ttl)
    }

    /// Leases whose deadline has passed.
    pub fn expired(&self, now: Instant) -> Vec<LeaseId> {
        self.map
            .iter()
            .filter(|(_, l)| l.expiry <= now)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_renews_only_unexpired_leases() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        leases.insert(1, 10, t0);
        assert_eq!(leases.keep_alive(1, t0 + Duration::from_secs(9)), Some(10));
        assert!(
            leases.expired(t0 + Duration::from_secs(18)).is_empty(),
            "renewed at 9s"
        );
        assert_eq!(leases.expired(t0 + Duration::from_secs(19)), vec![1]);
        assert_eq!(leases.keep_alive(1, t0 + Duration::from_secs(20)), None);
    }

    #[test]
    fn reattach_moves_a_key_between_leases() {
        let now = Instant::now();
        let mut leases = Leases::default();
        leases.insert(1, 10, now);
        leases.insert(2, 10, now);
        leases.reattach(b"k", 0, 1);
        leases.reattach(b"k", 1, 2);
        assert!(leases.get(1).is_some_and(|l| l.keys.is_empty()));
        assert!(leases
            .get(2)
            .is_some_and(|l| l.keys.contains(b"k".as_slice())));
    }
}
