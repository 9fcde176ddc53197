//! The garbage collector's pure core: the owner→dependents graph built from ownerReferences
//! (by uid, as upstream's `GraphBuilder`), the work each observed change causes, and the
//! decision for one object (upstream's `attemptToDeleteItem` and
//! `processDeletingDependentsItem`), given what live lookups said about its owners.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer of an owner deleted with `propagationPolicy: Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of an owner deleted with `propagationPolicy: Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// What the graph keeps of an observed object: its identity, owners, and deletion state.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    /// `deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl ObjectInfo {
    /// The object's identity and deletion state from its metadata; `None` without a uid.
    pub fn from_meta(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<Self> {
        Some(ObjectInfo {
            uid: meta.uid.clone()?,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waits for its blocking dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Being deleted with its dependents orphaned.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN_FINALIZER)
    }

    /// The reference to owner `uid`, if the object has one.
    pub fn owner(&self, uid: &str) -> Option<&OwnerReference> {
        self.owners.iter().find(|o| o.uid == uid)
    }
}

/// Work the graph asks for after a change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Work {
    /// Decide whether the object must go (upstream's `attemptToDelete` queue).
    AttemptToDelete(String),
    /// Detach the dependents of an owner being deleted with the orphan finalizer, then remove
    /// the finalizer (upstream's `attemptToOrphan` queue).
    Orphan(String),
}

#[derive(Debug, Default)]
struct Node {
    /// `None` while the object is only known as someone's owner (upstream's virtual node).
    info: Option<ObjectInfo>,
    dependents: BTreeSet<String>,
}

/// The owner→dependents graph, keyed by uid.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    /// The observed object with this uid.
    pub fn get(&self, uid: &str) -> Option<&ObjectInfo> {
        self.nodes.get(uid)?.info.as_ref()
    }

    /// The observed dependents of `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<&ObjectInfo> {
        self.nodes
            .get(uid)
            .map(|n| n.dependents.iter().filter_map(|d| self.get(d)).collect())
            .unwrap_or_default()
    }

    /// Number of observed objects.
    pub fn len(&self) -> usize {
        self.nodes.values().filter(|n| n.info.is_some()).count()
    }

    /// Whether no object is observed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an added or updated object; returns the work it causes.
    pub fn upsert(&mut self, obj: ObjectInfo) -> Vec<Work> {
        let mut work = BTreeSet::new();
        let uid = obj.uid.clone();
        let old = self.nodes.get(&uid).and_then(|n| n.info.clone());
        let old_owners: Vec<OwnerReference> =
            old.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
        // Owners dropped, or whose reference changed: unlink, and an owner waiting on its
        // dependents may now be free to go.
        for o in &old_owners {
            if obj.owners.iter().any(|n| n == o) {
                continue;
            }
            if !obj.owners.iter().any(|n| n.uid == o.uid) {
                self.unlink(&o.uid, &uid);
            }
            if self
                .get(&o.uid)
                .is_some_and(ObjectInfo::deleting_dependents)
            {
                work.insert(Work::AttemptToDelete(o.uid.clone()));
            }
        }
        // New owners: link, and check the object if one is not (yet) observed.
        for o in &obj.owners {
            if old_owners.iter().any(|x| x.uid == o.uid) {
                continue;
            }
            let owner = self.nodes.entry(o.uid.clone()).or_default();
            owner.dependents.insert(uid.clone());
            if owner.info.is_none() {
                work.insert(Work::AttemptToDelete(uid.clone()));
            }
        }
        // Deletion transitions of the object itself.
        let was_orphaning = old.as_ref().is_some_and(ObjectInfo::orphaning);
        let was_foreground = old.as_ref().is_some_and(ObjectInfo::deleting_dependents);
        if obj.orphaning() && !was_orphaning {
            work.insert(Work::Orphan(uid.clone()));
        }
        if obj.deleting_dependents() && !was_foreground {
            work.insert(Work::AttemptToDelete(uid.clone()));
            if let Some(n) = self.nodes.get(&uid) {
                for d in &n.dependents {
                    work.insert(Work::AttemptToDelete(d.clone()));
                }
            }
        }
        self.nodes.entry(uid).or_default().info = Some(obj);
        work.into_iter().collect()
    }

    /// Records a deleted object; its dependents and its foreground-deleting owners are
    /// checked again.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let mut work = BTreeSet::new();
        let Some(node) = self.nodes.get_mut(uid) else {
            return Vec::new();
        };
        let Some(info) = node.info.take() else {
            return Vec::new();
        };
        for d in &node.dependents {
            work.insert(Work::AttemptToDelete(d.clone()));
        }
        // Dependents still point at the uid; a virtual node keeps them until they are
        // updated or go, so a re-appearing uid is not mistaken for a new owner.
        if node.dependents.is_empty() {
            self.nodes.remove(uid);
        }
        for o in &info.owners {
            if self
                .get(&o.uid)
                .is_some_and(ObjectInfo::deleting_dependents)
            {
                work.insert(Work::AttemptToDelete(o.uid.clone()));
            }
            self.unlink(&o.uid, uid);
        }
        work.into_iter().collect()
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(n) = self.nodes.get_mut(owner) {
            n.dependents.remove(dependent);
            if n.info.is_none() && n.dependents.is_empty() {
                self.nodes.remove(owner);
            }
        }
    }

    /// What the decision for `uid` needs from the graph, if the object is observed.
    pub fn view(&self, uid: &str) -> Option<DependentsView> {
        let info = self.get(uid)?;
        let deps = self.dependents(uid);
        Some(DependentsView {
            has_dependents: !deps.is_empty(),
            dependent_deleting_dependents: deps.iter().any(|d| d.deleting_dependents()),
            blocking: deps
                .iter()
                .filter(|d| {
                    d.owner(&info.uid)
                        .is_some_and(|r| r.block_owner_deletion == Some(true))
                })
                .map(|d| (d.uid.clone(), d.deleting_dependents()))
                .collect(),
        })
    }
}

