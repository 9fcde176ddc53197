//! The election record a Lease carries, and its mapping to and from `LeaseSpec`, as upstream's
//! `resourcelock.LeaderElectionRecord` with `LeaseSpecToLeaderElectionRecord` and
//! `LeaderElectionRecordToLeaseSpec`.
//!
//! Every field is written on each update (an empty holder is written as `""`, not left out), so
//! the spec a candidate writes is exactly the record it means. Coordinated leader election's
//! `strategy` and `preferredHolder` are carried through unchanged on read and not written:
//! this elector does not take part in coordinated election.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// What a candidate reads from and writes to the Lease: who holds it, for how long, since when,
/// and how many times it changed hands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The holder's identity; empty when nobody holds the lease (after a release).
    pub holder_identity: String,
    /// How long, in whole seconds, other candidates wait without seeing the record change
    /// before they may take the lease.
    pub lease_duration_seconds: i32,
    /// When the current holder acquired the lease.
    pub acquire_time: Option<Timestamp>,
    /// When the current holder last renewed the lease.
    pub renew_time: Option<Timestamp>,
    /// How many times the lease changed holders.
    pub lease_transitions: i32,
}

impl Record {
    /// Reads a Lease's spec; absent fields read as their zero values, as upstream.
    pub fn from_spec(spec: Option<&LeaseSpec>) -> Record {
        let Some(spec) = spec else {
            return Record::default();
        };
        Record {
            holder_identity: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            lease_transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    /// The spec that carries this record. A spec read from the server is the base so fields
    /// this elector does not own (coordinated election's) survive the update.
    pub fn to_spec(&self, base: Option<&LeaseSpec>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder_identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: self.acquire_time.map(MicroTime),
            renew_time: self.renew_time.map(MicroTime),
            lease_transitions: Some(self.lease_transitions),
            preferred_holder: base.and_then(|b| b.preferred_holder.clone()),
            strategy: base.and_then(|b| b.strategy.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("bad timestamp {s}: {e}"),
        }
    }

    #[test]
    fn spec_round_trips_through_record() {
        let cases = [
            Record {
                holder_identity: "node-a_1234".into(),
                lease_duration_seconds: 15,
                acquire_time: Some(ts("2025-01-02T03:04:05.123456Z")),
                renew_time: Some(ts("2025-01-02T03:04:15.654321Z")),
                lease_transitions: 3,
            },
            // A released lease: empty holder, one-second duration.
            Record {
                holder_identity: String::new(),
                lease_duration_seconds: 1,
                acquire_time: Some(ts("2025-01-02T03:04:05Z")),
                renew_time: Some(ts("2025-01-02T03:04:05Z")),
                lease_transitions: 7,
            },
        ];
        for r in cases {
            let spec = r.to_spec(None);
            assert_eq!(
                spec.holder_identity.as_deref(),
                Some(r.holder_identity.as_str())
            );
            assert_eq!(Record::from_spec(Some(&spec)), r);
        }
    }

    #[test]
    fn absent_fields_read_as_zero_values() {
        let cases = [
            (None, Record::default()),
            (Some(LeaseSpec::default()), Record::default()),
            (
                Some(LeaseSpec {
                    holder_identity: Some("x".into()),
                    ..Default::default()
                }),
                Record {
                    holder_identity: "x".into(),
                    ..Default::default()
                },
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(Record::from_spec(spec.as_ref()), want);
        }
    }

    #[test]
    fn coordinated_election_fields_survive_an_update() {
        let base = LeaseSpec {
            holder_identity: Some("old".into()),
            preferred_holder: Some("p".into()),
            strategy: Some("OldestEmulationVersion".into()),
            ..Default::default()
        };
        let spec = Record {
            holder_identity: "new".into(),
            ..Default::default()
        }
        .to_spec(Some(&base));
        assert_eq!(spec.holder_identity.as_deref(), Some("new"));
        assert_eq!(spec.preferred_holder.as_deref(), Some("p"));
        assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
    }
}
