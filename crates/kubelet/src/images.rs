//! Makes a container's image present before the container is created, as upstream's
//! `pkg/kubelet/images` does: the pull policy decides between using the image the runtime
//! has and pulling it through the CRI ImageService; pulls use the credentials of the pod's
//! image pull secrets; a failed pull backs off per (pod, image), 10 s doubling to 5 min; the
//! outcome carries upstream's container waiting reasons and event messages.
//!
//! The decisions are plain functions ([`pull_policy`], [`decide`], [`PullBackoff`],
//! [`reference`], [`credentials`]), table-tested below; [`ImageManager::ensure`] is the thin
//! driver calling CRI and the API. [`archive`] prepares image archives for `rkube image
//! import`, and [`hosts`] writes containerd's per-registry host configuration.

pub mod archive;
pub mod credentials;
pub mod hosts;
pub mod reference;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use parking_lot::Mutex;

use crate::cri::Cri;
use credentials::{Credential, Keyring};

/// Waiting reasons (upstream's `pkg/kubelet/images/types.go`).
pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
pub const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
pub const INVALID_IMAGE_NAME: &str = "InvalidImageName";
pub const IMAGE_INSPECT_ERROR: &str = "ImageInspectError";
/// CRI's typed pull errors (`k8s.io/cri-api/pkg/errors`), recognised by message prefix.
pub const REGISTRY_UNAVAILABLE: &str = "RegistryUnavailable";
pub const SIGNATURE_VALIDATION_FAILED: &str = "SignatureValidationFailed";

/// Event reasons (upstream's `pkg/kubelet/events`).
pub const EVENT_PULLING: &str = "Pulling";
pub const EVENT_PULLED: &str = "Pulled";
pub const EVENT_FAILED: &str = "Failed";
pub const EVENT_BACK_OFF: &str = "BackOff";
pub const EVENT_INSPECT_FAILED: &str = "InspectFailed";
pub const EVENT_NEVER_PULL: &str = "ErrImageNeverPull";
pub const EVENT_FAILED_PULL_SECRET: &str = "FailedToRetrieveImagePullSecret";

/// Upstream kubelet's image pull back-off: 10 s, doubling, at most 5 min.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The image is present: what to create the container from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredImage {
    /// The image id the runtime reports (what CreateContainer is given, and the status'
    /// `imageID` comes from).
    pub image_ref: String,
    /// How long the pull took, when this call pulled.
    pub pulled: Option<Duration>,
    /// The `Pulled` event's message.
    pub message: String,
}

/// The image could not be made present: the container's waiting reason and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct PullError {
    pub reason: &'static str,
    pub message: String,
}

/// An event about the container's image, for the pod worker to record on the container
/// (`FailedToRetrieveImagePullSecret` is about the pod itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// Receives the events of [`ImageManager::ensure`] as they happen (`Pulling` before a pull).
pub type EventSink = Arc<dyn Fn(&Pod, &Container, ImageEvent) + Send + Sync>;

/// A container's effective pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// The container's `imagePullPolicy`, or upstream's default when absent: `Always` for an
/// image tagged `latest` (or untagged, without digest), else `IfNotPresent`. An unknown
/// value pulls, as upstream's image manager does with one.
pub fn pull_policy(policy: Option<&str>, image: &str) -> PullPolicy {
    match policy {
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        Some(p) if !p.is_empty() => PullPolicy::Always,
        _ => match reference::tag_of(image).as_deref() {
            Some("latest") => PullPolicy::Always,
            _ => PullPolicy::IfNotPresent,
        },
    }
}

/// What [`ImageManager::ensure`] does once it knows the policy and what the runtime has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Use the image the runtime has (its id).
    UsePresent(String),
    Pull,
    /// `Never`, and the image is missing.
    NeverPullMissing,
}

