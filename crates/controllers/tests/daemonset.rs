//! The `daemonset` controller against a real API server. There is no scheduler and no kubelet:
//! the tests bind each daemon pod to the node its affinity pins it to through `pods/binding`,
//! and mark it Running and Ready through `pods/status`. Templates use a zero termination
//! grace period, so a deleted bound pod is gone at once instead of waiting for a kubelet.

mod common;

use std::collections::BTreeMap;

use common::{cluster, start, wait_for, TestResult, CA_PEM};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_controllers::controller_utils::{controller_of, is_pod_ready};
use rkube_controllers::daemonset::core::{target_node_name, TEMPLATE_GENERATION_LABEL};
use rkube_controllers::history::POD_REVISION_LABEL;
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

/// Creates a node with these labels and exactly these taints (admission gives a new node
/// the not-ready taint; the node lifecycle controller would lift it once the node is ready).
async fn add_node(client: &kube::Client, name: &str, labels: Value, taints: Value) -> TestResult {
    let nodes = Api::<Node>::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    set_taints(client, name, taints).await
}

async fn set_taints(client: &kube::Client, name: &str, taints: Value) -> TestResult {
    let nodes = Api::<Node>::all(client.clone());
    let patch = json!({"spec": {"taints": taints}});
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn daemon_set(name: &str, spec: Value, strategy: Value) -> DaemonSet {
    let mut pod_spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "agent:v1"}],
    });
    if let (Some(base), Some(extra)) = (pod_spec.as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": strategy,
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        }
    }))
    .expect("daemon set")
}

/// The pods the DaemonSet `uid` controls, terminating ones included.
async fn daemon_pods(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    let list = pods.list(&ListParams::default()).await.expect("list pods");
    list.items
        .into_iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .collect()
}

/// Target node → pod names, of the pods not being deleted.
fn by_node(pods: &[Pod]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let node = target_node_name(p).unwrap_or("<none>").to_string();
        out.entry(node).or_default().push(p.name_any());
    }
    out
}

fn bound(p: &Pod) -> bool {
    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
}

fn hash_of(p: &Pod) -> String {
    p.labels()
        .get(POD_REVISION_LABEL)
        .cloned()
        .unwrap_or_default()
}

/// Plays the scheduler and the kubelet: every live daemon pod is bound to the node its
/// affinity names and marked Running and Ready. A pod deleted meanwhile is skipped.
async fn settle(pods: &Api<Pod>, uid: &str) -> TestResult {
    settle_listed(pods, &daemon_pods(pods, uid).await).await
}

