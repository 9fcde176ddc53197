//! Running one probe (upstream's pkg/probe/{exec,http,tcp,grpc} and the prober's `runProbe`):
//! exec through CRI ExecSync, HTTP GET, TCP connect, and the gRPC health checking protocol.
//! Each gives an [`Outcome`] with the text events show, or an error (the run does not count).

use std::sync::OnceLock;
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::expand;
use super::gofmt;
use super::state::Outcome;
use crate::cri::Cri;

/// The Kubernetes version the kubelet reports in its User-Agents (`kube-probe/1.33`).
pub const KUBE_VERSION: &str = "1.33";

/// How much of a response body or command output a probe keeps (upstream's 10 KiB).
pub const MAX_OUTPUT: usize = 10 << 10;

/// How often a probe that errors (rather than fails) is retried before the run is dropped.
const MAX_RETRIES: usize = 3;

/// A probe run: its outcome and the text events show, or an error (the run does not count).
pub type RunResult = Result<(Outcome, String), String>;

/// What a probe runs against.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub container: &'a Container,
    pub container_id: &'a str,
    pub pod_ip: Option<&'a str>,
    /// `format.Pod` of the pod, for error texts.
    pub pod_desc: &'a str,
}

/// Runs a probe, retrying up to three times while it errors (upstream's `runProbeWithRetries`).
pub async fn run(cri: &Cri, probe: &Probe, target: Target<'_>, timeout: Duration) -> RunResult {
    let mut last = Err(String::new());
    for _ in 0..MAX_RETRIES {
        last = run_once(cri, probe, target, timeout).await;
        if last.is_ok() {
            break;
        }
    }
    last
}

async fn run_once(cri: &Cri, probe: &Probe, target: Target<'_>, timeout: Duration) -> RunResult {
    if let Some(exec) = &probe.exec {
        let command = expand::command_with_static_env(
            exec.command.as_deref().unwrap_or_default(),
            target.container.env.as_deref().unwrap_or_default(),
        );
        return exec_probe(cri, target.container_id, &command, timeout).await;
    }
    if let Some(http) = &probe.http_get {
        let url = http_url(http, target.container, target.pod_ip)?;
        let headers = http_headers(http, &format!("kube-probe/{KUBE_VERSION}"));
        return Ok(http_probe(&url, headers, timeout).await);
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, target.container)?;
        let host = host_or_pod_ip(tcp.host.as_deref(), target.pod_ip)?;
        return Ok(tcp_probe(&host, port, timeout).await);
    }
    if let Some(grpc) = &probe.grpc {
        let host = host_or_pod_ip(None, target.pod_ip)?;
        let port = u16::try_from(grpc.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port number: {}", grpc.port))?;
        let service = grpc.service.as_deref().unwrap_or_default();
        return Ok(grpc_probe(&host, port, service, timeout).await);
    }
    Err(format!(
        "missing probe handler for {}:{}",
        target.pod_desc, target.container.name
    ))
}

/// The host a network probe dials: its own, else the pod's IP. Upstream dials an empty host as
/// the node's own loopback; rkube refuses instead (a pod without an IP has nothing to probe).
fn host_or_pod_ip(host: Option<&str>, pod_ip: Option<&str>) -> Result<String, String> {
    match host
        .filter(|h| !h.is_empty())
        .or(pod_ip.filter(|ip| !ip.is_empty()))
    {
        Some(h) => Ok(h.to_string()),
        None => Err("the pod has no IP address yet".into()),
    }
}

/// Upstream's `probe.ResolveContainerPort`: a number, or the name of one of the container's
/// ports (else a number written as a string).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n: i64 = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| i64::from(p.container_port));
            match named {
                Some(n) => n,
                None => name.parse::<i64>().map_err(|_| {
                    format!(
                        "strconv.Atoi: parsing {}: invalid syntax",
                        gofmt::quote(name)
                    )
                })?,
            }
        }
    };
    if n > 0 && n < 65536 {
        Ok(n as u16)
    } else {
        Err(format!("invalid port number: {n}"))
    }
}

// ---- exec ----

/// How an exec in a container ended, when not with exit code 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The command ran past its timeout: upstream's `command "..." timed out`.
    Timeout(String),
    /// The command exited non-zero: upstream's `command '...' exited with N: <stderr>`.
    Exit { code: i32, message: String },
    /// The runtime refused or failed the call (as Go prints a gRPC error).
    Runtime(String),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Timeout(m) | ExecError::Runtime(m) => f.write_str(m),
            ExecError::Exit { message, .. } => f.write_str(message),
        }
    }
}

