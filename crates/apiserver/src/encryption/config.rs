//! The `EncryptionConfiguration` file as written by users, and its validation.
//!
//! The shapes and the validation messages follow upstream's `apiserver.config.k8s.io/v1`
//! types and `apis/config/validation`, so a file that upstream accepts is accepted here and
//! a bad one is refused with the same field path and text. Decoding is strict (unknown
//! fields are errors), as upstream's decoder for this file is.

use base64::Engine as _;
use rkube_api::{FieldError, FieldPath};
use serde::Deserialize;

use super::EncryptionError;

/// The group/version and kind of the current format.
pub(super) const API_VERSION: &str = "apiserver.config.k8s.io/v1";
pub(super) const KIND: &str = "EncryptionConfiguration";
/// The pre-1.13 name of the same document, still read for old files.
const LEGACY_API_VERSION: &str = "v1";
const LEGACY_KIND: &str = "EncryptionConfig";

const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const SECRETBOX_KEY_SIZES: &[usize] = &[32];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct File {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub resources: Vec<ResourceConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResourceConfiguration {
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub providers: Vec<ProviderConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderConfiguration {
    pub aesgcm: Option<KeysConfiguration>,
    pub aescbc: Option<KeysConfiguration>,
    pub secretbox: Option<KeysConfiguration>,
    pub identity: Option<IdentityConfiguration>,
    /// Parsed only so that a KMS provider gets a clear "not supported" rather than an
    /// unknown-field error.
    pub kms: Option<KmsConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeysConfiguration {
    #[serde(default)]
    pub keys: Vec<Key>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Key {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityConfiguration {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // read only to be refused
pub(super) struct KmsConfiguration {
    pub api_version: Option<String>,
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub cachesize: Option<i64>,
    pub timeout: Option<String>,
}

/// Decodes the file (YAML or JSON) and checks its apiVersion and kind.
pub(super) fn decode(data: &[u8]) -> Result<File, EncryptionError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(EncryptionError::Decode(
            "encryption provider configuration is empty".to_string(),
        ));
    }
    let file: File = serde_yaml_ng::from_slice(data)
        .map_err(|e| EncryptionError::Decode(format!("strict decoding error: {e}")))?;
    let api_version = file.api_version.as_deref().unwrap_or("");
    let kind = file.kind.as_deref().unwrap_or("");
    if kind.is_empty() {
        return Err(EncryptionError::Decode(
            "Object 'Kind' is missing in the encryption provider configuration".to_string(),
        ));
    }
    let known = (api_version == API_VERSION && kind == KIND)
        || (api_version == LEGACY_API_VERSION && kind == LEGACY_KIND);
    if !known {
        return Err(EncryptionError::Decode(format!(
            "no kind {kind:?} is registered for version {api_version:?}: \
             expected apiVersion {API_VERSION:?} and kind {KIND:?}"
        )));
    }
    Ok(file)
}

/// Upstream's `ValidateEncryptionConfiguration`, without KMS (which rkube does not
/// support) and with one addition: key names must be unique within a provider, because
/// the name is what picks the key when reading.
pub(super) fn validate(file: &File) -> Vec<FieldError> {
    let root = FieldPath::new("resources");
    let mut errs = Vec::new();
    if file.resources.is_empty() {
        errs.push(FieldError::required(
            &root,
            "at least one resources is required",
        ));
        return errs;
    }
    for (i, conf) in file.resources.iter().enumerate() {
        let r = root.index(i).child("resources");
        let p = root.index(i).child("providers");
        if conf.resources.is_empty() {
            let detail = format!("at least one {r} is required");
            errs.push(FieldError::required(&r, &detail));
        }
        errs.extend(validate_resource_overlap(&conf.resources, &r));
        errs.extend(validate_resource_names(&conf.resources, &r));
        if conf.providers.is_empty() {
            let detail = format!("at least one {p} is required");
            errs.push(FieldError::required(&p, &detail));
        }
        for (j, provider) in conf.providers.iter().enumerate() {
            errs.extend(validate_provider(provider, &p.index(j)));
        }
    }
    errs
}

/// A resource entry as upstream's `schema.ParseGroupResource` reads it: the text before
/// the first dot is the resource, the rest the group (`secrets` is core, `*.apps` every
/// resource in apps, `*.*` everything).
pub(super) fn parse_group_resource(s: &str) -> (String, String) {
    match s.split_once('.') {
        Some((resource, group)) => (group.to_string(), resource.to_string()),
        None => (String::new(), s.to_string()),
    }
}

/// Upstream's rendering of a group/resource in masking errors (`*.` for all core).
pub(super) fn group_resource_string(group: &str, resource: &str) -> String {
    if group.is_empty() && resource == "*" {
        "*.".to_string()
    } else if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn validate_resource_overlap(resources: &[String], path: &FieldPath) -> Vec<FieldError> {
    if resources.len() < 2 {
        return Vec::new();
    }
    let parsed: Vec<(String, String)> = resources.iter().map(|r| parse_group_resource(r)).collect();
    let mut duplicate = false;
    let mut overlap = false;
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            if i == j {
                continue;
            }
            if a == b {
                duplicate = true;
                continue;
            }
            let any = a.0 == "*" && a.1 == "*";
            if any || (a.0 == b.0 && (a.1 == "*" || b.1 == "*")) {
                overlap = true;
            }
        }
    }
    let value = serde_json::json!(resources);
    let mut errs = Vec::new();
    if duplicate {
        errs.push(FieldError::invalid(
            path,
            value.clone(),
            "the same resource cannot be specified multiple times",
        ));
    }
    if overlap {
        errs.push(FieldError::invalid(
            path,
            value,
            "using overlapping resources such as 'secrets' and '*.' in the same resource list \
             is not allowed as they will be masked",
        ));
    }
    errs
}

fn validate_resource_names(resources: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, res) in resources.iter().enumerate() {
        let jj = path.index(j);
        let (group, resource) = parse_group_resource(res);
        let detail = if res.to_lowercase() != *res {
            "resource name should not contain capital letters"
        } else if res == "*" {
            "use '*.' to encrypt all the resources from core API group or *.* to encrypt all \
             resources"
        } else if matches!(
            res.as_str(),
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            "resources which do not have REST API/s cannot be encrypted"
        } else if group == "events.k8s.io" {
            "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use \
             'events' instead in the config file"
        } else if group == "extensions" {
            "'extensions' group has been removed and cannot be used for encryption"
        } else if group == "*" && resource != "*" {
            "encrypting the same resource across groups is not supported"
        } else {
            continue;
        };
        errs.push(FieldError::invalid(&jj, res.as_str(), detail));
    }
    errs
}

fn validate_provider(provider: &ProviderConfiguration, path: &FieldPath) -> Vec<FieldError> {
    let found = [
        provider.kms.is_some(),
        provider.aesgcm.is_some(),
        provider.aescbc.is_some(),
        provider.secretbox.is_some(),
        provider.identity.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if found == 0 {
        return vec![FieldError::invalid(
            path,
            serde_json::json!({}),
            "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, \
             Secretbox, Identity",
        )];
    }
    if found > 1 {
        return vec![FieldError::invalid(
            path,
            serde_json::json!({}),
            "more than one provider specified in a single element, should split into different \
             list elements",
        )];
    }
    if provider.kms.is_some() {
        return vec![FieldError::forbidden(
            &path.child("kms"),
            "KMS providers are not supported by rkube; use aesgcm, aescbc or secretbox",
        )];
    }
    let (name, keys, sizes) = if let Some(c) = &provider.aesgcm {
        ("aesgcm", &c.keys, AES_KEY_SIZES)
    } else if let Some(c) = &provider.aescbc {
        ("aescbc", &c.keys, AES_KEY_SIZES)
    } else if let Some(c) = &provider.secretbox {
        ("secretbox", &c.keys, SECRETBOX_KEY_SIZES)
    } else {
        return Vec::new();
    };
    validate_keys(keys, &path.child(name).child("keys"), sizes)
}

fn validate_keys(keys: &[Key], path: &FieldPath, sizes: &[usize]) -> Vec<FieldError> {
    if keys.is_empty() {
        return vec![FieldError::required(path, "at least one keys is required")];
    }
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let kp = path.index(i);
        if key.name.is_empty() {
            errs.push(FieldError::required(
                &kp.child("name"),
                "name is a mandatory field for a key",
            ));
        } else if seen.contains(&key.name.as_str()) {
            errs.push(FieldError::duplicate(&kp.child("name"), key.name.as_str()));
        }
        seen.push(&key.name);
        if key.secret.is_empty() {
            errs.push(FieldError::required(
                &kp.child("secret"),
                "secret is a mandatory field for a key",
            ));
            continue;
        }
        // The value is never echoed back: it is key material.
        match decode_secret(&key.secret) {
            Err(_) => errs.push(FieldError::invalid(
                &kp.child("secret"),
                "REDACTED",
                "secrets must be base64 encoded",
            )),
            Ok(secret) if !sizes.contains(&secret.len()) => {
                let expected: Vec<String> = sizes.iter().map(usize::to_string).collect();
                let detail = format!(
                    "secret is not of the expected length, got {}, expected one of [{}]",
                    secret.len(),
                    expected.join(" ")
                );
                errs.push(FieldError::invalid(
                    &kp.child("secret"),
                    "REDACTED",
                    &detail,
                ));
            }
            Ok(_) => {}
        }
    }
    errs
}

/// A key's secret: standard base64 with padding, as Go's `base64.StdEncoding`.
pub(super) fn decode_secret(secret: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(secret)
}
