//! The kubelet's HTTPS server (upstream's port 10250), which the API server proxies
//! `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy` to.
//!
//! Every request is authenticated (client certificate or TokenReview) and authorized
//! (SubjectAccessReview on `nodes/<subresource>`) first ([`auth`]). Then:
//!
//! - `/containerLogs/{ns}/{pod}/{container}` ([`logs`]): the CRI log file of the container's
//!   current or previous instance, found through the runtime's labels ([`containers`]);
//! - `/exec`, `/attach`, `/portForward` ([`streaming`]): a CRI streaming URL, served in the
//!   protocol the client speaks ([`negotiate`], [`spdy`], [`websocket`]);
//! - `/healthz`, `/pods`, `/runningpods/`, `/metrics` ([`metrics`]), `/metrics/resource` and
//!   `/stats/summary` ([`stats`]).
//!
//! [`rotation`] is the container log rotation the kubelet runs beside it.

pub mod auth;
pub mod containers;
pub mod logs;
pub mod metrics;
pub mod negotiate;
pub mod rotation;
pub mod spdy;
pub mod stats;
pub mod streaming;
pub mod websocket;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::cri::Cri;
use auth::UserInfo;
use negotiate::StreamKind;

/// Where the server finds the pods bound to its node (the kubelet's pod cache).
pub trait PodSource: Send + Sync + std::fmt::Debug {
    fn pods(&self) -> Vec<Pod>;
}

/// What the server needs.
#[derive(Clone)]
pub struct ServerDeps {
    pub cri: Cri,
    /// A client of the API server as this node, for TokenReviews and SubjectAccessReviews.
    pub client: kube::Client,
    pub node_name: String,
    pub pods: Arc<dyn PodSource>,
    /// PEM of the CA client certificates must chain to (the cluster CA); without it client
    /// certificates authenticate nobody.
    pub client_ca: Option<String>,
}

impl std::fmt::Debug for ServerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerDeps")
            .field("node_name", &self.node_name)
            .field("cri", &self.cri.endpoint())
            .field("pods", &self.pods)
            .finish_non_exhaustive()
    }
}

/// The server's state.
pub struct Server {
    pub(crate) deps: ServerDeps,
    auth: auth::Delegated,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) stats: stats::Sampler,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("deps", &self.deps)
            .finish_non_exhaustive()
    }
}

/// The server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("client CA: {0}")]
    ClientCa(String),
}

impl Server {
    pub fn new(deps: ServerDeps) -> Result<Arc<Server>, ServerError> {
        let client_verifier = match &deps.client_ca {
            Some(pem) => Some(client_verifier(pem)?),
            None => None,
        };
        Ok(Arc::new(Server {
            auth: auth::Delegated::new(deps.client.clone()),
            deps,
            client_verifier,
            metrics: metrics::Metrics::new(),
            stats: stats::Sampler::default(),
        }))
    }

    /// A pod bound to this node, by namespace and name.
    pub(crate) fn find_pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.deps.pods.pods().into_iter().find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
    }

    /// The routes, behind authentication, authorization and request metrics.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/healthz",
                get(|| async { text_response(StatusCode::OK, "ok") }),
            )
            .route("/pods", get(pods))
            .route("/pods/", get(pods))
            .route("/runningpods", get(running_pods))
            .route("/runningpods/", get(running_pods))
            .route("/metrics", get(metrics_handler))
            .route("/metrics/resource", get(resource_metrics))
            .route("/stats/summary", get(summary))
            .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
            .route("/exec/{ns}/{pod}/{container}", any(exec3))
            .route("/exec/{ns}/{pod}/{uid}/{container}", any(exec4))
            .route("/attach/{ns}/{pod}/{container}", any(attach3))
            .route("/attach/{ns}/{pod}/{uid}/{container}", any(attach4))
            .route("/portForward/{ns}/{pod}", any(port_forward2))
            .route("/portForward/{ns}/{pod}/{uid}", any(port_forward3))
            .fallback(|| async { text_response(StatusCode::NOT_FOUND, "404 page not found") })
            .layer(axum::middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone())
    }

    /// The user a verified client certificate names.
    fn peer_user(&self, certs: Option<&[CertificateDer<'static>]>) -> Option<UserInfo> {
        let verifier = self.client_verifier.as_ref()?;
        let (end, intermediates) = certs?.split_first()?;
        verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .ok()?;
        let (name, groups) = rkube_pki::client_identity(end.as_ref())?;
        (!name.is_empty()).then(|| UserInfo {
            name,
            groups,
            ..Default::default()
        })
    }
}

