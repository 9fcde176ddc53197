//! The controllers' Prometheus metrics, with the names of upstream's workqueue metrics, each
//! labelled `name` with the controller:
//! `workqueue_depth` (keys waiting), `workqueue_adds_total`, `workqueue_work_duration_seconds`
//! (reconcile time), `workqueue_retries_total` (failed reconciles requeued with backoff), and
//! `rkube_controller_reconcile_errors_total`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The controller a metric is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// The controller's name.
    pub name: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Metrics {
    depth: Family<QueueLabel, Gauge>,
    adds: Family<QueueLabel, Counter>,
    work_duration: Family<QueueLabel, Histogram>,
    retries: Family<QueueLabel, Counter>,
    errors: Family<QueueLabel, Counter>,
    /// Keys queued and not yet picked up, per controller: what the depth gauge counts.
    waiting: Mutex<HashSet<(&'static str, String)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            depth: Family::default(),
            adds: Family::default(),
            work_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
            }),
            retries: Family::default(),
            errors: Family::default(),
            waiting: Mutex::new(HashSet::new()),
        }
    }
}

fn label(controller: &str) -> QueueLabel {
    QueueLabel {
        name: controller.to_string(),
    }
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "workqueue_depth",
            "Current depth of the controllers' work queues",
            self.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Keys added to the controllers' work queues",
            self.adds.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long reconciling one key takes",
            self.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Keys requeued after a failed reconcile",
            self.retries.clone(),
        );
        registry.register(
            "rkube_controller_reconcile_errors",
            "Reconciles that failed",
            self.errors.clone(),
        );
    }

    /// `key` was queued for `controller` (a key already waiting is counted once).
    pub fn queued(&self, controller: &'static str, key: String) {
        self.adds.get_or_create(&label(controller)).inc();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.insert((controller, key)) {
            self.depth.get_or_create(&label(controller)).inc();
        }
    }

    /// `controller` picked up `key`.
    pub fn started(&self, controller: &'static str, key: String) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.remove(&(controller, key)) {
            self.depth.get_or_create(&label(controller)).dec();
        }
    }

    /// A reconcile of `controller` ended after `took`; `failed` if it returned an error.
    pub fn finished(&self, controller: &'static str, took: Duration, failed: bool) {
        let l = label(controller);
        self.work_duration
            .get_or_create(&l)
            .observe(took.as_secs_f64());
        if failed {
            self.errors.get_or_create(&l).inc();
            self.retries.get_or_create(&l).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).expect("encode");
        out
    }

    #[test]
    fn depth_counts_distinct_waiting_keys_and_errors_count_retries() {
        let m = Metrics::default();
        m.queued("deployment", "ns/a".into());
        m.queued("deployment", "ns/a".into());
        m.queued("deployment", "ns/b".into());
        let t = text(&m);
        assert!(t.contains("workqueue_depth{name=\"deployment\"} 2"), "{t}");
        assert!(
            t.contains("workqueue_adds_total{name=\"deployment\"} 3"),
            "{t}"
        );
        m.started("deployment", "ns/a".into());
        m.finished("deployment", Duration::from_millis(2), true);
        let t = text(&m);
        assert!(t.contains("workqueue_depth{name=\"deployment\"} 1"), "{t}");
        assert!(
            t.contains("workqueue_retries_total{name=\"deployment\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("rkube_controller_reconcile_errors_total{name=\"deployment\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("workqueue_work_duration_seconds_count{name=\"deployment\"} 1"),
            "{t}"
        );
    }
}
