use super::*;
use crate::pod::observed::Sandbox;
use k8s_openapi::api::core::v1::PodSpec;

const S: i64 = 1_000_000_000;

fn pod(policy: &str, init: &[(&str, bool)], regular: &[&str]) -> Pod {
    let c = |name: &str| SpecContainer {
        name: name.into(),
        image: Some("busybox".into()),
        ..Default::default()
    };
    Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("u".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: Some(
                init.iter()
                    .map(|(n, sidecar)| SpecContainer {
                        restart_policy: sidecar.then(|| "Always".to_string()),
                        ..c(n)
                    })
                    .collect(),
            ),
            containers: regular.iter().map(|n| c(n)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn sandbox(id: &str, ready: bool, attempt: u32, created: i64) -> Sandbox {
    Sandbox {
        id: id.into(),
        attempt,
        ready,
        created_at: created,
        ips: vec![],
    }
}

fn ctr(
    id: &str,
    name: &str,
    sb: &str,
    state: State,
    exit: i32,
    restarts: u32,
    t: i64,
) -> Container {
    Container {
        id: id.into(),
        name: name.into(),
        sandbox_id: sb.into(),
        state,
        attempt: restarts,
        restart_count: restarts,
        hash: "h".into(),
        image: "busybox".into(),
        image_ref: "sha256:x".into(),
        created_at: t,
        started_at: t,
        finished_at: if state == State::Exited { t + S } else { 0 },
        exit_code: exit,
        reason: String::new(),
        message: String::new(),
        log_path: String::new(),
    }
}

struct Case {
    pod: Pod,
    runtime: PodRuntime,
    probes: ProbeView,
    backoff: Backoff,
    now: i64,
}

impl Case {
    fn new(pod: Pod, sandboxes: Vec<Sandbox>, containers: Vec<Container>) -> Case {
        Case {
            pod,
            runtime: PodRuntime {
                sandboxes,
                containers,
            },
            probes: ProbeView::default(),
            backoff: Backoff::default(),
            now: 100 * S,
        }
    }
    fn plan(&self) -> Plan {
        let hashes: HashMap<String, String> = spec_containers(&self.pod)
            .iter()
            .map(|(c, _)| (c.name.clone(), "h".to_string()))
            .collect();
        plan(Input {
            pod: &self.pod,
            runtime: &self.runtime,
            probes: &self.probes,
            backoff: &self.backoff,
            hashes: &hashes,
            now: self.now,
        })
    }
}

fn started(p: &Plan) -> Vec<(&str, u32)> {
    p.start
        .iter()
        .map(|s| (s.name.as_str(), s.restart_count))
        .collect()
}

#[test]
fn a_new_pod_gets_a_sandbox_and_all_its_containers() {
    let p = Case::new(pod("Always", &[], &["a", "b"]), vec![], vec![]).plan();
    assert_eq!(p.create_sandbox, Some(0));
    assert!(!p.kill_pod);
    assert_eq!(started(&p), vec![("a", 0), ("b", 0)]);
}

#[test]
fn a_new_pod_with_init_containers_starts_only_the_first() {
    let p = Case::new(
        pod("Always", &[("i1", false), ("i2", false)], &["a"]),
        vec![],
        vec![],
    )
    .plan();
    assert_eq!(p.create_sandbox, Some(0));
    assert_eq!(started(&p), vec![("i1", 0)]);
}

#[test]
fn init_containers_run_in_order_then_the_containers() {
    let pd = pod("Always", &[("i1", false), ("i2", false)], &["a", "b"]);
    let sb = || vec![sandbox("s", true, 0, S)];
    // i1 running: wait
    let p = Case::new(
        pd.clone(),
        sb(),
        vec![ctr("1", "i1", "s", State::Running, 0, 0, S)],
    )
    .plan();
    assert_eq!(p, Plan::default());
    // i1 done: i2
    let p = Case::new(
        pd.clone(),
        sb(),
        vec![ctr("1", "i1", "s", State::Exited, 0, 0, S)],
    )
    .plan();
    assert_eq!(started(&p), vec![("i2", 0)]);
    // both done: the containers
    let p = Case::new(
        pd.clone(),
        sb(),
        vec![
            ctr("1", "i1", "s", State::Exited, 0, 0, S),
            ctr("2", "i2", "s", State::Exited, 0, 0, 2 * S),
        ],
    )
    .plan();
    assert_eq!(started(&p), vec![("a", 0), ("b", 0)]);
}

#[test]
fn a_failed_init_container_restarts_unless_the_policy_is_never() {
    let runtime = || {
        (
            vec![sandbox("s", true, 0, S)],
            vec![ctr("1", "i1", "s", State::Exited, 1, 0, S)],
        )
    };
    let (s, c) = runtime();
    let p = Case::new(pod("OnFailure", &[("i1", false)], &["a"]), s, c).plan();
    assert_eq!(started(&p), vec![("i1", 1)]);
    assert_eq!(p.start[0].backoff_key.as_deref(), Some("i1/h"));
    let (s, c) = runtime();
    let p = Case::new(pod("Never", &[("i1", false)], &["a"]), s, c).plan();
    assert!(p.terminal);
    assert!(p.kill_pod, "the sandbox is still ready and is stopped");
    assert!(p.start.is_empty());
}

#[test]
fn sidecars_start_before_later_init_containers_and_keep_running() {
    let pd = pod("Never", &[("side", true), ("i1", false)], &["a"]);
    let sb = || vec![sandbox("s", true, 0, S)];
    let p = Case::new(pd.clone(), vec![], vec![]).plan();
    assert_eq!(started(&p), vec![("side", 0)]);
    // sidecar running: the init container
    let p = Case::new(
        pd.clone(),
        sb(),
        vec![ctr("1", "side", "s", State::Running, 0, 0, S)],
    )
    .plan();
    assert_eq!(started(&p), vec![("i1", 0)]);
    // the sidecar exits while the main container runs: it restarts even under Never
    let p = Case::new(
        pd.clone(),
        sb(),
        vec![
            ctr("1", "side", "s", State::Exited, 1, 0, S),
            ctr("2", "i1", "s", State::Exited, 0, 0, S),
            ctr("3", "a", "s", State::Running, 0, 0, 2 * S),
        ],
    )
    .plan();
    assert_eq!(started(&p), vec![("side", 1)]);
    // the main container finished: the pod is done, the sidecar stopped
    let p = Case::new(
        pd,
        sb(),
        vec![
            ctr("1", "side", "s", State::Running, 0, 0, S),
            ctr("2", "i1", "s", State::Exited, 0, 0, S),
            ctr("3", "a", "s", State::Exited, 0, 0, 2 * S),
        ],
    )
    .plan();
    assert!(p.terminal && p.kill_pod);
    assert!(p.start.is_empty());
}

#[test]
fn restart_policies_decide_which_exits_restart() {
    let run = |policy: &str, exit: i32| {
        Case::new(
            pod(policy, &[], &["a"]),
            vec![sandbox("s", true, 0, S)],
            vec![ctr("1", "a", "s", State::Exited, exit, 0, S)],
        )
        .plan()
    };
    assert_eq!(started(&run("Always", 0)), vec![("a", 1)]);
    assert_eq!(started(&run("Always", 1)), vec![("a", 1)]);
    assert_eq!(started(&run("OnFailure", 1)), vec![("a", 1)]);
    let done = run("OnFailure", 0);
    assert!(done.start.is_empty() && done.terminal && done.kill_pod);
    let failed = run("Never", 1);
    assert!(failed.start.is_empty() && failed.terminal && failed.kill_pod);
}

#[test]
fn a_crashing_container_backs_off() {
    let mut case = Case::new(
        pod("Always", &[], &["a"]),
        vec![sandbox("s", true, 0, S)],
        vec![ctr("1", "a", "s", State::Exited, 1, 3, 90 * S)],
    );
    // finished at 91 s, backoff 10 s recorded at the last restart: waits until 101 s
    case.backoff.next("a/h", 80 * S);
    case.now = 95 * S;
    let p = case.plan();
    assert!(p.start.is_empty());
    assert_eq!(p.waiting.len(), 1);
    assert_eq!(p.waiting[0].reason, "CrashLoopBackOff");
    assert_eq!(p.waiting[0].remaining, Duration::from_secs(6));
    assert_eq!(
        p.waiting[0].message,
        "back-off 10s restarting failed container=a pod=p_ns(u)"
    );
    case.now = 101 * S;
    assert_eq!(started(&case.plan()), vec![("a", 4)]);
}

#[test]
fn a_changed_spec_or_a_failed_liveness_probe_kills_the_container() {
    let mut case = Case::new(
        pod("Always", &[], &["a"]),
        vec![sandbox("s", true, 0, S)],
        vec![ctr("1", "a", "s", State::Running, 0, 0, S)],
    );
    assert_eq!(
        case.plan(),
        Plan::default(),
        "a healthy running pod needs nothing"
    );
    case.runtime.containers[0].hash = "old".into();
    assert_eq!(case.plan().kill[0].reason, KillReason::SpecChanged);
    case.runtime.containers[0].hash = "h".into();
    case.probes
        .restart
        .insert("a".into(), ("1".into(), "failed liveness".into()));
    assert_eq!(
        case.plan().kill[0].reason,
        KillReason::Unhealthy("failed liveness".into())
    );
    // a result about an earlier instance does not kill the new one
    case.probes
        .restart
        .insert("a".into(), ("0".into(), "x".into()));
    assert!(case.plan().kill.is_empty());
}

#[test]
fn a_dead_sandbox_is_replaced_and_counts_continue() {
    let p = Case::new(
        pod("Always", &[], &["a"]),
        vec![sandbox("s", false, 0, S)],
        vec![ctr("1", "a", "s", State::Running, 0, 2, S)],
    )
    .plan();
    assert!(p.kill_pod, "what still runs in the old sandbox is stopped");
    assert_eq!(p.create_sandbox, Some(1));
    assert_eq!(started(&p), vec![("a", 3)]);
    // a Never pod that already ran is not started again
    let p = Case::new(
        pod("Never", &[], &["a"]),
        vec![sandbox("s", false, 0, S)],
        vec![ctr("1", "a", "s", State::Exited, 0, 0, S)],
    )
    .plan();
    assert_eq!(p.create_sandbox, None);
    assert!(p.terminal && !p.kill_pod);
}

#[test]
fn old_instances_and_sandboxes_are_garbage_collected() {
    let p = Case::new(
        pod("Always", &[], &["a"]),
        vec![sandbox("old", false, 0, S), sandbox("s", true, 1, 2 * S)],
        vec![
            ctr("1", "a", "old", State::Exited, 1, 0, S),
            ctr("2", "a", "s", State::Exited, 1, 1, 3 * S),
            ctr("3", "a", "s", State::Running, 0, 2, 4 * S),
        ],
    )
    .plan();
    assert_eq!(p.remove, vec!["1".to_string()]);
    assert_eq!(p.remove_sandboxes, vec!["old".to_string()]);
}
