//! The scheduler against the real API server, with Node objects and no kubelets.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, PostParams};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_fill_the_nodes_then_fail_with_upstreams_summary() -> TestResult {
    let c = cluster("").await?;
    for n in ["n1", "n2"] {
        add_node(&c, node_json(n, 1000, 4096, json!({}), json!([]))).await?;
    }
    for i in 0..4 {
        add_pod(&c, pod_json(&format!("p{i}"), 500, json!({}), json!({}))).await?;
    }
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..4 {
        *per_node
            .entry(wait_bound(&c, &format!("p{i}"), T).await?)
            .or_default() += 1;
    }
    assert_eq!(per_node.get("n1"), Some(&2), "{per_node:?}");
    assert_eq!(per_node.get("n2"), Some(&2), "{per_node:?}");

    add_pod(&c, pod_json("extra", 500, json!({}), json!({}))).await?;
    let msg = wait_unschedulable(&c, "extra").await?;
    assert!(
        msg.starts_with("0/2 nodes are available: 2 Insufficient cpu."),
        "{msg}"
    );
    let ev = wait_for("FailedScheduling event", T, || async {
        events_for(&c, "extra", "FailedScheduling")
            .await
            .into_iter()
            .next()
    })
    .await?;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(ev
        .message
        .unwrap_or_default()
        .starts_with("0/2 nodes are available"));
    let ok = wait_for("Scheduled event", T, || async {
        events_for(&c, "p0", "Scheduled").await.into_iter().next()
    })
    .await?;
    let note = ok.message.unwrap_or_default();
    assert!(
        note.starts_with("Successfully assigned default/p0 to n"),
        "{note}"
    );
    assert!(c.metrics.attempts("scheduled", "default-scheduler") >= 4);
    assert!(c.metrics.attempts("unschedulable", "default-scheduler") >= 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_repel_pods_that_do_not_tolerate_them() -> TestResult {
    let c = cluster("").await?;
    let taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    add_node(&c, node_json("tainted", 4000, 4096, json!({}), taint)).await?;
    add_pod(&c, pod_json("plain", 100, json!({}), json!({}))).await?;
    let msg = wait_unschedulable(&c, "plain").await?;
    assert!(
        msg.contains("1 node(s) had untolerated taint {dedicated: gpu}"),
        "{msg}"
    );
    let tol = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]});
    add_pod(&c, pod_json("tolerating", 100, json!({}), tol)).await?;
    assert_eq!(wait_bound(&c, "tolerating", T).await?, "tainted");
    assert_eq!(node_of(&c, "plain").await, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_anti_affinity_spreads_replicas_over_nodes() -> TestResult {
    let c = cluster("").await?;
    for n in ["a", "b", "c"] {
        add_node(&c, node_json(n, 8000, 8192, json!({}), json!([]))).await?;
    }
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..4 {
        add_pod(
            &c,
            pod_json(&format!("web{i}"), 100, json!({"app": "web"}), anti.clone()),
        )
        .await?;
    }
    // three fit, one per node; the fourth has nowhere to go
    let mut nodes = Vec::new();
    let deadline = Instant::now() + T;
    while nodes.len() < 3 && Instant::now() < deadline {
        nodes.clear();
        for i in 0..4 {
            if let Some(n) = node_of(&c, &format!("web{i}")).await {
                nodes.push(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes.sort();
    assert_eq!(nodes, ["a", "b", "c"]);
    let mut unbound = None;
    for i in 0..4 {
        let name = format!("web{i}");
        if node_of(&c, &name).await.is_none() {
            unbound = Some(name);
        }
    }
    let unbound = unbound.ok_or("every replica was bound")?;
    let msg = wait_unschedulable(&c, &unbound).await?;
    assert!(
        msg.contains("3 node(s) didn't match pod anti-affinity rules"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_keeps_zones_within_max_skew() -> TestResult {
    let c = cluster("").await?;
    for (n, zone) in [("z1a", "z1"), ("z1b", "z1"), ("z2a", "z2"), ("z3a", "z3")] {
        add_node(
            &c,
            node_json(
                n,
                16000,
                16384,
                json!({"topology.kubernetes.io/zone": zone}),
                json!([]),
            ),
        )
        .await?;
    }
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    let mut zones: HashMap<String, usize> = HashMap::new();
    for i in 0..9 {
        let name = format!("s{i}");
        add_pod(
            &c,
            pod_json(&name, 100, json!({"app": "spread"}), spread.clone()),
        )
        .await?;
        let node = wait_bound(&c, &name, T).await?;
        let zone = node[..2].to_string();
        *zones.entry(zone).or_default() += 1;
        let max = zones.values().max().copied().unwrap_or(0);
        let min = ["z1", "z2", "z3"]
            .iter()
            .map(|z| zones.get(*z).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        assert!(max - min <= 1, "skew exceeded after {name}: {zones:?}");
    }
    assert_eq!(
        zones
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<usize>(),
        9
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_pod_preempts_a_lower_one_and_lands() -> TestResult {
    let c = cluster("").await?;
    let pcs: Api<PriorityClass> = Api::all(c.admin.clone());
    pcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000}))?,
    )
    .await?;
    add_node(&c, node_json("only", 1000, 4096, json!({}), json!([]))).await?;
    add_pod(&c, pod_json("low", 800, json!({}), json!({}))).await?;
    wait_bound(&c, "low", T).await?;
    add_pod(
        &c,
        pod_json("high", 800, json!({}), json!({"priorityClassName": "high"})),
    )
    .await?;
    // the victim is evicted: marked DisruptionTarget and deleted gracefully (terminating until
    // its kubelet confirms; there is none here, so the test confirms it)
    let pods: Api<Pod> = Api::namespaced(c.admin.clone(), "default");
    let victim = wait_for("victim terminating", T, || async {
        pods.get_opt("low")
            .await
            .ok()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await?;
    let cond = victim
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "DisruptionTarget"))
        .ok_or("no DisruptionTarget condition")?;
    assert_eq!(cond.reason.as_deref(), Some("PreemptionByScheduler"));
    let high = get_pod(&c, "high").await?;
    assert_eq!(
        high.status.and_then(|s| s.nominated_node_name).as_deref(),
        Some("only"),
        "the preemptor waits for its nominated node"
    );
    assert_eq!(
        node_of(&c, "high").await,
        None,
        "not before the victim is gone"
    );
    pods.delete("low", &kube::api::DeleteParams::default().grace_period(0))
        .await?;
    assert_eq!(wait_bound(&c, "high", T).await?, "only");
    wait_for("the preemptor's FailedScheduling event", T, || async {
        events_for(&c, "high", "FailedScheduling")
            .await
            .into_iter()
            .next()
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_is_scheduled_within_a_second_of_a_node_being_added() -> TestResult {
    let c = cluster("").await?;
    add_node(&c, node_json("small", 100, 4096, json!({}), json!([]))).await?;
    add_pod(&c, pod_json("big", 2000, json!({}), json!({}))).await?;
    wait_unschedulable(&c, "big").await?;
    // a big node joins not ready (admission taints it); the pod is retried and still fails
    add_node_not_ready(&c, node_json("large", 4000, 4096, json!({}), json!([]))).await?;
    wait_for("retried against the new node", T, || async {
        let p = get_pod(&c, "big").await.ok()?;
        let msg = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?
            .message?;
        msg.starts_with("0/2 nodes").then_some(())
    })
    .await?;
    // let that attempt's backoff (at most 2 s) run out, so only event handling is measured
    let failed_at = Instant::now();
    wait_for("backoff over", Duration::from_secs(5), || async {
        (failed_at.elapsed() >= Duration::from_millis(2100)).then_some(())
    })
    .await?;
    // the node becomes ready: the event that makes the pod fit
    mark_ready(&c, "large").await?;
    assert_eq!(
        wait_bound(&c, "big", Duration::from_secs(1)).await?,
        "large"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_for_another_scheduler_are_left_alone() -> TestResult {
    let c = cluster("").await?;
    add_node(&c, node_json("n", 4000, 4096, json!({}), json!([]))).await?;
    add_pod(
        &c,
        pod_json("theirs", 100, json!({}), json!({"schedulerName": "other"})),
    )
    .await?;
    add_pod(&c, pod_json("ours", 100, json!({}), json!({}))).await?;
    wait_bound(&c, "ours", T).await?;
    assert_eq!(node_of(&c, "theirs").await, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_profile_schedules_its_own_pods() -> TestResult {
    let cfg = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      - name: NodeResourcesFit
      enabled:
      - name: NodeResourcesFit
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#;
    let c = cluster(cfg).await?;
    add_node(&c, node_json("empty", 4000, 4096, json!({}), json!([]))).await?;
    add_node(&c, node_json("busy", 4000, 4096, json!({}), json!([]))).await?;
    add_pod(
        &c,
        pod_json("filler", 3000, json!({}), json!({"nodeName": "busy"})),
    )
    .await?;
    // MostAllocated packs onto the fuller node
    add_pod(
        &c,
        pod_json("packed", 500, json!({}), json!({"schedulerName": "packer"})),
    )
    .await?;
    assert_eq!(wait_bound(&c, "packed", T).await?, "busy");
    // the default profile (LeastAllocated) spreads to the emptier one
    add_pod(&c, pod_json("spread", 500, json!({}), json!({}))).await?;
    assert_eq!(wait_bound(&c, "spread", T).await?, "empty");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_pods_wait_until_their_gates_are_removed() -> TestResult {
    let c = cluster("").await?;
    add_node(&c, node_json("n", 4000, 4096, json!({}), json!([]))).await?;
    add_pod(
        &c,
        pod_json(
            "gated",
            100,
            json!({}),
            json!({"schedulingGates": [{"name": "wait"}]}),
        ),
    )
    .await?;
    add_pod(&c, pod_json("free", 100, json!({}), json!({}))).await?;
    wait_bound(&c, "free", T).await?;
    assert_eq!(
        node_of(&c, "gated").await,
        None,
        "gated pods are not scheduled"
    );
    let pods: Api<Pod> = Api::namespaced(c.admin.clone(), "default");
    let patch = json!({"spec": {"schedulingGates": null}});
    pods.patch(
        "gated",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    assert_eq!(wait_bound(&c, "gated", T).await?, "n");
    Ok(())
}
