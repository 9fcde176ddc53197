//! The scheduler's Prometheus metrics, with upstream's names:
//! `scheduler_schedule_attempts_total{result,profile}`,
//! `scheduler_scheduling_attempt_duration_seconds{result,profile}`,
//! `scheduler_pod_scheduling_sli_duration_seconds` (first queued to bound, the end-to-end
//! latency) and `scheduler_pending_pods{queue}`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::queue::Pending;

/// Labels of the attempt metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// scheduled, unschedulable or error.
    pub result: String,
    /// The profile's scheduler name.
    pub profile: String,
}

/// Label of the pending-pods gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// active, backoff, unschedulable or gated.
    pub queue: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Metrics {
    attempts: Family<AttemptLabels, Counter>,
    attempt_duration: Family<AttemptLabels, Histogram>,
    sli_duration: Histogram,
    pending: Family<QueueLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            sli_duration: Histogram::new(exponential_buckets(0.01, 2.0, 20)),
            pending: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result",
            self.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            self.attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue",
            self.sli_duration.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type",
            self.pending.clone(),
        );
    }

    /// Records one attempt.
    pub fn attempt(&self, result: &str, profile: &str, took: Duration) {
        let labels = AttemptLabels {
            result: result.to_string(),
            profile: profile.to_string(),
        };
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Records a pod bound `e2e` after it was first queued.
    pub fn scheduled(&self, e2e: Duration) {
        self.sli_duration.observe(e2e.as_secs_f64());
    }

    /// Sets the pending-pod gauges.
    pub fn pending(&self, p: Pending) {
        for (q, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
            ("gated", p.gated),
        ] {
            self.pending
                .get_or_create(&QueueLabels { queue: q.into() })
                .set(n as i64);
        }
    }

    /// Attempts so far with `result`, for tests and benchmarks.
    pub fn attempts(&self, result: &str, profile: &str) -> u64 {
        self.attempts
            .get_or_create(&AttemptLabels {
                result: result.to_string(),
                profile: profile.to_string(),
            })
            .get()
    }
}

/// The metrics in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}
