//! The `statefulset` controller against a real API server. There is no kubelet and no
//! scheduler: a watcher records what happens to the set's pods in watch order, and plays the
//! kubelet where a test asks (pods Running and Ready through `pods/status`; pods bound through
//! the template's `nodeName` are deleted gracefully and stay terminating until the test
//! finishes them with a zero grace period).

mod common;

use std::sync::{Arc, Mutex};

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use rkube_controllers::ControllerContext;
use serde_json::{json, Value};

const NS: &str = "default";

async fn ready_namespace(client: &kube::Client) {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    wait_for("serviceaccount default", || {
        let api = api.clone();
        async move { api.get_opt("default").await.ok()? }
    })
    .await;
}

/// A set `name` of `replicas` pods with one claim template `data`; `spec` is merged over it.
fn stateful_set(name: &str, replicas: i32, spec: Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    });
    if let (Some(base), Some(over)) = (v["spec"].as_object_mut(), spec.as_object()) {
        for (k, val) in over {
            base.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).expect("stateful set")
}

/// What the watch showed, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A new pod (name, revision label).
    Created(String, String),
    /// A pod first Running and Ready (name, revision label).
    Ready(String, String),
    Terminating(String),
    Gone(String),
}

fn revision_of(pod: &Pod) -> String {
    pod.labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap_or_default()
}

fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Plays the kubelet: the pod runs and is Ready.
async fn mark_ready(pods: &Api<Pod>, name: &str) -> TestResult {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Plays the kubelet finishing a terminating pod.
async fn finish(pods: &Api<Pod>, name: &str) -> TestResult {
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await?;
    Ok(())
}

/// Records the pods of set `app` as the watch shows them; with `auto_ready`, also marks every
/// new pod Running and Ready.
#[derive(Clone)]
struct Watch {
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Watch {
    async fn start(client: &kube::Client, app: &str, auto_ready: bool) -> Self {
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let pods = Api::<Pod>::namespaced(client.clone(), NS);
        let cfg = watcher::Config::default().labels(&format!("app={app}"));
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        let record = log.clone();
        tokio::spawn(async move {
            let mut synced = Some(synced_tx);
            let mut seen = std::collections::HashMap::<String, (bool, bool)>::new();
            let mut stream = watcher(pods.clone(), cfg).boxed();
            while let Some(ev) = stream.next().await {
                let (pod, gone) = match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => (p, false),
                    Ok(watcher::Event::Delete(p)) => (p, true),
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = synced.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    _ => continue,
                };
                let (name, uid) = (pod.name_any(), pod.uid().unwrap_or_default());
                let mut out = Vec::new();
                if gone {
                    seen.remove(&uid);
                    out.push(Seen::Gone(name.clone()));
                } else {
                    let state = seen.entry(uid).or_insert_with(|| {
                        out.push(Seen::Created(name.clone(), revision_of(&pod)));
                        (false, false)
                    });
                    if is_ready(&pod) && !state.0 {
                        state.0 = true;
                        out.push(Seen::Ready(name.clone(), revision_of(&pod)));
                    }
                    if pod.metadata.deletion_timestamp.is_some() && !state.1 {
                        state.1 = true;
                        out.push(Seen::Terminating(name.clone()));
                    }
                    let pending =
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
                    if auto_ready && pending && pod.metadata.deletion_timestamp.is_none() {
                        let _ = mark_ready(&pods, &name).await;
                    }
                }
                record.lock().expect("log").extend(out);
            }
        });
        let _ = synced_rx.await;
        Watch { log }
    }

    fn log(&self) -> Vec<Seen> {
        self.log.lock().expect("log").clone()
    }

    fn position(&self, what: &Seen) -> Option<usize> {
        self.log().iter().position(|s| s == what)
    }

    async fn wait_seen(&self, what: Seen) -> usize {
        wait_for(&format!("{what:?}"), || async { self.position(&what) }).await
    }

    /// Pods terminating now.
    fn terminating(&self) -> Vec<String> {
        let log = self.log();
        log.iter()
            .filter_map(|s| match s {
                Seen::Terminating(n) => Some(n.clone()),
                _ => None,
            })
            .filter(|n| {
                let t = log.iter().rposition(|s| *s == Seen::Terminating(n.clone()));
                let g = log.iter().rposition(|s| *s == Seen::Gone(n.clone()));
                g < t
            })
            .collect()
    }
}

fn created(name: &str) -> impl Fn(&Seen) -> bool + '_ {
    move |s| matches!(s, Seen::Created(n, _) if n == name)
}

