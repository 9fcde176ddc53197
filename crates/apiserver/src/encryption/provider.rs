//! The providers: how one value is sealed and opened, byte for byte as upstream stores it.
//!
//! A stored value is `k8s:enc:<provider>:v1:<keyname>:` followed by the provider's
//! ciphertext (identity stores the plaintext with no prefix):
//!
//! - `aesgcm`: 12-byte random nonce, then AES-GCM ciphertext and 16-byte tag, with the
//!   storage key as additional authenticated data (so a value copied to another key does
//!   not open);
//! - `aescbc`: 16-byte random IV, then AES-CBC with PKCS#7 padding;
//! - `secretbox`: 24-byte random nonce, then NaCl's XSalsa20-Poly1305 box (tag first).
//!
//! AES-GCM runs on `ring` for 16- and 32-byte keys; `ring` has no AES-192, so 24-byte keys
//! (which upstream accepts) use RustCrypto's `aes-gcm`.

use std::fmt;

use aes::cipher::{
    block_padding::Pkcs7, consts::U16, BlockCipher, BlockDecryptMut, BlockEncryptMut,
    BlockSizeUser, InnerIvInit, KeyInit,
};
use crypto_secretbox::aead::{Aead, Payload};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

use super::EncryptionError;

/// Prefix of every encrypted value; identity refuses to read data that carries it.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

const GCM_NONCE_SIZE: usize = 12;
const CBC_BLOCK_SIZE: usize = 16;
const SECRETBOX_NONCE_SIZE: usize = 24;
const SECRETBOX_OVERHEAD: usize = 16;

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// One provider of a resources entry, with its keys in configured order.
pub(super) enum Provider {
    AesGcm(Vec<NamedKey<GcmKey>>),
    AesCbc(Vec<NamedKey<CbcKey>>),
    Secretbox(Vec<NamedKey<crypto_secretbox::XSalsa20Poly1305>>),
    Identity,
}

pub(super) struct NamedKey<K> {
    pub name: String,
    pub key: K,
}

pub(super) enum GcmKey {
    Ring(Box<LessSafeKey>),
    Aes192(Box<Aes192Gcm>),
}