/// Runs a command in a container through CRI ExecSync (upstream's `RunInContainer`): the
/// output is stdout then stderr. A zero timeout means none.
pub async fn exec_in_container(
    cri: &Cri,
    container_id: &str,
    command: &[String],
    timeout: Duration,
) -> (Vec<u8>, Result<(), ExecError>) {
    let joined = command.join(" ");
    let timed_out = || ExecError::Timeout(format!("command {} timed out", gofmt::quote(&joined)));
    let mut runtime = cri.runtime.clone();
    let call = runtime.exec_sync(cri::ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: command.to_vec(),
        timeout: timeout.as_secs() as i64,
    });
    let response = if timeout.is_zero() {
        call.await
    } else {
        // the runtime ends the command at the timeout; this bound only guards against a
        // runtime that never answers
        match tokio::time::timeout(timeout + Duration::from_secs(10), call).await {
            Ok(r) => r,
            Err(_) => return (Vec::new(), Err(timed_out())),
        }
    };
    match response {
        Ok(r) => {
            let r = r.into_inner();
            let mut output = r.stdout;
            let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
            output.extend_from_slice(&r.stderr);
            if r.exit_code == 0 {
                (output, Ok(()))
            } else {
                let message = format!("command '{joined}' exited with {}: {stderr}", r.exit_code);
                (
                    output,
                    Err(ExecError::Exit {
                        code: r.exit_code,
                        message,
                    }),
                )
            }
        }
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
            (Vec::new(), Err(timed_out()))
        }
        Err(status) => (
            Vec::new(),
            Err(ExecError::Runtime(format!(
                "rpc error: code = {:?} desc = {}",
                status.code(),
                status.message()
            ))),
        ),
    }
}

/// Upstream's exec prober: exit 0 succeeds, another exit code or a timeout fails, a runtime
/// error errors.
pub async fn exec_probe(
    cri: &Cri,
    container_id: &str,
    command: &[String],
    timeout: Duration,
) -> RunResult {
    let (mut output, result) = exec_in_container(cri, container_id, command, timeout).await;
    output.truncate(MAX_OUTPUT);
    let output = String::from_utf8_lossy(&output).into_owned();
    match result {
        Ok(()) => Ok((Outcome::Success, output)),
        Err(ExecError::Exit { .. }) => Ok((Outcome::Failure, output)),
        Err(ExecError::Timeout(message)) => Ok((Outcome::Failure, message)),
        Err(ExecError::Runtime(message)) => Err(message),
    }
}

// ---- HTTP ----

/// The URL of an httpGet action (upstream's `GetProbeUrl`): scheme (default http), host (default
/// the pod's IP), port, and the path with its query.
pub fn http_url(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: Option<&str>,
) -> Result<reqwest::Url, String> {
    let scheme = action
        .scheme
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("http")
        .to_ascii_lowercase();
    let host = host_or_pod_ip(action.host.as_deref(), pod_ip)?;
    let port = resolve_port(&action.port, container)?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let path = action.path.as_deref().unwrap_or_default();
    let slash = if path.starts_with('/') || path.is_empty() {
        ""
    } else {
        "/"
    };
    let text = format!("{scheme}://{host}:{port}{slash}{path}");
    reqwest::Url::parse(&text).map_err(|e| format!("parse {}: {e}", gofmt::quote(&text)))
}

/// The request headers of an httpGet action: its own, then a User-Agent and `Accept: */*`
/// unless given (an empty Accept removes it), as upstream's `newProbeRequest`.
pub fn http_headers(action: &HTTPGetAction, user_agent: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for h in action.http_headers.iter().flatten() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            headers.append(name, value);
        }
    }
    if !headers.contains_key(reqwest::header::USER_AGENT) {
        if let Ok(v) = HeaderValue::from_str(user_agent) {
            headers.insert(reqwest::header::USER_AGENT, v);
        }
    }
    match headers.get(reqwest::header::ACCEPT) {
        None => {
            headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        Some(v) if v.is_empty() => {
            headers.remove(reqwest::header::ACCEPT);
        }
        Some(_) => {}
    }
    headers
}

