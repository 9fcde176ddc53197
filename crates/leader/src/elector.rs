//! The election loop, as upstream's `LeaderElector`: acquire (retry with jitter until the lease
//! is ours), lead while renewing (stop when renewal has failed for RenewDeadline), release.
//!
//! The one decision both phases share is upstream's `tryAcquireOrRenew`: a leader first
//! writes over the copy it last wrote (one request when nothing changed); otherwise the
//! candidate reads the Lease (creating it if missing), notes the local time whenever the
//! record differs from the one it saw last, refuses while another holder's lease is still
//! valid by that local time, and writes itself as holder, counting a transition when the
//! holder changes. The write is guarded by the resourceVersion read, so a lost race is a 409.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};
use tracing::{debug, error, info, warn};

use crate::lock::LeaseLock;
use crate::record::Record;
use crate::{Config, Error, JITTER_FACTOR};

/// What an observer sees of an election.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Observed {
    /// This candidate holds the lease and its work runs.
    leading: bool,
    /// The holder last seen in the record; `None` before the first read or when released.
    leader: Option<String>,
}

/// A read-only view of an election, for health and status reporting; clone freely. It stays
/// readable after the election ended (then it is not leading).
#[derive(Clone, Debug)]
pub struct ElectionStatus {
    rx: watch::Receiver<Observed>,
}

impl ElectionStatus {
    /// Whether this candidate currently leads: it acquired the lease and has neither lost nor
    /// released it.
    pub fn is_leader(&self) -> bool {
        self.rx.borrow().leading
    }

    /// The identity last seen holding the lease, if any (this candidate's own when leading).
    pub fn leader(&self) -> Option<String> {
        self.rx.borrow().leader.clone()
    }

    /// Waits until the status changes; false once the election is over and nothing more
    /// will change.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

/// Handed to the work done as leader: it says when that work must stop, because leadership
/// was lost or shutdown was asked for. Clone it into every task the work starts.
#[derive(Clone, Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// Whether the work must stop now.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when the work must stop (also when the election itself was dropped).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, i.e. the election no longer runs: stop too.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

/// The result of one `tryAcquireOrRenew`.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// The record now names this candidate, renewed just now.
    Held,
    /// Another holder's lease is still valid.
    HeldBy(String),
    /// The API call failed or lost a race; try again later.
    Failed,
}

