use super::*;
use crate::statefulset::identity::{self, claims_for, POD_NAME_LABEL};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

const OLD: &str = "web-old";
const NEW: &str = "web-new";

fn now() -> Timestamp {
    Timestamp::from_second(1_000_000).unwrap()
}

/// A set `web` with `replicas`, one claim template `data`, and `spec` merged over the
/// defaults the API gives.
fn set(replicas: i32, spec: Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 4},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        },
        "status": {"replicas": 0}
    });
    if let (Some(base), Some(over)) = (v["spec"].as_object_mut(), spec.as_object()) {
        for (k, val) in over {
            base.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

#[derive(Clone, Copy)]
enum S {
    Pending,
    Running,
    Ready,
    Failed,
    Succeeded,
    Terminating,
}

/// Pod `web-<ordinal>` of the set, at `revision`, in state `s`.
fn pod(s: &StatefulSet, ordinal: i32, state: S, revision: &str) -> Pod {
    let mut p = identity::new_pod(s, ordinal, revision);
    p.metadata.uid = Some(format!("uid-{ordinal}"));
    p.metadata.resource_version = Some("7".into());
    let (phase, ready) = match state {
        S::Pending => ("Pending", false),
        S::Running => ("Running", false),
        S::Ready | S::Terminating => ("Running", true),
        S::Failed => ("Failed", false),
        S::Succeeded => ("Succeeded", false),
    };
    if matches!(state, S::Terminating) {
        p.metadata.deletion_timestamp = Some(Time(now()));
    }
    p.status = Some(
        serde_json::from_value(json!({
            "phase": phase,
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                            "lastTransitionTime": "1970-01-01T00:00:00Z"}]
        }))
        .unwrap(),
    );
    p
}