/// [`settle`] for pods already listed, so that no pod becomes ready before a check saw it.
async fn settle_listed(pods: &Api<Pod>, listed: &[Pod]) -> TestResult {
    for p in listed {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = p.name_any();
        let result = async {
            if !bound(p) {
                let node = target_node_name(p).expect("a pinned pod").to_string();
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name, "namespace": NS},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                pods.create_subresource::<_, Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await?;
            }
            if !is_pod_ready(p) {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?;
            }
            Ok::<(), kube::Error>(())
        }
        .await;
        match result {
            Ok(()) => {}
            // Deleted (or re-bound) under us by the controller: the next round looks again.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until the status reads `want` (desired, current, ready, available, updated,
/// misscheduled) at the current generation.
async fn wait_status(sets: &Api<DaemonSet>, name: &str, want: [i32; 6]) {
    wait_for(&format!("status {want:?} of {name}"), || async {
        let ds = sets.get(name).await.ok()?;
        let s = ds.status?;
        let got = [
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_available.unwrap_or(0),
            s.updated_number_scheduled.unwrap_or(0),
            s.number_misscheduled,
        ];
        let unavailable = s.number_unavailable.unwrap_or(0);
        (got == want
            && unavailable == want[0] - want[3]
            && s.observed_generation == ds.metadata.generation)
            .then_some(())
    })
    .await
}

async fn owned_revisions(client: &kube::Client, uid: &str) -> Vec<ControllerRevision> {
    let api = Api::<ControllerRevision>::namespaced(client.clone(), NS);
    let mut revs: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await
        .expect("list revisions")
        .items
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    revs.sort_by_key(|r| r.revision);
    revs
}

#[tokio::test]
async fn a_daemon_set_covers_every_node_that_is_added_and_tolerates_its_taints() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,daemonset",
    );
    ready_namespace(&c.client).await;
    let worker = json!({"role": "worker"});
    let infra = json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]);
    add_node(&c.client, "plain", worker.clone(), json!([])).await?;
    add_node(&c.client, "tolerated", worker.clone(), infra).await?;
    let gpu = json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]);
    add_node(&c.client, "untolerated", worker.clone(), gpu).await?;
    add_node(&c.client, "database", json!({"role": "db"}), json!([])).await?;
    let sets = Api::<DaemonSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let spec = json!({
        "nodeSelector": {"role": "worker"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra",
            "effect": "NoSchedule"}],
    });
    let ds = sets
        .create(
            &PostParams::default(),
            &daemon_set("agent", spec, json!({})),
        )
        .await?;
    let uid = ds.uid().unwrap_or_default();
    let placed = wait_for("pods on plain and tolerated", || async {
        let got = daemon_pods(&pods, &uid).await;
        let nodes = by_node(&got);
        (nodes.keys().map(String::as_str).collect::<Vec<_>>() == ["plain", "tolerated"])
            .then_some(got)
    })
    .await;
    assert_eq!(placed.len(), 2, "exactly one pod per fitting node");
    let revision = owned_revisions(&c.client, &uid).await;
    assert_eq!(revision.len(), 1, "the first revision");
    let hash = revision[0].labels()[POD_REVISION_LABEL].clone();
    for p in &placed {
        assert!(!bound(p), "the scheduler binds, not the controller");
        let node = target_node_name(p).expect("pinned");
        let affinity = serde_json::to_value(&p.spec.as_ref().expect("spec").affinity)?;
        assert_eq!(
            affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]})
        );
        assert_eq!(hash_of(p), hash);
        assert_eq!(p.labels()[TEMPLATE_GENERATION_LABEL], "1");
        let tolerations = serde_json::to_value(&p.spec.as_ref().expect("spec").tolerations)?;
        assert!(tolerations
            .as_array()
            .expect("tolerations")
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"));
    }
    settle(&pods, &uid).await?;
    wait_status(&sets, "agent", [2, 2, 2, 2, 2, 0]).await;

    // A node that joins later (and whose not-ready taint is lifted) gets its pod too.
    add_node(&c.client, "late", worker, json!([])).await?;
    let late = wait_for("a pod for the late node", || async {
        let got = daemon_pods(&pods, &uid).await;
        by_node(&got).get("late").cloned()
    })
    .await;
    assert_eq!(late.len(), 1);
    settle(&pods, &uid).await?;
    wait_status(&sets, "agent", [3, 3, 3, 3, 3, 0]).await;
    let final_nodes: Vec<String> = by_node(&daemon_pods(&pods, &uid).await)
        .into_keys()
        .collect();
    assert_eq!(final_nodes, ["late", "plain", "tolerated"]);
    Ok(())
}