/// The policy decision. `present` is the runtime's image id, if it has the image (never
/// asked under `Always`).
pub fn decide(policy: PullPolicy, present: Option<&str>) -> Action {
    match (policy, present) {
        (PullPolicy::Always, _) => Action::Pull,
        (_, Some(id)) => Action::UsePresent(id.to_string()),
        (PullPolicy::IfNotPresent, None) => Action::Pull,
        (PullPolicy::Never, None) => Action::NeverPullMissing,
    }
}

#[derive(Debug, Clone)]
struct BackoffEntry {
    delay: Duration,
    last_update: Instant,
    /// `<reason>: <message>` of the last failed pull, appended to the back-off message.
    last_error: String,
}

/// Per-key exponential back-off (client-go's `flowcontrol.Backoff` without jitter, as the
/// kubelet configures it): a failure starts at `initial` and doubles up to `max`; an entry
/// untouched for twice `max` is forgotten.
#[derive(Debug, Clone)]
pub struct PullBackoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, BackoffEntry>,
}

impl Default for PullBackoff {
    fn default() -> Self {
        PullBackoff::new(BACKOFF_INITIAL, BACKOFF_MAX)
    }
}

impl PullBackoff {
    pub fn new(initial: Duration, max: Duration) -> PullBackoff {
        PullBackoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, entry: &BackoffEntry, now: Instant) -> bool {
        now.saturating_duration_since(entry.last_update) > self.max * 2
    }

    /// Whether `key` failed less than its current delay before `now`.
    pub fn in_backoff(&self, key: &str, now: Instant) -> bool {
        self.entries.get(key).is_some_and(|e| {
            !self.expired(e, now) && now.saturating_duration_since(e.last_update) < e.delay
        })
    }

    /// The delay `key` is in, if it has one.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// Records a failure at `now`: the first (or the first after the entry expired) waits
    /// `initial`, each next one twice the last, at most `max`.
    pub fn record_failure(&mut self, key: &str, now: Instant, error: String) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.delay * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            BackoffEntry {
                delay,
                last_update: now,
                last_error: error,
            },
        );
    }

    /// The last failure's `<reason>: <message>`.
    pub fn last_error(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.last_error.as_str())
    }

    /// Forgets `key` (after a successful pull).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every expired entry.
    pub fn gc(&mut self, now: Instant) {
        let max2 = self.max * 2;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_update) <= max2);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The back-off key of a (pod, image): upstream's `<pod uid>_<image as written>`.
pub fn backoff_key(pod_uid: &str, image: &str) -> String {
    format!("{pod_uid}_{image}")
}