async fn set_status(
    sets: &Api<StatefulSet>,
    name: &str,
) -> Option<(StatefulSet, k8s_openapi::api::apps::v1::StatefulSetStatus)> {
    let set = sets.get(name).await.ok()?;
    let status = set.status.clone()?;
    (status.observed_generation == set.metadata.generation).then_some((set, status))
}

#[tokio::test]
async fn a_stateful_set_creates_ordinals_in_order_and_waits_for_each_to_be_ready() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,statefulset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<StatefulSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), NS);
    let watch = Watch::start(&c.client, "web", false).await;
    let set = sets
        .create(&PostParams::default(), &stateful_set("web", 3, json!({})))
        .await?;

    for i in 0..3 {
        let name = format!("web-{i}");
        wait_for(&format!("{name} created"), || async {
            watch.log().iter().any(created(&name)).then_some(())
        })
        .await;
        // Once the controller has counted the pod it has synced with it Pending: nothing above it
        // may exist yet.
        wait_for(&format!("status.replicas at least {}", i + 1), || async {
            let (_, s) = set_status(&sets, "web").await?;
            (s.replicas > i).then_some(())
        })
        .await;
        for j in i + 1..3 {
            let higher = format!("web-{j}");
            assert!(
                !watch.log().iter().any(created(&higher)),
                "{higher} before {name} is Ready: {:?}",
                watch.log()
            );
        }
        let pod = pods.get(&name).await?;
        assert_eq!(pod.labels()["statefulset.kubernetes.io/pod-name"], name);
        assert_eq!(pod.labels()["apps.kubernetes.io/pod-index"], i.to_string());
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(
            (spec.hostname.as_deref(), spec.subdomain.as_deref()),
            (Some(name.as_str()), Some("web"))
        );
        let claim_name = format!("data-web-{i}");
        let volume = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "data")
            .expect("data volume");
        assert_eq!(
            volume.persistent_volume_claim.map(|c| c.claim_name),
            Some(claim_name.clone())
        );
        let owner = pod.owner_references()[0].clone();
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("StatefulSet", set.uid().unwrap().as_str(), Some(true))
        );
        let claim = claims.get(&claim_name).await?;
        assert_eq!(claim.labels().get("app").map(String::as_str), Some("web"));
        mark_ready(&pods, &name).await?;
    }

    let status = wait_for("3 ready replicas at one revision", || async {
        let (_, s) = set_status(&sets, "web").await?;
        (s.ready_replicas == Some(3) && s.current_revision == s.update_revision).then_some(s)
    })
    .await;
    assert_eq!(
        (
            status.replicas,
            status.current_replicas,
            status.updated_replicas,
            status.available_replicas
        ),
        (3, Some(3), Some(3), Some(3))
    );
    let revision = status.update_revision.clone().unwrap_or_default();
    assert!(revision.starts_with("web-"), "{revision}");
    let revisions = Api::<ControllerRevision>::namespaced(c.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    assert_eq!(
        revisions
            .items
            .iter()
            .map(|r| r.name_any())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&revision)
    );
    for p in pods
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items
    {
        assert_eq!(revision_of(&p), revision);
    }

    // In watch order, each pod appeared only after the one below it was Ready.
    let log = watch.log();
    for i in 1..3 {
        let ready_below = log
            .iter()
            .position(|s| *s == Seen::Ready(format!("web-{}", i - 1), revision.clone()));
        let this = log.iter().position(created(&format!("web-{i}")));
        assert!(
            ready_below.is_some() && this > ready_below,
            "web-{i} before web-{} was Ready: {log:?}",
            i - 1
        );
    }

    let events = Api::<Event>::namespaced(c.client.clone(), NS);
    wait_for("upstream's creation events", || async {
        let notes: Vec<String> = events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
            .filter_map(|e| e.note)
            .collect();
        let want = [
            "create Pod web-0 in StatefulSet web successful",
            "create Claim data-web-0 Pod web-0 in StatefulSet web success",
        ];
        want.iter()
            .all(|w| notes.iter().any(|n| n == w))
            .then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,statefulset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<StatefulSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let watch = Watch::start(&c.client, "db", true).await;
    // Bound pods are deleted gracefully: they stay terminating until the "kubelet" finishes them.
    let template = json!({"metadata": {"labels": {"app": "db"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}]}});
    sets.create(
        &PostParams::default(),
        &stateful_set("db", 3, json!({"template": template})),
    )
    .await?;
    wait_for("3 ready replicas", || async {
        let (_, s) = set_status(&sets, "db").await?;
        (s.ready_replicas == Some(3)).then_some(())
    })
    .await;

    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 1}})),
    )
    .await?;
    for (victim, left) in [("db-2", 2), ("db-1", 1)] {
        watch.wait_seen(Seen::Terminating(victim.into())).await;
        // The controller has synced with the pod terminating once it no longer counts it as
        // current; it must wait for it rather than delete the next one.
        wait_for(&format!("{victim} counted out"), || async {
            let (_, s) = set_status(&sets, "db").await?;
            (s.current_replicas.unwrap_or(0) <= left).then_some(())
        })
        .await;
        assert_eq!(
            watch.terminating(),
            [victim.to_string()],
            "one at a time: {:?}",
            watch.log()
        );
        finish(&pods, victim).await?;
        watch.wait_seen(Seen::Gone(victim.into())).await;
    }
    let status = wait_for("one replica left", || async {
        let (_, s) = set_status(&sets, "db").await?;
        (s.replicas == 1 && s.ready_replicas == Some(1)).then_some(s)
    })
    .await;
    assert_eq!(status.current_replicas, Some(1));
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=db"))
        .await?
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(names, ["db-0"]);
    let log = watch.log();
    let at = |s: Seen| log.iter().position(|x| *x == s).unwrap_or(usize::MAX);
    assert!(
        at(Seen::Gone("db-2".into())) < at(Seen::Terminating("db-1".into())),
        "{log:?}"
    );
    Ok(())
}

