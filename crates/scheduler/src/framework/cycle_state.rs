//! `CycleState`: data plugins pass from one extension point to the next within one scheduling
//! cycle (PreFilter to Filter, PreScore to Score). Preemption clones it to simulate removing pods.

use std::any::Any;
use std::collections::{HashMap, HashSet};

/// A value stored in [`CycleState`]: any `Clone` type, so that the state can be cloned.
pub trait StateData: Send + Sync + 'static {
    /// A boxed copy.
    fn clone_data(&self) -> Box<dyn StateData>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Clone + Send + Sync + 'static> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Per-cycle plugin data, keyed by a plugin-chosen name (usually `"PreFilter" + NAME`).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter does not run this cycle.
    pub skip_filter: HashSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score does not run this cycle.
    pub skip_score: HashSet<&'static str>,
}

impl std::fmt::Debug for CycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleState")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("skip_filter", &self.skip_filter)
            .field("skip_score", &self.skip_score)
            .finish()
    }
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    /// An empty state.
    pub fn new() -> Self {
        CycleState::default()
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn write<T: Clone + Send + Sync + 'static>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// The value under `key`, if it is there and of type `T`.
    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data
            .get(key)
            .and_then(|v| (**v).as_any().downcast_ref())
    }

    /// The value under `key` for changing in place (preemption's AddPod/RemovePod).
    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .get_mut(key)
            .and_then(|v| (**v).as_any_mut().downcast_mut())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &'static str) {
        self.data.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloned_state_is_independent_of_the_original() {
        let mut s = CycleState::new();
        s.write("a", vec![1, 2]);
        let mut c = s.clone();
        c.read_mut::<Vec<i32>>("a").expect("present").push(3);
        assert_eq!(s.read::<Vec<i32>>("a"), Some(&vec![1, 2]));
        assert_eq!(c.read::<Vec<i32>>("a"), Some(&vec![1, 2, 3]));
        assert!(s.read::<String>("a").is_none(), "wrong type reads as none");
    }
}
