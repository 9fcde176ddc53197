//! The subresources served by a kubelet: `pods/log`, `pods/exec`, `pods/attach`,
//! `pods/portforward` and `nodes/proxy`. The API server finds the pod's node and its kubelet
//! endpoint, builds the kubelet URL as upstream's `LogLocation` / `ExecLocation` /
//! `AttachLocation` / `PortForwardLocation` / node `ResourceLocation` do, and proxies: log
//! bodies are streamed back, upgrades (SPDY or WebSocket) are spliced through once the
//! kubelet switched protocols. Which protocol a stream speaks is the kubelet's business
//! (it translates WebSocket v5 and unwraps tunnelled SPDY itself).

use std::net::SocketAddr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::Ctx;
use crate::kubelet_client::kubelet_endpoint;
use crate::status::{ApiError, ApiResult};

/// Serves a kubelet-backed subresource.
pub(crate) async fn connect(ctx: Ctx, method: Method, body: Body) -> ApiResult<Response> {
    let sub = ctx.req.subresource.clone().unwrap_or_default();
    match (ctx.req.resource.kind, sub.as_str()) {
        ("Pod", "log") => {
            if method != Method::GET && method != Method::HEAD {
                return Err(ApiError::method_not_allowed());
            }
            pod_log(ctx).await
        }
        ("Pod", "exec" | "attach" | "portforward") => {
            if method != Method::GET && method != Method::POST {
                return Err(ApiError::method_not_allowed());
            }
            pod_stream(ctx, method, &sub).await
        }
        ("Node", "proxy") => node_proxy(ctx, method, body).await,
        (_, sub) => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the {sub} subresource is not served by this server yet"),
        )),
    }
}

/// Upstream's `validateContainer`: the container named, or the pod's only one.
fn validate_container(pod: &Value, container: Option<&str>, pod_name: &str) -> ApiResult<String> {
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    match container.filter(|c| !c.is_empty()) {
        None => match containers.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => {
                let mut all = containers.clone();
                all.extend(names("initContainers"));
                all.extend(names("ephemeralContainers"));
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
        Some(c) => {
            let known = containers
                .iter()
                .chain(names("initContainers").iter())
                .chain(names("ephemeralContainers").iter())
                .any(|n| n == c);
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod_name}"
                )))
            }
        }
    }
}

/// The kubelet endpoint of the node a pod is bound to; `None` when it is not bound yet.
async fn pod_node(ctx: &Ctx, pod: &Value) -> ApiResult<Option<SocketAddr>> {
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Ok(None);
    }
    node_endpoint(ctx, node).await.map(Some)
}

async fn node_endpoint(ctx: &Ctx, node: &str) -> ApiResult<SocketAddr> {
    let obj = ctx
        .server
        .read_object("", "nodes", "", node)
        .await?
        .ok_or_else(|| ApiError::new(404, "NotFound", format!("nodes \"{node}\" not found")))?;
    kubelet_endpoint(&obj).map_err(ApiError::internal)
}

/// The `PodLogOptions` of a request, checked as upstream's `ValidatePodLogOptions`.
#[derive(Debug, Default)]
struct LogOptions {
    container: Option<String>,
    follow: bool,
    previous: bool,
    timestamps: bool,
    since_seconds: Option<i64>,
    since_time: Option<String>,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
    stream: Option<String>,
    insecure_skip_tls_verify_backend: bool,
}

