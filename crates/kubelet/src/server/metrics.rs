//! The kubelet server's own `/metrics`: upstream's `kubelet_http_requests_total`,
//! `kubelet_http_inflight_requests`, `kubelet_http_requests_duration_seconds` and
//! `kubelet_websocket_streaming_requests_total` (which this kubelet counts for the
//! translated and tunnelled sessions it serves), on prometheus-client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::negotiate::{Mode, StreamKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub path: String,
    pub server_type: String,
    pub long_running: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub request_type: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    inflight: Family<HttpLabels, Gauge>,
    duration: Family<HttpLabels, Histogram>,
    streams: Family<StreamLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The first path segment upstream counts requests under (`metrics/<x>` for metrics),
/// `other` for paths it does not serve.
pub fn path_bucket(path: &str) -> String {
    const KNOWN: &[&str] = &[
        "healthz",
        "pods",
        "stats",
        "metrics",
        "metrics/resource",
        "metrics/cadvisor",
        "metrics/probes",
        "exec",
        "attach",
        "portForward",
        "containerLogs",
        "runningpods",
        "configz",
        "run",
        "logs",
    ];
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let first = parts.next().unwrap_or("");
    let root = match (first, parts.next()) {
        ("metrics", Some(second)) if !second.is_empty() => format!("metrics/{second}"),
        _ => first.to_string(),
    };
    if KNOWN.contains(&root.as_str()) {
        root
    } else {
        "other".into()
    }
}

fn method_bucket(method: &str) -> String {
    match method {
        "OPTIONS" | "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "TRACE" | "CONNECT" => {
            method.to_string()
        }
        _ => "other".into(),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        let inflight = Family::<HttpLabels, Gauge>::default();
        let duration = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.5, 12))
        });
        let streams = Family::<StreamLabels, Counter>::default();
        registry.register(
            "kubelet_http_requests",
            "Number of the http requests received since the server started",
            requests.clone(),
        );
        registry.register(
            "kubelet_http_inflight_requests",
            "Number of the inflight http requests",
            inflight.clone(),
        );
        registry.register(
            "kubelet_http_requests_duration_seconds",
            "Duration in seconds to serve http requests",
            duration.clone(),
        );
        registry.register(
            "kubelet_websocket_streaming_requests",
            "Number of WebSocket streaming requests the kubelet translated or tunnelled",
            streams.clone(),
        );
        Metrics {
            registry,
            requests,
            inflight,
            duration,
            streams,
        }
    }

    /// Labels of a request.
    pub fn labels(method: &str, path: &str) -> HttpLabels {
        let path = path_bucket(path);
        let long_running = matches!(path.as_str(), "exec" | "attach" | "portForward");
        HttpLabels {
            method: method_bucket(method),
            path,
            server_type: "readwrite".into(),
            long_running: long_running.to_string(),
        }
    }

    /// Counts a request in and returns a guard that counts it out.
    pub fn start(&self, labels: HttpLabels) -> InFlight<'_> {
        self.requests.get_or_create(&labels).inc();
        self.inflight.get_or_create(&labels).inc();
        InFlight {
            metrics: self,
            labels,
            started: std::time::Instant::now(),
        }
    }

    /// Counts a streaming session the kubelet answers itself.
    pub fn streaming_request(&self, kind: StreamKind, mode: &Mode) {
        if matches!(mode, Mode::TranslateV5 | Mode::Tunnel { .. }) {
            self.streams
                .get_or_create(&StreamLabels {
                    request_type: kind.name().into(),
                })
                .inc();
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A request being served.
#[derive(Debug)]
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    labels: HttpLabels,
    started: std::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.inflight.get_or_create(&self.labels).dec();
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_bucketed_by_their_first_path_segment() {
        for (path, bucket) in [
            ("/containerLogs/ns/p/c", "containerLogs"),
            ("/exec/ns/p/c", "exec"),
            ("/metrics", "metrics"),
            ("/metrics/resource", "metrics/resource"),
            ("/stats/summary", "stats"),
            ("/runningpods/", "runningpods"),
            ("/secret/path", "other"),
            ("/", "other"),
        ] {
            assert_eq!(path_bucket(path), bucket, "{path}");
        }
        assert_eq!(Metrics::labels("GET", "/exec/a/b/c").long_running, "true");
        assert_eq!(Metrics::labels("BREW", "/pods").method, "other");
    }

    #[test]
    fn counted_requests_show_in_the_exposition() {
        let m = Metrics::new();
        {
            let _g = m.start(Metrics::labels("GET", "/pods"));
        }
        m.streaming_request(StreamKind::Exec, &Mode::TranslateV5);
        m.streaming_request(StreamKind::Exec, &Mode::Passthrough);
        let text = m.encode();
        assert!(text.contains(
            r#"kubelet_http_requests_total{method="GET",path="pods",server_type="readwrite",long_running="false"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"kubelet_http_inflight_requests{method="GET",path="pods",server_type="readwrite",long_running="false"} 0"#
        ), "{text}");
        assert!(
            text.contains(r#"kubelet_websocket_streaming_requests_total{request_type="exec"} 1"#),
            "{text}"
        );
    }
}
