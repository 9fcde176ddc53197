use super::*;
use crate::pod::observed::Sandbox;
use k8s_openapi::api::core::v1::{PodSpec, Probe, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

const S: i64 = 1_000_000_000;

fn pod(policy: &str, init: &[&str], regular: &[&str]) -> Pod {
    let c = |name: &str| SpecContainer {
        name: name.into(),
        image: Some("busybox".into()),
        ..Default::default()
    };
    Pod {
        metadata: Default::default(),
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: (!init.is_empty()).then(|| init.iter().map(|n| c(n)).collect()),
            containers: regular.iter().map(|n| c(n)).collect(),
            ..Default::default()
        }),
        status: None,
    }
}

fn ctr(id: &str, name: &str, state: State, exit: i32, restarts: u32, t: i64) -> Container {
    Container {
        id: id.into(),
        name: name.into(),
        sandbox_id: "s".into(),
        state,
        attempt: restarts,
        restart_count: restarts,
        hash: "h".into(),
        image: "busybox".into(),
        image_ref: "sha256:img".into(),
        created_at: t,
        started_at: t,
        finished_at: if state == State::Exited { t + S } else { 0 },
        exit_code: exit,
        reason: String::new(),
        message: String::new(),
        log_path: String::new(),
    }
}

fn rt(containers: Vec<Container>) -> PodRuntime {
    PodRuntime {
        sandboxes: vec![Sandbox {
            id: "s".into(),
            attempt: 0,
            ready: true,
            created_at: S,
            ips: vec!["10.42.0.5".into()],
        }],
        containers,
    }
}

fn compute_with(
    pod: &Pod,
    runtime: &PodRuntime,
    probes: &ProbeView,
    waiting: &HashMap<String, (String, String)>,
) -> PodStatus {
    compute(Input {
        pod,
        runtime,
        probes,
        waiting,
        runtime_name: "containerd",
        host_ips: &["192.168.1.2".to_string()],
        terminal: false,
        now: jiff::Timestamp::from_second(1000).unwrap(),
    })
}

fn st(pod: &Pod, runtime: &PodRuntime) -> PodStatus {
    compute_with(pod, runtime, &ProbeView::default(), &HashMap::new())
}

fn cond<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
    s.conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap()
}

#[test]
fn a_pod_without_a_sandbox_is_pending_and_creating() {
    let p = pod("Always", &[], &["a"]);
    let s = st(&p, &PodRuntime::default());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("ContainerCreating")
    );
    assert_eq!(s.pod_ip, None);
    assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
}

#[test]
fn running_containers_make_a_running_ready_pod() {
    let p = pod("Always", &[], &["a"]);
    let s = st(&p, &rt(vec![ctr("1", "a", State::Running, 0, 0, 2 * S)]));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.5"));
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        assert_eq!(cond(&s, kind).status, "True", "{kind}");
    }
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(c.ready);
    assert_eq!(c.started, Some(true));
    assert_eq!(c.container_id.as_deref(), Some("containerd://1"));
    assert_eq!(c.image_id, "sha256:img");
    assert!(c.state.as_ref().unwrap().running.is_some());
}

#[test]
fn a_readiness_probe_gates_ready() {
    let mut p = pod("Always", &[], &["a"]);
    p.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Probe::default());
    let runtime = rt(vec![ctr("1", "a", State::Running, 0, 0, 2 * S)]);
    let s = st(&p, &runtime);
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(
        cond(&s, "Ready").reason.as_deref(),
        Some("ContainersNotReady")
    );
    assert_eq!(
        cond(&s, "Ready").message.as_deref(),
        Some("containers with unready status: [a]")
    );
    let mut probes = ProbeView::default();
    probes.ready.insert("a".into(), true);
    let s = compute_with(&p, &runtime, &probes, &HashMap::new());
    assert_eq!(cond(&s, "Ready").status, "True");
}

#[test]
fn a_crashlooping_container_waits_with_its_last_state() {
    let p = pod("Always", &[], &["a"]);
    let runtime = rt(vec![ctr("1", "a", State::Exited, 2, 3, 2 * S)]);
    let mut waiting = HashMap::new();
    waiting.insert(
        "a".to_string(),
        ("CrashLoopBackOff".to_string(), "back-off 40s".to_string()),
    );
    let s = compute_with(&p, &runtime, &ProbeView::default(), &waiting);
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.restart_count, 3);
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 2);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    // a crashlooping Always pod is Running (it restarts)
    assert_eq!(s.phase.as_deref(), Some("Running"));
}