fn client_verifier(pem: &str) -> Result<Arc<dyn ClientCertVerifier>, ServerError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in rkube_pki::certs_from_pem(pem.as_bytes())
        .map_err(|e| ServerError::ClientCa(e.to_string()))?
    {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| ServerError::ClientCa(e.to_string()))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        rkube_pki::crypto_provider(),
    )
    .build()
    .map_err(|e| ServerError::ClientCa(e.to_string()))
}

/// The identity of a connection's client certificate, put on each of its requests.
#[derive(Debug, Clone)]
struct PeerUser(Option<UserInfo>);

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the kubelet API over TLS on `listener` until `shutdown` resolves. `tls` should
/// ask for client certificates (optionally) so that the API server's can be read; they
/// are verified again against `deps.client_ca` here.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    deps: ServerDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = Server::new(deps).map_err(std::io::Error::other)?;
    serve_with(server, listener, tls, shutdown).await
}

/// [`serve`] for a [`Server`] made already.
pub async fn serve_with(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let router = server.router();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let server = server.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = PeerUser(server.peer_user(stream.get_ref().1.peer_certificates()));
            let service =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(user.clone());
                    router.clone().oneshot(req.map(Body::new))
                });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    Ok(())
}

/// A plain-text response, as upstream's kubelet writes its errors.
pub(crate) fn text_response(code: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(serde_json::to_vec(value).unwrap_or_default()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Authentication, authorization and request metrics, before any handler.
async fn guard(State(server): State<Arc<Server>>, req: Request, next: Next) -> Response {
    let _inflight = server.metrics.start(metrics::Metrics::labels(
        req.method().as_str(),
        req.uri().path(),
    ));
    let cert_user = req.extensions().get::<PeerUser>().and_then(|p| p.0.clone());
    let user = match cert_user {
        Some(u) => u,
        None => {
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                return text_response(StatusCode::UNAUTHORIZED, "Unauthorized");
            };
            match server.auth.authenticate_token(token).await {
                Ok(Some(u)) => u,
                Ok(None) => return text_response(StatusCode::UNAUTHORIZED, "Unauthorized"),
                Err(e) => {
                    tracing::warn!(error = %e, "authenticating a request");
                    return text_response(StatusCode::UNAUTHORIZED, "Unauthorized");
                }
            }
        }
    };
    let attrs = auth::request_attributes(req.method(), req.uri().path(), &server.deps.node_name);
    let mut allowed = false;
    for a in &attrs {
        match server.auth.authorize(&user, a).await {
            Ok(true) => {
                allowed = true;
                break;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "authorizing a request");
                return text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!(
                        "Authorization error (user={}, verb={}, resource={}, subresource={})",
                        user.name, a.verb, a.resource, a.subresource
                    ),
                );
            }
        }
    }
    if !allowed {
        return text_response(
            StatusCode::FORBIDDEN,
            &auth::forbidden_message(&user, &attrs),
        );
    }
    next.run(req).await
}

/// `/pods`: the pods bound to this node, as a PodList.
async fn pods(State(server): State<Arc<Server>>) -> Response<Body> {
    let items: Vec<serde_json::Value> = server
        .deps
        .pods
        .pods()
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .map(|mut v| {
            if let Some(m) = v.as_object_mut() {
                m.insert("apiVersion".into(), "v1".into());
                m.insert("kind".into(), "Pod".into());
            }
            v
        })
        .collect();
    json_response(&serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    }))
}