/// The steps of each phase, one line per work.
fn summary(plan: &Plan) -> Vec<Vec<String>> {
    plan.phases
        .iter()
        .map(|phase| {
            phase
                .iter()
                .map(|work| {
                    work.iter()
                        .map(|step| match step {
                            Step::CreatePod { pod, claims } => {
                                let c: Vec<String> = claims
                                    .create
                                    .iter()
                                    .map(|c| c.metadata.name.clone().unwrap())
                                    .collect();
                                format!(
                                    "create {} {}",
                                    pod.metadata.name.as_deref().unwrap(),
                                    c.join(",")
                                )
                            }
                            Step::CreateClaims { pod, .. } => format!("claims-for {pod}"),
                            Step::UpdatePod { pod, .. } => format!("update {pod}"),
                            Step::UpdateClaims { pod, .. } => format!("owners {pod}"),
                            Step::DeletePod { pod, cause, .. } => format!("delete {pod} {cause:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" then ")
                })
                .collect()
        })
        .collect()
}

/// Claims for every pod given (as the cache would have them), plus `extra`.
fn claims_of(s: &StatefulSet, pods: &[Pod]) -> Vec<PersistentVolumeClaim> {
    pods.iter()
        .flat_map(|p| claims_for(s, identity::ordinal_of(p).unwrap()))
        .map(|(_, c)| c)
        .collect()
}

fn run(s: &StatefulSet, pods: &[Pod], claims: &[PersistentVolumeClaim]) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    let by_name: HashMap<&str, &PersistentVolumeClaim> = claims
        .iter()
        .map(|c| (c.metadata.name.as_deref().unwrap(), c))
        .collect();
    plan(&Inputs {
        set: s,
        current_set: s,
        update_set: s,
        current_revision: OLD,
        update_revision: NEW,
        collision_count: 0,
        pods: &refs,
        claims: &by_name,
        now: now(),
    })
}

fn phases(p: [&[&str]; 4]) -> Vec<Vec<String>> {
    p.iter()
        .map(|ph| ph.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn pods_are_created_and_deleted_per_management_policy() {
    let ordered = |n| set(n, json!({}));
    let parallel = |n| set(n, json!({"podManagementPolicy": "Parallel"}));
    let at = |s: &StatefulSet, list: &[(i32, S)]| -> Vec<Pod> {
        list.iter().map(|(o, st)| pod(s, *o, *st, NEW)).collect()
    };
    type Case = (
        &'static str,
        StatefulSet,
        Vec<(i32, S)>,
        [&'static [&'static str]; 4],
    );
    let cases: Vec<Case> = vec![
        (
            "ordered: only the first pod, after its claim",
            ordered(3),
            vec![],
            [&["create web-0 data-web-0"], &[], &[], &[]],
        ),
        (
            "ordered: a pending pod blocks the next",
            ordered(3),
            vec![(0, S::Pending)],
            [&[], &[], &[], &[]],
        ),
        (
            "ordered: running but not ready blocks",
            ordered(3),
            vec![(0, S::Running)],
            [&[], &[], &[], &[]],
        ),
        (
            "ordered: a ready pod lets the next be created",
            ordered(3),
            vec![(0, S::Ready)],
            [&["create web-1 data-web-1"], &[], &[], &[]],
        ),
        (
            "ordered: a gap is filled before anything above it",
            ordered(3),
            vec![(0, S::Ready), (2, S::Ready)],
            [&["create web-1 data-web-1"], &[], &[], &[]],
        ),
        (
            "ordered: a terminating pod is waited for",
            ordered(3),
            vec![(0, S::Ready), (1, S::Terminating)],
            [&[], &[], &[], &[]],
        ),
        (
            "ordered: a failed pod is deleted and nothing else done",
            ordered(3),
            vec![(0, S::Failed)],
            [&["delete web-0 Finished"], &[], &[], &[]],
        ),
        (
            "ordered: a succeeded pod too",
            ordered(2),
            vec![(0, S::Ready), (1, S::Succeeded)],
            [&["delete web-1 Finished"], &[], &[], &[]],
        ),
        (
            "parallel: all at once",
            parallel(3),
            vec![],
            [
                &[
                    "create web-0 data-web-0",
                    "create web-1 data-web-1",
                    "create web-2 data-web-2",
                ],
                &[],
                &[],
                &[],
            ],
        ),
        (
            "parallel: does not wait for pending pods",
            parallel(3),
            vec![(1, S::Pending)],
            [
                &["create web-0 data-web-0", "create web-2 data-web-2"],
                &[],
                &[],
                &[],
            ],
        ),
        (
            "parallel: failed pods are deleted beside creations",
            parallel(3),
            vec![(0, S::Failed)],
            [
                &[
                    "delete web-0 Finished",
                    "create web-1 data-web-1",
                    "create web-2 data-web-2",
                ],
                &[],
                &[],
                &[],
            ],
        ),
        (
            "ordered: scale down removes the highest ordinal only",
            ordered(2),
            vec![(0, S::Ready), (1, S::Ready), (2, S::Ready), (3, S::Ready)],
            [&[], &[], &["delete web-3 ScaleDown"], &[]],
        ),
        (
            "ordered: scale down waits for a terminating pod",
            ordered(2),
            vec![
                (0, S::Ready),
                (1, S::Ready),
                (2, S::Ready),
                (3, S::Terminating),
            ],
            [&[], &[], &[], &[]],
        ),
        (
            "ordered: scale down waits for unhealthy replicas",
            ordered(2),
            vec![(0, S::Ready), (1, S::Running), (2, S::Ready)],
            [&[], &[], &[], &[]],
        ),
        (
            "ordered: the first unhealthy condemned pod may go",
            ordered(2),
            vec![(0, S::Ready), (1, S::Ready), (2, S::Ready), (3, S::Running)],
            [&[], &[], &["delete web-3 ScaleDown"], &[]],
        ),
        (
            "ordered: but not one above a lower unhealthy one",
            ordered(2),
            vec![
                (0, S::Ready),
                (1, S::Ready),
                (2, S::Running),
                (3, S::Running),
            ],
            [&[], &[], &[], &[]],
        ),
        (
            "parallel: scale down removes all at once, skipping terminating ones",
            parallel(1),
            vec![
                (0, S::Ready),
                (1, S::Running),
                (2, S::Terminating),
                (3, S::Ready),
            ],
            [
                &[],
                &[],
                &["delete web-3 ScaleDown", "delete web-1 ScaleDown"],
                &[],
            ],
        ),
        (
            "ordered: a zero-replica set still deletes from the top",
            ordered(0),
            vec![(0, S::Ready), (1, S::Ready)],
            [&[], &[], &["delete web-1 ScaleDown"], &[]],
        ),
    ];
    for (what, s, list, want) in cases {
        let pods = at(&s, &list);
        let got = run(&s, &pods, &claims_of(&s, &pods));
        assert_eq!(summary(&got), phases(want), "{what}");
        assert_eq!(
            got.monotonic,
            s.spec.as_ref().unwrap().pod_management_policy.as_deref() != Some("Parallel")
        );
    }
}

#[test]
fn ordinals_start_at_spec_ordinals_start() {
    let s = set(
        2,
        json!({"podManagementPolicy": "Parallel", "ordinals": {"start": 5}}),
    );
    let pods = vec![pod(&s, 0, S::Ready, NEW)];
    let got = run(&s, &pods, &[]);
    assert_eq!(
        summary(&got),
        phases([
            &["create web-5 data-web-5", "create web-6 data-web-6"],
            &[],
            &["delete web-0 ScaleDown"],
            &[]
        ])
    );
}

#[test]
fn rolling_updates_go_from_the_highest_ordinal_down_to_the_partition() {
    let rolling = |partition: i32, policy: &str| {
        set(
            3,
            json!({"podManagementPolicy": policy,
                      "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}),
        )
    };
    type Case = (
        &'static str,
        StatefulSet,
        [(S, &'static str); 3],
        &'static [&'static str],
        i32,
    );
    let cases: Vec<Case> = vec![
        (
            "all old: the highest goes first",
            rolling(0, "OrderedReady"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, OLD)],
            &["delete web-2 Update"],
            2,
        ),
        (
            "then the next",
            rolling(0, "OrderedReady"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, NEW)],
            &["delete web-1 Update"],
            1,
        ),
        (
            "an updated pod that is not ready yet is waited for",
            rolling(0, "Parallel"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Running, NEW)],
            &[],
            2,
        ),
        (
            "a terminating outdated pod is waited for",
            rolling(0, "Parallel"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Terminating, OLD)],
            &[],
            2,
        ),
        (
            "the partition keeps lower ordinals",
            rolling(2, "OrderedReady"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, OLD)],
            &["delete web-2 Update"],
            2,
        ),
        (
            "done down to the partition",
            rolling(2, "OrderedReady"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, NEW)],
            &[],
            2,
        ),
        (
            "a partition above the replicas updates nothing",
            rolling(5, "OrderedReady"),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, OLD)],
            &[],
            3,
        ),
        (
            "OnDelete never deletes",
            set(3, json!({"updateStrategy": {"type": "OnDelete"}})),
            [(S::Ready, OLD), (S::Ready, OLD), (S::Ready, OLD)],
            &[],
            3,
        ),
    ];
    for (what, s, states, want, current_replicas) in cases {
        let pods: Vec<Pod> = states
            .iter()
            .enumerate()
            .map(|(i, (st, rev))| pod(&s, i as i32, *st, rev))
            .collect();
        let got = run(&s, &pods, &claims_of(&s, &pods));
        assert_eq!(summary(&got), phases([&[], &[], &[], want]), "{what}");
        assert_eq!(
            got.status.current_replicas.unwrap_or(0),
            current_replicas,
            "{what}: currentReplicas counts the deleted pod out"
        );
    }
}

