//! rkube's controller manager: the controllers of upstream's kube-controller-manager, each an
//! API client that never touches the store.
//!
//! Every controller is one module with the same shape: a pure reconcile core (functions from
//! observed objects to the change to make, table-tested without a network) and a thin driver
//! (`driver.rs`) that watches the API with kube-runtime reflectors, queues keys, and performs the
//! change through the API. Side effects that are not API calls (minting tokens, signing
//! certificates, asking the authorizer) sit behind small traits injected through
//! [`ControllerContext`].
//!
//! - [`serviceaccount`]: ServiceAccount `default` in every active namespace;
//! - [`root_ca_cert_publisher`]: ConfigMap `kube-root-ca.crt` in every namespace;
//! - [`serviceaccount_token`]: fills legacy service-account token Secrets, deletes orphans;
//! - [`clusterrole_aggregation`]: rules of aggregated ClusterRoles;
//! - [`csrapproving`]: approves kubelet client CSRs after a SubjectAccessReview;
//! - [`csrsigning`]: signs approved CSRs of the built-in signers;
//! - [`controller_utils`]: expectations, pods from templates, slow start, deletion order, claims;
//! - [`history`]: ControllerRevisions (template history of DaemonSets and StatefulSets);
//! - [`cronjob`]: Jobs from CronJobs at their cron schedule's times, history limits;
//! - [`endpointslice`]: EndpointSlices of every selector Service, from the pods it selects;
//! - [`endpoints`]: the v1 Endpoints of every selector Service;
//! - [`endpointslicemirroring`]: EndpointSlices mirroring custom Endpoints of selectorless Services;
//! - [`nodeipam`]: a pod CIDR for every node from the cluster CIDR;
//! - [`nodelifecycle`]: node health from heartbeats and leases, condition and NoExecute taints;
//! - [`tainteviction`]: deletes pods from NoExecute-tainted nodes they do not tolerate;
//! - [`podgc`]: force-deletes terminated, orphaned and stuck terminating pods;
//! - [`ttlafterfinished`]: deletes finished Jobs after `ttlSecondsAfterFinished`;
//! - [`garbagecollector`]: deletes dependents whose owners are gone, carries out background,
//!   foreground and orphan propagation ([`discovery`] finds every resource);
//! - [`namespace`]: empties a terminating namespace of all content, then finalizes it;
//! - [`job`]: runs Jobs' pods to completion, counting each finished pod once;
//! - [`disruption`]: PodDisruptionBudget status (expected, healthy, allowed disruptions);
//! - [`replicaset`]: pods of ReplicaSets and ReplicationControllers (one core for both);
//! - [`deployment`]: rollouts of Deployments through ReplicaSets;
//! - [`daemonset`]: a pod of each DaemonSet on every fitting node, rolling updates, history;
//! - [`statefulset`]: ordered pods with stable identities and claims, rolling updates by revision;
//! - [`registry`]: the `{name, start}` table, upstream's `--controllers` syntax, [`start_all`].

pub mod certificates;
pub mod clusterrole_aggregation;
pub mod controller_utils;
pub mod cronjob;
pub mod csrapproving;
pub mod csrsigning;
pub mod daemonset;
pub mod deployment;
pub mod discovery;
pub mod disruption;
pub mod driver;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod error;
pub mod events;
pub mod garbagecollector;
pub mod history;
pub mod informers;
pub mod job;
pub mod metrics;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod registry;
pub mod replicaset;
pub mod resourcequota;
pub mod root_ca_cert_publisher;
pub mod serviceaccount;
pub mod serviceaccount_token;
pub mod statefulset;
pub mod tainteviction;
pub mod ttlafterfinished;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use informers::SharedInformers;
pub use registry::{identity, start_all, Controllers, ControllersError, Registration, REGISTRY};