#[test]
fn phases_follow_the_restart_policy() {
    let done = |policy: &str, exit: i32| {
        let p = pod(policy, &[], &["a"]);
        st(&p, &rt(vec![ctr("1", "a", State::Exited, exit, 0, 2 * S)]))
            .phase
            .unwrap()
    };
    assert_eq!(done("Never", 0), "Succeeded");
    assert_eq!(done("Never", 1), "Failed");
    assert_eq!(done("OnFailure", 0), "Succeeded");
    assert_eq!(done("OnFailure", 1), "Running");
    assert_eq!(done("Always", 0), "Running");
    let p = pod("Never", &[], &["a"]);
    let s = st(&p, &rt(vec![ctr("1", "a", State::Exited, 0, 0, 2 * S)]));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    let t = s.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    // a terminal phase never goes back
    let mut p = pod("Always", &[], &["a"]);
    p.status = Some(PodStatus {
        phase: Some("Failed".into()),
        ..Default::default()
    });
    assert_eq!(
        st(&p, &rt(vec![ctr("1", "a", State::Running, 0, 0, 2 * S)]))
            .phase
            .as_deref(),
        Some("Failed")
    );
}

#[test]
fn init_containers_hold_the_pod_pending_and_uninitialized() {
    let p = pod("Always", &["i1", "i2"], &["a"]);
    let s = st(&p, &rt(vec![ctr("1", "i1", State::Running, 0, 0, 2 * S)]));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = cond(&s, "Initialized");
    assert_eq!(init.status, "False");
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );
    let a = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        a.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    let s = st(
        &p,
        &rt(vec![
            ctr("1", "i1", State::Exited, 0, 0, 2 * S),
            ctr("2", "i2", State::Exited, 0, 0, 3 * S),
            ctr("3", "a", State::Running, 0, 0, 4 * S),
        ]),
    );
    assert_eq!(cond(&s, "Initialized").status, "True");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let i1 = &s.init_container_statuses.as_ref().unwrap()[0];
    assert!(i1.ready, "a completed init container is ready");
    // a failed init container under Never fails the pod
    let p = pod("Never", &["i1"], &["a"]);
    let s = st(&p, &rt(vec![ctr("1", "i1", State::Exited, 1, 0, 2 * S)]));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
}

#[test]
fn transition_times_move_only_when_a_condition_flips() {
    let p0 = pod("Always", &[], &["a"]);
    let s1 = st(&p0, &rt(vec![ctr("1", "a", State::Running, 0, 0, 2 * S)]));
    let mut p = p0.clone();
    let mut old = s1.clone();
    for c in old.conditions.as_mut().unwrap() {
        c.last_transition_time = Some(Time(jiff::Timestamp::from_second(5).unwrap()));
    }
    p.status = Some(old);
    let s2 = st(&p, &rt(vec![ctr("1", "a", State::Running, 0, 0, 2 * S)]));
    assert_eq!(
        cond(&s2, "Ready")
            .last_transition_time
            .as_ref()
            .unwrap()
            .0
            .as_second(),
        5
    );
    let s3 = st(&p, &rt(vec![ctr("1", "a", State::Exited, 1, 0, 2 * S)]));
    assert_eq!(
        cond(&s3, "Ready")
            .last_transition_time
            .as_ref()
            .unwrap()
            .0
            .as_second(),
        1000
    );
}

#[test]
fn qos_classes() {
    let res = |req: &[(&str, &str)], lim: &[(&str, &str)]| {
        let mut p = pod("Always", &[], &["a"]);
        let m = |v: &[(&str, &str)]| {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|(k, q)| (k.to_string(), Q(q.to_string())))
                    .collect()
            })
        };
        p.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements {
            requests: m(req),
            limits: m(lim),
            ..Default::default()
        });
        qos_class(&p).as_str()
    };
    assert_eq!(res(&[], &[]), "BestEffort");
    assert_eq!(res(&[("cpu", "100m")], &[]), "Burstable");
    assert_eq!(res(&[], &[("cpu", "1"), ("memory", "1Gi")]), "Guaranteed");
    assert_eq!(
        res(
            &[("cpu", "1"), ("memory", "1Gi")],
            &[("cpu", "1000m"), ("memory", "1Gi")]
        ),
        "Guaranteed"
    );
    assert_eq!(
        res(&[("cpu", "1")], &[("cpu", "2"), ("memory", "1Gi")]),
        "Burstable"
    );
}