/// One candidate in an election on one Lease.
pub struct LeaderElector {
    cfg: Config,
    lock: LeaseLock,
    /// The record as last read or written, and when (local clock) it last changed.
    observed: Record,
    observed_at: Option<Instant>,
    /// The holder last logged as the leader, so each change is logged once.
    reported_leader: String,
    status: watch::Sender<Observed>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("lease", &self.lock.describe())
            .field("identity", &self.cfg.identity)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

/// How the lead phase ended.
enum End<T> {
    /// The work returned (by itself, or after being told to stop on shutdown).
    Finished(T),
    /// Renewal failed; the work was told to stop and dropped.
    Lost(String),
}

impl LeaderElector {
    /// A candidate for `cfg`'s Lease; fails when `cfg` breaks upstream's rules.
    pub fn new(client: kube::Client, cfg: Config) -> Result<LeaderElector, Error> {
        cfg.validate()?;
        Ok(LeaderElector {
            lock: LeaseLock::new(client, &cfg.namespace, &cfg.name),
            cfg,
            observed: Record::default(),
            observed_at: None,
            reported_leader: String::new(),
            status: watch::Sender::new(Observed::default()),
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// A view of this election that outlives [`LeaderElector::run`].
    pub fn status(&self) -> ElectionStatus {
        ElectionStatus {
            rx: self.status.subscribe(),
        }
    }

    /// Runs the election until it ends:
    ///
    /// - `shutdown` resolves before the lease is acquired: `Ok(None)`.
    /// - Once acquired, `lead` is called once and its future polled here, while the lease is
    ///   renewed every RetryPeriod.
    /// - The work returns by itself: it is not renewed any more, the lease is released if
    ///   `release_on_cancel`, and its output is `Ok(Some(output))`.
    /// - `shutdown` resolves while leading: the [`Leadership`] signal fires and renewal goes
    ///   on until the work returns (the lease must stay ours while the work still acts), then
    ///   as above. Work that ignores the signal keeps `run` waiting.
    /// - Renewal fails for RenewDeadline (or another holder is seen): the signal fires, the
    ///   work's future is dropped at once, the lease is released if `release_on_cancel` and
    ///   still ours, and the result is [`Error::LeadershipLost`]. Work should own the tasks it
    ///   starts (or watch the signal), so that dropping it stops them.
    pub async fn run<F, Fut, T>(
        mut self,
        shutdown: impl Future<Output = ()>,
        lead: F,
    ) -> Result<Option<T>, Error>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let mut shutdown = pin!(shutdown);
        tokio::select! {
            // Shutdown first: no point taking a lease only to give it back.
            biased;
            () = &mut shutdown => {
                info!(lease = %self.lock.describe(), "shutdown before the lease was acquired");
                return Ok(None);
            }
            () = self.acquire() => {}
        }
        self.status.send_modify(|s| s.leading = true);

        let (stop_tx, stop_rx) = watch::channel(false);
        let end = {
            let mut work = pin!(lead(Leadership { rx: stop_rx }));
            let mut renew = pin!(self.renew_until_lost());
            let mut stopping = false;
            loop {
                tokio::select! {
                    out = &mut work => break End::Finished(out),
                    reason = &mut renew => {
                        // Tell the work before dropping it, for tasks that hold a signal.
                        let _ = stop_tx.send(true);
                        break End::Lost(reason);
                    }
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        info!("shutting down: waiting for the work done as leader to stop");
                        let _ = stop_tx.send(true);
                    }
                }
            }
            // `work` and `renew` are dropped here: nothing runs as leader past this point.
        };
        let _ = stop_tx.send(true);
        self.status.send_modify(|s| s.leading = false);

        let lease = self.lock.describe();
        let result = match end {
            End::Finished(out) => {
                info!(lease = %lease, "stopped leading");
                Ok(Some(out))
            }
            End::Lost(reason) => {
                error!(lease = %lease, reason = %reason, "leader election lost");
                Err(Error::LeadershipLost { lease, reason })
            }
        };
        if self.cfg.release_on_cancel {
            self.release().await;
        }
        result
    }

    /// Retries `tryAcquireOrRenew` every RetryPeriod plus jitter until the lease is ours.
    async fn acquire(&mut self) {
        info!(lease = %self.lock.describe(), identity = %self.cfg.identity, "attempting to acquire leader lease");
        loop {
            let attempt = self
                .bounded_attempt(Instant::now() + self.cfg.renew_deadline)
                .await;
            self.maybe_report_transition();
            if attempt == Attempt::Held {
                info!(lease = %self.lock.describe(), identity = %self.cfg.identity, "successfully acquired lease");
                return;
            }
            debug!(lease = %self.lock.describe(), "failed to acquire lease");
            sleep(jittered(self.cfg.retry_period)).await;
        }
    }

    /// Renews every RetryPeriod; returns why leadership was lost.
    async fn renew_until_lost(&mut self) -> String {
        loop {
            let deadline = Instant::now() + self.cfg.renew_deadline;
            let lost = loop {
                match self.bounded_attempt(deadline).await {
                    Attempt::Held => break None,
                    Attempt::HeldBy(other) => {
                        break Some(format!("the lease is held by {other}"));
                    }
                    Attempt::Failed => {}
                }
                let next = Instant::now() + self.cfg.retry_period;
                if next >= deadline {
                    // Upstream's poll waits out the deadline before it gives up.
                    sleep_until(deadline).await;
                    break Some(format!(
                        "failed to renew the lease within {:?}",
                        self.cfg.renew_deadline
                    ));
                }
                sleep_until(next).await;
            };
            self.maybe_report_transition();
            if let Some(reason) = lost {
                return reason;
            }
            debug!(lease = %self.lock.describe(), "successfully renewed lease");
            sleep(self.cfg.retry_period).await;
        }
    }

    /// One attempt, abandoned at `deadline`.
    async fn bounded_attempt(&mut self, deadline: Instant) -> Attempt {
        match timeout_at(deadline, self.try_acquire_or_renew()).await {
            Ok(a) => a,
            Err(_) => {
                warn!(lease = %self.lock.describe(), "lease request timed out");
                Attempt::Failed
            }
        }
    }

    /// Upstream's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let now = now_micros();
        let mut desired = Record {
            holder_identity: self.cfg.identity.clone(),
            lease_duration_seconds: self.cfg.lease_duration_seconds(),
            acquire_time: Some(now),
            renew_time: Some(now),
            lease_transitions: 0,
        };

        // 1. A leader whose lease is still valid writes over its own last copy: one request
        //    when nobody else wrote the Lease meanwhile.
        if self.holds_lock() && self.lease_valid(Instant::now()) {
            desired.acquire_time = self.observed.acquire_time;
            desired.lease_transitions = self.observed.lease_transitions;
            match self.lock.update(&desired).await {
                Ok(()) => {
                    self.set_observed(desired);
                    return Attempt::Held;
                }
                Err(e) => {
                    warn!(lease = %self.lock.describe(), error = %e, "failed to update lease optimistically, falling back to slow path");
                }
            }
        }

        // 2. Read the Lease, or create it holding this candidate.
        let current = match self.lock.get().await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                return match self.lock.create(&desired).await {
                    Ok(()) => {
                        self.set_observed(desired);
                        Attempt::Held
                    }
                    Err(e) => {
                        error!(lease = %self.lock.describe(), error = %e, "error initially creating leader election record");
                        Attempt::Failed
                    }
                };
            }
            Err(e) => {
                error!(lease = %self.lock.describe(), error = %e, "error retrieving resource lock");
                return Attempt::Failed;
            }
        };

