//! Encryption at rest: upstream's `EncryptionConfiguration` (`--encryption-provider-config`).
//!
//! The configuration maps resources to an ordered list of providers. Writes use the first
//! provider (and its first key); reads pick the provider from the value's
//! `k8s:enc:<provider>:v1:<key>:` prefix, so keys and providers can be rotated by putting
//! the new one first and keeping the old one after it until every value has been
//! rewritten. A read that did not use the first provider and key is reported *stale*, the
//! signal to re-encrypt.
//!
//! - [`EncryptionConfig`]: the parsed, validated file and the resource → transformer
//!   lookup (exact `resource.group`, then `*.group`, then `*.*`, as upstream);
//! - [`Transformer`]: what the storage codec calls for one resource, with the storage key
//!   as AES-GCM's authenticated data.
//!
//! The stored bytes are upstream's, so an etcd written by kube-apiserver with the same
//! configuration reads here and the other way round. KMS providers are refused.

mod config;
mod provider;
pub use provider::ENCRYPTED_PREFIX;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rkube_api::FieldError;

use config::{decode_secret, group_resource_string, parse_group_resource};
use provider::{NamedKey, Provider};

/// Why a configuration did not load or a value did not transform.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("error reading encryption provider configuration file {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("error decoding encryption provider configuration: {0}")]
    Decode(String),
    /// Validation failures, with upstream's field paths (`resources[0].providers[1]...`).
    #[error("invalid encryption provider configuration: {}", render_field_errors(.0))]
    Invalid(Vec<FieldError>),
    /// A resource named after a wildcard entry that already covers it.
    #[error("resource {resource:?} is masked by earlier rule {rule:?}")]
    Masked { resource: String, rule: String },
    #[error("failed to encrypt: {0}")]
    Encrypt(String),
    #[error("failed to decrypt: {0}")]
    Decrypt(String),
}

/// One error as itself, several as upstream's aggregate: `[a, b]`.
fn render_field_errors(errs: &[FieldError]) -> String {
    let parts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// A loaded encryption configuration.
#[derive(Debug)]
pub struct EncryptionConfig {
    /// Keyed by (group, resource), where resource may be `*` and group may be `*`.
    transformers: HashMap<(String, String), Arc<Transformer>>,
}

impl EncryptionConfig {
    /// Reads and validates the file at `path` (YAML or JSON).
    pub fn load(path: &Path) -> Result<Self, EncryptionError> {
        let data = std::fs::read(path).map_err(|source| EncryptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&data)
    }

    /// Parses and validates a configuration document.
    pub fn from_bytes(data: &[u8]) -> Result<Self, EncryptionError> {
        let file = config::decode(data)?;
        let errs = config::validate(&file);
        if !errs.is_empty() {
            return Err(EncryptionError::Invalid(errs));
        }
        let mut lists: HashMap<(String, String), Vec<Arc<Provider>>> = HashMap::new();
        for entry in &file.resources {
            let providers = entry
                .providers
                .iter()
                .map(|p| build_provider(p).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            for resource in &entry.resources {
                let (group, res) = parse_group_resource(resource);
                // As upstream: naming a resource after a wildcard that covers it is an
                // error, since the later rule could never apply.
                for (mg, mr) in [(group.as_str(), "*"), ("*", "*")] {
                    if lists.contains_key(&(mg.to_string(), mr.to_string())) {
                        return Err(EncryptionError::Masked {
                            resource: group_resource_string(&group, &res),
                            rule: group_resource_string(mg, mr),
                        });
                    }
                }
                // The same resource in two entries reads with both lists, in order, and
                // writes with the first: upstream appends them.
                lists
                    .entry((group, res))
                    .or_default()
                    .extend(providers.iter().cloned());
            }
        }
        let transformers = lists
            .into_iter()
            .map(|(gr, providers)| (gr, Arc::new(Transformer { providers })))
            .collect();
        Ok(EncryptionConfig { transformers })
    }

    /// The transformer for a resource (`group` empty for core, `plural` such as
    /// `secrets`), or `None` if no entry covers it, in which case values are stored as
    /// they are.
    pub fn transformer(&self, group: &str, plural: &str) -> Option<Arc<Transformer>> {
        let get = |g: &str, r: &str| self.transformers.get(&(g.to_string(), r.to_string()));
        get(group, plural)
            .or_else(|| get(group, "*"))
            .or_else(|| get("*", "*"))
            .cloned()
    }
}

fn build_provider(conf: &config::ProviderConfiguration) -> Result<Provider, EncryptionError> {
    fn keys<K>(
        keys: &[config::Key],
        make: impl Fn(&[u8]) -> Result<K, EncryptionError>,
    ) -> Result<Vec<NamedKey<K>>, EncryptionError> {
        keys.iter()
            .map(|k| {
                let secret = decode_secret(&k.secret).map_err(|e| {
                    EncryptionError::Decode(format!(
                        "could not obtain secret for named key {}: {e}",
                        k.name
                    ))
                })?;
                Ok(NamedKey {
                    name: k.name.clone(),
                    key: make(&secret)?,
                })
            })
            .collect()
    }
    if let Some(c) = &conf.aesgcm {
        Ok(Provider::AesGcm(keys(&c.keys, provider::gcm_key)?))
    } else if let Some(c) = &conf.aescbc {
        Ok(Provider::AesCbc(keys(&c.keys, provider::cbc_key)?))
    } else if let Some(c) = &conf.secretbox {
        Ok(Provider::Secretbox(keys(&c.keys, provider::secretbox_key)?))
    } else if conf.identity.is_some() {
        Ok(Provider::Identity)
    } else {
        // Validation has refused anything else (KMS, empty providers).
        Err(EncryptionError::Decode(
            "provider does not contain any of the expected providers: AESGCM, AESCBC, \
             Secretbox, Identity"
                .to_string(),
        ))
    }
}

/// The providers for one resource, in configured order.
pub struct Transformer {
    providers: Vec<Arc<Provider>>,
}

impl fmt::Debug for Transformer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.providers.iter()).finish()
    }
}

impl Transformer {
    /// The value to store for `plaintext` under storage key `key`, sealed with the first
    /// provider and its first key. `key` is AES-GCM's authenticated data, so the same key
    /// must be given to [`decrypt`](Self::decrypt).
    pub fn encrypt(&self, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let first = self
            .providers
            .first()
            .ok_or_else(|| EncryptionError::Encrypt("no providers configured".to_string()))?;
        first.seal(key, plaintext)
    }

    /// The plaintext of a stored value and whether it is stale (not written with the
    /// first provider and key, so rewriting it would re-encrypt it).
    ///
    /// The providers whose prefix the value carries are tried in order; identity matches
    /// any value without the `k8s:enc:` prefix. A value with no `k8s:enc:` prefix is
    /// therefore readable only when identity is configured.
    pub fn decrypt(&self, key: &[u8], stored: &[u8]) -> Result<(Vec<u8>, bool), EncryptionError> {
        let mut errors = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            let Some(rest) = stored.strip_prefix(provider.prefix()) else {
                continue;
            };
            match provider.open(key, rest) {
                Ok((plain, key_stale)) => return Ok((plain, key_stale || i != 0)),
                // Identity refusing encrypted data is expected when it comes first in a
                // migration away from encryption; only the real providers' errors count.
                Err(_) if matches!(**provider, Provider::Identity) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Err(EncryptionError::Decrypt(
                "no matching prefix found".to_string(),
            ))
        } else {
            Err(EncryptionError::Decrypt(errors.join("; ")))
        }
    }
}