#[tokio::test]
async fn rolling_update_with_a_partition_updates_only_ordinals_at_or_above_it_highest_first(
) -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,statefulset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<StatefulSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let watch = Watch::start(&c.client, "app", true).await;
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    sets.create(
        &PostParams::default(),
        &stateful_set("app", 3, json!({"updateStrategy": strategy})),
    )
    .await?;
    let first = wait_for("3 ready replicas", || async {
        let (_, s) = set_status(&sets, "app").await?;
        (s.ready_replicas == Some(3) && s.current_revision == s.update_revision).then_some(s)
    })
    .await;
    let r1 = first.current_revision.clone().unwrap_or_default();
    let uid_of = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get(name).await.ok().and_then(|p| p.uid()) }
    };
    let uid0 = uid_of("app-0").await;

    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}});
    sets.patch("app", &PatchParams::default(), &Patch::Strategic(&image))
        .await?;
    let partial = wait_for("ordinals 1 and 2 updated", || async {
        let (_, s) = set_status(&sets, "app").await?;
        (s.update_revision.as_ref() != Some(&r1)
            && s.updated_replicas == Some(2)
            && s.ready_replicas == Some(3))
        .then_some(s)
    })
    .await;
    let r2 = partial.update_revision.clone().unwrap_or_default();
    assert_eq!(
        (
            partial.current_revision.as_deref(),
            partial.current_replicas
        ),
        (Some(r1.as_str()), Some(1))
    );
    let mut revisions = Vec::new();
    for n in ["app-0", "app-1", "app-2"] {
        revisions.push((n.to_string(), revision_of(&pods.get(n).await?)));
    }
    assert_eq!(
        revisions,
        [
            ("app-0".into(), r1.clone()),
            ("app-1".into(), r2.clone()),
            ("app-2".into(), r2.clone())
        ]
    );
    assert_eq!(
        uid_of("app-0").await,
        uid0,
        "below the partition the pod stays"
    );
    // Highest first, each updated pod Ready before the next is deleted.
    let log = watch.log();
    let at = |log: &[Seen], s: Seen| log.iter().position(|x| *x == s).unwrap_or(usize::MAX);
    assert!(
        at(&log, Seen::Ready("app-2".into(), r2.clone())) < at(&log, Seen::Gone("app-1".into())),
        "{log:?}"
    );
    assert!(!log.contains(&Seen::Gone("app-0".into())), "{log:?}");

    let mark = watch.log().len();
    sets.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await?;
    let done = wait_for("the update completes", || async {
        let (_, s) = set_status(&sets, "app").await?;
        (s.current_revision.as_ref() == Some(&r2)
            && s.update_revision.as_ref() == Some(&r2)
            && s.ready_replicas == Some(3))
        .then_some(s)
    })
    .await;
    assert_eq!(
        (done.replicas, done.current_replicas, done.updated_replicas),
        (3, Some(3), Some(3))
    );
    let log = watch.log();
    assert!(
        at(&log[..mark], Seen::Gone("app-0".into())) == usize::MAX,
        "app-0 waited for the partition"
    );
    assert_eq!(revision_of(&pods.get("app-0").await?), r2);
    let revs = Api::<ControllerRevision>::namespaced(c.client.clone(), NS)
        .list(&ListParams::default().labels("app=app"))
        .await?;
    let mut numbered: Vec<(i64, String)> = revs
        .items
        .iter()
        .map(|r| (r.revision, r.name_any()))
        .collect();
    numbered.sort();
    assert_eq!(numbered, [(1, r1), (2, r2)]);
    Ok(())
}

