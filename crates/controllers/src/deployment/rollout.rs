//! The pure core of the Deployment controller: from a Deployment, its ReplicaSets and their
//! pods, the writes one sync makes (upstream's `syncDeployment`: paused and scaling syncs,
//! proportional scaling, RollingUpdate and Recreate rollouts, history cleanup, rollout
//! status and conditions).
//!
//! The planner works on copies of the ReplicaSets and changes them as upstream's sync
//! changes the live objects step by step; what it touched becomes one update per
//! ReplicaSet, in the order first touched.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use super::util::*;
use crate::controller_utils::{controller_of, controller_ref};

/// One write of a sync, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateReplicaSet(ReplicaSet),
    /// The ReplicaSet as it should be (resourceVersion from the cache guards the write).
    UpdateReplicaSet(ReplicaSet),
    DeleteReplicaSet(ReplicaSet),
    /// The Deployment's `deployment.kubernetes.io/revision` annotation.
    SetRevision(String),
    UpdateStatus(DeploymentStatus),
    Event {
        warning: bool,
        reason: &'static str,
        note: String,
    },
}

/// The writes of one sync and when to look again.
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub requeue: Option<Duration>,
}

fn created(
    rs: &ReplicaSet,
) -> (
    Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    &Option<String>,
) {
    (rs.metadata.creation_timestamp.as_ref(), &rs.metadata.name)
}

struct Planner<'a> {
    d: &'a Deployment,
    now: Timestamp,
    /// Oldest first.
    rss: Vec<ReplicaSet>,
    new: Option<usize>,
    touched: Vec<usize>,
    events: Vec<Action>,
    status: DeploymentStatus,
    revision: Option<String>,
    created: Option<ReplicaSet>,
    deletes: Vec<ReplicaSet>,
}

/// Plans one sync of `d` over the ReplicaSets it owns and their pods (read by Recreate only,
/// so a RollingUpdate caller may pass none).
pub fn plan(d: &Deployment, mut rss: Vec<ReplicaSet>, pods: &[&Pod], now: Timestamp) -> Plan {
    rss.sort_by(|a, b| created(a).cmp(&created(b)));
    let template = d.spec.as_ref().map(|s| &s.template);
    let new = rss.iter().position(|rs| {
        equal_ignore_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref()), template)
    });
    let mut p = Planner {
        d,
        now,
        rss,
        new,
        touched: Vec::new(),
        events: Vec::new(),
        status: d.status.clone().unwrap_or_default(),
        revision: None,
        created: None,
        deletes: Vec::new(),
    };
    let requeue = p.sync(pods);
    let mut actions = Vec::new();
    if let Some(rs) = p.created.take() {
        actions.push(Action::CreateReplicaSet(rs));
    }
    for i in &p.touched {
        actions.push(Action::UpdateReplicaSet(p.rss[*i].clone()));
    }
    let current_revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION));
    if let Some(r) = p.revision.take().filter(|r| Some(r) != current_revision) {
        actions.push(Action::SetRevision(r));
    }
    actions.extend(p.deletes.drain(..).map(Action::DeleteReplicaSet));
    // Events report writes already made, so they go out even if the status write loses
    // a race.
    actions.append(&mut p.events);
    if d.status.as_ref() != Some(&p.status) {
        actions.push(Action::UpdateStatus(p.status.clone()));
    }
    Plan { actions, requeue }
}

