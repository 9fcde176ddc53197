//! The garbage collector's work queue: upstream's workqueue semantics (a key waiting is
//! queued once; a key being processed is not handed to a second worker, and is processed
//! again afterwards if it was added meanwhile), plus delayed adds for retries.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

struct State<T> {
    ready: VecDeque<T>,
    queued: HashSet<T>,
    active: HashSet<T>,
    dirty: HashSet<T>,
}

/// A deduplicating queue of keys.
pub struct Queue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    later: mpsc::UnboundedSender<(T, Duration)>,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Queue")
            .field("ready", &s.ready.len())
            .field("active", &s.active.len())
            .finish()
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    /// A queue, and the receiver of delayed adds that [`run_delays`] must serve.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<(T, Duration)>) {
        let (later, rx) = mpsc::unbounded_channel();
        let q = Queue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                dirty: HashSet::new(),
            }),
            notify: Notify::new(),
            later,
        };
        (q, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is waiting already; a key being processed is queued again
    /// when its worker is done.
    pub fn add(&self, key: T) -> bool {
        let mut s = self.lock();
        if s.active.contains(&key) {
            return s.dirty.insert(key);
        }
        if !s.queued.insert(key.clone()) {
            return false;
        }
        s.ready.push_back(key);
        drop(s);
        self.notify.notify_one();
        true
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: T, delay: Duration) {
        // The receiver lives as long as the controller; after that nothing reads the queue.
        let _ = self.later.send((key, delay));
    }

    /// Takes the next key, waiting for one; the caller must call [`Queue::done`] with it.
    pub async fn next(&self) -> T {
        loop {
            {
                let mut s = self.lock();
                if let Some(key) = s.ready.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    return key;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Marks `key` processed; queues it again if it was added meanwhile.
    pub fn done(&self, key: &T) {
        let again = {
            let mut s = self.lock();
            s.active.remove(key);
            s.dirty.remove(key)
        };
        if again {
            self.add(key.clone());
        }
        // Another worker may be waiting while keys are ready (a wakeup was used by us).
        if !self.lock().ready.is_empty() {
            self.notify.notify_one();
        }
    }
}

/// Serves delayed adds until the queue's sender side is gone.
pub async fn run_delays<T: Clone + Eq + Hash + Send + 'static>(
    queue: std::sync::Arc<Queue<T>>,
    mut rx: mpsc::UnboundedReceiver<(T, Duration)>,
) {
    let mut timers = JoinSet::new();
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((key, delay)) => {
                    timers.spawn(async move {
                        tokio::time::sleep(delay).await;
                        key
                    });
                }
                None => return,
            },
            Some(Ok(key)) = timers.join_next(), if !timers.is_empty() => {
                queue.add(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_requeued_when_added_while_active() {
        let (q, _rx) = Queue::<u32>::new();
        assert!(q.add(1));
        assert!(!q.add(1), "waiting once");
        assert!(q.add(2));
        assert_eq!(q.next().await, 1);
        assert!(q.add(1), "added while active: marked dirty");
        assert_eq!(q.next().await, 2);
        q.done(&2);
        q.done(&1);
        assert_eq!(q.next().await, 1, "processed again after done");
    }
}
