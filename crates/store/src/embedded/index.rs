//! The in-memory key index: for every key, the revisions at which it changed (etcd's
//! `treeIndex`). Values stay on disk in the log; the index answers "which log record holds key K
//! at revision R" and carries each change's create revision, version and lease, so that
//! compares, counts and keys-only reads never touch the disk.
//!
//! The committer appends entries for revisions above `current` while it builds a batch; readers
//! only look at entries at or below the revision they read at, which is never above `current`,
//! so they never see a write before it is durable.

use std::collections::BTreeMap;

use super::codec::LogPos;
use crate::types::{KeyRange, LeaseId, Revision};

/// One change of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub rev: Revision,
    pub sub: u32,
    pub tombstone: bool,
    pub create_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

impl Entry {
    pub fn pos(&self) -> LogPos {
        (self.rev as u64, self.sub)
    }
}

/// The index, plus the two revisions that bound what can be read.
#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: BTreeMap<Vec<u8>, Vec<Entry>>,
    /// The latest durable (and published) revision.
    pub current: Revision,
    /// The compaction point: reads below it are refused.
    pub compact: Revision,
}

impl Index {
    pub fn new(current: Revision, compact: Revision) -> Self {
        Index {
            keys: BTreeMap::new(),
            current,
            compact,
        }
    }

    /// The key's state at `rev`, if it existed then.
    pub fn at(&self, key: &[u8], rev: Revision) -> Option<&Entry> {
        self.keys.get(key).and_then(|entries| live_at(entries, rev))
    }

    /// The key's newest state, including changes not yet durable (the committer's view).
    pub fn latest(&self, key: &[u8]) -> Option<&Entry> {
        self.at(key, Revision::MAX)
    }

    /// The keys of `range` that existed at `rev`, in key order: at most `limit` of them (0 for
    /// all), and how many there were in all.
    pub fn select(
        &self,
        range: &KeyRange,
        rev: Revision,
        limit: usize,
        want_entries: bool,
    ) -> (Vec<(&[u8], Entry)>, usize) {
        let mut out = Vec::new();
        let mut count = 0;
        if range.is_empty() {
            return (out, 0);
        }
        for (key, entries) in self.keys.range::<[u8], _>(range.bounds()) {
            if let Some(e) = live_at(entries, rev) {
                count += 1;
                if want_entries && (limit == 0 || out.len() < limit) {
                    out.push((key.as_slice(), *e));
                }
            }
        }
        (out, count)
    }

    /// Appends a change; entries of one key arrive in revision order.
    pub fn push(&mut self, key: &[u8], entry: Entry) {
        match self.keys.get_mut(key) {
            Some(entries) => entries.push(entry),
            None => {
                self.keys.insert(key.to_vec(), vec![entry]);
            }
        }
    }

    /// Drops history below `rev`, keeping for every key all changes at or above `rev` and the
    /// newest change below it unless that was a deletion (it is still the key's state at `rev`,
    /// and the previous state of the key's next change). Returns the log records to delete.
    pub fn compact(&mut self, rev: Revision) -> Vec<LogPos> {
        let mut dropped = Vec::new();
        self.keys.retain(|_, entries| {
            let below = entries.partition_point(|e| e.rev < rev);
            if below == 0 {
                return true;
            }
            let keep_from = if entries[below - 1].tombstone {
                below
            } else {
                below - 1
            };
            dropped.extend(entries.drain(..keep_from).map(|e| e.pos()));
            !entries.is_empty()
        });
        self.compact = rev;
        dropped
    }

    /// Every key's newest live entry (for rebuilding lease attachments at start-up).
    pub fn live_keys(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.keys.iter().filter_map(|(k, entries)| {
            entries
                .last()
                .filter(|e| !e.tombstone)
                .map(|e| (k.as_slice(), e))
        })
    }

    /// How many distinct keys have any retained history.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

fn live_at(entries: &[Entry], rev: Revision) -> Option<&Entry> {
    let n = entries.partition_point(|e| e.rev <= rev);
    entries[..n].last().filter(|e| !e.tombstone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(rev: Revision, create: Revision, version: i64) -> Entry {
        Entry {
            rev,
            sub: 0,
            tombstone: false,
            create_revision: create,
            version,
            lease: 0,
        }
    }

    fn del(rev: Revision) -> Entry {
        Entry {
            rev,
            sub: 0,
            tombstone: true,
            create_revision: 0,
            version: 0,
            lease: 0,
        }
    }

    #[test]
    fn at_finds_the_state_at_a_revision_across_generations() {
        let mut idx = Index::default();
        idx.push(b"k", put(2, 2, 1));
        idx.push(b"k", put(4, 2, 2));
        idx.push(b"k", del(5));
        idx.push(b"k", put(7, 7, 1));
        assert!(idx.at(b"k", 1).is_none());
        assert_eq!(idx.at(b"k", 3).map(|e| e.rev), Some(2));
        assert_eq!(idx.at(b"k", 4).map(|e| e.version), Some(2));
        assert!(idx.at(b"k", 6).is_none());
        assert_eq!(idx.latest(b"k").map(|e| e.create_revision), Some(7));
    }

    #[test]
    fn select_counts_every_match_but_returns_at_most_limit() {
        let mut idx = Index::default();
        for (i, k) in [b"a/1", b"a/2", b"a/3", b"b/1"].iter().enumerate() {
            idx.push(*k, put(i as i64 + 2, i as i64 + 2, 1));
        }
        idx.push(b"a/2", del(9));
        let (sel, count) = idx.select(&KeyRange::prefix("a/"), 8, 1, true);
        assert_eq!((sel.len(), count), (1, 3));
        let (_, count) = idx.select(&KeyRange::prefix("a/"), 9, 0, false);
        assert_eq!(count, 2, "the deletion at 9 hides a/2");
    }

    #[test]
    fn compact_keeps_the_state_at_the_compaction_point_and_drops_dead_keys() {
        let mut idx = Index::default();
        idx.push(b"k", put(2, 2, 1));
        idx.push(b"k", put(3, 2, 2));
        idx.push(b"k", put(6, 2, 3));
        idx.push(b"gone", put(2, 2, 1));
        idx.push(b"gone", del(4));
        let dropped = idx.compact(5);
        assert_eq!(dropped.len(), 3, "k@2, gone@2 and gone@4: {dropped:?}");
        assert_eq!(idx.at(b"k", 5).map(|e| e.rev), Some(3));
        assert_eq!(idx.key_count(), 1);
        assert_eq!(idx.compact, 5);
    }
}
