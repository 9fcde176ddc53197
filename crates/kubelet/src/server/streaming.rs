//! `/exec`, `/attach` and `/portForward`: ask the runtime for a streaming URL (CRI Exec,
//! Attach, PortForward), then serve the client's upgrade against it in the mode
//! [`negotiate`](super::negotiate) picks: splice it through, translate WebSocket v5 into SPDY,
//! or unwrap SPDY tunnelled in WebSocket.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::negotiate::{
    self, Mode, StreamKind, StreamOptions, PROTOCOL_VERSION_HEADER, SPDY_31, TUNNELING_PREFIX,
    V4_CHANNEL, V5_CHANNEL,
};
use super::spdy::{Event, Session};
use super::{containers, text_response, Server};
use crate::cri::CriError;

/// How long the runtime's streaming server may take to answer an upgrade.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of a streaming request.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: StreamKind,
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    /// The container (exec and attach).
    pub container: Option<String>,
}

/// Serves one streaming request.
pub async fn serve(server: Arc<Server>, target: Target, mut req: Request<Body>) -> Response<Body> {
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let mode = match negotiate::negotiate(target.kind, req.headers()) {
        Ok(m) => m,
        Err(e) => return text_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(pod) = server.find_pod(&target.namespace, &target.pod) else {
        return text_response(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if target.uid.as_ref().is_some_and(|u| *u != uid) {
        return text_response(StatusCode::NOT_FOUND, "pod not found");
    }
    let cri = &server.deps.cri;
    let mut options = StreamOptions::default();
    let url = match target.kind {
        StreamKind::Exec | StreamKind::Attach => {
            options = match negotiate::stream_options(&pairs) {
                Ok(o) => o,
                Err(e) => return text_response(StatusCode::BAD_REQUEST, &e),
            };
            let container = target.container.clone().unwrap_or_default();
            let instances = match containers::instances(cri, &uid, &container).await {
                Ok(i) => i,
                Err(e) => return cri_error(&e),
            };
            let id = match containers::running_instance(&instances, &container) {
                Ok(i) => i.id.clone(),
                Err(e) => return text_response(StatusCode::NOT_FOUND, &e),
            };
            let url = if target.kind == StreamKind::Exec {
                cri.runtime
                    .clone()
                    .exec(cri::ExecRequest {
                        container_id: id,
                        cmd: negotiate::command(&pairs),
                        tty: options.tty,
                        stdin: options.stdin,
                        stdout: options.stdout,
                        stderr: options.stderr,
                    })
                    .await
                    .map(|r| r.into_inner().url)
            } else {
                cri.runtime
                    .clone()
                    .attach(cri::AttachRequest {
                        container_id: id,
                        stdin: options.stdin,
                        tty: options.tty,
                        stdout: options.stdout,
                        stderr: options.stderr,
                    })
                    .await
                    .map(|r| r.into_inner().url)
            };
            match url {
                Ok(u) => u,
                Err(status) => return grpc_error(&status),
            }
        }
        StreamKind::PortForward => {
            let ports = match negotiate::ports(&pairs) {
                Ok(p) => p,
                Err(e) => return text_response(StatusCode::BAD_REQUEST, &e),
            };
            let sandbox = match containers::ready_sandbox(cri, &uid).await {
                Ok(Some(s)) => s,
                Ok(None) => return text_response(StatusCode::NOT_FOUND, "pod not found"),
                Err(e) => return cri_error(&e),
            };
            match cri
                .runtime
                .clone()
                .port_forward(cri::PortForwardRequest {
                    pod_sandbox_id: sandbox,
                    port: ports,
                })
                .await
            {
                Ok(r) => r.into_inner().url,
                Err(status) => return grpc_error(&status),
            }
        }
    };
    let backend = match BackendUrl::parse(&url) {
        Some(b) => b,
        None => {
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the runtime gave an unusable streaming URL {url:?}"),
            )
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    server.metrics.streaming_request(target.kind, &mode);
    let result = match mode {
        Mode::Passthrough => passthrough(&backend, req, on_upgrade).await,
        Mode::TranslateV5 => translate_v5(&backend, req.headers(), options, on_upgrade).await,
        Mode::Tunnel { protocols } => tunnel(&backend, req.headers(), &protocols, on_upgrade).await,
    };
    result.unwrap_or_else(|e| text_response(StatusCode::INTERNAL_SERVER_ERROR, &e))
}

fn cri_error(e: &CriError) -> Response<Body> {
    text_response(code_for(e.code()), &e.message())
}

fn grpc_error(status: &tonic::Status) -> Response<Body> {
    text_response(code_for(status.code()), status.message())
}

/// The HTTP status for a runtime error (upstream's `streaming.WriteError`).
fn code_for(code: tonic::Code) -> StatusCode {
    match code {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Where the runtime serves a stream: plain HTTP on a loopback port.
#[derive(Debug, Clone)]
struct BackendUrl {
    authority: String,
    path_and_query: String,
}

impl BackendUrl {
    fn parse(url: &str) -> Option<BackendUrl> {
        let uri: http::Uri = url.parse().ok()?;
        if uri.scheme_str() != Some("http") {
            return None;
        }
        Some(BackendUrl {
            authority: uri.authority()?.to_string(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
        })
    }
}

/// Sends an upgrade request to the runtime and returns its response (the connection is
/// driven in the background so the upgrade can complete).
async fn backend_request(
    backend: &BackendUrl,
    method: Method,
    headers: HeaderMap,
) -> Result<Response<hyper::body::Incoming>, String> {
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(&backend.authority)
            .await
            .map_err(|e| format!("connecting to the runtime's streaming server: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("streaming server handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(backend.path_and_query.as_str())
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        *req.headers_mut() = headers;
        if let Ok(host) = HeaderValue::from_str(&backend.authority) {
            req.headers_mut().insert(header::HOST, host);
        }
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("streaming server request: {e}"))
    };
    tokio::time::timeout(BACKEND_TIMEOUT, fut)
        .await
        .map_err(|_| "the runtime's streaming server did not answer".to_string())?
}

/// A runtime response that is not an upgrade, relayed to the client.
async fn relay_failure(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    if let Some(ct) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    out
}

/// Headers of the client's upgrade request the runtime needs to see.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "origin",
    "x-stream-protocol-version",
];

/// Headers of the runtime's 101 the client needs to see.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// Forwards the upgrade to the runtime and splices the two connections once both switched.
async fn passthrough(
    backend: &BackendUrl,
    req: Request<Body>,
    on_upgrade: OnUpgrade,
) -> Result<Response<Body>, String> {
    let mut headers = HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        for v in req.headers().get_all(*name) {
            headers.append(header::HeaderName::from_static(name), v.clone());
        }
    }
    // The runtime's WebSocket server reads only the first protocol header.
    let protocols = negotiate::websocket_protocols(req.headers());
    if !protocols.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&protocols.join(", ")) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    let method = req.method().clone();
    let mut resp = backend_request(backend, method, headers).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(relay_failure(resp).await);
    }
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in FORWARDED_RESPONSE_HEADERS {
        for v in resp.headers().get_all(*name) {
            out.headers_mut()
                .append(header::HeaderName::from_static(name), v.clone());
        }
    }
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, backend) = tokio::join!(on_upgrade, backend_upgrade);
        let (Ok(client), Ok(backend)) = (client, backend) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    Ok(out)
}

/// A SPDY upgrade request for `protocols`.
fn spdy_upgrade_headers(protocols: &[String]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(SPDY_31));
    for p in protocols {
        if let Ok(v) = HeaderValue::from_str(p) {
            h.append(PROTOCOL_VERSION_HEADER, v);
        }
    }
    h
}

/// Answers the client's WebSocket `v5.channel.k8s.io` itself and speaks SPDY
/// `v4.channel.k8s.io` to the runtime (upstream's StreamTranslator).
async fn translate_v5(
    backend: &BackendUrl,
    client_headers: &HeaderMap,
    options: StreamOptions,
    on_upgrade: OnUpgrade,
) -> Result<Response<Body>, String> {
    let Some(key) = super::websocket::client_key(client_headers) else {
        return Ok(text_response(
            StatusCode::BAD_REQUEST,
            "not a WebSocket handshake: Sec-WebSocket-Key and version 13 are required",
        ));
    };
    let mut resp = backend_request(
        backend,
        Method::POST,
        spdy_upgrade_headers(&[V4_CHANNEL.to_string()]),
    )
    .await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(relay_failure(resp).await);
    }
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, backend) = tokio::join!(on_upgrade, backend_upgrade);
        let (Ok(client), Ok(backend)) = (client, backend) else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let session = Session::start(TokioIo::new(backend));
        if let Err(e) = bridge_v5(ws, session, options).await {
            tracing::debug!(error = %e, "exec/attach translation ended");
        }
    });
    Ok(super::websocket::switching_protocols(&key, V5_CHANNEL))
}