#[tokio::test]
async fn a_rolling_update_replaces_pods_node_by_node_within_max_unavailable() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,daemonset",
    );
    ready_namespace(&c.client).await;
    let nodes = ["n1", "n2", "n3", "n4"];
    for n in nodes {
        add_node(&c.client, n, json!({}), json!([])).await?;
    }
    let sets = Api::<DaemonSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}});
    let ds = sets
        .create(
            &PostParams::default(),
            &daemon_set("web", json!({}), strategy),
        )
        .await?;
    let uid = ds.uid().unwrap_or_default();
    wait_for("a pod on every node", || async {
        (by_node(&daemon_pods(&pods, &uid).await).len() == 4).then_some(())
    })
    .await;
    settle(&pods, &uid).await?;
    wait_status(&sets, "web", [4, 4, 4, 4, 4, 0]).await;
    let first = owned_revisions(&c.client, &uid).await;
    assert_eq!(first.len(), 1);
    let old_hash = first[0].labels()[POD_REVISION_LABEL].clone();

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "agent:v2"}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let new_hash = wait_for("the second revision", || async {
        let revs = owned_revisions(&c.client, &uid).await;
        (revs.len() == 2).then(|| revs[1].labels()[POD_REVISION_LABEL].clone())
    })
    .await;
    assert_ne!(new_hash, old_hash);
    let most_unavailable = std::cell::Cell::new(0);
    wait_for("every node running an available new pod", || async {
        let got = daemon_pods(&pods, &uid).await;
        // Nodes without a ready pod that is not being deleted: never more than one.
        let available: Vec<String> = got
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && bound(p) && is_pod_ready(p))
            .filter_map(|p| target_node_name(p).map(str::to_string))
            .collect();
        let unavailable = nodes
            .iter()
            .filter(|n| !available.iter().any(|a| a == *n))
            .count();
        most_unavailable.set(most_unavailable.get().max(unavailable));
        assert!(
            unavailable <= 1,
            "{unavailable} nodes unavailable at once: {:?}",
            by_node(&got)
        );
        let done =
            got.len() == 4 && available.len() == 4 && got.iter().all(|p| hash_of(p) == new_hash);
        if !done {
            settle_listed(&pods, &got).await.ok()?;
        }
        done.then_some(())
    })
    .await;
    assert_eq!(
        most_unavailable.get(),
        1,
        "the update went through unavailable nodes one at a time"
    );
    wait_status(&sets, "web", [4, 4, 4, 4, 4, 0]).await;
    let revs = owned_revisions(&c.client, &uid).await;
    let numbers: Vec<i64> = revs.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [1, 2]);
    Ok(())
}

#[tokio::test]
async fn a_surging_update_starts_each_new_pod_beside_the_old_one() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,daemonset",
    );
    ready_namespace(&c.client).await;
    let nodes = ["n1", "n2", "n3"];
    for n in nodes {
        add_node(&c.client, n, json!({}), json!([])).await?;
    }
    let sets = Api::<DaemonSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}});
    let ds = sets
        .create(
            &PostParams::default(),
            &daemon_set("dns", json!({}), strategy),
        )
        .await?;
    let uid = ds.uid().unwrap_or_default();
    wait_for("a pod on every node", || async {
        (by_node(&daemon_pods(&pods, &uid).await).len() == 3).then_some(())
    })
    .await;
    settle(&pods, &uid).await?;
    wait_status(&sets, "dns", [3, 3, 3, 3, 3, 0]).await;

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "agent:v2"}]}}}});
    sets.patch("dns", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let new_hash = wait_for("the second revision", || async {
        let revs = owned_revisions(&c.client, &uid).await;
        (revs.len() == 2).then(|| revs[1].labels()[POD_REVISION_LABEL].clone())
    })
    .await;
    let most_surging = std::cell::Cell::new(0);
    wait_for("every node running only an available new pod", || async {
        let got = daemon_pods(&pods, &uid).await;
        let live = by_node(&got);
        let ready_on = |n: &str| {
            got.iter().any(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && bound(p)
                    && is_pod_ready(p)
                    && target_node_name(p) == Some(n)
            })
        };
        // With no unavailability allowed, every node keeps an available pod throughout,
        // and at most maxSurge nodes wait for a new pod beside the old one.
        assert!(
            nodes.iter().all(|n| ready_on(n)),
            "a node went unavailable: {live:?}"
        );
        let surging = nodes
            .iter()
            .filter(|n| {
                let on: Vec<&Pod> = got
                    .iter()
                    .filter(|p| {
                        p.metadata.deletion_timestamp.is_none() && target_node_name(p) == Some(**n)
                    })
                    .collect();
                on.len() > 1
                    && on
                        .iter()
                        .any(|p| hash_of(p) == new_hash && !is_pod_ready(p))
            })
            .count();
        most_surging.set(most_surging.get().max(surging));
        assert!(surging <= 1, "{surging} nodes surged at once: {live:?}");
        let done = got.len() == 3
            && live.len() == 3
            && got
                .iter()
                .all(|p| hash_of(p) == new_hash && is_pod_ready(p));
        if !done {
            settle_listed(&pods, &got).await.ok()?;
        }
        done.then_some(())
    })
    .await;
    assert_eq!(most_surging.get(), 1, "new pods started beside old ones");
    wait_status(&sets, "dns", [3, 3, 3, 3, 3, 0]).await;
    Ok(())
}