/// Mints the legacy (secret-based) service-account JWTs of the tokens controller. The real one
/// signs with the service-account key the API server verifies with.
pub trait TokenGenerator: Send + Sync {
    /// A token for service account `sa_name` (uid `sa_uid`) in `namespace`, stored in Secret
    /// `secret_name`: upstream's `LegacyClaims`.
    fn legacy_token(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> Result<String, String>;
}

/// Signs certificate requests for the built-in signers (the cluster CA).
pub trait CsrSigner: Send + Sync {
    /// A PEM certificate for the PEM `CERTIFICATE REQUEST` `csr_pem`, with these key usages
    /// (upstream's usage names) and lifetime.
    fn sign(&self, csr_pem: &[u8], usages: &[String], lifetime: Duration)
        -> Result<String, String>;
}

/// What the controllers share: the cluster CA and the injected signers.
#[derive(Clone)]
pub struct ControllerContext {
    /// The cluster CA bundle (PEM) published to every namespace and put in token secrets.
    pub ca_pem: String,
    /// Needed by `serviceaccount-token`; without it that controller does not start, as
    /// upstream's without `--service-account-private-key-file`.
    pub token_generator: Option<Arc<dyn TokenGenerator>>,
    /// Needed by `csrsigning`; without it that controller does not start.
    pub csr_signer: Option<Arc<dyn CsrSigner>>,
    /// The longest certificate `csrsigning` issues (`--cluster-signing-duration`).
    pub cluster_signing_duration: Duration,
    /// The client the controllers' watches use: the controller manager's own identity, as
    /// upstream's shared informers use it, while each controller writes as its own service
    /// account. Without it, a controller watches with its own client.
    pub informer_client: Option<kube::Client>,
    /// The manager's shared informers; without them, [`ControllerContext::informer`] gives
    /// each controller a watch of its own.
    pub shared_informers: Option<Arc<SharedInformers>>,
    /// Informers made on first use when `shared_informers` is not given, watching with the
    /// informer client or else the first asking controller's own: every cache is then still
    /// filled by a task of its own, never only while some stream happens to be polled.
    own_informers: std::sync::OnceLock<Arc<SharedInformers>>,
    /// Reconciles at a time per controller name (upstream's `--concurrent-*-syncs`); a
    /// controller not named gets [`driver::DEFAULT_WORKERS`].
    pub workers: std::collections::HashMap<String, u16>,
    /// Where the controllers' queues report.
    pub metrics: Arc<metrics::Metrics>,
    /// `node-lifecycle`'s settings (upstream's `--node-monitor-grace-period` and others).
    pub node_lifecycle: nodelifecycle::NodeLifecycleConfig,
    /// `node-ipam`'s settings (upstream's `--cluster-cidr`, `--node-cidr-mask-size-*`).
    pub node_ipam: nodeipam::NodeIpamConfig,
    /// `pod-garbage-collector`'s settings (upstream's `--terminated-pod-gc-threshold`).
    pub pod_gc: podgc::PodGcConfig,
}

/// The cluster CA signs CSRs directly.
impl CsrSigner for rkube_pki::Ca {
    fn sign(
        &self,
        csr_pem: &[u8],
        usages: &[String],
        lifetime: Duration,
    ) -> Result<String, String> {
        self.sign_csr(csr_pem, usages, lifetime)
            .map_err(|e| e.to_string())
    }
}

impl ControllerContext {
    /// The client to watch with: the shared informer client, or `own`.
    pub fn informers(&self, own: &kube::Client) -> kube::Client {
        self.informer_client.clone().unwrap_or_else(|| own.clone())
    }

    /// The cache of `K` in all namespaces, once synced, and a stream of its watch events: from
    /// the manager's shared informers, or informers this context makes on first use.
    pub async fn informer<K>(
        &self,
        controller: &'static str,
        own: &kube::Client,
    ) -> (kube::runtime::reflector::Store<K>, driver::Events<K>)
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let shared = match &self.shared_informers {
            Some(shared) => shared.clone(),
            None => self
                .own_informers
                .get_or_init(|| SharedInformers::new(self.informers(own)))
                .clone(),
        };
        tracing::debug!(controller, kind = %K::kind(&()), "waiting for the informer's cache");
        shared.get::<K>().await
    }
}

/// Upstream's default `--cluster-signing-duration`: one year.
pub const DEFAULT_CLUSTER_SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

impl ControllerContext {
    /// A context with this CA, no token generator, no signer and the default signing duration.
    pub fn new(ca_pem: impl Into<String>) -> Self {
        ControllerContext {
            ca_pem: ca_pem.into(),
            token_generator: None,
            csr_signer: None,
            cluster_signing_duration: DEFAULT_CLUSTER_SIGNING_DURATION,
            informer_client: None,
            shared_informers: None,
            own_informers: Default::default(),
            workers: Default::default(),
            metrics: Default::default(),
            node_lifecycle: Default::default(),
            node_ipam: Default::default(),
            pod_gc: Default::default(),
        }
    }
}

impl fmt::Debug for ControllerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerContext")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("token_generator", &self.token_generator.is_some())
            .field("csr_signer", &self.csr_signer.is_some())
            .field("cluster_signing_duration", &self.cluster_signing_duration)
            .finish()
    }
}
