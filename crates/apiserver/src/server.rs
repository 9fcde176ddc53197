//! The API server: its state (store, watch caches, configuration) and its router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use rkube_api::{ResourceInfo, RESOURCES};
use rkube_store::{Store, StoreError};

use crate::codec::json_response;
use crate::discovery;
use crate::handlers;
use crate::object;
use crate::watch_cache::WatchCache;

/// Settings of one API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address clients reach the server at, for `/api`'s `serverAddressByClientCIDRs`.
    pub server_address: String,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The longest a watch lasts without `timeoutSeconds`; upstream picks at random between
    /// this and twice this.
    pub min_request_timeout: Duration,
    /// Read requests served at once before the rest get 429 (upstream's
    /// `--max-requests-inflight`); watches are not counted.
    pub max_requests_inflight: usize,
    /// Writes served at once before the rest get 429 (`--max-mutating-requests-inflight`).
    pub max_mutating_requests_inflight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_address: "127.0.0.1:6443".to_string(),
            bookmark_interval: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
        }
    }
}

/// Who may do what: the authenticators, and whether security is off (`--insecure-dev`).
#[derive(Debug, Default)]
pub struct Security {
    pub authn: crate::authn::Authenticator,
    pub admission: crate::admission::Admission,
    /// Service-account token signing and checking; without it TokenRequest is not served and
    /// service-account tokens do not authenticate.
    pub service_accounts: Option<crate::sa_token::ServiceAccountTokens>,
    /// Encryption at rest (`--encryption-provider-config`).
    pub encryption: Option<crate::encryption::EncryptionConfig>,
    /// The audit policy and log.
    pub audit: Option<crate::guard::Audit>,
    /// How `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy`
    /// reach kubelets.
    pub kubelet: crate::kubelet_client::KubeletClient,
}

impl Security {
    /// No TLS, no authentication, no authorization: every request acts as a cluster admin.
    /// Only for local demos and benchmarks of the bare request path.
    pub fn insecure() -> Self {
        Security {
            authn: crate::authn::Authenticator {
                insecure: true,
                ..Default::default()
            },
            admission: crate::admission::Admission::default_plugins(),
            service_accounts: None,
            encryption: None,
            audit: None,
            kubelet: Default::default(),
        }
    }
}

/// The API server's shared state.
pub struct ApiServer {
    pub(crate) security: Security,
    pub(crate) codec: Arc<crate::at_rest::StorageCodec>,
    pub(crate) rbac: crate::authz::index::RbacIndex,
    pub(crate) store: Arc<dyn Store>,
    caches: HashMap<&'static str, Arc<WatchCache>>,
    pub(crate) config: Config,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) readonly_inflight: Arc<tokio::sync::Semaphore>,
    pub(crate) mutating_inflight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("caches", &self.caches.len())
            .field("config", &self.config)
            .finish()
    }
}

impl ApiServer {
    /// Starts a watch cache per stored resource and returns the server once every cache holds
    /// the store's current state.
    pub async fn new(
        store: Arc<dyn Store>,
        config: Config,
        security: Security,
    ) -> Result<Arc<Self>, StoreError> {
        let codec = Arc::new(crate::at_rest::StorageCodec::new(
            security.encryption.as_ref(),
        ));
        let mut caches = HashMap::new();
        for res in RESOURCES {
            if !res.is_stored() || caches.contains_key(res.storage) {
                continue;
            }
            let prefix = object::prefix(res, None);
            caches.insert(
                res.storage,
                WatchCache::start(store.clone(), prefix, codec.clone()).await?,
            );
        }
        let metrics = crate::metrics::Metrics::new();
        let readonly_inflight = Arc::new(tokio::sync::Semaphore::new(config.max_requests_inflight));
        let mutating_inflight = Arc::new(tokio::sync::Semaphore::new(
            config.max_mutating_requests_inflight,
        ));
        let server = Arc::new(ApiServer {
            codec,
            security,
            rbac: Default::default(),
            store,
            caches,
            config,
            metrics,
            readonly_inflight,
            mutating_inflight,
        });
        handlers::bootstrap(&server).await.map_err(|e| {
            StoreError::Unavailable(format!("creating the system namespaces: {}", e.message))
        })?;
        Ok(server)
    }

    /// The security settings the server runs with.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// Free in-flight slots: (reads, writes).
    pub fn free_inflight_slots(&self) -> (usize, usize) {
        (
            self.readonly_inflight.available_permits(),
            self.mutating_inflight.available_permits(),
        )
    }