#[tokio::test]
async fn on_delete_leaves_old_pods_until_they_are_deleted() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,daemonset",
    );
    ready_namespace(&c.client).await;
    for n in ["n1", "n2"] {
        add_node(&c.client, n, json!({}), json!([])).await?;
    }
    let sets = Api::<DaemonSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let ds = sets
        .create(
            &PostParams::default(),
            &daemon_set("logs", json!({}), json!({"type": "OnDelete"})),
        )
        .await?;
    let uid = ds.uid().unwrap_or_default();
    wait_for("a pod on both nodes", || async {
        (by_node(&daemon_pods(&pods, &uid).await).len() == 2).then_some(())
    })
    .await;
    settle(&pods, &uid).await?;
    wait_status(&sets, "logs", [2, 2, 2, 2, 2, 0]).await;
    let before = by_node(&daemon_pods(&pods, &uid).await);

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "agent:v2"}]}}}});
    sets.patch("logs", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    // The new generation is observed with no pod updated: nothing was replaced.
    wait_status(&sets, "logs", [2, 2, 2, 2, 0, 0]).await;
    assert_eq!(owned_revisions(&c.client, &uid).await.len(), 2);
    assert_eq!(
        by_node(&daemon_pods(&pods, &uid).await),
        before,
        "old pods stay"
    );

    let victim = before["n1"][0].clone();
    pods.delete(&victim, &DeleteParams::default()).await?;
    let replacement = wait_for("a new pod on n1", || async {
        let got = daemon_pods(&pods, &uid).await;
        got.into_iter()
            .find(|p| target_node_name(p) == Some("n1") && p.name_any() != victim)
    })
    .await;
    let revs = owned_revisions(&c.client, &uid).await;
    assert_eq!(hash_of(&replacement), revs[1].labels()[POD_REVISION_LABEL]);
    settle(&pods, &uid).await?;
    wait_status(&sets, "logs", [2, 2, 2, 2, 1, 0]).await;
    let after = by_node(&daemon_pods(&pods, &uid).await);
    assert_eq!(
        after["n2"], before["n2"],
        "the pod not deleted is still the old one"
    );
    Ok(())
}

#[tokio::test]
async fn an_untolerated_no_execute_taint_removes_the_nodes_daemon_pod() -> TestResult {
    let c = cluster().await?;
    let _ctl = start(
        &c,
        ControllerContext::new(CA_PEM),
        "serviceaccount,daemonset",
    );
    ready_namespace(&c.client).await;
    for n in ["n1", "n2"] {
        add_node(&c.client, n, json!({}), json!([])).await?;
    }
    let sets = Api::<DaemonSet>::namespaced(c.client.clone(), NS);
    let pods = Api::<Pod>::namespaced(c.client.clone(), NS);
    let ds = sets
        .create(
            &PostParams::default(),
            &daemon_set("probe", json!({}), json!({})),
        )
        .await?;
    let uid = ds.uid().unwrap_or_default();
    wait_for("a pod on both nodes", || async {
        (by_node(&daemon_pods(&pods, &uid).await).len() == 2).then_some(())
    })
    .await;
    settle(&pods, &uid).await?;
    wait_status(&sets, "probe", [2, 2, 2, 2, 2, 0]).await;
    let before = by_node(&daemon_pods(&pods, &uid).await);

    // NoSchedule on n2 keeps its running pod (now misscheduled); NoExecute on n1 evicts.
    let no_schedule = json!([{"key": "maintenance", "effect": "NoSchedule"}]);
    set_taints(&c.client, "n2", no_schedule).await?;
    let no_execute = json!([{"key": "maintenance", "effect": "NoExecute"}]);
    set_taints(&c.client, "n1", no_execute).await?;
    wait_for("n1's pod gone, n2's counted as misscheduled", || async {
        let s = sets.get("probe").await.ok()?.status?;
        let gone = !by_node(&daemon_pods(&pods, &uid).await).contains_key("n1");
        (gone && s.desired_number_scheduled == 0 && s.number_misscheduled == 1).then_some(())
    })
    .await;
    let after = by_node(&daemon_pods(&pods, &uid).await);
    assert_eq!(
        after.get("n2"),
        before.get("n2"),
        "NoSchedule does not evict"
    );
    assert!(!after.contains_key("n1"));
    Ok(())
}
