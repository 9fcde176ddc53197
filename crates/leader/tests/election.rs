//! Leader election against the real API server: acquiring and renewing, followers waiting out a
//! live lease, takeover after a crash, release on shutdown, losing leadership when renewal
//! fails or another holder appears, and one winner among candidates started together.

mod common;

use std::time::Duration;

use common::{cluster, config, flaky, set_network, wait_for, Candidate, Network, TestResult};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use rkube_leader::Error;
use tokio::time::Instant;

fn spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

fn holder(lease: &Lease) -> String {
    spec(lease).holder_identity.unwrap_or_default()
}

fn transitions(lease: &Lease) -> i32 {
    spec(lease).lease_transitions.unwrap_or(-1)
}

async fn leader_of(c: &common::Cluster) -> Option<String> {
    c.lease().await.map(|l| holder(&l))
}

#[tokio::test]
async fn first_candidate_creates_the_lease_and_renews_it() -> TestResult {
    let c = cluster().await?;
    let mut a = Candidate::start(c.client(), config("a"));
    wait_for("a to lead", || async { a.status.is_leader().then_some(()) }).await;
    assert!(a.probe.started().is_some(), "the work runs once leading");
    assert_eq!(a.status.leader().as_deref(), Some("a"));

    let first = spec(&c.lease().await.ok_or("no lease")?);
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_duration_seconds, Some(1));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(first.acquire_time.is_some());
    // Upstream renews right after acquiring, so renewTime may already have moved on.
    assert!(first.renew_time >= first.acquire_time);

    // Renewals move renewTime on and keep everything else.
    let renewed = wait_for("a renewal", || async {
        let s = spec(&c.lease().await?);
        (s.renew_time > first.renew_time).then_some(s)
    })
    .await;
    assert_eq!(renewed.holder_identity.as_deref(), Some("a"));
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(0));
    assert_eq!(renewed.lease_duration_seconds, Some(1));

    // Without release on cancel, shutdown stops the work and leaves the lease as it was.
    assert_eq!(a.shutdown().await?, Some("done"));
    assert!(a.probe.returned.load(std::sync::atomic::Ordering::SeqCst));
    assert!(!a.status.is_leader());
    assert_eq!(leader_of(&c).await.as_deref(), Some("a"));
    Ok(())
}

#[tokio::test]
async fn follower_waits_while_the_leader_renews_and_takes_over_after_it_dies() -> TestResult {
    let c = cluster().await?;
    let mut a = Candidate::start(c.client(), config("a"));
    wait_for("a to lead", || async { a.status.is_leader().then_some(()) }).await;
    let acquired_by_a = spec(&c.lease().await.ok_or("no lease")?).acquire_time;

    let b = Candidate::start(c.client(), config("b"));
    wait_for("b to see a as leader", || async {
        (b.status.leader().as_deref() == Some("a")).then_some(())
    })
    .await;
    // Over several lease durations b stays a follower, because a keeps renewing.
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert!(!b.status.is_leader(), "b took a live lease");
        assert!(b.probe.started().is_none());
        assert_eq!(leader_of(&c).await.as_deref(), Some("a"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a dies without releasing; b takes over once a's last renewal is a lease duration old.
    a.kill();
    let killed = Instant::now();
    wait_for("b to lead", || async { b.status.is_leader().then_some(()) }).await;
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "b took over {took:?} after a died: before a's lease could have expired"
    );
    assert!(
        took <= Duration::from_millis(1000 + 2 * 440 + 1000),
        "b took over only after {took:?}"
    );
    let lease = c.lease().await.ok_or("no lease")?;
    assert_eq!(holder(&lease), "b");
    assert_eq!(transitions(&lease), 1);
    assert!(
        spec(&lease).acquire_time > acquired_by_a,
        "a new holder sets acquireTime"
    );
    assert_eq!(b.status.leader().as_deref(), Some("b"));
    Ok(())
}

#[tokio::test]
async fn release_on_cancel_empties_the_holder_and_hands_over_early() -> TestResult {
    let c = cluster().await?;
    // A lease duration of 5 s: a takeover well before that can only come from the release.
    let slow = |id: &str| rkube_leader::Config {
        lease_duration: Duration::from_secs(5),
        renew_deadline: Duration::from_secs(3),
        release_on_cancel: true,
        ..config(id)
    };
    let mut a = Candidate::start(c.client(), slow("a"));
    wait_for("a to lead", || async { a.status.is_leader().then_some(()) }).await;
    let b = Candidate::start(c.client(), slow("b"));
    wait_for("b to see a as leader", || async {
        (b.status.leader().as_deref() == Some("a")).then_some(())
    })
    .await;

    assert_eq!(a.shutdown().await?, Some("done"));
    let released_at = Instant::now();
    assert!(
        a.probe.returned.load(std::sync::atomic::Ordering::SeqCst),
        "the work stopped before the lease was released"
    );
    let released = spec(&c.lease().await.ok_or("no lease")?);
    assert_eq!(released.holder_identity.as_deref(), Some(""));
    assert_eq!(released.lease_duration_seconds, Some(1));
    assert_eq!(released.lease_transitions, Some(0));
    assert!(!a.status.is_leader());

    wait_for("b to lead", || async { b.status.is_leader().then_some(()) }).await;
    let took = released_at.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "b waited {took:?}: the release did not shorten the lease"
    );
    let lease = c.lease().await.ok_or("no lease")?;
    assert_eq!(holder(&lease), "b");
    assert_eq!(spec(&lease).lease_duration_seconds, Some(5));
    assert_eq!(transitions(&lease), 1);
    Ok(())
}