    /// A kube client that reaches this server through the in-process transport: requests go
    /// straight to the router as `user`, with no socket and no TLS in between, and are
    /// authorized and admitted like any other.
    pub fn client(self: &Arc<Self>, user: crate::authz::User) -> kube::Client {
        let router = self.router();
        let service = tower::ServiceBuilder::new()
            .map_request(move |req: http::Request<kube::client::Body>| {
                let mut req = req.map(Body::new);
                req.extensions_mut()
                    .insert(crate::authn::InProcessIdentity(user.clone()));
                req
            })
            .service(router);
        kube::Client::new(service, "default")
    }

    /// Reads a key from the store at a revision (0 for the latest), bypassing the caches.
    pub(crate) async fn read_key(
        &self,
        key: &str,
        revision: i64,
    ) -> crate::status::ApiResult<Option<(serde_json::Value, i64)>> {
        let resp = self
            .store
            .range(
                rkube_store::RangeRequest::new(rkube_store::KeyRange::key(key.as_bytes()))
                    .at_revision(revision),
            )
            .await?;
        match resp.kvs.into_iter().next() {
            Some(kv) => Ok(Some((
                self.codec.decode(key, &kv.value, kv.mod_revision)?,
                kv.mod_revision,
            ))),
            None => Ok(None),
        }
    }

    /// Reads an object of a resource from the store (not the cache): for checks that must
    /// see a write made a moment ago.
    pub(crate) async fn read_object(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> crate::status::ApiResult<Option<serde_json::Value>> {
        let Some(res) = stored_resource(group, plural) else {
            return Ok(None);
        };
        Ok(self
            .read_key(&object::key(res, namespace, name), 0)
            .await?
            .map(|(v, _)| v))
    }

    /// The objects of a resource in one namespace (or all) from the store (not the cache),
    /// each with its revision: for checks that must see writes made a moment ago and may
    /// write back with [`ApiServer::replace_object`].
    pub(crate) async fn read_objects(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> crate::status::ApiResult<Vec<(serde_json::Value, i64)>> {
        let Some(res) = stored_resource(group, plural) else {
            return Ok(Vec::new());
        };
        let prefix = object::prefix(res, namespace);
        let resp = self
            .store
            .range(rkube_store::RangeRequest::new(
                rkube_store::KeyRange::prefix(prefix.as_bytes()),
            ))
            .await?;
        resp.kvs
            .iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(&kv.key);
                Ok((
                    self.codec.decode(&key, &kv.value, kv.mod_revision)?,
                    kv.mod_revision,
                ))
            })
            .collect()
    }

    /// Stores `obj` in place of a stored object if that is still at `revision` (a
    /// compare-and-swap, bypassing admission). False when the object changed or is gone.
    pub(crate) async fn replace_object(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        revision: i64,
        obj: &serde_json::Value,
    ) -> crate::status::ApiResult<bool> {
        let Some(res) = stored_resource(group, plural) else {
            return Ok(false);
        };
        let key = object::key(res, namespace, name);
        let value = self.codec.encode(&key, obj)?;
        let resp = self
            .store
            .txn(rkube_store::TxnRequest::update(key, revision, value))
            .await?;
        Ok(resp.succeeded)
    }