#[tokio::test]
async fn parallel_creates_all_pods_at_once() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,statefulset",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<StatefulSet>::namespaced(c.client.clone(), NS);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), NS);
    let watch = Watch::start(&c.client, "par", false).await;
    sets.create(
        &PostParams::default(),
        &stateful_set("par", 3, json!({"podManagementPolicy": "Parallel"})),
    )
    .await?;
    // No pod is ever marked Ready, yet all three come.
    let status = wait_for("3 pods counted", || async {
        let (_, s) = set_status(&sets, "par").await?;
        (s.replicas == 3).then_some(s)
    })
    .await;
    assert_eq!(status.ready_replicas.unwrap_or(0), 0);
    let log = watch.log();
    assert!(
        log.iter().all(|s| matches!(s, Seen::Created(..))),
        "{log:?}"
    );
    for i in 0..3 {
        assert!(log.iter().any(created(&format!("par-{i}"))), "{log:?}");
        claims.get(&format!("data-par-{i}")).await?;
    }
    Ok(())
}

#[tokio::test]
async fn when_scaled_delete_gives_the_condemned_claim_to_its_pod() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,statefulset,garbage-collector",
    );
    ready_namespace(&c.client).await;
    let sets = Api::<StatefulSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.client.clone(), NS);
    let watch = Watch::start(&c.client, "cache", true).await;
    let template = json!({"metadata": {"labels": {"app": "cache"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}]}});
    let policy = json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
    sets.create(
        &PostParams::default(),
        &stateful_set(
            "cache",
            2,
            json!({"template": template, "persistentVolumeClaimRetentionPolicy": policy}),
        ),
    )
    .await?;
    wait_for("2 ready replicas", || async {
        let (_, s) = set_status(&sets, "cache").await?;
        (s.ready_replicas == Some(2)).then_some(())
    })
    .await;
    for n in ["data-cache-0", "data-cache-1"] {
        assert!(
            claims.get(n).await?.owner_references().is_empty(),
            "{n}: in range, retained with the set"
        );
    }
    let pod_uid = pods.get("cache-1").await?.uid().unwrap_or_default();

    sets.patch(
        "cache",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 1}})),
    )
    .await?;
    watch.wait_seen(Seen::Terminating("cache-1".into())).await;
    let refs = claims
        .get("data-cache-1")
        .await?
        .owner_references()
        .to_vec();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(
        (
            refs[0].kind.as_str(),
            refs[0].name.as_str(),
            refs[0].uid.as_str()
        ),
        ("Pod", "cache-1", pod_uid.as_str())
    );
    assert_eq!(
        (refs[0].controller, refs[0].block_owner_deletion),
        (Some(true), Some(true))
    );
    assert!(claims
        .get("data-cache-0")
        .await?
        .owner_references()
        .is_empty());

    // The pod goes, and the garbage collector takes its claim with it.
    finish(&pods, "cache-1").await?;
    wait_for("data-cache-1 collected", || async {
        claims
            .get_opt("data-cache-1")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(claims.get_opt("data-cache-0").await?.is_some());

    // Scaled up again, the ordinal gets a fresh claim.
    sets.patch(
        "cache",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 2}})),
    )
    .await?;
    wait_for("data-cache-1 again", || async {
        claims.get_opt("data-cache-1").await.ok()?.map(|_| ())
    })
    .await;
    wait_for("2 ready replicas again", || async {
        let (_, s) = set_status(&sets, "cache").await?;
        (s.ready_replicas == Some(2)).then_some(())
    })
    .await;

    // whenDeleted=Delete from now on: the claims become the set's.
    let set_uid = sets.get("cache").await?.uid().unwrap_or_default();
    let policy =
        json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}});
    sets.patch("cache", &PatchParams::default(), &Patch::Merge(&policy))
        .await?;
    for n in ["data-cache-0", "data-cache-1"] {
        wait_for(&format!("{n} owned by the set"), || async {
            let refs = claims.get(n).await.ok()?.owner_references().to_vec();
            (refs.len() == 1 && refs[0].kind == "StatefulSet" && refs[0].uid == set_uid)
                .then_some(())
        })
        .await;
    }
    Ok(())
}
