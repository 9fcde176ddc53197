//! The Lease lock, as upstream's `resourcelock.LeaseLock`: it reads, creates and updates one
//! `coordination.k8s.io/v1` Lease and keeps the last copy the server returned.
//!
//! An update sends that copy back with only the spec replaced, so it carries the
//! resourceVersion last seen: the API server applies it only if nobody wrote the Lease since,
//! and answers 409 Conflict otherwise. That compare-and-swap is what makes two candidates
//! unable to both take an expired lease.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

use crate::record::Record;

/// One Lease, and the server's last copy of it.
pub(crate) struct LeaseLock {
    api: Api<Lease>,
    namespace: String,
    name: String,
    lease: Option<Lease>,
}

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// An update before any get or create: there is no resourceVersion to update against.
    #[error("lease not initialized, call get or create first")]
    NotInitialized,
}

impl LockError {
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, LockError::Api(kube::Error::Api(s)) if s.code == 404)
    }
}

impl LeaseLock {
    pub(crate) fn new(client: kube::Client, namespace: &str, name: &str) -> LeaseLock {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            lease: None,
        }
    }

    /// `namespace/name`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Reads the Lease and remembers it; a 404 is `is_not_found`.
    pub(crate) async fn get(&mut self) -> Result<Record, LockError> {
        let lease = self.api.get(&self.name).await?;
        let record = Record::from_spec(lease.spec.as_ref());
        self.lease = Some(lease);
        Ok(record)
    }

    /// Creates the Lease holding `record`; a 409 means another candidate created it first.
    pub(crate) async fn create(&mut self, record: &Record) -> Result<(), LockError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            spec: Some(record.to_spec(None)),
        };
        let created = self.api.create(&PostParams::default(), &lease).await?;
        self.lease = Some(created);
        Ok(())
    }

    /// Writes `record` over the last copy seen, guarded by its resourceVersion.
    pub(crate) async fn update(&mut self, record: &Record) -> Result<(), LockError> {
        let Some(mut lease) = self.lease.clone() else {
            return Err(LockError::NotInitialized);
        };
        lease.spec = Some(record.to_spec(lease.spec.as_ref()));
        let updated = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        self.lease = Some(updated);
        Ok(())
    }
}