        // 3. Expiry is measured from when this candidate saw the record change, by its own
        //    clock: the record's timestamps come from other clocks.
        if current != self.observed {
            self.set_observed(current.clone());
        }
        if !current.holder_identity.is_empty()
            && self.lease_valid(Instant::now())
            && !self.holds_lock()
        {
            debug!(lease = %self.lock.describe(), holder = %current.holder_identity, "lock is held and has not yet expired");
            return Attempt::HeldBy(current.holder_identity);
        }

        // 4. Take or renew it: a renewal keeps the acquire time; a new holder is a transition.
        if self.holds_lock() {
            desired.acquire_time = current.acquire_time;
            desired.lease_transitions = current.lease_transitions;
        } else {
            desired.lease_transitions = current.lease_transitions.saturating_add(1);
        }
        match self.lock.update(&desired).await {
            Ok(()) => {
                self.set_observed(desired);
                Attempt::Held
            }
            Err(e) => {
                // A 409 here is another candidate winning the same expired lease.
                warn!(lease = %self.lock.describe(), error = %e, "failed to update lock");
                Attempt::Failed
            }
        }
    }

    /// Gives the lease up, as upstream: no holder, a one-second duration, the transition
    /// count kept. Only when the last record seen is ours.
    async fn release(&mut self) {
        if !self.holds_lock() {
            return;
        }
        let now = now_micros();
        let released = Record {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now),
            renew_time: Some(now),
            lease_transitions: self.observed.lease_transitions,
        };
        match timeout(self.cfg.renew_deadline, self.lock.update(&released)).await {
            Ok(Ok(())) => {
                info!(lease = %self.lock.describe(), "released lease");
                self.set_observed(released);
            }
            Ok(Err(e)) => {
                error!(lease = %self.lock.describe(), error = %e, "failed to release lock")
            }
            Err(_) => error!(lease = %self.lock.describe(), "failed to release lock: timed out"),
        }
    }

    /// Upstream's `IsLeader`: the last record seen names this candidate.
    fn holds_lock(&self) -> bool {
        self.observed.holder_identity == self.cfg.identity
    }

    /// Upstream's `isLeaseValid`: the observed record's duration has not passed since it was
    /// seen to change.
    fn lease_valid(&self, now: Instant) -> bool {
        let Some(seen) = self.observed_at else {
            return false;
        };
        let secs = u64::try_from(self.observed.lease_duration_seconds).unwrap_or(0);
        seen + Duration::from_secs(secs) > now
    }

    fn set_observed(&mut self, record: Record) {
        let leader = (!record.holder_identity.is_empty()).then(|| record.holder_identity.clone());
        self.observed = record;
        self.observed_at = Some(Instant::now());
        self.status.send_if_modified(|s| {
            let changed = s.leader != leader;
            s.leader = leader;
            changed
        });
    }

    /// Logs a holder not logged before (upstream's `OnNewLeader`).
    fn maybe_report_transition(&mut self) {
        if self.observed.holder_identity == self.reported_leader {
            return;
        }
        self.reported_leader = self.observed.holder_identity.clone();
        if self.reported_leader.is_empty() {
            info!(lease = %self.lock.describe(), "lease released by its holder");
        } else {
            info!(lease = %self.lock.describe(), leader = %self.reported_leader, "new leader observed");
        }
    }
}

/// Now, cut to the microseconds a MicroTime carries, so a record written equals the record
/// read back.
fn now_micros() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

/// Upstream's `wait.Jitter(period, JitterFactor)`: the period plus a random part of up to
/// JitterFactor periods.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * JITTER_FACTOR)
}
