//! The HTTP, TCP and gRPC probes and the HTTP hook against real servers on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::get;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, HTTPHeader, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::action::{grpc_probe, http_headers, http_probe, tcp_probe};
use super::lifecycle::http_hook;
use super::state::Outcome;

fn router() -> axum::Router {
    axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "bad") }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }),
        )
        .route(
            "/redirect-away",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://127.0.0.2:1/ok")],
                    "moved",
                )
            }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "x".repeat(20_000) }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let mut lines: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or_default()))
                    .collect();
                lines.sort();
                lines.join("\n")
            }),
        )
}

/// A plain HTTP server on 127.0.0.1; it stops with the test's runtime.
async fn http_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router()).await });
    addr
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate.
async fn https_server() -> SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["pod.invalid".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router());
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// A port on 127.0.0.1 nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn url(scheme: &str, addr: SocketAddr, path: &str) -> reqwest::Url {
    reqwest::Url::parse(&format!("{scheme}://{addr}{path}")).unwrap()
}

fn probe_headers(extra: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    http_headers(
        &HTTPGetAction {
            http_headers: Some(
                extra
                    .iter()
                    .map(|(n, v)| HTTPHeader {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        },
        "kube-probe/1.33",
    )
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn http_probe_succeeds_on_2xx_and_followed_redirects_and_fails_otherwise() {
    let addr = http_server().await;
    let cases: &[(&str, Outcome, &str)] = &[
        ("/ok", Outcome::Success, "fine"),
        ("/redirect", Outcome::Success, "fine"),
        (
            "/redirect-away",
            Outcome::Warning,
            "Probe terminated redirects, Response body: moved",
        ),
        (
            "/fail",
            Outcome::Failure,
            "HTTP probe failed with statuscode: 500",
        ),
        (
            "/missing",
            Outcome::Failure,
            "HTTP probe failed with statuscode: 404",
        ),
    ];
    for (path, outcome, text) in cases {
        let got = http_probe(&url("http", addr, path), probe_headers(&[]), SECOND).await;
        assert_eq!(got, (*outcome, text.to_string()), "{path}");
    }
    let (outcome, text) = http_probe(&url("http", addr, "/loop"), probe_headers(&[]), SECOND).await;
    assert_eq!(outcome, Outcome::Failure);
    assert_eq!(
        text,
        format!("Get \"http://{addr}/loop\": stopped after 10 redirects")
    );
}

#[tokio::test]
async fn http_probe_sends_user_agent_and_headers_and_limits_the_body() {
    let addr = http_server().await;
    let (outcome, body) = http_probe(
        &url("http", addr, "/headers"),
        probe_headers(&[("X-Custom", "1"), ("Host", "svc.example")]),
        SECOND,
    )
    .await;
    assert_eq!(outcome, Outcome::Success);
    assert!(body.contains("user-agent: kube-probe/1.33"), "{body}");
    assert!(body.contains("accept: */*"), "{body}");
    assert!(body.contains("x-custom: 1"), "{body}");
    assert!(body.contains("host: svc.example"), "{body}");
    assert!(!body.contains("accept-encoding"), "{body}");
    let (outcome, body) = http_probe(&url("http", addr, "/big"), probe_headers(&[]), SECOND).await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(body.len(), 10 * 1024);
}

#[tokio::test]
async fn http_probe_fails_on_timeout_and_refusal() {
    let addr = http_server().await;
    let start = Instant::now();
    let (outcome, text) = http_probe(&url("http", addr, "/slow"), probe_headers(&[]), SECOND).await;
    assert_eq!(outcome, Outcome::Failure);
    assert_eq!(
        text,
        format!("Get \"http://{addr}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let port = closed_port().await;
    let (outcome, text) = http_probe(
        &reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        probe_headers(&[]),
        SECOND,
    )
    .await;
    assert_eq!(outcome, Outcome::Failure);
    assert_eq!(
        text,
        format!("Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused")
    );
}

#[tokio::test]
async fn https_probe_skips_certificate_verification() {
    let addr = https_server().await;
    let got = http_probe(&url("https", addr, "/ok"), probe_headers(&[]), SECOND).await;
    assert_eq!(got, (Outcome::Success, "fine".to_string()));
    let got = http_probe(&url("https", addr, "/fail"), probe_headers(&[]), SECOND).await;
    assert_eq!(got.0, Outcome::Failure);
}

#[tokio::test]
async fn tcp_probe_succeeds_on_connect_and_fails_on_refusal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(
        tcp_probe("127.0.0.1", port, SECOND).await,
        (Outcome::Success, String::new())
    );
    drop(listener);
    assert_eq!(
        tcp_probe("127.0.0.1", port, SECOND).await,
        (
            Outcome::Failure,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        )
    );
}

/// A gRPC server with the health service: "" serving, "down" not serving.
async fn grpc_health_server() -> SocketAddr {
    use tonic_health::ServingStatus;
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("down", ServingStatus::NotServing)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = reporter;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    addr
}

#[tokio::test]
async fn grpc_probe_checks_the_health_service() {
    let addr = grpc_health_server().await;
    let host = addr.ip().to_string();
    assert_eq!(
        grpc_probe(&host, addr.port(), "", SECOND).await,
        (Outcome::Success, "service healthy".to_string())
    );
    assert_eq!(
        grpc_probe(&host, addr.port(), "down", SECOND).await,
        (
            Outcome::Failure,
            "service unhealthy (responded with \"NOT_SERVING\")".to_string()
        )
    );
    let (outcome, text) = grpc_probe(&host, addr.port(), "unknown", SECOND).await;
    assert_eq!(outcome, Outcome::Failure);
    assert!(
        text.starts_with("error: health rpc probe failed: rpc error: code = NotFound desc = "),
        "{text}"
    );
    let port = closed_port().await;
    let (outcome, text) = grpc_probe("127.0.0.1", port, "", SECOND).await;
    assert_eq!(outcome, Outcome::Failure);
    assert!(
        text.starts_with(&format!(
            "error: failed to connect service at \"127.0.0.1:{port}\""
        )),
        "{text}"
    );
}

#[tokio::test]
async fn grpc_probe_fails_on_a_server_without_the_health_service() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::builder().routes())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let (outcome, text) = grpc_probe("127.0.0.1", addr.port(), "", SECOND).await;
    assert_eq!(outcome, Outcome::Failure);
    assert!(
        text.starts_with(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
        ),
        "{text}"
    );
}

fn hook_pod() -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some("p".into());
    pod.metadata.namespace = Some("ns".into());
    pod.metadata.uid = Some("u1".into());
    pod
}

fn hook(scheme: &str, port: u16, path: &str) -> HTTPGetAction {
    HTTPGetAction {
        scheme: Some(scheme.into()),
        port: IntOrString::Int(i32::from(port)),
        path: Some(path.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn http_hook_succeeds_on_any_answer_and_fails_without_one() {
    let addr = http_server().await;
    let pod = hook_pod();
    let c = Container {
        name: "c".into(),
        ..Default::default()
    };
    let ip = Some("127.0.0.1");
    http_hook(&pod, &c, &hook("HTTP", addr.port(), "/ok"), ip)
        .await
        .unwrap();
    // upstream's hook checks no status code
    http_hook(&pod, &c, &hook("HTTP", addr.port(), "/fail"), ip)
        .await
        .unwrap();
    // an HTTPS hook answered in plain HTTP is retried over HTTP
    http_hook(&pod, &c, &hook("HTTPS", addr.port(), "/ok"), ip)
        .await
        .unwrap();
    let port = closed_port().await;
    let err = http_hook(&pod, &c, &hook("HTTP", port, "/ok"), ip)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "HTTP lifecycle hook (/ok) for Container \"c\" in Pod \"p_ns(u1)\" failed - error: \
             Get \"http://127.0.0.1:{port}/ok\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
    let err = http_hook(&pod, &c, &hook("HTTP", addr.port(), "/ok"), None)
        .await
        .unwrap_err();
    assert!(
        err.ends_with("failed - error: failed to find networking container"),
        "{err}"
    );
}

#[tokio::test]
async fn https_hook_verifies_certificates() {
    let addr = https_server().await;
    let pod = hook_pod();
    let c = Container {
        name: "c".into(),
        ..Default::default()
    };
    let err = http_hook(
        &pod,
        &c,
        &hook("HTTPS", addr.port(), "/ok"),
        Some("127.0.0.1"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

// ---- the manager, with HTTP probes against a local server and a CRI endpoint that serves
// nothing (no probe here execs) ----

mod manager {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Pod, PodSpec, Probe};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use parking_lot::Mutex;

    use crate::cri::Cri;
    use crate::probes::{ProbeManager, ProbeView, RunningContainer};

    /// A server whose `/<name>` answers the status set for `name` (200 unless set), counting hits.
    #[derive(Clone, Default)]
    struct Target {
        codes: Arc<Mutex<HashMap<String, u16>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
    }

    impl Target {
        async fn start() -> (Target, SocketAddr) {
            let target = Target::default();
            let app = axum::Router::new()
                .route(
                    "/{name}",
                    axum::routing::get(
                        |State(t): State<Target>, Path(name): Path<String>| async move {
                            *t.hits.lock().entry(name.clone()).or_default() += 1;
                            let code = t.codes.lock().get(&name).copied().unwrap_or(200);
                            StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
                        },
                    ),
                )
                .with_state(target.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            (target, addr)
        }

        fn set(&self, name: &str, code: u16) {
            self.codes.lock().insert(name.into(), code);
        }

        fn hits(&self, name: &str) -> usize {
            self.hits.lock().get(name).copied().unwrap_or(0)
        }
    }

    /// A CRI endpoint that answers nothing but lets [`Cri::connect`] succeed.
    async fn idle_cri(dir: &tempfile::TempDir) -> Cri {
        let path = dir.path().join("cri.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::builder().routes())
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
                .await
        });
        Cri::connect(path.to_str().unwrap()).await.unwrap()
    }

    fn http_probe(addr: SocketAddr, name: &str, failure_threshold: i32) -> Option<Probe> {
        Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(format!("/{name}")),
                port: IntOrString::Int(i32::from(addr.port())),
                ..Default::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(failure_threshold),
            ..Default::default()
        })
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>, restart_policy: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.namespace = Some("default".into());
        pod.metadata.uid = Some("uid-1".into());
        pod.spec = Some(PodSpec {
            containers,
            init_containers: Some(init),
            restart_policy: Some(restart_policy.into()),
            ..Default::default()
        });
        pod
    }

    fn running(name: &str, id: &str) -> RunningContainer {
        RunningContainer {
            name: name.into(),
            id: id.into(),
            started_at: SystemTime::now(),
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        manager: ProbeManager,
        wakes: Arc<AtomicUsize>,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cri = idle_cri(&dir).await;
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let manager = ProbeManager::new(
            cri,
            Arc::new(move |uid: &str| {
                assert_eq!(uid, "uid-1");
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        Fixture {
            _dir: dir,
            manager,
            wakes,
        }
    }

    /// Waits until the view satisfies `cond` (10 s at most).
    async fn wait_view(
        m: &ProbeManager,
        what: &str,
        cond: impl Fn(&ProbeView) -> bool,
    ) -> ProbeView {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let view = m.results("uid-1");
            if cond(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "waiting for {what}: {view:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    #[tokio::test]
    async fn readiness_follows_the_probe_and_wakes_the_worker() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        target.set("ready", 503);
        let c = Container {
            name: "c".into(),
            readiness_probe: http_probe(addr, "ready", 1),
            ..Default::default()
        };
        let p = pod(vec![c], vec![], "Always");
        f.manager
            .sync_pod(&p, Some("127.0.0.1"), &[running("c", "id-1")]);
        // no result yet: not ready
        assert_eq!(f.manager.results("uid-1").ready.get("c"), Some(&false));
        wait_view(&f.manager, "a failed probe", |_| target.hits("ready") >= 1).await;
        assert!(!f.manager.results("uid-1").ready["c"]);
        target.set("ready", 200);
        wait_view(&f.manager, "ready", |v| v.ready.get("c") == Some(&true)).await;
        assert!(f.wakes.load(Ordering::SeqCst) >= 1);
        let events = f.manager.take_events("uid-1");
        assert!(
            events.iter().any(|e| e.reason == "Unhealthy"
                && e.message == "Readiness probe failed: HTTP probe failed with statuscode: 503"),
            "{events:?}"
        );
        target.set("ready", 500);
        wait_view(&f.manager, "unready again", |v| {
            v.ready.get("c") == Some(&false)
        })
        .await;
        assert!(f.manager.results("uid-1").restart.is_empty());
    }

    #[tokio::test]
    async fn liveness_failures_ask_for_a_restart_of_that_instance() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        target.set("live", 500);
        let containers = vec![Container {
            name: "c".into(),
            liveness_probe: http_probe(addr, "live", 2),
            ..Default::default()
        }];
        let sidecar = Container {
            name: "side".into(),
            restart_policy: Some("Always".into()),
            liveness_probe: http_probe(addr, "live", 2),
            ..Default::default()
        };
        let p = pod(containers, vec![sidecar], "Always");
        f.manager.sync_pod(
            &p,
            Some("127.0.0.1"),
            &[running("c", "id-1"), running("side", "id-s")],
        );
        let view = wait_view(&f.manager, "restarts", |v| v.restart.len() == 2).await;
        assert_eq!(
            view.restart["c"],
            (
                "id-1".into(),
                "Container c failed liveness probe, will be restarted".into()
            )
        );
        assert_eq!(
            view.restart["side"],
            (
                "id-s".into(),
                "Init container side failed liveness probe".into()
            )
        );
        // a failed instance is not probed again
        let hits = target.hits("live");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(target.hits("live"), hits);
        // its replacement starts afresh
        target.set("live", 200);
        f.manager.sync_pod(
            &p,
            Some("127.0.0.1"),
            &[running("c", "id-2"), running("side", "id-s")],
        );
        assert!(!f.manager.results("uid-1").restart.contains_key("c"));
        wait_view(&f.manager, "the new instance probed", |_| {
            target.hits("live") > hits
        })
        .await;
        assert!(!f.manager.results("uid-1").restart.contains_key("c"));
        // with restartPolicy Never the message does not promise a restart
        let never = pod(p.spec.clone().unwrap().containers, vec![], "Never");
        let mut never = never;
        never.metadata.uid = Some("uid-1".into());
        target.set("live", 500);
        f.manager
            .sync_pod(&never, Some("127.0.0.1"), &[running("c", "id-3")]);
        let view = wait_view(&f.manager, "restart of id-3", |v| {
            v.restart.contains_key("c")
        })
        .await;
        assert_eq!(
            view.restart["c"],
            ("id-3".into(), "Container c failed liveness probe".into())
        );
        assert!(
            !view.restart.contains_key("side"),
            "sidecar gone from the list"
        );
    }

    #[tokio::test]
    async fn startup_probe_holds_back_liveness_and_readiness() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        target.set("startup", 500);
        target.set("live", 500);
        let c = Container {
            name: "c".into(),
            startup_probe: http_probe(addr, "startup", 100),
            liveness_probe: http_probe(addr, "live", 1),
            readiness_probe: http_probe(addr, "ready", 1),
            ..Default::default()
        };
        let p = pod(vec![c], vec![], "Always");
        f.manager
            .sync_pod(&p, Some("127.0.0.1"), &[running("c", "id-1")]);
        let view = f.manager.results("uid-1");
        assert_eq!(view.started.get("c"), Some(&false));
        assert_eq!(view.ready.get("c"), Some(&false));
        wait_view(&f.manager, "startup probed twice", |_| {
            target.hits("startup") >= 2
        })
        .await;
        let view = f.manager.results("uid-1");
        assert_eq!((target.hits("live"), target.hits("ready")), (0, 0));
        assert!(!view.started["c"]);
        assert!(view.restart.is_empty(), "{view:?}");
        // once started, readiness and liveness run (and this liveness fails at once)
        target.set("startup", 200);
        let view = wait_view(&f.manager, "started, ready and failed liveness", |v| {
            v.started.get("c") == Some(&true)
                && v.ready.get("c") == Some(&true)
                && v.restart.contains_key("c")
        })
        .await;
        assert_eq!(
            view.restart["c"].1,
            "Container c failed liveness probe, will be restarted"
        );
        // the startup probe is done once it has passed
        let hits = target.hits("startup");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(target.hits("startup"), hits);
    }

    #[tokio::test]
    async fn a_failing_startup_probe_asks_for_a_restart() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        target.set("startup", 500);
        let c = Container {
            name: "c".into(),
            startup_probe: http_probe(addr, "startup", 2),
            ..Default::default()
        };
        let p = pod(vec![c], vec![], "OnFailure");
        f.manager
            .sync_pod(&p, Some("127.0.0.1"), &[running("c", "id-1")]);
        let view = wait_view(&f.manager, "restart", |v| v.restart.contains_key("c")).await;
        assert_eq!(
            view.restart["c"],
            (
                "id-1".into(),
                "Container c failed startup probe, will be restarted".into()
            )
        );
        assert!(!view.started["c"]);
    }

    #[tokio::test]
    async fn removed_and_deleted_pods_stop_probing() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        let c = Container {
            name: "c".into(),
            liveness_probe: http_probe(addr, "live", 1),
            readiness_probe: http_probe(addr, "ready", 1),
            ..Default::default()
        };
        let mut p = pod(vec![c], vec![], "Always");
        f.manager
            .sync_pod(&p, Some("127.0.0.1"), &[running("c", "id-1")]);
        wait_view(&f.manager, "probes", |_| {
            target.hits("live") >= 1 && target.hits("ready") >= 1
        })
        .await;
        // graceful deletion: liveness stops (as a success), readiness goes on
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        target.set("live", 500);
        f.manager
            .sync_pod(&p, Some("127.0.0.1"), &[running("c", "id-1")]);
        let live = target.hits("live");
        let ready = target.hits("ready");
        wait_view(&f.manager, "readiness still probed", |_| {
            target.hits("ready") >= ready + 2
        })
        .await;
        assert_eq!(target.hits("live"), live);
        assert!(f.manager.results("uid-1").restart.is_empty());
        // removal stops everything and forgets the results
        f.manager.remove_pod("uid-1");
        assert_eq!(f.manager.results("uid-1"), ProbeView::default());
        let ready = target.hits("ready");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(target.hits("ready"), ready);
        assert_eq!(
            format!("{:?}", f.manager),
            "ProbeManager { pods: 0, tasks: 0 }"
        );
    }

    #[tokio::test]
    async fn containers_no_longer_running_lose_their_probes() {
        let (target, addr) = Target::start().await;
        let f = fixture().await;
        let c = Container {
            name: "c".into(),
            readiness_probe: http_probe(addr, "ready", 1),
            ..Default::default()
        };
        let plain_init = Container {
            name: "init".into(),
            readiness_probe: http_probe(addr, "init", 1),
            ..Default::default()
        };
        let p = pod(vec![c], vec![plain_init], "Always");
        f.manager.sync_pod(
            &p,
            Some("127.0.0.1"),
            &[running("c", "id-1"), running("init", "id-i")],
        );
        wait_view(&f.manager, "ready", |v| v.ready.get("c") == Some(&true)).await;
        // plain init containers have no probes
        assert_eq!(target.hits("init"), 0);
        assert!(!f.manager.results("uid-1").ready.contains_key("init"));
        f.manager.sync_pod(&p, Some("127.0.0.1"), &[]);
        assert_eq!(f.manager.results("uid-1"), ProbeView::default());
        let hits = target.hits("ready");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(target.hits("ready"), hits);
    }
}

#[test]
fn the_manager_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<super::ProbeManager>();
    shared::<super::ProbeView>();
}
