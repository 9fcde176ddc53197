//! Restart backoff (CrashLoopBackOff), as upstream's kubelet keeps it: per container, 10 s
//! doubling to 5 min, measured from the moment the last instance finished; an entry not
//! touched for twice the maximum starts over.

use std::collections::HashMap;
use std::time::Duration;

/// The first backoff.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest backoff.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    backoff: Duration,
    /// When the entry last moved (nanoseconds since the epoch).
    updated: i64,
}

/// Backoff entries, keyed by whatever identifies a container (the pod worker uses
/// `<container name>/<spec hash>`, so a changed spec starts over as upstream's does).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Backoff {
    /// If the container must still wait after an instance that finished at `finished_at`,
    /// how long (`now` and `finished_at` in nanoseconds since the epoch).
    pub fn remaining(&self, key: &str, finished_at: i64, now: i64) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let until = finished_at.saturating_add(nanos(entry.backoff));
        (now < until).then(|| Duration::from_nanos((until - now) as u64))
    }

    /// Records a restart at `now`: the next backoff doubles (up to [`MAX`]), or starts at the
    /// initial value when the entry is new or was idle for twice the maximum.
    pub fn next(&mut self, key: &str, now: i64) {
        let entry = self.entries.entry(key.to_string()).or_insert(Entry {
            backoff: Duration::ZERO,
            updated: now,
        });
        if entry.backoff.is_zero() || now - entry.updated > 2 * nanos(MAX) {
            entry.backoff = INITIAL;
        } else {
            entry.backoff = (entry.backoff * 2).min(MAX);
        }
        entry.updated = now;
    }

    /// The current backoff of a container, if it has one.
    pub fn current(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// Forgets entries idle for twice the maximum.
    pub fn gc(&mut self, now: i64) {
        self.entries
            .retain(|_, e| now - e.updated <= 2 * nanos(MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn backoff_doubles_to_five_minutes_from_the_finish_time() {
        let mut b = Backoff::default();
        assert_eq!(b.remaining("c", 0, 0), None, "no entry: no wait");
        b.next("c", 100 * S);
        assert_eq!(b.current("c"), Some(Duration::from_secs(10)));
        // finished at 105 s: waits until 115 s
        assert_eq!(
            b.remaining("c", 105 * S, 110 * S),
            Some(Duration::from_secs(5))
        );
        assert_eq!(b.remaining("c", 105 * S, 115 * S), None);
        let mut now = 120 * S;
        let mut seen = Vec::new();
        for _ in 0..7 {
            b.next("c", now);
            seen.push(b.current("c").unwrap().as_secs());
            now += 10 * S;
        }
        assert_eq!(seen, vec![20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn an_entry_idle_for_ten_minutes_starts_over() {
        let mut b = Backoff::default();
        b.next("c", 0);
        b.next("c", S);
        assert_eq!(b.current("c"), Some(Duration::from_secs(20)));
        b.next("c", S + 601 * S);
        assert_eq!(b.current("c"), Some(Duration::from_secs(10)));
        b.gc(S + 601 * S + 601 * S);
        assert_eq!(b.current("c"), None);
    }
}