pub(super) enum CbcKey {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

/// Builds the AES-GCM key; the size was validated with the configuration.
pub(super) fn gcm_key(secret: &[u8]) -> Result<GcmKey, EncryptionError> {
    let bad = || EncryptionError::Decode(format!("invalid AES key size {}", secret.len()));
    match secret.len() {
        16 | 32 => {
            let alg = if secret.len() == 16 {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            let key = UnboundKey::new(alg, secret).map_err(|_| bad())?;
            Ok(GcmKey::Ring(Box::new(LessSafeKey::new(key))))
        }
        24 => Ok(GcmKey::Aes192(Box::new(
            Aes192Gcm::new_from_slice(secret).map_err(|_| bad())?,
        ))),
        _ => Err(bad()),
    }
}

/// Builds the AES-CBC key; the size was validated with the configuration.
pub(super) fn cbc_key(secret: &[u8]) -> Result<CbcKey, EncryptionError> {
    let bad = |_| EncryptionError::Decode(format!("invalid AES key size {}", secret.len()));
    Ok(match secret.len() {
        16 => CbcKey::Aes128(aes::Aes128::new_from_slice(secret).map_err(bad)?),
        24 => CbcKey::Aes192(aes::Aes192::new_from_slice(secret).map_err(bad)?),
        _ => CbcKey::Aes256(aes::Aes256::new_from_slice(secret).map_err(bad)?),
    })
}

/// Builds the secretbox key; the size was validated with the configuration.
pub(super) fn secretbox_key(
    secret: &[u8],
) -> Result<crypto_secretbox::XSalsa20Poly1305, EncryptionError> {
    crypto_secretbox::XSalsa20Poly1305::new_from_slice(secret).map_err(|_| {
        EncryptionError::Decode(format!(
            "expected key size 32 for secretbox provider, got {}",
            secret.len()
        ))
    })
}

impl Provider {
    /// The provider part of the stored prefix (`k8s:enc:aesgcm:v1:`); empty for identity.
    pub(super) fn prefix(&self) -> &'static [u8] {
        match self {
            Provider::AesGcm(_) => b"k8s:enc:aesgcm:v1:",
            Provider::AesCbc(_) => b"k8s:enc:aescbc:v1:",
            Provider::Secretbox(_) => b"k8s:enc:secretbox:v1:",
            Provider::Identity => b"",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Provider::AesGcm(_) => "aesgcm",
            Provider::AesCbc(_) => "aescbc",
            Provider::Secretbox(_) => "secretbox",
            Provider::Identity => "identity",
        }
    }

    /// Seals `plaintext` with the provider's first key, prefix included.
    pub(super) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let mut out = self.prefix().to_vec();
        let key_name = |name: &str, out: &mut Vec<u8>| {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
        };
        match self {
            Provider::Identity => out.extend_from_slice(plaintext),
            Provider::AesGcm(keys) => {
                let first = first_key(keys)?;
                key_name(&first.name, &mut out);
                gcm_seal(&first.key, aad, plaintext, &mut out)?;
            }
            Provider::AesCbc(keys) => {
                let first = first_key(keys)?;
                key_name(&first.name, &mut out);
                cbc_seal(&first.key, plaintext, &mut out)?;
            }
            Provider::Secretbox(keys) => {
                let first = first_key(keys)?;
                key_name(&first.name, &mut out);
                secretbox_seal(&first.key, plaintext, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Opens `data` (the stored value with this provider's prefix removed). Returns the
    /// plaintext and whether a key other than the first opened it. Keys whose name
    /// matches are tried in order, as upstream does, and the first that opens wins.
    pub(super) fn open(&self, aad: &[u8], data: &[u8]) -> Result<(Vec<u8>, bool), String> {
        match self {
            Provider::Identity => {
                if data.starts_with(ENCRYPTED_PREFIX) {
                    Err("identity transformer tried to read encrypted data".to_string())
                } else {
                    Ok((data.to_vec(), false))
                }
            }
            Provider::AesGcm(keys) => open_with_keys(keys, data, "AES", |k, d| gcm_open(k, aad, d)),
            Provider::AesCbc(keys) => open_with_keys(keys, data, "AES", cbc_open),
            Provider::Secretbox(keys) => open_with_keys(keys, data, "Secretbox", secretbox_open),
        }
    }
}

impl fmt::Debug for Provider {
    // Key names only: the key material must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = match self {
            Provider::AesGcm(k) => k.iter().map(|k| k.name.as_str()).collect(),
            Provider::AesCbc(k) => k.iter().map(|k| k.name.as_str()).collect(),
            Provider::Secretbox(k) => k.iter().map(|k| k.name.as_str()).collect(),
            Provider::Identity => Vec::new(),
        };
        f.debug_struct(self.name()).field("keys", &names).finish()
    }
}

fn first_key<K>(keys: &[NamedKey<K>]) -> Result<&NamedKey<K>, EncryptionError> {
    keys.first()
        .ok_or_else(|| EncryptionError::Encrypt("provider has no keys".to_string()))
}

fn open_with_keys<K>(
    keys: &[NamedKey<K>],
    data: &[u8],
    what: &str,
    open: impl Fn(&K, &[u8]) -> Result<Vec<u8>, String>,
) -> Result<(Vec<u8>, bool), String> {
    let mut errors = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(rest) = data
            .strip_prefix(key.name.as_bytes())
            .and_then(|r| r.strip_prefix(b":"))
        else {
            continue;
        };
        match open(&key.key, rest) {
            Ok(plain) => return Ok((plain, i != 0)),
            Err(e) => errors.push(format!("key {}: {e}", key.name)),
        }
    }
    if errors.is_empty() {
        Err(format!(
            "no matching key was found for the provided {what} transformer"
        ))
    } else {
        Err(errors.join("; "))
    }
}

fn random(buf: &mut [u8]) -> Result<(), EncryptionError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| EncryptionError::Encrypt("unable to read sufficient random bytes".into()))
}