/// The probes' HTTP client: no certificate verification, no proxy, no keep-alive, no
/// compression, and redirects followed only to the same host (at most 10), as upstream's.
fn probe_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .danger_accept_invalid_certs(true)
                .pool_max_idle_per_host(0)
                .default_headers(HeaderMap::new())
                .redirect(reqwest::redirect::Policy::custom(|attempt| {
                    let first = attempt.previous().first().and_then(|u| u.host_str());
                    if attempt.url().host_str() != first {
                        // a redirect to another host is not followed: the probe sees the 3xx
                        attempt.stop()
                    } else if attempt.previous().len() >= 10 {
                        attempt.error("stopped after 10 redirects")
                    } else {
                        attempt.follow()
                    }
                }))
                .build()
                .map_err(|e| format!("building the HTTP probe client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The lifecycle hooks' HTTP client: as upstream's plain Go client, certificates verified
/// against the system's roots and up to 10 redirects; no proxy either (rkube never sends pod
/// traffic through one).
pub(super) fn lifecycle_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .default_headers(HeaderMap::new())
                .build()
                .map_err(|e| format!("building the HTTP hook client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Upstream's HTTP prober: 200–399 succeeds (a redirect that was not followed succeeds with a
/// warning), anything else or no answer within the timeout fails.
pub async fn http_probe(
    url: &reqwest::Url,
    headers: HeaderMap,
    timeout: Duration,
) -> (Outcome, String) {
    let client = match probe_client() {
        Ok(c) => c,
        Err(e) => return (Outcome::Unknown, e),
    };
    let response = client
        .get(url.clone())
        .headers(headers)
        .timeout(timeout)
        .send()
        .await;
    let mut response = match response {
        Ok(r) => r,
        Err(e) => return (Outcome::Failure, http_error(url, &e)),
    };
    let status = response.status().as_u16();
    let body = match read_limited(&mut response).await {
        Ok(b) => b,
        Err(e) => return (Outcome::Failure, http_error(url, &e)),
    };
    match status {
        300..=399 => (
            Outcome::Warning,
            format!("Probe terminated redirects, Response body: {body}"),
        ),
        200..=299 => (Outcome::Success, body),
        _ => (
            Outcome::Failure,
            format!("HTTP probe failed with statuscode: {status}"),
        ),
    }
}

/// Reads at most [`MAX_OUTPUT`] bytes of a response body (the rest is dropped, as upstream).
pub(super) async fn read_limited(
    response: &mut reqwest::Response,
) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_OUTPUT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_OUTPUT {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A failed request as Go's client words it: `Get "URL": <cause>`.
pub(super) fn http_error(url: &reqwest::Url, err: &reqwest::Error) -> String {
    let cause = if err.is_timeout() {
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
    } else if err.is_redirect() {
        "stopped after 10 redirects".to_string()
    } else {
        match io_cause(err) {
            Some(io) if io.raw_os_error().is_some() && err.is_connect() => format!(
                "dial tcp {}:{}: connect: {}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or_default(),
                os_message(io)
            ),
            Some(io) => io.to_string(),
            None => innermost(err),
        }
    };
    format!("Get {}: {cause}", gofmt::quote(url.as_str()))
}

fn io_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    error_chain(err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
}

/// An error and its causes, outermost first. An `io::Error`'s `source()` skips the error it
/// wraps, so that one is listed too.
pub(super) fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut chain = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        chain.push(e);
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    chain
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    error_chain(err)
        .last()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// An OS error as Go prints it (`connection refused`, `no route to host`).
fn os_message(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let text = nix::errno::Errno::from_raw(code).desc();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        None => err.to_string(),
    }
}

// ---- TCP ----

/// Upstream's TCP prober: a connection within the timeout succeeds. The socket closes with a
/// reset (SO_LINGER 0), as upstream's, so probes leave no TIME_WAIT behind.
pub async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> (Outcome, String) {
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_zero_linger();
            (Outcome::Success, String::new())
        }
        Ok(Err(e)) => (
            Outcome::Failure,
            format!("dial tcp {addr}: connect: {}", os_message(&e)),
        ),
        Err(_) => (Outcome::Failure, format!("dial tcp {addr}: i/o timeout")),
    }
}

// ---- gRPC ----

/// Upstream's gRPC prober: `grpc.health.v1.Health/Check` for `service` must answer SERVING
/// within the timeout (plaintext, no TLS, as upstream's).
pub async fn grpc_probe(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> (Outcome, String) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let secs = gofmt::duration(timeout.as_secs());
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .and_then(|e| e.user_agent(format!("kube-probe/{KUBE_VERSION}")))
    {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => {
            return (
                Outcome::Failure,
                format!(
                    "error: failed to connect service at {}: {e}",
                    gofmt::quote(&addr)
                ),
            )
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return (
                Outcome::Failure,
                format!(
                    "error: failed to connect service at {}: {}",
                    gofmt::quote(&addr),
                    innermost(&e)
                ),
            )
        }
        Err(_) => {
            return (
                Outcome::Failure,
                format!(
                "timeout: failed to connect service {} within {secs}: context deadline exceeded",
                gofmt::quote(&addr)
            ),
            )
        }
    };
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: service.to_string(),
    });
    let deadline_text = format!("timeout: health rpc did not complete within {secs}");
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => (Outcome::Failure, deadline_text),
        Ok(Err(status)) => match status.code() {
            tonic::Code::Unimplemented => (
                Outcome::Failure,
                format!(
                    "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                    status.message()
                ),
            ),
            tonic::Code::DeadlineExceeded => (Outcome::Failure, deadline_text),
            code => (
                Outcome::Failure,
                format!(
                    "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                    status.message()
                ),
            ),
        },
        Ok(Ok(response)) => {
            let status = response.into_inner().status;
            if status == ServingStatus::Serving as i32 {
                (Outcome::Success, "service healthy".into())
            } else {
                let name = ServingStatus::try_from(status)
                    .map(|s| s.as_str_name().to_string())
                    .unwrap_or_else(|_| status.to_string());
                (
                    Outcome::Failure,
                    format!("service unhealthy (responded with {})", gofmt::quote(&name)),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader};

    fn container() -> Container {
        Container {
            name: "c".into(),
            ports: Some(vec![
                ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("9090".into()),
                    container_port: 9999,
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_as_upstream() {
        let c = container();
        let s = |v: &str| IntOrString::String(v.into());
        let cases: Vec<(IntOrString, Result<u16, String>)> = vec![
            (IntOrString::Int(80), Ok(80)),
            (s("http"), Ok(8080)),
            // a name wins over a number written as a string
            (s("9090"), Ok(9999)),
            (s("81"), Ok(81)),
            (
                s("nope"),
                Err("strconv.Atoi: parsing \"nope\": invalid syntax".into()),
            ),
            (IntOrString::Int(0), Err("invalid port number: 0".into())),
            (
                IntOrString::Int(65536),
                Err("invalid port number: 65536".into()),
            ),
            (s("-1"), Err("invalid port number: -1".into())),
        ];
        for (port, want) in cases {
            assert_eq!(resolve_port(&port, &c), want, "{port:?}");
        }
    }

    #[test]
    fn urls_as_upstream() {
        let c = container();
        let action = |scheme: Option<&str>, host: Option<&str>, path: Option<&str>| HTTPGetAction {
            scheme: scheme.map(Into::into),
            host: host.map(Into::into),
            path: path.map(Into::into),
            port: IntOrString::String("http".into()),
            http_headers: None,
        };
        let cases = [
            (
                action(None, None, Some("/healthz")),
                "http://10.1.2.3:8080/healthz",
            ),
            (
                action(Some("HTTPS"), None, Some("/x?y=1&z")),
                "https://10.1.2.3:8080/x?y=1&z",
            ),
            (action(None, None, None), "http://10.1.2.3:8080/"),
            (
                action(None, None, Some("ready")),
                "http://10.1.2.3:8080/ready",
            ),
            (
                action(None, Some("example.test"), Some("/")),
                "http://example.test:8080/",
            ),
            (
                action(None, Some("fd00::5"), Some("/")),
                "http://[fd00::5]:8080/",
            ),
        ];
        for (a, want) in cases {
            assert_eq!(
                http_url(&a, &c, Some("10.1.2.3")).unwrap().as_str(),
                want,
                "{a:?}"
            );
        }
        assert!(http_url(&action(None, None, None), &c, None).is_err());
    }

    #[test]
    fn headers_as_upstream() {
        let with = |headers: &[(&str, &str)]| HTTPGetAction {
            http_headers: Some(
                headers
                    .iter()
                    .map(|(n, v)| HTTPHeader {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let h = http_headers(&with(&[]), "kube-probe/1.33");
        assert_eq!(h["user-agent"], "kube-probe/1.33");
        assert_eq!(h["accept"], "*/*");
        let h = http_headers(
            &with(&[
                ("user-agent", "mine"),
                ("Accept", "text/plain"),
                ("X-A", "1"),
                ("X-A", "2"),
            ]),
            "kube-probe/1.33",
        );
        assert_eq!(h["user-agent"], "mine");
        assert_eq!(h["accept"], "text/plain");
        assert_eq!(h.get_all("x-a").iter().count(), 2);
        let h = http_headers(&with(&[("Accept", "")]), "kube-probe/1.33");
        assert!(h.get("accept").is_none());
        let h = http_headers(&with(&[("Host", "svc.example")]), "kube-probe/1.33");
        assert_eq!(h["host"], "svc.example");
    }
}