fn log_options(ctx: &Ctx) -> ApiResult<LogOptions> {
    let q = &ctx.query;
    let o = LogOptions {
        container: q.get("container").map(str::to_string),
        follow: q.flag("follow")?,
        previous: q.flag("previous")?,
        timestamps: q.flag("timestamps")?,
        since_seconds: q.int("sinceSeconds")?,
        since_time: match q.get("sinceTime") {
            None => None,
            Some(t) => {
                let ts: jiff::Timestamp = t.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "parsing time \"{t}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse"
                    ))
                })?;
                Some(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            }
        },
        tail_lines: q.int("tailLines")?,
        limit_bytes: q.int("limitBytes")?,
        stream: q.get("stream").map(str::to_string),
        insecure_skip_tls_verify_backend: q.flag("insecureSkipTLSVerifyBackend")?,
    };
    use rkube_api::{FieldError, FieldPath};
    let mut errs = Vec::new();
    if let Some(t) = o.tail_lines.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            &FieldPath::new("tailLines"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(b) = o.limit_bytes.filter(|b| *b < 1) {
        errs.push(FieldError::invalid(
            &FieldPath::new("limitBytes"),
            b,
            "must be greater than 0",
        ));
    }
    if o.since_seconds.is_some() && o.since_time.is_some() {
        errs.push(FieldError::forbidden(
            &FieldPath::new(""),
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if let Some(s) = o.since_seconds.filter(|s| *s < 1) {
        errs.push(FieldError::invalid(
            &FieldPath::new("sinceSeconds"),
            s,
            "must be greater than 0",
        ));
    }
    if let Some(s) = o
        .stream
        .as_deref()
        .filter(|s| !matches!(*s, "All" | "Stdout" | "Stderr"))
    {
        errs.push(FieldError::not_supported(
            &FieldPath::new("stream"),
            s,
            &["All", "Stderr", "Stdout"],
        ));
    }
    if !errs.is_empty() {
        let res = rkube_api::ResourceInfo {
            kind: "PodLogOptions",
            ..*ctx.req.resource
        };
        return Err(ApiError::invalid(&res, ctx.name(), &errs));
    }
    Ok(o)
}

/// `GET pods/{name}/log`.
async fn pod_log(ctx: Ctx) -> ApiResult<Response> {
    let opts = log_options(&ctx)?;
    let (pod, _) = super::read::load(&ctx).await?;
    let name = ctx.name().to_string();
    let container = validate_container(&pod, opts.container.as_deref(), &name)?;
    let Some(addr) = pod_node(&ctx, &pod).await? else {
        // Not scheduled yet: upstream streams nothing.
        return Ok(text_plain(StatusCode::OK, Body::empty()));
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    if opts.follow {
        params.push(("follow", "true".into()));
    }
    if opts.previous {
        params.push(("previous", "true".into()));
    }
    if opts.timestamps {
        params.push(("timestamps", "true".into()));
    }
    if let Some(s) = opts.since_seconds {
        params.push(("sinceSeconds", s.to_string()));
    }
    if let Some(t) = &opts.since_time {
        params.push(("sinceTime", t.clone()));
    }
    if let Some(t) = opts.tail_lines {
        params.push(("tailLines", t.to_string()));
    }
    if let Some(b) = opts.limit_bytes {
        params.push(("limitBytes", b.to_string()));
    }
    if let Some(s) = &opts.stream {
        params.push(("stream", s.clone()));
    }
    let path = format!("/containerLogs/{}/{}/{}", ctx.namespace(), name, container);
    let uri = with_query(&path, &params);
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    let resp = send(
        &ctx,
        addr,
        opts.insecure_skip_tls_verify_backend,
        Method::GET,
        &uri,
        headers,
        Body::empty(),
    )
    .await?;
    let status = resp.status();
    if !(200..=206).contains(&status.as_u16()) {
        return Err(kubelet_error(resp, "pods/log", &name).await);
    }
    Ok(text_plain(StatusCode::OK, Body::new(resp.into_body())))
}

fn text_plain(code: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("{path}?{q}")
}

/// Upstream's `GenericHttpResponseChecker`: a kubelet's error becomes a Status with its
/// code and its text as the message.
async fn kubelet_error(
    resp: Response<hyper::body::Incoming>,
    resource: &str,
    name: &str,
) -> ApiError {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), 50_000)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    match code {
        500 => ApiError::internal(text),
        400 => ApiError::bad_request(text),
        404 => {
            let mut e = ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ( {resource} {name})"),
            );
            if !text.is_empty() {
                e.causes.push(crate::status::Cause {
                    reason: "UnexpectedServerResponse".into(),
                    message: text,
                    field: String::new(),
                });
            }
            e
        }
        401 => ApiError::new(401, "Unauthorized", text),
        403 => ApiError::new(403, "Forbidden", text),
        429 => ApiError::new(429, "TooManyRequests", text),
        503 => ApiError::new(503, "ServiceUnavailable", text),
        other => ApiError::new(
            other,
            "",
            if text.is_empty() {
                format!("the server responded with the status code {other} but did not return more information")
            } else {
                text
            },
        ),
    }
}

/// Sends one request to a kubelet over a fresh connection; the response body streams from
/// it.
async fn send(
    ctx: &Ctx,
    addr: SocketAddr,
    skip_verify: bool,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response<hyper::body::Incoming>> {
    let url = format!("https://{addr}{path_and_query}");
    let fail = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!("{} \"{url}\": {e}", method_word(&method)))
    };
    let tls = ctx
        .server
        .security
        .kubelet
        .connect(addr, skip_verify)
        .await
        .map_err(|e| fail(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| fail(&e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .body(body)
        .map_err(|e| fail(&e))?;
    *req.headers_mut() = headers;
    if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
        req.headers_mut().insert(header::HOST, host);
    }
    sender.send_request(req).await.map_err(|e| fail(&e))
}

/// Go's `http.Client` error prefix.
fn method_word(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_ascii_lowercase());
    out
}

/// Whether the client asked to upgrade the connection.
fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Request headers an upgrade carries to the kubelet.
const UPGRADE_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "origin",
    "x-stream-protocol-version",
];