/// The remote-command channels (the first byte of each WebSocket message).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's close signal: `[255, channel]` ends a channel's input.
const CLOSE: u8 = 255;

fn channel_message(channel: u8, data: &[u8]) -> Message {
    let mut m = Vec::with_capacity(data.len() + 1);
    m.push(channel);
    m.extend_from_slice(data);
    Message::Binary(m.into())
}

fn stream_headers(kind: &str) -> Vec<(String, String)> {
    vec![("streamType".to_string(), kind.to_string())]
}

/// Carries one remote-command session between a WebSocket v5 client and a SPDY v4 server.
async fn bridge_v5<S>(
    ws: WebSocketStream<S>,
    mut spdy: Session,
    options: StreamOptions,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    let closed = |_| "the runtime's connection closed".to_string();
    // The v4 streams, in the order upstream's client creates them.
    let error = spdy.open(stream_headers("error")).await.map_err(closed)?;
    let stdin = match options.stdin {
        true => Some(spdy.open(stream_headers("stdin")).await.map_err(closed)?),
        false => None,
    };
    let stdout = match options.stdout {
        true => Some(spdy.open(stream_headers("stdout")).await.map_err(closed)?),
        false => None,
    };
    let stderr = match options.stderr && !options.tty {
        true => Some(spdy.open(stream_headers("stderr")).await.map_err(closed)?),
        false => None,
    };
    let resize = match options.tty {
        true => Some(spdy.open(stream_headers("resize")).await.map_err(closed)?),
        false => None,
    };
    // Tell the client the session is up: an empty message on the lowest output channel.
    let first = if stdout.is_some() {
        STDOUT
    } else if stderr.is_some() {
        STDERR
    } else {
        ERROR
    };
    sink.send(channel_message(first, &[]))
        .await
        .map_err(|e| e.to_string())?;

    let mut outputs_open: Vec<u32> = [Some(error), stdout, stderr]
        .into_iter()
        .flatten()
        .collect();
    let mut stdin_open = stdin.is_some();
    let mut status: Vec<u8> = Vec::new();
    while !outputs_open.is_empty() {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => {
                    let payload = data.slice(1..);
                    match (data[0], stdin.filter(|_| stdin_open), resize) {
                        (STDIN, Some(id), _) if !payload.is_empty() => {
                            let _ = spdy.send(id, payload).await;
                        }
                        (RESIZE, _, Some(id)) => {
                            let _ = spdy.send(id, payload).await;
                        }
                        // v5's close signal for stdin: the runtime reads end-of-file
                        (CLOSE, Some(id), _) if payload.first() == Some(&STDIN) => {
                            stdin_open = false;
                            let _ = spdy.finish(id).await;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    // The client left: end the runtime session too.
                    spdy.go_away().await;
                    return Ok(());
                }
                Some(Ok(_)) => {}
            },
            event = spdy.next_event() => match event {
                Some(Event::Data(id, data)) => {
                    let channel = if Some(id) == stdout {
                        Some(STDOUT)
                    } else if Some(id) == stderr {
                        Some(STDERR)
                    } else {
                        None
                    };
                    match channel {
                        Some(ch) => sink
                            .send(channel_message(ch, &data))
                            .await
                            .map_err(|e| e.to_string())?,
                        None if id == error => status.extend_from_slice(&data),
                        None => {}
                    }
                }
                Some(Event::Fin(id)) | Some(Event::Reset(id, _)) => {
                    outputs_open.retain(|o| *o != id);
                    if Some(id) == stdin {
                        stdin_open = false;
                    }
                }
                Some(Event::Reply(_)) | Some(Event::GoAway) => {}
                Some(Event::Closed(_)) | None => break,
            },
        }
    }
    if status.is_empty() {
        status = br#"{"metadata":{},"status":"Success"}"#.to_vec();
    }
    let _ = sink.send(channel_message(ERROR, &status)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    spdy.go_away().await;
    Ok(())
}

/// Unwraps SPDY tunnelled in WebSocket binary messages (kubectl's port-forward since 1.31)
/// and passes the SPDY session through to the runtime (upstream's TunnelingHandler).
async fn tunnel(
    backend: &BackendUrl,
    client_headers: &HeaderMap,
    protocols: &[String],
    on_upgrade: OnUpgrade,
) -> Result<Response<Body>, String> {
    let Some(key) = super::websocket::client_key(client_headers) else {
        return Ok(text_response(
            StatusCode::BAD_REQUEST,
            "not a WebSocket handshake: Sec-WebSocket-Key and version 13 are required",
        ));
    };
    let mut resp = backend_request(backend, Method::POST, spdy_upgrade_headers(protocols)).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(relay_failure(resp).await);
    }
    let chosen = resp
        .headers()
        .get(PROTOCOL_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|p| format!("{TUNNELING_PREFIX}{}", p.trim()))
        .unwrap_or_default();
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, backend) = tokio::join!(on_upgrade, backend_upgrade);
        let (Ok(client), Ok(backend)) = (client, backend) else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        splice_tunnel(ws, TokioIo::new(backend)).await;
    });
    Ok(super::websocket::switching_protocols(&key, &chosen))
}

