//! Pods held by Permit plugins (Wait), as upstream's `waitingPodsMap`: the pod binds once every
//! waiting plugin has allowed it, and fails if one rejects it or the wait times out.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::Status;

struct Waiting {
    pending: HashSet<String>,
    done: oneshot::Sender<Status>,
}

/// See the module documentation.
#[derive(Default)]
pub struct WaitingPods {
    pods: Mutex<HashMap<String, Waiting>>,
}

impl std::fmt::Debug for WaitingPods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingPods")
            .field("pods", &self.pods.lock().len())
            .finish()
    }
}

impl WaitingPods {
    /// Holds pod `uid` until `plugins` all allow it; the receiver gets the verdict.
    pub fn wait(
        &self,
        uid: &str,
        plugins: impl IntoIterator<Item = String>,
    ) -> oneshot::Receiver<Status> {
        let (tx, rx) = oneshot::channel();
        self.pods.lock().insert(
            uid.to_string(),
            Waiting {
                pending: plugins.into_iter().collect(),
                done: tx,
            },
        );
        rx
    }

    /// Plugin `plugin` allows pod `uid`; the last one releases it.
    pub fn allow(&self, uid: &str, plugin: &str) {
        let mut pods = self.pods.lock();
        let release = match pods.get_mut(uid) {
            Some(w) => {
                w.pending.remove(plugin);
                w.pending.is_empty()
            }
            None => false,
        };
        if release {
            if let Some(w) = pods.remove(uid) {
                let _ = w.done.send(Status::success());
            }
        }
    }

    /// Rejects pod `uid`.
    pub fn reject(&self, uid: &str, plugin: &'static str, message: &str) {
        if let Some(w) = self.pods.lock().remove(uid) {
            let _ = w
                .done
                .send(Status::unschedulable(message).with_plugin(plugin));
        }
    }

    /// Forgets pod `uid` (its wait timed out).
    pub fn remove(&self, uid: &str) {
        self.pods.lock().remove(uid);
    }

    /// Uids of the waiting pods.
    pub fn uids(&self) -> Vec<String> {
        self.pods.lock().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_released_when_every_waiting_plugin_allows_it() {
        let w = WaitingPods::default();
        let mut rx = w.wait("u", ["A".to_string(), "B".to_string()]);
        w.allow("u", "A");
        assert!(rx.try_recv().is_err(), "B has not allowed yet");
        w.allow("u", "B");
        assert!(rx.try_recv().expect("released").is_success());
        let mut rx = w.wait("v", ["A".to_string()]);
        w.reject("v", "A", "no");
        let s = rx.try_recv().expect("rejected");
        assert!(s.is_rejected());
        assert_eq!(s.plugin(), Some("A"));
    }
}