    /// One object from the watch caches, by resource (any served version) and name.
    pub(crate) fn cached(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<crate::watch_cache::CachedObject>> {
        let res = stored_resource(group, plural)?;
        self.cache(res).get(&object::key(res, namespace, name))
    }

    /// The cached objects of a resource, in one namespace or all.
    pub(crate) fn cached_list(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Arc<crate::watch_cache::CachedObject>> {
        self.cached_matching(group, plural, namespace, &|_| true)
    }

    /// The cached objects of a resource that `keep` accepts, in one namespace or all.
    pub(crate) fn cached_matching(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        keep: &dyn Fn(&crate::watch_cache::CachedObject) -> bool,
    ) -> Vec<Arc<crate::watch_cache::CachedObject>> {
        let Some(res) = stored_resource(group, plural) else {
            return Vec::new();
        };
        self.cache(res)
            .snapshot(&object::prefix(res, namespace), keep)
            .objects
    }

    /// The sum of the change counters of some resources' caches.
    pub(crate) fn cache_changes(&self, group: &str, plurals: &[&str]) -> u64 {
        plurals
            .iter()
            .filter_map(|p| stored_resource(group, p))
            .map(|r| self.cache(r).changes())
            .sum()
    }

    pub(crate) fn cache(&self, res: &ResourceInfo) -> &Arc<WatchCache> {
        // Every resource's cache is made in `new`.
        #[allow(clippy::indexing_slicing)]
        &self.caches[res.storage]
    }

    /// The HTTP routes: health, version and discovery endpoints, then the resource API.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/version",
                get(|| async { json_response(StatusCode::OK, &discovery::version()) }),
            )
            .route("/healthz", get(health))
            .route("/livez", get(health))
            .route("/readyz", get(health))
            .route("/healthz/{check}", get(health))
            .route("/livez/{check}", get(health))
            .route("/readyz/{check}", get(health))
            .route("/metrics", get(metrics))
            .route("/openapi/v2", get(openapi_v2))
            .route(
                "/openapi/v3",
                get(|| async {
                    json_response(StatusCode::OK, &rkube_api::schema::openapi_v3_index())
                }),
            )
            .route("/openapi/v3/{*path}", get(openapi_v3))
            .route(
                rkube_pki::jwt::OPENID_CONFIG_PATH,
                get(openid_configuration),
            )
            .route(rkube_pki::jwt::JWKS_PATH, get(jwks))
            .fallback(api)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::guard::guard,
            ))
            .with_state(self.clone())
    }
}

/// A stored resource by group and plural, in any served version.
pub(crate) fn stored_resource(group: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural && r.is_stored())
}

async fn health() -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}

async fn metrics(State(server): State<Arc<ApiServer>>) -> Response {
    (
        StatusCode::OK,
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        server.metrics.encode(),
    )
        .into_response()
}

async fn openapi_v2(headers: http::HeaderMap) -> Response {
    use rkube_api::schema::{negotiate_openapi_v2, OpenApiV2Format};
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    // kubectl 1.27 and 1.28 ask for gnostic's protobuf form; newer ones use v3.
    let body = match negotiate_openapi_v2(accept) {
        Some(OpenApiV2Format::Json) => rkube_api::schema::openapi_v2_json(discovery::GIT_VERSION),
        Some(OpenApiV2Format::Protobuf) => {
            rkube_api::schema::openapi_v2_protobuf(discovery::GIT_VERSION)
        }
        None => {
            return crate::status::ApiError::not_acceptable(accept.unwrap_or("")).into_response()
        }
    };
    let format = negotiate_openapi_v2(accept).unwrap_or(OpenApiV2Format::Json);
    (
        StatusCode::OK,
        [
            (http::header::CONTENT_TYPE, format.content_type()),
            (http::header::VARY, "Accept"),
        ],
        body.as_ref().clone(),
    )
        .into_response()
}

async fn openapi_v3(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match rkube_api::schema::openapi_v3_json(&path) {
        Some(doc) => {
            let etag = rkube_api::schema::openapi_v3_hash(&path)
                .map(|h| format!("\"{h}\""))
                .unwrap_or_default();
            (
                StatusCode::OK,
                [
                    (http::header::CONTENT_TYPE, "application/json".to_string()),
                    (http::header::ETAG, etag),
                    (http::header::CACHE_CONTROL, "public, immutable".to_string()),
                ],
                doc,
            )
                .into_response()
        }
        None => crate::status::ApiError::not_found_path().into_response(),
    }
}

/// The service-account issuer's OIDC discovery document, so that other systems can verify
/// the cluster's tokens.
async fn openid_configuration(State(server): State<Arc<ApiServer>>) -> Response {
    let Some(tokens) = server.security.service_accounts.as_ref() else {
        return crate::status::ApiError::not_found_path().into_response();
    };
    let jwks_uri = format!(
        "{}{}",
        tokens.issuer.trim_end_matches('/'),
        rkube_pki::jwt::JWKS_PATH
    );
    let doc = rkube_pki::jwt::openid_configuration(&tokens.issuer, &jwks_uri);
    json_response(StatusCode::OK, &doc)
}

/// The public keys that verify service-account tokens.
async fn jwks(State(server): State<Arc<ApiServer>>) -> Response {
    let Some(tokens) = server.security.service_accounts.as_ref() else {
        return crate::status::ApiError::not_found_path().into_response();
    };
    let body = serde_json::to_vec(&tokens.key.jwks()).unwrap_or_default();
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/jwk-set+json")],
        body,
    )
        .into_response()
}

async fn api(State(server): State<Arc<ApiServer>>, req: Request<Body>) -> Response {
    handlers::dispatch(server, req).await
}
