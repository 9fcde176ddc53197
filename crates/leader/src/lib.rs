//! Leader election through a `coordination.k8s.io/v1` Lease, for rkube's scheduler and
//! controller manager (`--leader-elect`): of the candidates that run it against the same Lease,
//! one at a time leads.
//!
//! It follows upstream client-go's `tools/leaderelection` with the `LeaseLock`:
//!
//! - The Lease's spec is the election record: `holderIdentity`, `leaseDurationSeconds`,
//!   `acquireTime`, `renewTime`, `leaseTransitions`.
//! - A candidate gets the Lease, creating it with itself as holder if it does not exist. A lease
//!   held by another is taken only once `leaseDurationSeconds` have passed *by the local clock*
//!   since this candidate last saw the record change: the timestamps in the record are written
//!   by other machines' clocks and are never compared with ours, so clock skew between
//!   candidates does not matter, only their clock rates. Taking the lease increments
//!   `leaseTransitions` and sets `acquireTime`.
//! - Every write goes back with the resourceVersion last read, so of two candidates that both
//!   see an expired lease only one wins; the other gets 409 Conflict and stays a follower.
//! - The leader renews every RetryPeriod (first trying the copy it last wrote, then reading
//!   afresh); when renewal has failed for RenewDeadline, leadership is lost and the work done
//!   as leader is stopped. LeaseDuration must exceed RenewDeadline, so the leader gives up
//!   before any follower can take over.
//! - With ReleaseOnCancel, a leader that stops writes `holderIdentity: ""` and
//!   `leaseDurationSeconds: 1`, so a follower takes over after a second instead of a full
//!   LeaseDuration.
//!
//! Deliberate differences from upstream: a leader that, while renewing, reads a record held
//! by another identity stops leading at once rather than retrying until RenewDeadline (the
//! other holder is already acting); each API call is bounded by RenewDeadline, also while
//! acquiring, so one request that hangs cannot stall a candidate; durations that are not whole
//! seconds are written rounded up (upstream truncates, which turns a sub-second duration into
//! 0). Coordinated leader election (`strategy`, `preferredHolder`) is not implemented; those
//! fields are left as found.
//!
//! The Rust ecosystem has no leader election that fits kube 5 (kube-runtime has none, and the
//! crates that offer one pin older kube and k8s-openapi releases and differ from client-go's
//! semantics), so it is written here on `kube::Api<Lease>`.

mod elector;
mod lock;
mod record;

use std::future::Future;
use std::time::Duration;

pub use elector::{ElectionStatus, LeaderElector, Leadership};

/// Upstream's default LeaseDuration for the scheduler and controller manager.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Upstream's default RenewDeadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Upstream's default RetryPeriod.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// Upstream's `JitterFactor`: a candidate waits RetryPeriod plus up to this many RetryPeriods
/// more between attempts to acquire, so candidates started together spread out.
pub const JITTER_FACTOR: f64 = 1.2;

/// Which Lease to elect on, who this candidate is, and the election's timing.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Lease's namespace (upstream's components use `kube-system`).
    pub namespace: String,
    /// The Lease's name (`kube-scheduler`, `kube-controller-manager`).
    pub name: String,
    /// This candidate's identity, written as `holderIdentity`; unique per process
    /// ([`default_identity`]).
    pub identity: String,
    /// How long followers wait, without seeing the record change, before taking the lease.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a failed renewal before it gives leadership up.
    pub renew_deadline: Duration,
    /// How long candidates wait between attempts.
    pub retry_period: Duration,
    /// Whether a leader that stops (shutdown, or its work returned) releases the lease so a
    /// follower need not wait out LeaseDuration. The work must have stopped by then, which
    /// [`LeaderElector::run`] ensures by waiting for it before releasing.
    pub release_on_cancel: bool,
}