/// `/runningpods/`: the pods the runtime has, with their containers' names and images.
async fn running_pods(State(server): State<Arc<Server>>) -> Response<Body> {
    match stats::running_pods(&server.deps.cri, &server.deps.node_name).await {
        Ok(list) => json_response(&list),
        Err(e) => text_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn metrics_handler(State(server): State<Arc<Server>>) -> Response<Body> {
    let mut resp = Response::new(Body::from(server.metrics.encode()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

async fn resource_metrics(State(server): State<Arc<Server>>) -> Response<Body> {
    let text = stats::resource_metrics(&server).await;
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn summary(State(server): State<Arc<Server>>) -> Response<Body> {
    match stats::summary(&server).await {
        Ok(s) => json_response(&s),
        Err(e) => text_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `/containerLogs/{ns}/{pod}/{container}`.
async fn container_logs(
    State(server): State<Arc<Server>>,
    Path((ns, pod_name, container)): Path<(String, String, String)>,
    req: Request,
) -> Response<Body> {
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let opts = match logs::parse_options(&pairs) {
        Ok(o) => o,
        Err(e) => {
            let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::BAD_REQUEST);
            return text_response(code, &e.message);
        }
    };
    let Some(pod) = server.find_pod(&ns, &pod_name) else {
        return text_response(
            StatusCode::NOT_FOUND,
            &format!("pod {pod_name:?} does not exist"),
        );
    };
    if !containers::pod_has_container(&pod, &container) {
        return text_response(
            StatusCode::NOT_FOUND,
            &format!("container {container:?} not found in pod {pod_name:?}"),
        );
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let cri = server.deps.cri.clone();
    let instances = match containers::instances(&cri, &uid, &container).await {
        Ok(i) => i,
        Err(e) => return text_response(StatusCode::BAD_REQUEST, &e.message()),
    };
    let instance = match containers::log_instance(&pod, &container, &instances, opts.previous) {
        Ok(i) => i.clone(),
        Err(e) => return text_response(StatusCode::BAD_REQUEST, &e),
    };
    let path = match containers::log_path(&cri, &instance.id).await {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            return text_response(
                StatusCode::BAD_REQUEST,
                &format!("container {container:?} in pod {pod_name:?} has no log file"),
            )
        }
        Err(e) => return text_response(StatusCode::BAD_REQUEST, &e.message()),
    };
    if let Err(e) = std::fs::metadata(&path) {
        return text_response(
            StatusCode::BAD_REQUEST,
            &format!("failed to open log file {path:?}: {e}"),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let liveness = Box::new(InstanceLiveness {
        cri,
        id: instance.id.clone(),
    });
    tokio::spawn(logs::stream_log(path.into(), opts, liveness, tx));
    let mut resp = Response::new(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Whether a container instance still runs, asked of the runtime.
struct InstanceLiveness {
    cri: Cri,
    id: String,
}

impl logs::Liveness for InstanceLiveness {
    fn running(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(containers::is_running(&self.cri, &self.id))
    }
}

async fn stream(
    server: Arc<Server>,
    kind: StreamKind,
    ns: String,
    pod: String,
    uid: Option<String>,
    container: Option<String>,
    req: Request,
) -> Response<Body> {
    streaming::serve(
        server,
        streaming::Target {
            kind,
            namespace: ns,
            pod,
            uid,
            container,
        },
        req,
    )
    .await
}

async fn exec3(
    State(s): State<Arc<Server>>,
    Path((ns, pod, c)): Path<(String, String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::Exec, ns, pod, None, Some(c), req).await
}

async fn exec4(
    State(s): State<Arc<Server>>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::Exec, ns, pod, Some(uid), Some(c), req).await
}

async fn attach3(
    State(s): State<Arc<Server>>,
    Path((ns, pod, c)): Path<(String, String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::Attach, ns, pod, None, Some(c), req).await
}

async fn attach4(
    State(s): State<Arc<Server>>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::Attach, ns, pod, Some(uid), Some(c), req).await
}

async fn port_forward2(
    State(s): State<Arc<Server>>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::PortForward, ns, pod, None, None, req).await
}

async fn port_forward3(
    State(s): State<Arc<Server>>,
    Path((ns, pod, uid)): Path<(String, String, String)>,
    req: Request,
) -> Response<Body> {
    stream(s, StreamKind::PortForward, ns, pod, Some(uid), None, req).await
}