/// Response headers of the kubelet's 101 the client sees.
const UPGRADE_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, names: &[&'static str]) {
    for name in names {
        for v in from.get_all(*name) {
            to.append(HeaderName::from_static(name), v.clone());
        }
    }
}

/// `pods/{name}/exec`, `attach`, `portforward`: upgrade required.
async fn pod_stream(mut ctx: Ctx, method: Method, sub: &str) -> ApiResult<Response> {
    if !is_upgrade(&ctx.headers) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let (pod, _) = super::read::load(&ctx).await?;
    let name = ctx.name().to_string();
    let q = &ctx.query;
    let mut params: Vec<(&str, String)> = Vec::new();
    let path = if sub == "portforward" {
        let mut ports = Vec::new();
        for v in q.all("ports") {
            for p in v.split(',').filter(|p| !p.is_empty()) {
                let port: u16 = p.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid port {p:?}: must be an integer"))
                })?;
                if port == 0 {
                    return Err(ApiError::bad_request(
                        "port must be in the range 1 to 65535",
                    ));
                }
                ports.push(port.to_string());
            }
        }
        if !ports.is_empty() {
            params.push(("port", ports.join(",")));
        }
        format!("/portForward/{}/{}", ctx.namespace(), name)
    } else {
        let container = validate_container(&pod, q.get("container"), &name)?;
        for flag in ["stdin", "stdout", "stderr", "tty"] {
            if q.flag(flag)? {
                params.push((flag, "1".into()));
            }
        }
        if sub == "exec" {
            for c in q.all("command") {
                params.push(("command", c.to_string()));
            }
        }
        format!("/{sub}/{}/{}/{}", ctx.namespace(), name, container)
    };
    let Some(addr) = pod_node(&ctx, &pod).await? else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    let uri = with_query(&path, &params);
    let mut headers = HeaderMap::new();
    copy_headers(&ctx.headers, &mut headers, UPGRADE_REQUEST_HEADERS);
    let on_upgrade = ctx.upgrade.take();
    upgrade_proxy(&ctx, addr, method, &uri, headers, on_upgrade).await
}

/// Sends an upgrade to a kubelet; on 101 answers the client with the kubelet's upgrade
/// headers and splices the connections, else relays the kubelet's answer.
async fn upgrade_proxy(
    ctx: &Ctx,
    addr: SocketAddr,
    method: Method,
    uri: &str,
    headers: HeaderMap,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let Some(on_upgrade) = on_upgrade else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (HTTP/1.1 is required)",
        ));
    };
    let mut resp = send(ctx, addr, false, method, uri, headers, Body::empty()).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(relay(resp));
    }
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    copy_headers(resp.headers(), out.headers_mut(), UPGRADE_RESPONSE_HEADERS);
    let kubelet_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, kubelet) = tokio::join!(on_upgrade, kubelet_upgrade);
        let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut kubelet = TokioIo::new(kubelet);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
    });
    Ok(out)
}