#[test]
fn missing_pods_get_the_current_revision_below_the_partition() {
    let s = set(
        3,
        json!({"podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
    );
    let got = run(&s, &[], &[]);
    let revisions: Vec<String> = got.phases[0]
        .iter()
        .map(|w| match &w[0] {
            Step::CreatePod { pod, .. } => identity::pod_revision(pod).to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(revisions, [OLD, OLD, NEW]);
    // A RollingUpdate without parameters keeps status.currentReplicas pods current.
    let mut bare = set(
        3,
        json!({"podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate"}}),
    );
    bare.status.as_mut().unwrap().current_replicas = Some(1);
    let got = run(&bare, &[], &[]);
    let first = match &got.phases[0][0][0] {
        Step::CreatePod { pod, .. } => identity::pod_revision(pod).to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(first, OLD);
}

#[test]
fn status_counts_pods_by_readiness_availability_and_revision() {
    let s = set(
        3,
        json!({"minReadySeconds": 10, "podManagementPolicy": "Parallel"}),
    );
    let mut fresh = pod(&s, 1, S::Ready, NEW);
    // Ready only now: not yet available.
    fresh.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
        Some(Time(now()));
    let pods = vec![
        pod(&s, 0, S::Ready, OLD),
        fresh,
        pod(&s, 2, S::Terminating, NEW),
        pod(&s, 3, S::Pending, OLD),
    ];
    let got = run(&s, &pods, &claims_of(&s, &pods));
    let st = &got.status;
    assert_eq!(st.replicas, 4);
    assert_eq!(
        st.ready_replicas,
        Some(3),
        "terminating pods still count as ready"
    );
    assert_eq!(st.available_replicas, Some(2));
    assert_eq!(
        st.current_replicas,
        Some(2),
        "terminating pods are neither current nor updated"
    );
    assert_eq!(st.updated_replicas, Some(1));
    assert_eq!(st.observed_generation, Some(4));
    assert_eq!(
        (
            st.current_revision.as_deref(),
            st.update_revision.as_deref()
        ),
        (Some(OLD), Some(NEW))
    );
    assert_eq!(st.collision_count, Some(0));
    let empty = run(&set(0, json!({})), &[], &[]).status;
    assert_eq!(
        (empty.replicas, empty.ready_replicas, empty.current_replicas),
        (0, None, None),
        "zeros are omitted"
    );
    assert_eq!(
        empty.available_replicas,
        Some(0),
        "but availableReplicas is always written"
    );
}

#[test]
fn a_finished_rolling_update_makes_the_update_revision_current() {
    let s = set(2, json!({}));
    let status = |updated, ready, replicas| StatefulSetStatus {
        replicas,
        ready_replicas: Some(ready),
        updated_replicas: Some(updated),
        current_replicas: Some(0),
        current_revision: Some(OLD.into()),
        update_revision: Some(NEW.into()),
        ..Default::default()
    };
    let cases = [
        ((2, 2, 2), true),
        ((1, 2, 2), false),
        ((2, 1, 2), false),
        ((2, 2, 3), false),
    ];
    for ((u, r, n), done) in cases {
        let mut st = status(u, r, n);
        complete_rolling_update(&s, &mut st);
        assert_eq!(
            st.current_revision.as_deref() == Some(NEW),
            done,
            "{u}/{r}/{n}"
        );
        if done {
            assert_eq!(st.current_replicas, Some(2));
        }
    }
    let mut on_delete = status(2, 2, 2);
    complete_rolling_update(
        &set(2, json!({"updateStrategy": {"type": "OnDelete"}})),
        &mut on_delete,
    );
    assert_eq!(
        on_delete.current_revision.as_deref(),
        Some(OLD),
        "only RollingUpdate completes"
    );
}

#[test]
fn status_is_written_only_when_upstream_sees_a_change() {
    let mut s = set(1, json!({}));
    let written = StatefulSetStatus {
        observed_generation: Some(4),
        replicas: 1,
        ready_replicas: Some(1),
        current_revision: Some(OLD.into()),
        update_revision: Some(OLD.into()),
        collision_count: Some(0),
        ..Default::default()
    };
    s.status = Some(written.clone());
    assert!(!status_changed(&s, &written));
    let mut zero_as_some = written.clone();
    zero_as_some.available_replicas = Some(0);
    assert!(
        !status_changed(&s, &zero_as_some),
        "0 and absent are the same"
    );
    for change in [
        StatefulSetStatus {
            observed_generation: Some(5),
            ..written.clone()
        },
        StatefulSetStatus {
            replicas: 2,
            ..written.clone()
        },
        StatefulSetStatus {
            available_replicas: Some(1),
            ..written.clone()
        },
        StatefulSetStatus {
            update_revision: Some(NEW.into()),
            ..written.clone()
        },
    ] {
        assert!(status_changed(&s, &change), "{change:?}");
    }
}

#[test]
fn claims_are_created_with_the_pod_and_follow_the_retention_policy() {
    // whenScaled=Delete: a condemned pod's claim gets the pod as owner before the pod goes.
    let s = set(
        2,
        json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}}),
    );
    let pods: Vec<Pod> = (0..3).map(|o| pod(&s, o, S::Ready, NEW)).collect();
    let mut claims = claims_of(&s, &pods);
    for c in &mut claims[..2] {
        c.metadata.owner_references = Some(vec![crate::controller_utils::controller_ref(
            &s.metadata,
            "apps/v1",
            "StatefulSet",
        )]);
    }
    let got = run(&s, &pods, &claims);
    assert_eq!(
        summary(&got),
        phases([&[], &["owners web-2"], &["delete web-2 ScaleDown"], &[]])
    );
    let Step::UpdateClaims { claims: work, .. } = &got.phases[1][0][0] else {
        panic!()
    };
    let refs = work.owners[0].metadata.owner_references.clone().unwrap();
    assert_eq!(
        (refs.len(), refs[0].kind.as_str(), refs[0].uid.as_str()),
        (1, "Pod", "uid-2")
    );

    // A changed policy reaches the claims of healthy replicas, without touching the pods.
    let unowned = claims_of(&s, &pods[..2]);
    let got = run(&s, &pods[..2], &unowned);
    assert_eq!(
        summary(&got),
        phases([&["update web-0", "update web-1"], &[], &[], &[]])
    );
    let Step::UpdatePod {
        update,
        claims: work,
        ..
    } = &got.phases[0][0][0]
    else {
        panic!()
    };
    assert!(update.is_none(), "identity and storage are right");
    let refs = work.owners[0].metadata.owner_references.clone().unwrap();
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("StatefulSet", "set-uid")
    );

    // A new pod's claims are created owned by the set under whenDeleted=Delete.
    let got = run(&s, &[], &[]);
    let Step::CreatePod { claims: work, .. } = &got.phases[0][0][0] else {
        panic!()
    };
    let refs = work.create[0].metadata.owner_references.clone().unwrap();
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("StatefulSet", "set-uid")
    );

    // A claim still owned by an earlier pod of the same name blocks the pod's creation.
    let mut stale = claims_for(&s, 0).remove(0).1;
    stale.metadata.owner_references = Some(vec![crate::controller_utils::controller_ref(
        &pods[0].metadata,
        "v1",
        "Pod",
    )]);
    let got = run(&s, &[], &[stale.clone()]);
    assert_eq!(summary(&got), phases([&[], &[], &[], &[]]));

    // A claim being deleted is reported with the creation.
    let retain = set(1, json!({}));
    stale.metadata.deletion_timestamp = Some(Time(now()));
    stale.metadata.owner_references = None;
    let got = run(&retain, &[], &[stale]);
    let Step::CreatePod { claims: work, .. } = &got.phases[0][0][0] else {
        panic!()
    };
    assert_eq!(
        (work.create.len(), work.deleting.clone()),
        (0, vec!["data-web-0".to_string()])
    );

    // A pending pod whose claim is missing gets it.
    let pending = vec![pod(&retain, 0, S::Pending, NEW)];
    assert_eq!(
        summary(&run(&retain, &pending, &[])),
        phases([&["claims-for web-0"], &[], &[], &[]])
    );
}