impl Planner<'_> {
    fn replicas(&self) -> i32 {
        deployment_replicas(self.d)
    }

    fn old(&self) -> Vec<usize> {
        (0..self.rss.len())
            .filter(|i| Some(*i) != self.new)
            .collect()
    }

    fn all(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    fn active(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter()
            .copied()
            .filter(|i| rs_replicas(&self.rss[*i]) > 0)
            .collect()
    }

    fn refs(&self, idx: &[usize]) -> Vec<&ReplicaSet> {
        idx.iter().map(|i| &self.rss[*i]).collect()
    }

    fn touch(&mut self, i: usize) {
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
    }

    fn event(&mut self, reason: &'static str, note: String) {
        self.events.push(Action::Event {
            warning: false,
            reason,
            note,
        });
    }

    fn sync(&mut self, pods: &[&Pod]) -> Option<Duration> {
        let d = self.d;
        if d.metadata.deletion_timestamp.is_some() {
            self.sync_revision(false);
            self.finish_status(false);
            return None;
        }
        self.check_paused_conditions();
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event() {
            self.sync_revision(false);
            self.scale();
            if paused {
                self.cleanup();
            }
            self.finish_status(false);
            return None;
        }
        if is_recreate(d) {
            self.rollout_recreate(pods)
        } else {
            self.rollout_rolling()
        }
    }

    fn check_paused_conditions(&mut self) {
        if progress_deadline(self.d).is_none() {
            return;
        }
        let cond = get_condition(&self.status, PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return;
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused && !paused_cond {
            let c = condition(
                PROGRESSING,
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
                self.now,
            );
            set_condition(&mut self.status, c);
        } else if !paused && paused_cond {
            let c = condition(
                PROGRESSING,
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
                self.now,
            );
            set_condition(&mut self.status, c);
        }
    }

    /// Upstream's `getAllReplicaSetsAndSyncRevision`: brings the new ReplicaSet's
    /// annotations up to date, or (when `create`) makes it. True when it was created.
    fn sync_revision(&mut self, create: bool) -> bool {
        let d = self.d;
        let old = self.old();
        let max_old = old
            .iter()
            .map(|i| revision(&self.rss[*i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(i) = self.new {
            let rs = &mut self.rss[i];
            let mut changed = set_new_rs_annotations(d, rs, new_revision, true);
            let spec = rs.spec.get_or_insert_with(Default::default);
            if spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0) {
                spec.min_ready_seconds = min_ready;
                changed = true;
            }
            let rev = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned();
            let name = rs.metadata.name.clone().unwrap_or_default();
            if changed {
                self.touch(i);
            }
            self.revision = rev;
            if progress_deadline(d).is_some() && get_condition(&self.status, PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set {name:?}");
                set_condition(
                    &mut self.status,
                    condition(PROGRESSING, "True", FOUND_NEW_RS, msg, self.now),
                );
            }
            return false;
        }
        if !create {
            return false;
        }
        let spec = d.spec.clone().unwrap_or_default();
        let hash = compute_hash(&spec.template, self.status.collision_count);
        let mut template = spec.template.clone();
        let tmeta = template.metadata.get_or_insert_with(Default::default);
        tmeta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = tmeta.labels.clone();
        let mut selector: LabelSelector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                owner_references: Some(vec![controller_ref(&d.metadata, "apps/v1", "Deployment")]),
                labels,
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: min_ready,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let replicas = self.new_rs_new_replicas(&rs);
        set_rs_replicas(&mut rs, replicas);
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        if replicas > 0 {
            self.event(
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
        }
        self.revision = Some(new_revision.to_string());
        if progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            set_condition(
                &mut self.status,
                condition(PROGRESSING, "True", NEW_RS_CREATED, msg, self.now),
            );
        }
        self.rss.push(rs.clone());
        self.new = Some(self.rss.len() - 1);
        self.created = Some(rs);
        true
    }

    /// Upstream's `NewRSNewReplicas`.
    fn new_rs_new_replicas(&self, new: &ReplicaSet) -> i32 {
        let d = self.d;
        let replicas = self.replicas();
        if is_recreate(d) {
            return replicas;
        }
        let others: i32 = self.rss.iter().map(rs_replicas).sum();
        let current = others + rs_replicas(new) * i32::from(self.new.is_none());
        let max_total = replicas + max_surge(d);
        if current >= max_total {
            return rs_replicas(new);
        }
        let up = (max_total - current).min(replicas - rs_replicas(new));
        rs_replicas(new) + up
    }

    /// Upstream's `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    fn is_scaling_event(&mut self) -> bool {
        self.sync_revision(false);
        let replicas = self.replicas();
        let all = self.all();
        self.active(&all)
            .iter()
            .any(|i| desired_annotation(&self.rss[*i]).is_some_and(|n| n != replicas))
    }

    /// Upstream's `scaleReplicaSet`: sets size and replica annotations; true if the size moved.
    fn scale_rs(&mut self, i: usize, to: i32) -> bool {
        let d = self.d;
        let desired = self.replicas();
        let max = desired + max_surge(d);
        let rs = &mut self.rss[i];
        let from = rs_replicas(rs);
        let size_changed = from != to;
        let mut probe = rs.clone();
        let annotations_changed = set_replicas_annotations(&mut probe, desired, max);
        if size_changed || annotations_changed {
            set_rs_replicas(&mut probe, to);
            *rs = probe;
            let name = rs.metadata.name.clone().unwrap_or_default();
            self.touch(i);
            if size_changed {
                let op = if to > from { "up" } else { "down" };
                self.event(
                    "ScalingReplicaSet",
                    format!("Scaled {op} replica set {name} from {from} to {to}"),
                );
            }
        }
        size_changed
    }

    fn scale_and_record(&mut self, i: usize, to: i32) -> bool {
        rs_replicas(&self.rss[i]) != to && self.scale_rs(i, to)
    }

    /// Upstream's `scale`: a single active ReplicaSet follows `spec.replicas`; during a
    /// rollout, extra or missing replicas are shared in proportion to each ReplicaSet's size.
    fn scale(&mut self) {
        let d = self.d;
        let replicas = self.replicas();
        let all = self.all();
        let active = self.active(&all);
        if !self.rss.is_empty() {
            let single = match active.as_slice() {
                [] => Some(self.new.unwrap_or(self.rss.len() - 1)),
                [one] => Some(*one),
                _ => None,
            };
            if let Some(i) = single {
                self.scale_and_record(i, replicas);
                return;
            }
        }
        if let Some(n) = self.new {
            let rs = &self.rss[n];
            let saturated = desired_annotation(rs) == Some(replicas)
                && rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0)
                    == replicas
                && rs_replicas(rs) == replicas;
            if saturated {
                let old = self.old();
                for i in self.active(&old) {
                    self.scale_and_record(i, 0);
                }
                return;
            }
        }
        if is_recreate(d) {
            return;
        }
        let mut active = active;
        let current: i32 = active.iter().map(|i| rs_replicas(&self.rss[*i])).sum();
        let allowed = if replicas > 0 {
            replicas + max_surge(d)
        } else {
            0
        };
        let to_add = allowed - current;
        let newer_first = to_add > 0;
        active.sort_by(|a, b| {
            let (ra, rb) = (&self.rss[*a], &self.rss[*b]);
            rs_replicas(rb).cmp(&rs_replicas(ra)).then_with(|| {
                let o = created(ra).cmp(&created(rb));
                if newer_first {
                    o.reverse()
                } else {
                    o
                }
            })
        });
        let mut added = 0;
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        for i in &active {
            let rs = &self.rss[*i];
            let proportion = if to_add != 0 {
                self.proportion(rs, to_add, added)
            } else {
                0
            };
            added += proportion;
            sizes.push((*i, rs_replicas(rs) + proportion));
        }
        if to_add != 0 {
            if let Some(first) = sizes.first_mut() {
                first.1 = (first.1 + to_add - added).max(0);
            }
        }
        for (i, size) in sizes {
            self.scale_rs(i, size);
        }
    }

    /// Upstream's `GetProportion`.
    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(rs);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// Upstream's `getReplicaSetFraction`.
    fn fraction(&self, rs: &ReplicaSet) -> i32 {
        let d = self.d;
        let replicas = self.replicas();
        if replicas == 0 {
            return -rs_replicas(rs);
        }
        let deployment_replicas = replicas + max_surge(d);
        let annotated = max_replicas_annotation(rs)
            .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        if annotated == 0 {
            return 0;
        }
        let size =
            f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
        size.round() as i32 - rs_replicas(rs)
    }

    fn rollout_rolling(&mut self) -> Option<Duration> {
        if self.sync_revision(true) {
            return self.finish_status(true);
        }
        let Some(n) = self.new else {
            return self.finish_status(true);
        };
        // reconcileNewReplicaSet
        let replicas = self.replicas();
        let new_replicas = rs_replicas(&self.rss[n]);
        if new_replicas != replicas {
            let target = if new_replicas > replicas {
                replicas
            } else {
                let rs = self.rss[n].clone();
                self.new_rs_new_replicas(&rs)
            };
            if self.scale_and_record(n, target) {
                return self.finish_status(true);
            }
        }
        if self.reconcile_old() {
            return self.finish_status(true);
        }
        if deployment_complete(self.d, &self.status_preview()) {
            self.cleanup();
        }
        self.finish_status(true)
    }

    fn status_preview(&self) -> DeploymentStatus {
        let all = self.all();
        let new = self.new.map(|n| &self.rss[n]);
        calculate_status(self.d, &self.refs(&all), new, &self.status, self.now)
    }

    /// Upstream's `reconcileOldReplicaSets`: scale old ReplicaSets down as far as
    /// `maxUnavailable` allows, unhealthy replicas first.
    fn reconcile_old(&mut self) -> bool {
        let Some(n) = self.new else { return false };
        let old = self.old();
        let old_active = self.active(&old);
        let old_count: i32 = old_active.iter().map(|i| rs_replicas(&self.rss[*i])).sum();
        if old_count == 0 {
            return false;
        }
        let all_count: i32 = self.rss.iter().map(rs_replicas).sum();
        let min_available = self.replicas() - max_unavailable(self.d);
        let new_rs = &self.rss[n];
        let new_unavailable = rs_replicas(new_rs)
            - new_rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // cleanupUnhealthyReplicas
        let mut cleaned = 0;
        for i in &old_active {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[*i];
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            let replicas = rs_replicas(rs);
            if replicas == 0 || replicas == available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(replicas - available);
            self.scale_and_record(*i, replicas - down);
            cleaned += down;
        }
        // scaleDownOldReplicaSetsForRollingUpdate
        let all = self.all();
        let available = total_available(&self.refs(&all));
        let mut scaled = 0;
        if available > min_available {
            let to_scale = available - min_available;
            for i in &old_active {
                if scaled >= to_scale {
                    break;
                }
                let replicas = rs_replicas(&self.rss[*i]);
                if replicas == 0 {
                    continue;
                }
                let down = replicas.min(to_scale - scaled);
                self.scale_and_record(*i, replicas - down);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    fn rollout_recreate(&mut self, pods: &[&Pod]) -> Option<Duration> {
        self.sync_revision(false);
        let old = self.old();
        let mut scaled = false;
        for i in self.active(&old) {
            scaled |= self.scale_and_record(i, 0);
        }
        if scaled {
            return self.finish_status(true);
        }
        if self.old_pods_running(pods) {
            return self.finish_status(true);
        }
        if self.new.is_none() {
            self.sync_revision(true);
            return self.finish_status(true);
        }
        if let Some(n) = self.new {
            let replicas = self.replicas();
            self.scale_and_record(n, replicas);
        }
        if deployment_complete(self.d, &self.status_preview()) {
            self.cleanup();
        }
        self.finish_status(true)
    }

    /// Upstream's `oldPodsRunning`: old ReplicaSets report pods, or any of their pods has
    /// not finished.
    fn old_pods_running(&self, pods: &[&Pod]) -> bool {
        let old = self.old();
        if total_status_replicas(&self.refs(&old)) > 0 {
            return true;
        }
        let new_uid = self.new.and_then(|n| self.rss[n].metadata.uid.clone());
        let old_uids: Vec<&String> = old
            .iter()
            .filter_map(|i| self.rss[*i].metadata.uid.as_ref())
            .collect();
        pods.iter().any(|p| {
            let owner = controller_of(&p.metadata).map(|r| &r.uid);
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            owner.is_some_and(|u| old_uids.contains(&u) && Some(u) != new_uid.as_ref())
                && !matches!(phase, Some("Failed") | Some("Succeeded"))
        })
    }

    /// Upstream's `cleanupDeployment`: old ReplicaSets beyond `revisionHistoryLimit`, oldest
    /// revision first, once they have no pods.
    fn cleanup(&mut self) {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return;
        };
        let mut cleanable: Vec<usize> = self
            .old()
            .into_iter()
            .filter(|i| self.rss[*i].metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i32 - limit.max(0);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| {
            let (ra, rb) = (&self.rss[*a], &self.rss[*b]);
            revision(ra)
                .cmp(&revision(rb))
                .then_with(|| created(ra).cmp(&created(rb)))
        });
        for i in cleanable.into_iter().take(diff as usize) {
            let rs = &self.rss[i];
            let status = rs.status.clone().unwrap_or_default();
            let busy = status.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation > status.observed_generation
                || self.touched.contains(&i);
            if !busy {
                self.deletes.push(rs.clone());
            }
        }
    }

    /// The status to write (upstream's `syncRolloutStatus` when `rollout`, else
    /// `syncDeploymentStatus`), and when to check the progress deadline again.
    fn finish_status(&mut self, rollout: bool) -> Option<Duration> {
        let d = self.d;
        let mut s = self.status_preview();
        let now = self.now;
        let deadline = progress_deadline(d);
        if rollout {
            if deadline.is_none() {
                remove_condition(&mut s, PROGRESSING);
            }
            let current = get_condition(&s, PROGRESSING).cloned();
            let complete_already = s.replicas == s.updated_replicas
                && current
                    .as_ref()
                    .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
            let new_name = self.new.and_then(|n| self.rss[n].metadata.name.clone());
            if deadline.is_some() && !complete_already {
                if deployment_complete(d, &s) {
                    let msg = format!(
                        "ReplicaSet {:?} has successfully progressed.",
                        new_name.clone().unwrap_or_default()
                    );
                    set_condition(
                        &mut s,
                        condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now),
                    );
                } else if deployment_progressing(d, &s) {
                    let msg = match &new_name {
                        Some(n) => format!("ReplicaSet {n:?} is progressing."),
                        None => format!(
                            "Deployment {:?} is progressing.",
                            d.metadata.name.clone().unwrap_or_default()
                        ),
                    };
                    let mut c = condition(PROGRESSING, "True", RS_UPDATED, msg, now);
                    if let Some(cur) = &current {
                        if cur.status == "True" {
                            c.last_transition_time = cur.last_transition_time.clone();
                        }
                        remove_condition(&mut s, PROGRESSING);
                    }
                    set_condition(&mut s, c);
                } else if deployment_timed_out(d, &s, now) {
                    let msg = format!(
                        "ReplicaSet {:?} has timed out progressing.",
                        new_name.unwrap_or_default()
                    );
                    set_condition(&mut s, condition(PROGRESSING, "False", TIMED_OUT, msg, now));
                }
            }
        }
        match self.replica_failure() {
            Some(c) => set_condition(&mut s, c),
            None => remove_condition(&mut s, REPLICA_FAILURE),
        }
        if s.conditions.as_ref().is_some_and(Vec::is_empty) {
            s.conditions = None;
        }
        self.status = s;
        if !rollout {
            return None;
        }
        // requeueStuckDeployment: look again when the deadline would pass.
        let cond = get_condition(&self.status, PROGRESSING)?;
        let deadline = deadline?;
        if deployment_complete(d, &self.status) || cond.reason.as_deref() == Some(TIMED_OUT) {
            return None;
        }
        let last = cond.last_update_time.as_ref()?.0.as_second();
        let after = last + i64::from(deadline) - now.as_second();
        Some(Duration::from_secs(after.max(1) as u64))
    }

    /// A `ReplicaFailure` of the new ReplicaSet, else of an old one, as a Deployment condition.
    fn replica_failure(&self) -> Option<DeploymentCondition> {
        let order = self.new.into_iter().chain(self.old());
        for i in order {
            let conds = self.rss[i]
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref());
            if let Some(c) = conds
                .into_iter()
                .flatten()
                .find(|c| c.type_ == REPLICA_FAILURE)
            {
                return Some(DeploymentCondition {
                    type_: REPLICA_FAILURE.into(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                });
            }
        }
        None
    }
}