impl Config {
    /// A configuration with upstream's default timing and no release on cancel.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Config {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: false,
        }
    }

    /// Checks the configuration as upstream's `NewLeaderElector` does, with its messages.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |m: &str| Err(Error::InvalidConfig(m.to_owned()));
        if self.lease_duration <= self.renew_deadline {
            return invalid("leaseDuration must be greater than renewDeadline");
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return invalid("renewDeadline must be greater than retryPeriod*JitterFactor");
        }
        if self.lease_duration.is_zero() {
            return invalid("leaseDuration must be greater than zero");
        }
        if self.renew_deadline.is_zero() {
            return invalid("renewDeadline must be greater than zero");
        }
        if self.retry_period.is_zero() {
            return invalid("retryPeriod must be greater than zero");
        }
        if self.identity.is_empty() {
            return invalid("Lock identity is empty");
        }
        if self.namespace.is_empty() || self.name.is_empty() {
            return invalid("lease namespace and name must not be empty");
        }
        Ok(())
    }

    /// `leaseDurationSeconds` as written: whole seconds, rounded up, at least 1.
    pub(crate) fn lease_duration_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs_f64().ceil().max(1.0);
        if secs >= f64::from(i32::MAX) {
            i32::MAX
        } else {
            // In range and integral after the checks above.
            secs as i32
        }
    }
}

/// Why an election could not run or ended without the caller asking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration breaks one of upstream's rules.
    #[error("invalid leader election configuration: {0}")]
    InvalidConfig(String),
    /// The host name for the default identity could not be read.
    #[error("could not read the host name for the leader election identity: {0}")]
    Hostname(#[source] nix::Error),
    /// This candidate led and could not renew the lease: the work it did as leader was
    /// stopped. Upstream's components exit when this happens.
    #[error("leader election lost: lease {lease}: {reason}")]
    LeadershipLost {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What ended leadership.
        reason: String,
    },
}

/// Upstream's identity for the scheduler and controller manager: the host name, `_`, and a
/// random UUID, so two processes on one host are distinct candidates.
pub fn default_identity() -> Result<String, Error> {
    let host = nix::unistd::gethostname().map_err(Error::Hostname)?;
    Ok(format!("{}_{}", host.to_string_lossy(), random_uuid()))
}

/// A random (version 4) UUID in its usual text form.
fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Runs an election: waits to acquire the lease, then runs `lead` while keeping the lease
/// renewed. See [`LeaderElector::run`].
pub async fn run<F, Fut, T>(
    client: kube::Client,
    cfg: Config,
    shutdown: impl Future<Output = ()>,
    lead: F,
) -> Result<Option<T>, Error>
where
    F: FnOnce(Leadership) -> Fut,
    Fut: Future<Output = T>,
{
    LeaderElector::new(client, cfg)?.run(shutdown, lead).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lease: u64, renew: u64, retry: u64, identity: &str) -> Config {
        Config {
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew),
            retry_period: Duration::from_millis(retry),
            ..Config::new("kube-system", "kube-scheduler", identity)
        }
    }

    #[test]
    fn validate_applies_upstreams_rules() {
        let cases = [
            (cfg(15_000, 10_000, 2_000, "a"), None),
            (cfg(1_000, 700, 200, "a"), None),
            (
                cfg(10_000, 10_000, 2_000, "a"),
                Some("leaseDuration must be greater than renewDeadline"),
            ),
            (
                cfg(15_000, 2_400, 2_000, "a"),
                Some("renewDeadline must be greater than retryPeriod*JitterFactor"),
            ),
            (
                cfg(15_000, 10_000, 0, "a"),
                Some("retryPeriod must be greater than zero"),
            ),
            (
                cfg(15_000, 10_000, 2_000, ""),
                Some("Lock identity is empty"),
            ),
        ];
        for (c, want) in cases {
            match (c.validate(), want) {
                (Ok(()), None) => {}
                (Err(Error::InvalidConfig(m)), Some(w)) => assert_eq!(m, w, "{c:?}"),
                (got, want) => panic!("{c:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn lease_duration_is_written_in_whole_seconds_rounded_up() {
        let cases = [(15_000, 15), (1_000, 1), (700, 1), (1_500, 2)];
        for (ms, want) in cases {
            assert_eq!(cfg(ms, 1, 1, "a").lease_duration_seconds(), want, "{ms} ms");
        }
    }

    #[test]
    fn default_identity_is_host_and_uuid() {
        let a = default_identity().expect("hostname");
        let b = default_identity().expect("hostname");
        assert_ne!(a, b, "two processes on one host must differ");
        let (host, uuid) = a.rsplit_once('_').expect("host_uuid");
        assert!(!host.is_empty());
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
        assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
    }
}