/// A gRPC status as Go's grpc prints it (what upstream's messages embed).
pub fn grpc_error_text(status: &tonic::Status) -> String {
    let code = match status.code() {
        // the only code whose Go name differs from tonic's
        tonic::Code::Cancelled => "Canceled".to_string(),
        code => format!("{code:?}"),
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

/// Several failed attempts as Go's `utilerrors.NewAggregate` prints them.
pub fn aggregate_errors(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Upstream's `evalCRIPullErr`: the waiting reason and message of a failed pull.
pub fn classify_pull_error(image: &str, error: &str) -> (&'static str, String) {
    if let Some(rest) = error.strip_prefix(REGISTRY_UNAVAILABLE) {
        return (
            REGISTRY_UNAVAILABLE,
            format!("image pull failed for {image} because the registry is unavailable{rest}"),
        );
    }
    if let Some(rest) = error.strip_prefix(SIGNATURE_VALIDATION_FAILED) {
        return (
            SIGNATURE_VALIDATION_FAILED,
            format!("image pull failed for {image} because the signature validation failed{rest}"),
        );
    }
    (ERR_IMAGE_PULL, error.to_string())
}

/// A duration as Go's `time.Duration.String` prints it (`1.234s`, `1m2.5s`, `450ms`), the
/// form of upstream's `Successfully pulled image "x" in 1.234s` event.
pub fn go_duration(d: Duration) -> String {
    fn decimal(value: u128, unit: u128, width: usize) -> String {
        let (int, frac) = (value / unit, value % unit);
        if frac == 0 {
            return int.to_string();
        }
        let frac = format!("{frac:0width$}");
        format!("{int}.{}", frac.trim_end_matches('0'))
    }
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", decimal(ns, 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", decimal(ns, 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let s_ns = (secs % 60) * 1_000_000_000 + ns % 1_000_000_000;
    out.push_str(&format!("{}s", decimal(s_ns, 1_000_000_000, 9)));
    out
}

fn truncate_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Pulls and inspects images for the kubelet. Cheap to clone: clones share the back-off state
/// and the pull queue.
#[derive(Clone)]
pub struct ImageManager {
    cri: Cri,
    client: kube::Client,
    backoff: Arc<Mutex<PullBackoff>>,
    /// Upstream's `serializeImagePulls` (its default: one pull at a time).
    serial: Option<Arc<tokio::sync::Mutex<()>>>,
    events: Option<EventSink>,
}

impl std::fmt::Debug for ImageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageManager")
            .field("runtime", &self.cri.endpoint())
            .field("backoff_entries", &self.backoff.lock().len())
            .field("serialized", &self.serial.is_some())
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl ImageManager {
    pub fn new(cri: Cri, client: kube::Client) -> ImageManager {
        ImageManager {
            cri,
            client,
            backoff: Arc::new(Mutex::new(PullBackoff::default())),
            serial: Some(Arc::new(tokio::sync::Mutex::new(()))),
            events: None,
        }
    }

    /// Other back-off delays than upstream's 10 s..5 min (tests use short ones).
    pub fn with_backoff(self, initial: Duration, max: Duration) -> ImageManager {
        *self.backoff.lock() = PullBackoff::new(initial, max);
        self
    }

    /// Whether pulls wait for each other (upstream's `--serialize-image-pulls`, default on).
    pub fn with_serialized_pulls(mut self, serialized: bool) -> ImageManager {
        self.serial = serialized.then(|| Arc::new(tokio::sync::Mutex::new(())));
        self
    }

    /// Sends the image events (`Pulling`, `Pulled`, `Failed`, `BackOff`, ...) to `sink`.
    pub fn with_events(mut self, sink: EventSink) -> ImageManager {
        self.events = Some(sink);
        self
    }

    fn event(
        &self,
        pod: &Pod,
        container: &Container,
        type_: &'static str,
        reason: &'static str,
        message: &str,
    ) {
        if type_ == "Warning" {
            tracing::warn!(pod = pod_key(pod), container = %container.name, reason, "{message}");
        } else {
            tracing::debug!(pod = pod_key(pod), container = %container.name, reason, "{message}");
        }
        if let Some(sink) = &self.events {
            sink(
                pod,
                container,
                ImageEvent {
                    type_,
                    reason,
                    message: message.to_string(),
                },
            );
        }
    }

    /// Makes the container's image present according to its pull policy; see the module
    /// documentation.
    pub async fn ensure(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<EnsuredImage, PullError> {
        let requested = container.image.as_deref().unwrap_or_default();
        let image = match reference::apply_default_tag(requested) {
            Ok(image) => image,
            Err(e) => {
                let message = format!("Failed to apply default image tag {requested:?}: {e}");
                self.event(pod, container, "Warning", EVENT_INSPECT_FAILED, &message);
                return Err(PullError {
                    reason: INVALID_IMAGE_NAME,
                    message,
                });
            }
        };
        let annotations: HashMap<String, String> = pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let spec = cri::ImageSpec {
            image: image.clone(),
            annotations,
            ..Default::default()
        };
        let policy = pull_policy(container.image_pull_policy.as_deref(), requested);
        let present = if policy == PullPolicy::Always {
            None
        } else {
            match self.image_status(&spec).await {
                Ok(status) => status.map(|i| i.id),
                Err(status) => {
                    let message = format!(
                        "Failed to inspect image {requested:?}: {}",
                        grpc_error_text(&status)
                    );
                    self.event(pod, container, "Warning", EVENT_INSPECT_FAILED, &message);
                    return Err(PullError {
                        reason: IMAGE_INSPECT_ERROR,
                        message,
                    });
                }
            }
        };
        match decide(policy, present.as_deref()) {
            Action::UsePresent(image_ref) => {
                let message = format!("Container image {requested:?} already present on machine");
                self.event(pod, container, "Normal", EVENT_PULLED, &message);
                Ok(EnsuredImage {
                    image_ref,
                    pulled: None,
                    message,
                })
            }
            Action::NeverPullMissing => {
                let message = format!(
                    "Container image {requested:?} is not present with pull policy of Never"
                );
                self.event(pod, container, "Warning", EVENT_NEVER_PULL, &message);
                Err(PullError {
                    reason: ERR_IMAGE_NEVER_PULL,
                    message,
                })
            }
            Action::Pull => self.pull(pod, container, requested, spec).await,
        }
    }

    async fn pull(
        &self,
        pod: &Pod,
        container: &Container,
        requested: &str,
        spec: cri::ImageSpec,
    ) -> Result<EnsuredImage, PullError> {
        let repository = match reference::parse_normalized(&spec.image) {
            Ok(r) => r.name(),
            Err(e) => {
                return Err(PullError {
                    reason: INVALID_IMAGE_NAME,
                    message: e.to_string(),
                })
            }
        };
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let key = backoff_key(uid, requested);
        // (the lock is released before the event sink runs)
        let in_backoff = {
            let backoff = self.backoff.lock();
            backoff
                .in_backoff(&key, Instant::now())
                .then(|| backoff.last_error(&key).map(str::to_string))
        };
        if let Some(last_error) = in_backoff {
            let mut message = format!("Back-off pulling image {requested:?}");
            self.event(pod, container, "Normal", EVENT_BACK_OFF, &message);
            if let Some(last) = last_error {
                message = format!("{message}: {last}");
            }
            return Err(PullError {
                reason: IMAGE_PULL_BACK_OFF,
                message,
            });
        }

        // Read only when about to pull, so that a pod in back-off costs the API nothing.
        let secrets = self.pull_secrets(pod, container).await;
        let keyring = Keyring::from_secrets(&secrets).map_err(|e| PullError {
            reason: ERR_IMAGE_PULL,
            message: e.message,
        })?;
        let credentials = keyring.lookup(&repository);

        self.event(
            pod,
            container,
            "Normal",
            EVENT_PULLING,
            &format!("Pulling image {requested:?}"),
        );
        let started = Instant::now();
        let (result, pull_time) = {
            let _turn = match &self.serial {
                Some(queue) => Some(queue.lock().await),
                None => None,
            };
            let pull_started = Instant::now();
            let result = self.pull_with(&spec, &credentials).await;
            (result, pull_started.elapsed())
        };
        match result {
            Err(error) => {
                self.event(
                    pod,
                    container,
                    "Warning",
                    EVENT_FAILED,
                    &format!("Failed to pull image {requested:?}: {error}"),
                );
                let (reason, message) = classify_pull_error(requested, &error);
                self.backoff.lock().record_failure(
                    &key,
                    Instant::now(),
                    format!("{reason}: {message}"),
                );
                Err(PullError { reason, message })
            }
            Ok(image_ref) => {
                // the size, best effort, as upstream reports it
                let size = match self.image_status(&spec).await {
                    Ok(Some(image)) => image.size,
                    _ => 0,
                };
                let total = truncate_ms(started.elapsed());
                let message = format!(
                    "Successfully pulled image {requested:?} in {} ({} including waiting). Image size: {size} bytes.",
                    go_duration(truncate_ms(pull_time)),
                    go_duration(total),
                );
                self.event(pod, container, "Normal", EVENT_PULLED, &message);
                {
                    let mut backoff = self.backoff.lock();
                    backoff.reset(&key);
                    backoff.gc(Instant::now());
                }
                Ok(EnsuredImage {
                    image_ref,
                    pulled: Some(pull_time),
                    message,
                })
            }
        }
    }

    /// PullImage with each matching credential in turn until one works (anonymously when
    /// none match); the error lists every attempt's.
    async fn pull_with(
        &self,
        spec: &cri::ImageSpec,
        credentials: &[Credential],
    ) -> Result<String, String> {
        let attempts: Vec<Option<cri::AuthConfig>> = if credentials.is_empty() {
            vec![None]
        } else {
            credentials
                .iter()
                .map(|c| {
                    Some(cri::AuthConfig {
                        username: c.username.clone(),
                        password: c.password.clone(),
                        ..Default::default()
                    })
                })
                .collect()
        };
        let mut errors = Vec::new();
        for auth in attempts {
            let request = cri::PullImageRequest {
                image: Some(spec.clone()),
                auth,
                sandbox_config: None,
            };
            match self.cri.images.clone().pull_image(request).await {
                Ok(response) => return Ok(response.into_inner().image_ref),
                Err(status) => errors.push(grpc_error_text(&status)),
            }
        }
        Err(aggregate_errors(&errors))
    }

    async fn image_status(
        &self,
        spec: &cri::ImageSpec,
    ) -> Result<Option<cri::Image>, tonic::Status> {
        let response = self
            .cri
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await?;
        Ok(response.into_inner().image.filter(|i| !i.id.is_empty()))
    }

    /// The pod's image pull secrets, read from its namespace. One that cannot be read is
    /// left out with a warning, and the pull goes on without it, as upstream's kubelet does.
    async fn pull_secrets(&self, pod: &Pod, container: &Container) -> Vec<Secret> {
        let names: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), namespace);
        let mut secrets = Vec::new();
        let mut failed = Vec::new();
        for name in names {
            match api.get_opt(&name).await {
                Ok(Some(secret)) => secrets.push(secret),
                Ok(None) => failed.push(name),
                Err(e) => {
                    tracing::info!(pod = pod_key(pod), secret = name, error = %e, "unable to retrieve pull secret");
                    failed.push(name);
                }
            }
        }
        if !failed.is_empty() {
            let message = format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                failed.join(", ")
            );
            self.event(
                pod,
                container,
                "Warning",
                EVENT_FAILED_PULL_SECRET,
                &message,
            );
        }
        secrets
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The images the runtime has, by every name it lists (`repo_tags` and `repo_digests`) and
/// by id: what `rkube image import` reports and tests check.
pub async fn list_images(cri: &Cri) -> Result<BTreeMap<String, String>, tonic::Status> {
    let images = cri
        .images
        .clone()
        .list_images(cri::ListImagesRequest { filter: None })
        .await?
        .into_inner()
        .images;
    let mut out = BTreeMap::new();
    for image in images {
        for name in image.repo_tags.iter().chain(&image.repo_digests) {
            out.insert(name.clone(), image.id.clone());
        }
        out.insert(image.id.clone(), image.id.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_policies_default_as_upstream() {
        let d = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        for (policy, image, expected) in [
            (None, "busybox", PullPolicy::Always),
            (None, "busybox:latest", PullPolicy::Always),
            (None, "busybox:1.36", PullPolicy::IfNotPresent),
            (None, "127.0.0.1:5000/a", PullPolicy::Always),
            (None, "127.0.0.1:5000/a:1", PullPolicy::IfNotPresent),
            (Some(""), "busybox:1", PullPolicy::IfNotPresent),
            (None, "Bad Name", PullPolicy::IfNotPresent),
            (Some("Always"), "busybox:1", PullPolicy::Always),
            (Some("IfNotPresent"), "busybox", PullPolicy::IfNotPresent),
            (Some("Never"), "busybox", PullPolicy::Never),
            (Some("Sometimes"), "busybox:1", PullPolicy::Always),
        ] {
            assert_eq!(pull_policy(policy, image), expected, "{policy:?} {image}");
        }
        assert_eq!(
            pull_policy(None, &format!("busybox@{d}")),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            pull_policy(None, &format!("busybox:latest@{d}")),
            PullPolicy::Always
        );
    }

    #[test]
    fn the_policy_decides_between_present_image_and_pull() {
        use Action::*;
        for (policy, present, expected) in [
            (PullPolicy::Always, None, Pull),
            (PullPolicy::Always, Some("sha256:a"), Pull),
            (PullPolicy::IfNotPresent, None, Pull),
            (
                PullPolicy::IfNotPresent,
                Some("sha256:a"),
                UsePresent("sha256:a".into()),
            ),
            (PullPolicy::Never, None, NeverPullMissing),
            (
                PullPolicy::Never,
                Some("sha256:a"),
                UsePresent("sha256:a".into()),
            ),
        ] {
            assert_eq!(decide(policy, present), expected, "{policy:?} {present:?}");
        }
    }

    #[test]
    fn backoff_doubles_from_10s_to_5min_and_expires() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = PullBackoff::default();
        let k = "uid_busybox";
        assert!(!b.in_backoff(k, t0));
        // (failure at, expected delay)
        let mut at = t0;
        for expected in [10, 20, 40, 80, 160, 300, 300] {
            b.record_failure(k, at, "ErrImagePull: x".into());
            assert_eq!(b.delay(k), Some(s(expected)));
            assert!(b.in_backoff(k, at));
            assert!(b.in_backoff(k, at + s(expected) - Duration::from_millis(1)));
            assert!(!b.in_backoff(k, at + s(expected)));
            at += s(expected);
        }
        assert_eq!(b.last_error(k), Some("ErrImagePull: x"));
        // other keys are independent
        assert!(!b.in_backoff("uid_other", at));
        // after twice the maximum without a failure, the next one starts over
        let later = at + s(601);
        assert!(!b.in_backoff(k, later));
        b.record_failure(k, later, "e".into());
        assert_eq!(b.delay(k), Some(s(10)));
        // a success resets it
        b.reset(k);
        assert!(!b.in_backoff(k, later));
        b.record_failure(k, later, "e".into());
        assert_eq!(b.delay(k), Some(s(10)));
        // gc drops only expired entries
        b.record_failure("fresh", later + s(500), "e".into());
        b.gc(later + s(601));
        assert_eq!(b.len(), 1);
        assert!(b.delay("fresh").is_some());
    }

    #[test]
    fn errors_read_as_upstreams() {
        let status = tonic::Status::not_found("failed to pull and unpack image \"x\": not found");
        assert_eq!(
            grpc_error_text(&status),
            "rpc error: code = NotFound desc = failed to pull and unpack image \"x\": not found"
        );
        assert_eq!(
            grpc_error_text(&tonic::Status::cancelled("c")),
            "rpc error: code = Canceled desc = c"
        );
        assert_eq!(aggregate_errors(&["a".into()]), "a");
        assert_eq!(aggregate_errors(&["a".into(), "b".into()]), "[a, b]");
        assert_eq!(
            classify_pull_error("x", "rpc error: code = Unknown desc = y"),
            (ERR_IMAGE_PULL, "rpc error: code = Unknown desc = y".into())
        );
        assert_eq!(
            classify_pull_error("x", "RegistryUnavailable: down"),
            (
                REGISTRY_UNAVAILABLE,
                "image pull failed for x because the registry is unavailable: down".into()
            )
        );
        assert_eq!(
            classify_pull_error("x", "SignatureValidationFailed"),
            (
                SIGNATURE_VALIDATION_FAILED,
                "image pull failed for x because the signature validation failed".into()
            )
        );
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let ms = Duration::from_millis;
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(450), "450ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(2_500), "2.5µs"),
            (ms(1), "1ms"),
            (ms(999), "999ms"),
            (ms(1000), "1s"),
            (ms(1234), "1.234s"),
            (ms(1200), "1.2s"),
            (ms(61_500), "1m1.5s"),
            (ms(120_000), "2m0s"),
            (ms(3_600_000), "1h0m0s"),
            (ms(3_723_004), "1h2m3.004s"),
        ] {
            assert_eq!(go_duration(d), s, "{d:?}");
        }
        assert_eq!(truncate_ms(Duration::from_micros(1_234_567)), ms(1234));
    }
}
