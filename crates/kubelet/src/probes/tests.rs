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
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "bad") }))
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
        ("/fail", Outcome::Failure, "HTTP probe failed with statuscode: 500"),
        ("/missing", Outcome::Failure, "HTTP probe failed with statuscode: 404"),
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
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
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
    reporter.set_service_status("", ServingStatus::Serving).await;
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
        text.starts_with(&format!("error: failed to connect service at \"127.0.0.1:{port}\"")),
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
    assert!(err.ends_with("failed - error: failed to find networking container"), "{err}");
}

#[tokio::test]
async fn https_hook_verifies_certificates() {
    let addr = https_server().await;
    let pod = hook_pod();
    let c = Container {
        name: "c".into(),
        ..Default::default()
    };
    let err = http_hook(&pod, &c, &hook("HTTPS", addr.port(), "/ok"), Some("127.0.0.1"))
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