/// The graph's knowledge of an object's dependents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependentsView {
    pub has_dependents: bool,
    /// Some dependent is itself being deleted in the foreground (a possible cycle).
    pub dependent_deleting_dependents: bool,
    /// Dependents whose reference to the object has `blockOwnerDeletion: true`, with
    /// whether each is itself deleting its dependents.
    pub blocking: Vec<(String, bool)>,
}

/// What a live lookup said about one owner reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// No object of that kind and name with that uid (upstream's dangling reference).
    Absent,
    /// The owner exists; `deleting_dependents` when it is being deleted in the foreground.
    Present { deleting_dependents: bool },
    /// A cluster-scoped dependent naming a namespaced owner: never valid, never resolved,
    /// so the reference neither keeps the object nor condemns it (upstream forgets it).
    Invalid,
}

/// The first step for an object, before any owner is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precheck {
    /// Nothing to do.
    Nothing,
    /// A foreground-deleting object with no blocking dependents left: remove its
    /// `foregroundDeletion` finalizer (the API server then deletes it).
    RemoveForegroundFinalizer,
    /// A foreground-deleting object still blocked: check these dependents.
    CheckDependents(Vec<String>),
    /// Look its owners up, then call [`decide`].
    LookUpOwners,
}

/// Upstream's start of `attemptToDeleteItem`.
pub fn precheck(obj: &ObjectInfo, view: &DependentsView) -> Precheck {
    if obj.deleting_dependents() {
        return if view.blocking.is_empty() {
            Precheck::RemoveForegroundFinalizer
        } else {
            // Dependents deleting their own dependents will come back to us when they go.
            Precheck::CheckDependents(
                view.blocking
                    .iter()
                    .filter(|(_, deleting)| !deleting)
                    .map(|(uid, _)| uid.clone())
                    .collect(),
            )
        };
    }
    if obj.deleting || obj.owners.is_empty() {
        return Precheck::Nothing;
    }
    Precheck::LookUpOwners
}

/// How to delete an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
            Propagation::Orphan => "Orphan",
        }
    }
}

/// What to do with an object once its owners are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It has an owner that keeps it and no reference to drop.
    Keep,
    /// It has an owner that keeps it: drop the references to these owners (absent, or being
    /// deleted in the foreground).
    RemoveOwnerReferences(Vec<String>),
    /// Make its references to owners non-blocking first (to break a foreground cycle), then
    /// delete it in the foreground.
    UnblockThenDeleteForeground,
    /// Delete it.
    Delete(Propagation),
}

/// Upstream's `attemptToDeleteItem` after `classifyReferences`: `owners` pairs each owner
/// reference's uid with what a live lookup said.
pub fn decide(
    obj: &ObjectInfo,
    owners: &[(String, OwnerState)],
    view: &DependentsView,
) -> Decision {
    let mut solid = 0;
    let mut dangling = Vec::new();
    let mut waiting = Vec::new();
    for (uid, state) in owners {
        match state {
            OwnerState::Absent => dangling.push(uid.clone()),
            OwnerState::Present {
                deleting_dependents: true,
            } => waiting.push(uid.clone()),
            OwnerState::Present {
                deleting_dependents: false,
            } => solid += 1,
            OwnerState::Invalid => {}
        }
    }
    if solid > 0 {
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        return Decision::RemoveOwnerReferences([dangling, waiting].concat());
    }
    if dangling.is_empty() && waiting.is_empty() {
        // Only invalid references: nothing can be concluded.
        return Decision::Keep;
    }
    if !waiting.is_empty() && view.has_dependents {
        return if view.dependent_deleting_dependents {
            Decision::UnblockThenDeleteForeground
        } else {
            Decision::Delete(Propagation::Foreground)
        };
    }
    // No owner keeps it; honour a propagation already asked for on the object.
    if obj.has_finalizer(ORPHAN_FINALIZER) {
        Decision::Delete(Propagation::Orphan)
    } else if obj.has_finalizer(FOREGROUND_FINALIZER) {
        Decision::Delete(Propagation::Foreground)
    } else {
        Decision::Delete(Propagation::Background)
    }
}

/// The owner references left after dropping those to `uids`.
pub fn without_owners(owners: &[OwnerReference], uids: &[String]) -> Vec<OwnerReference> {
    owners
        .iter()
        .filter(|o| !uids.contains(&o.uid))
        .cloned()
        .collect()
}

/// The owner references with `blockOwnerDeletion` cleared.
pub fn unblocked(owners: &[OwnerReference]) -> Vec<OwnerReference> {
    owners
        .iter()
        .cloned()
        .map(|mut o| {
            if o.block_owner_deletion == Some(true) {
                o.block_owner_deletion = Some(false);
            }
            o
        })
        .collect()
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