/// Binary messages one way, raw bytes the other, until either side ends.
async fn splice_tunnel<S, B>(ws: WebSocketStream<S>, backend: B)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    let (mut read, mut write) = tokio::io::split(backend);
    let mut buf = BytesMut::with_capacity(32 * 1024);
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if write.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            n = read.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let data = buf.split().freeze();
                    if sink.send(Message::Binary(data)).await.is_err() {
                        break;
                    }
                    if buf.capacity() < 8 * 1024 {
                        buf.reserve(32 * 1024);
                    }
                }
            },
        }
    }
    let _ = write.shutdown().await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::spdy::frame::{Frame, HeaderCompressor, HeaderDecompressor, FLAG_FIN};

    /// A scripted SPDY v4 server: checks the streams the bridge opens, echoes stdin to
    /// stdout upper-cased, writes a stderr line, and ends with an exit-code status.
    async fn fake_runtime(mut io: tokio::io::DuplexStream) -> Vec<(String, Vec<u8>)> {
        let mut z = HeaderDecompressor::new();
        let mut out_z = HeaderCompressor::new();
        let mut buf = BytesMut::new();
        let mut streams: Vec<(u32, String)> = Vec::new();
        let mut received: Vec<(String, Vec<u8>)> = Vec::new();
        let send =
            |_io: &mut tokio::io::DuplexStream, frames: Vec<Frame>, z: &mut HeaderCompressor| {
                let mut out = BytesMut::new();
                for f in frames {
                    f.encode(z, &mut out).expect("encode");
                }
                out.freeze()
            };
        loop {
            let frame = loop {
                if let Some(f) = Frame::decode(&mut buf, &mut z).expect("decode") {
                    break Some(f);
                }
                if io.read_buf(&mut buf).await.expect("read") == 0 {
                    break None;
                }
            };
            let Some(frame) = frame else { return received };
            let name_of = |id: u32, streams: &[(u32, String)]| {
                streams
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default()
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    let kind = headers
                        .iter()
                        .find(|(k, _)| k == "streamtype")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    streams.push((stream_id, kind));
                    let bytes = send(
                        &mut io,
                        vec![Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers: Vec::new(),
                        }],
                        &mut out_z,
                    );
                    io.write_all(&bytes).await.expect("write");
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let name = name_of(stream_id, &streams);
                    received.push((name.clone(), data.to_vec()));
                    if name == "stdin" && !data.is_empty() {
                        let out_id = streams.iter().find(|(_, n)| n == "stdout").map(|(s, _)| *s);
                        if let Some(out_id) = out_id {
                            let bytes = send(
                                &mut io,
                                vec![Frame::Data {
                                    stream_id: out_id,
                                    flags: 0,
                                    data: Bytes::from(data.to_ascii_uppercase()),
                                }],
                                &mut out_z,
                            );
                            io.write_all(&bytes).await.expect("write");
                        }
                    }
                    if name == "stdin" && flags & FLAG_FIN != 0 {
                        // stdin ended: finish like a process exiting with code 3
                        let id = |n: &str| {
                            streams
                                .iter()
                                .find(|(_, s)| s == n)
                                .map(|(i, _)| *i)
                                .unwrap_or(0)
                        };
                        let status = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
                        let bytes = send(
                            &mut io,
                            vec![
                                Frame::Data {
                                    stream_id: id("stderr"),
                                    flags: FLAG_FIN,
                                    data: Bytes::from_static(b"warning\n"),
                                },
                                Frame::Data {
                                    stream_id: id("stdout"),
                                    flags: FLAG_FIN,
                                    data: Bytes::new(),
                                },
                                Frame::Data {
                                    stream_id: id("error"),
                                    flags: FLAG_FIN,
                                    data: Bytes::from_static(status),
                                },
                            ],
                            &mut out_z,
                        );
                        io.write_all(&bytes).await.expect("write");
                    }
                }
                Frame::GoAway { .. } => return received,
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn v5_client_session_is_carried_over_spdy_v4_with_stdin_close_and_status() {
        let (runtime_io, bridge_spdy_io) = tokio::io::duplex(1 << 16);
        let (client_io, bridge_ws_io) = tokio::io::duplex(1 << 16);
        let runtime = tokio::spawn(fake_runtime(runtime_io));
        let ws_server = WebSocketStream::from_raw_socket(bridge_ws_io, Role::Server, None).await;
        let bridge = tokio::spawn(bridge_v5(
            ws_server,
            Session::start(bridge_spdy_io),
            StreamOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
            },
        ));
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        // the session-up signal: an empty stdout message
        let first = client.next().await.expect("message").expect("ok");
        assert_eq!(first, Message::Binary(Bytes::from_static(&[STDOUT])));
        client
            .send(channel_message(STDIN, b"hello"))
            .await
            .expect("send");
        let echoed = client.next().await.expect("message").expect("ok");
        assert_eq!(echoed, channel_message(STDOUT, b"HELLO"));
        client
            .send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN])))
            .await
            .expect("close stdin");
        let mut got = Vec::new();
        while let Some(Ok(m)) = client.next().await {
            match m {
                Message::Binary(b) => got.push((b[0], b[1..].to_vec())),
                Message::Close(_) => break,
                _ => {}
            }
        }
        assert_eq!(got[0], (STDERR, b"warning\n".to_vec()));
        assert_eq!(got.len(), 2, "{got:?}");
        let (ch, status) = &got[1];
        assert_eq!(*ch, ERROR);
        let status: serde_json::Value = serde_json::from_slice(status).expect("json");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        bridge.await.expect("bridge").expect("bridge ok");
        let received = runtime.await.expect("runtime");
        assert!(received.contains(&("stdin".to_string(), b"hello".to_vec())));
        assert!(
            received.contains(&("stdin".to_string(), Vec::new())),
            "stdin's FIN reached the runtime: {received:?}"
        );
    }

    #[tokio::test]
    async fn tunnel_carries_bytes_both_ways_and_ends_with_either_side() {
        let (backend_io, far_end) = tokio::io::duplex(1 << 16);
        let (client_io, server_ws_io) = tokio::io::duplex(1 << 16);
        let ws_server = WebSocketStream::from_raw_socket(server_ws_io, Role::Server, None).await;
        let splice = tokio::spawn(splice_tunnel(ws_server, backend_io));
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut far_end = far_end;
        client
            .send(Message::Binary(Bytes::from_static(b"\x80\x03\x00\x01spdy")))
            .await
            .expect("send");
        let mut got = vec![0u8; 8];
        far_end.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"\x80\x03\x00\x01spdy");
        far_end.write_all(b"reply").await.expect("write");
        let m = client.next().await.expect("message").expect("ok");
        assert_eq!(m, Message::Binary(Bytes::from_static(b"reply")));
        drop(far_end);
        let m = client.next().await.expect("message").expect("ok");
        assert!(matches!(m, Message::Close(_)), "{m:?}");
        splice.await.expect("splice");
    }

    #[test]
    fn backend_urls_are_plain_http_with_a_path() {
        let b = BackendUrl::parse("http://127.0.0.1:4321/exec/AbC").expect("url");
        assert_eq!(b.authority, "127.0.0.1:4321");
        assert_eq!(b.path_and_query, "/exec/AbC");
        assert!(BackendUrl::parse("https://127.0.0.1:4321/exec/x").is_none());
        assert!(BackendUrl::parse("/exec/x").is_none());
    }
}