/// A kubelet response passed on as it is, its body streamed.
fn relay(resp: Response<hyper::body::Incoming>) -> Response {
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    for (name, value) in parts.headers.iter() {
        if !is_hop_by_hop(name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Client request headers never passed to a kubelet: hop-by-hop ones and the client's
/// own credentials (the API server speaks to kubelets as itself).
fn is_private(name: &HeaderName) -> bool {
    is_hop_by_hop(name)
        || matches!(name.as_str(), "authorization" | "cookie" | "host")
        || name.as_str().starts_with("impersonate-")
}

/// `nodes/{name}/proxy/{path}`: any method, to the node's kubelet.
async fn node_proxy(mut ctx: Ctx, method: Method, body: Body) -> ApiResult<Response> {
    let id = ctx.name().to_string();
    // `name`, `name:port` or `scheme:name:port` (upstream's SplitSchemeNamePort)
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, node, port) = match parts.as_slice() {
        [n] => ("", *n, ""),
        [n, p] => ("", *n, *p),
        [s, n, p] => (*s, *n, *p),
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid node request {id:?}"
            )))
        }
    };
    if !matches!(scheme, "" | "https") || node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "invalid node request {id:?}"
        )));
    }
    let addr = node_endpoint(&ctx, node).await?;
    if !port.is_empty() && port.parse::<u16>().ok() != Some(addr.port()) {
        return Err(ApiError::bad_request(format!(
            "only the kubelet port ({}) of node {node} can be proxied",
            addr.port()
        )));
    }
    // The path after `/proxy`, as given (not decoded), and the query.
    let full = ctx.path.clone();
    let marker = "/proxy";
    let rest = match full.find(&format!("/{id}{marker}")) {
        Some(i) => &full[i + id.len() + 1 + marker.len()..],
        None => "",
    };
    let mut uri = if rest.is_empty() {
        "/".to_string()
    } else {
        rest.to_string()
    };
    if let Some(q) = ctx.raw_query.as_deref().filter(|q| !q.is_empty()) {
        uri.push('?');
        uri.push_str(q);
    }
    let mut headers = HeaderMap::new();
    for (name, value) in ctx.headers.iter() {
        if !is_private(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if is_upgrade(&ctx.headers) {
        copy_headers(&ctx.headers, &mut headers, &["connection", "upgrade"]);
        let on_upgrade = ctx.upgrade.take();
        return upgrade_proxy(&ctx, addr, method, &uri, headers, on_upgrade).await;
    }
    let resp = send(&ctx, addr, false, method, &uri, headers, body).await?;
    Ok(relay(resp).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list =
            |names: &[&str]| -> Vec<Value> { names.iter().map(|n| json!({"name": n})).collect() };
        json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    #[test]
    fn containers_are_validated_as_upstream() {
        assert_eq!(
            validate_container(&pod(&["a"], &[]), None, "p"),
            Ok("a".to_string())
        );
        assert_eq!(
            validate_container(&pod(&["a", "b"], &["i"]), None, "p").map_err(|e| e.message),
            Err("a container name must be specified for pod p, choose one of: [a b i]".into())
        );
        assert_eq!(
            validate_container(&pod(&["a"], &["i"]), Some("i"), "p"),
            Ok("i".to_string())
        );
        let e = validate_container(&pod(&["a"], &[]), Some("x"), "p").expect_err("invalid");
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container x is not valid for pod p")
        );
        assert_eq!(
            validate_container(&pod(&[], &[]), None, "p").map_err(|e| e.message),
            Err("a container name must be specified for pod p".into())
        );
    }

    #[test]
    fn upgrades_need_connection_upgrade_and_an_upgrade_header() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(!is_upgrade(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(is_upgrade(&h));
        assert!(is_private(&HeaderName::from_static("authorization")));
        assert!(is_private(&HeaderName::from_static("impersonate-user")));
        assert!(!is_private(&HeaderName::from_static("accept")));
        assert_eq!(method_word(&Method::GET), "Get");
        assert_eq!(
            with_query(
                "/containerLogs/a/b/c",
                &[
                    ("follow", "true".into()),
                    ("sinceTime", "2024-01-01T00:00:00Z".into())
                ]
            ),
            "/containerLogs/a/b/c?follow=true&sinceTime=2024-01-01T00%3A00%3A00Z"
        );
    }
}
