//! The storage codec: objects become JSON bytes for the store and back, encrypted on the
//! way in and decrypted on the way out for the resources an `EncryptionConfiguration`
//! covers. The storage key is the authenticated data of AES-GCM, so an encrypted value
//! copied to another key does not decrypt.

use std::collections::HashMap;
use std::sync::Arc;

use rkube_api::RESOURCES;
use serde_json::Value;

use crate::encryption::{EncryptionConfig, Transformer, ENCRYPTED_PREFIX};
use crate::object;
use crate::status::{ApiError, ApiResult};

/// Encodes and decodes stored values.
#[derive(Debug, Default)]
pub struct StorageCodec {
    /// The transformer of each storage name (`secrets`), for those the configuration covers.
    transformers: HashMap<&'static str, Arc<Transformer>>,
}

impl StorageCodec {
    /// A codec that stores every resource as plain JSON.
    pub fn plain() -> Self {
        StorageCodec::default()
    }

    pub fn new(config: Option<&EncryptionConfig>) -> Self {
        let mut transformers = HashMap::new();
        if let Some(config) = config {
            for res in RESOURCES.iter().filter(|r| r.is_stored()) {
                if transformers.contains_key(res.storage) {
                    continue;
                }
                // Resources served in two groups (events) are configured by the group
                // they are stored under: the first in the catalogue.
                if let Some(t) = config.transformer(res.group, res.plural) {
                    transformers.insert(res.storage, t);
                }
            }
        }
        StorageCodec { transformers }
    }

    /// Whether values under this storage name are encrypted.
    pub fn encrypts(&self, storage: &str) -> bool {
        self.transformers.contains_key(storage)
    }

    fn transformer(&self, key: &str) -> Option<&Arc<Transformer>> {
        let storage = key.strip_prefix("/registry/")?.split('/').next()?;
        self.transformers.get(storage)
    }

    pub fn encode(&self, key: &str, obj: &Value) -> ApiResult<Vec<u8>> {
        let plain = object::encode(obj)?;
        match self.transformer(key) {
            Some(t) => t
                .encrypt(key.as_bytes(), &plain)
                .map_err(|e| ApiError::internal(format!("encrypting {key}: {e}"))),
            None => Ok(plain),
        }
    }

    pub fn decode(&self, key: &str, value: &[u8], mod_revision: i64) -> ApiResult<Value> {
        match self.transformer(key) {
            Some(t) => {
                let (plain, _stale) = t
                    .decrypt(key.as_bytes(), value)
                    .map_err(|e| ApiError::internal(format!("decrypting {key}: {e}")))?;
                object::decode(&plain, mod_revision)
            }
            None if value.starts_with(ENCRYPTED_PREFIX) => Err(ApiError::internal(format!(
                "{key} is encrypted but no encryption provider covers it"
            ))),
            None => object::decode(value, mod_revision),
        }
    }
}