#[test]
fn healthy_pods_get_their_identity_back() {
    let s = set(1, json!({}));
    let mut p = pod(&s, 0, S::Ready, NEW);
    p.metadata.labels.as_mut().unwrap().remove(POD_NAME_LABEL);
    let got = run(
        &s,
        std::slice::from_ref(&p),
        &claims_of(&s, std::slice::from_ref(&p)),
    );
    assert_eq!(summary(&got), phases([&["update web-0"], &[], &[], &[]]));
    let Step::UpdatePod {
        update: Some(u), ..
    } = &got.phases[0][0][0]
    else {
        panic!()
    };
    assert_eq!(
        u.labels.get(POD_NAME_LABEL).map(String::as_str),
        Some("web-0")
    );
    assert_eq!(
        (u.volumes.as_ref(), u.resource_version.as_deref()),
        (None, Some("7"))
    );
}

#[test]
fn a_set_being_deleted_only_reports() {
    let mut s = set(3, json!({}));
    s.metadata.deletion_timestamp = Some(Time(now()));
    let pods = vec![pod(&s, 0, S::Ready, NEW), pod(&s, 7, S::Ready, NEW)];
    let got = run(&s, &pods, &[]);
    assert_eq!(summary(&got), phases([&[], &[], &[], &[]]));
    assert_eq!(got.status.replicas, 2);
}