fn gcm_seal(
    key: &GcmKey,
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncryptionError> {
    let mut nonce = [0u8; GCM_NONCE_SIZE];
    random(&mut nonce)?;
    out.extend_from_slice(&nonce);
    match key {
        GcmKey::Ring(key) => {
            let start = out.len();
            out.extend_from_slice(plaintext);
            let mut sealed = out.split_off(start);
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .map_err(|_| EncryptionError::Encrypt("AES-GCM seal failed".to_string()))?;
            out.extend_from_slice(&sealed);
        }
        GcmKey::Aes192(key) => {
            let sealed = key
                .encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .map_err(|_| EncryptionError::Encrypt("AES-GCM seal failed".to_string()))?;
            out.extend_from_slice(&sealed);
        }
    }
    Ok(())
}

fn gcm_open(key: &GcmKey, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < GCM_NONCE_SIZE {
        return Err("the stored data was shorter than the required size".to_string());
    }
    let (nonce, sealed) = data.split_at(GCM_NONCE_SIZE);
    // Same text as Go's crypto/cipher, which upstream passes through.
    let failed = || "cipher: message authentication failed".to_string();
    match key {
        GcmKey::Ring(key) => {
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?;
            let mut buf = sealed.to_vec();
            let plain_len = key
                .open_in_place(nonce, Aad::from(aad), &mut buf)
                .map_err(|_| failed())?
                .len();
            buf.truncate(plain_len);
            Ok(buf)
        }
        GcmKey::Aes192(key) => key
            .decrypt(nonce.into(), Payload { msg: sealed, aad })
            .map_err(|_| failed()),
    }
}

fn cbc_seal(key: &CbcKey, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptionError> {
    let mut iv = [0u8; CBC_BLOCK_SIZE];
    random(&mut iv)?;
    out.extend_from_slice(&iv);
    let sealed = match key {
        CbcKey::Aes128(c) => cbc_encrypt(c, &iv, plaintext),
        CbcKey::Aes192(c) => cbc_encrypt(c, &iv, plaintext),
        CbcKey::Aes256(c) => cbc_encrypt(c, &iv, plaintext),
    };
    out.extend_from_slice(&sealed);
    Ok(())
}

fn cbc_encrypt<C>(cipher: &C, iv: &[u8; CBC_BLOCK_SIZE], plaintext: &[u8]) -> Vec<u8>
where
    C: BlockCipher + BlockEncryptMut + BlockSizeUser<BlockSize = U16> + Clone,
{
    cbc::Encryptor::<C>::inner_iv_init(cipher.clone(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

fn cbc_open(key: &CbcKey, data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < CBC_BLOCK_SIZE {
        return Err("the stored data was shorter than the required size".to_string());
    }
    let (iv, sealed) = data.split_at(CBC_BLOCK_SIZE);
    if sealed.len() % CBC_BLOCK_SIZE != 0 {
        return Err("the stored data is not a multiple of the block size".to_string());
    }
    if sealed.is_empty() {
        return Err("invalid PKCS7 data (empty or not padded)".to_string());
    }
    let opened = match key {
        CbcKey::Aes128(c) => cbc_decrypt(c, iv, sealed),
        CbcKey::Aes192(c) => cbc_decrypt(c, iv, sealed),
        CbcKey::Aes256(c) => cbc_decrypt(c, iv, sealed),
    };
    opened.ok_or_else(|| "invalid padding on input".to_string())
}

fn cbc_decrypt<C>(cipher: &C, iv: &[u8], sealed: &[u8]) -> Option<Vec<u8>>
where
    C: BlockCipher + BlockDecryptMut + BlockSizeUser<BlockSize = U16> + Clone,
{
    let iv: &[u8; CBC_BLOCK_SIZE] = iv.try_into().ok()?;
    cbc::Decryptor::<C>::inner_iv_init(cipher.clone(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(sealed)
        .ok()
}

fn secretbox_seal(
    key: &crypto_secretbox::XSalsa20Poly1305,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncryptionError> {
    let mut nonce = [0u8; SECRETBOX_NONCE_SIZE];
    random(&mut nonce)?;
    out.extend_from_slice(&nonce);
    let sealed = key
        .encrypt((&nonce).into(), plaintext)
        .map_err(|_| EncryptionError::Encrypt("secretbox seal failed".to_string()))?;
    out.extend_from_slice(&sealed);
    Ok(())
}

fn secretbox_open(
    key: &crypto_secretbox::XSalsa20Poly1305,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    if data.len() < SECRETBOX_NONCE_SIZE + SECRETBOX_OVERHEAD {
        return Err("the stored data was shorter than the required size".to_string());
    }
    let (nonce, sealed) = data.split_at(SECRETBOX_NONCE_SIZE);
    key.decrypt(nonce.into(), sealed)
        .map_err(|_| "secretbox: message authentication failed".to_string())
}