#[tokio::test]
async fn leader_that_cannot_renew_stops_its_work_before_a_follower_takes_over() -> TestResult {
    for network in [Network::Refusing, Network::Hanging] {
        let c = cluster().await?;
        let (client, switch) = flaky(c.client());
        let mut a = Candidate::start(client, config("a"));
        wait_for("a to lead", || async { a.status.is_leader().then_some(()) }).await;
        let b = Candidate::start(c.client(), config("b"));
        wait_for("b to see a as leader", || async {
            (b.status.leader().as_deref() == Some("a")).then_some(())
        })
        .await;

        set_network(&switch, network);
        let cut = Instant::now();
        match a.join().await {
            Err(Error::LeadershipLost { lease, reason }) => {
                assert_eq!(lease, "kube-system/kube-scheduler", "{network:?}");
                assert!(reason.contains("failed to renew"), "{network:?}: {reason}");
            }
            other => panic!("{network:?}: a returned {other:?}"),
        }
        let gave_up = cut.elapsed();
        assert!(
            gave_up >= Duration::from_millis(500),
            "{network:?}: a gave up after {gave_up:?}, before its renew deadline"
        );
        assert!(!a.status.is_leader());
        let a_ended = a.probe.ended().ok_or("a's work still runs")?;

        wait_for("b to lead", || async { b.status.is_leader().then_some(()) }).await;
        let b_started = b
            .probe
            .started()
            .ok_or("b leads without running its work")?;
        assert!(
            a_ended < b_started,
            "{network:?}: b started leading while a still worked"
        );
        let lease = c.lease().await.ok_or("no lease")?;
        assert_eq!(holder(&lease), "b");
        assert_eq!(transitions(&lease), 1);
    }
    Ok(())
}

#[tokio::test]
async fn leader_stops_at_once_when_another_holder_takes_the_lease() -> TestResult {
    let c = cluster().await?;
    let mut a = Candidate::start(c.client(), config("a"));
    wait_for("a to lead", || async { a.status.is_leader().then_some(()) }).await;

    // Someone else writes itself in (as a candidate with a skewed view of time might).
    let api: kube::Api<Lease> = kube::Api::namespaced(c.admin(), common::NAMESPACE);
    let written = wait_for("the intruder's write", || async {
        // a renews meanwhile, so a write can lose the race (409) and is tried again.
        let mut lease = c.lease().await?;
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some("intruder".into()),
            lease_duration_seconds: Some(30),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(1),
            ..Default::default()
        });
        match api.replace(common::NAME, &Default::default(), &lease).await {
            Ok(_) => Some(Instant::now()),
            Err(kube::Error::Api(s)) if s.code == 409 => None,
            Err(e) => panic!("writing the lease: {e}"),
        }
    })
    .await;

    match a.join().await {
        Err(Error::LeadershipLost { reason, .. }) => {
            assert!(reason.contains("held by intruder"), "{reason}");
        }
        other => panic!("a returned {other:?}"),
    }
    let took = written.elapsed();
    assert!(
        took < Duration::from_millis(700),
        "a went on leading for {took:?}, up to its renew deadline"
    );
    assert_eq!(a.status.leader().as_deref(), Some("intruder"));
    assert_eq!(leader_of(&c).await.as_deref(), Some("intruder"));
    Ok(())
}

#[tokio::test]
async fn candidates_started_together_elect_exactly_one_leader() -> TestResult {
    let c = cluster().await?;
    let candidates: Vec<Candidate> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|id| Candidate::start(c.client(), config(id)))
        .collect();
    let leaders = || {
        candidates
            .iter()
            .filter(|x| x.status.is_leader())
            .map(|x| x.identity.clone())
            .collect::<Vec<_>>()
    };
    let first = wait_for("a leader", || async {
        let l = leaders();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(first.len(), 1, "several leaders at once: {first:?}");
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert_eq!(leaders(), first, "leadership moved or was shared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lease = c.lease().await.ok_or("no lease")?;
    assert_eq!(holder(&lease), first[0]);
    assert_eq!(transitions(&lease), 0);
    let started = candidates
        .iter()
        .filter(|x| x.probe.started().is_some())
        .count();
    assert_eq!(started, 1, "only the leader runs the work");
    Ok(())
}
