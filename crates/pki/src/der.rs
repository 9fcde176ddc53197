//! DER encoding of the X.509 structures rkube writes: names, public keys, extensions,
//! TBSCertificate / CertificationRequestInfo, and the signed envelopes, plus PEM armour.
//!
//! rkube encodes certificates itself (with `yasna`) instead of through a certificate builder
//! because Kubernetes puts each group in its own `O` attribute, and a CSR's subject must be
//! copied into the certificate as it is: builders that keep a name as a map from attribute type
//! to one value lose all groups but one.

use std::net::IpAddr;

use base64::Engine;
use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{DERWriter, DERWriterSeq, Tag};

use crate::PkiError;

/// Object identifiers used in what we encode.
pub(crate) mod oid {
    pub(crate) const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
    pub(crate) const PRIME256V1: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
    pub(crate) const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    pub(crate) const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub(crate) const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    pub(crate) const SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
    pub(crate) const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    pub(crate) const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    pub(crate) const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    pub(crate) const AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
    pub(crate) const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub(crate) const EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];

    pub(crate) const EKU_ANY: &[u64] = &[2, 5, 29, 37, 0];
    pub(crate) const EKU_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
    pub(crate) const EKU_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
    pub(crate) const EKU_CODE_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 3];
    pub(crate) const EKU_EMAIL_PROTECTION: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 4];
    pub(crate) const EKU_IPSEC_END_SYSTEM: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 5];
    pub(crate) const EKU_IPSEC_TUNNEL: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 6];
    pub(crate) const EKU_IPSEC_USER: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 7];
    pub(crate) const EKU_TIME_STAMPING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 8];
    pub(crate) const EKU_OCSP_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 9];
    pub(crate) const EKU_MICROSOFT_SGC: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 10, 3, 3];
    pub(crate) const EKU_NETSCAPE_SGC: &[u64] = &[2, 16, 840, 1, 113730, 4, 1];
}

/// KeyUsage bits, numbered as in RFC 5280 (bit 0 = digitalSignature).
pub(crate) mod key_usage {
    pub(crate) const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub(crate) const CONTENT_COMMITMENT: u16 = 1 << 1;
    pub(crate) const KEY_ENCIPHERMENT: u16 = 1 << 2;
    pub(crate) const DATA_ENCIPHERMENT: u16 = 1 << 3;
    pub(crate) const KEY_AGREEMENT: u16 = 1 << 4;
    pub(crate) const CERT_SIGN: u16 = 1 << 5;
    pub(crate) const CRL_SIGN: u16 = 1 << 6;
    pub(crate) const ENCIPHER_ONLY: u16 = 1 << 7;
    pub(crate) const DECIPHER_ONLY: u16 = 1 << 8;
}

/// A subject alternative name of one of the kinds upstream's signer carries over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum San {
    Dns(String),
    Ip(IpAddr),
    Email(String),
    Uri(String),
}

/// The extensions of a certificate (or requested in a CSR). Empty fields are omitted.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    /// basicConstraints (always critical): `Some(true)` for a CA, `Some(false)` for a leaf.
    pub(crate) ca: Option<bool>,
    /// keyUsage bits (critical); 0 leaves the extension out.
    pub(crate) key_usage: u16,
    pub(crate) ext_key_usage: Vec<&'static [u64]>,
    pub(crate) sans: Vec<San>,
    /// RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
    pub(crate) san_critical: bool,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.ca.is_none()
            && self.key_usage == 0
            && self.ext_key_usage.is_empty()
            && self.sans.is_empty()
            && self.subject_key_id.is_none()
            && self.authority_key_id.is_none()
    }

    /// Rejects what cannot be encoded (IA5 strings are ASCII only), so writing cannot panic.
    fn check(&self) -> Result<(), PkiError> {
        for san in &self.sans {
            if let San::Dns(s) | San::Email(s) | San::Uri(s) = san {
                if !s.is_ascii() {
                    return Err(PkiError::InvalidName {
                        name: s.clone(),
                        reason: "subject alternative names must be ASCII",
                    });
                }
            }
        }
        Ok(())
    }

    fn write(&self, w: DERWriter) {
        w.write_sequence(|w| {
            if let Some(ca) = self.ca {
                extension(w, oid::BASIC_CONSTRAINTS, true, |w| {
                    w.write_sequence(|w| {
                        // cA is DEFAULT FALSE, so DER leaves it out for a leaf.
                        if ca {
                            w.next().write_bool(true);
                        }
                    })
                });
            }
            if self.key_usage != 0 {
                extension(w, oid::KEY_USAGE, true, |w| {
                    let (bytes, bits) = key_usage_bits(self.key_usage);
                    w.write_bitvec_bytes(&bytes, bits);
                });
            }
            if !self.ext_key_usage.is_empty() {
                extension(w, oid::EXT_KEY_USAGE, false, |w| {
                    w.write_sequence(|w| {
                        for eku in &self.ext_key_usage {
                            write_oid(w.next(), eku);
                        }
                    })
                });
            }
            if !self.sans.is_empty() {
                extension(w, oid::SUBJECT_ALT_NAME, self.san_critical, |w| {
                    w.write_sequence(|w| {
                        for san in &self.sans {
                            write_general_name(w.next(), san);
                        }
                    })
                });
            }
            if let Some(id) = &self.subject_key_id {
                extension(w, oid::SUBJECT_KEY_ID, false, |w| w.write_bytes(id));
            }
            if let Some(id) = &self.authority_key_id {
                extension(w, oid::AUTHORITY_KEY_ID, false, |w| {
                    w.write_sequence(|w| {
                        w.next()
                            .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(id))
                    })
                });
            }
        })
    }
}

/// KeyUsage as a DER named-bit BIT STRING: bit 0 is the most significant bit of the first
/// byte, and trailing zero bits are not encoded.
fn key_usage_bits(usage: u16) -> (Vec<u8>, usize) {
    let bits = 16 - usage.leading_zeros() as usize;
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    for i in 0..bits {
        if usage & (1 << i) != 0 {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    (bytes, bits)
}

fn write_oid(w: DERWriter, components: &[u64]) {
    w.write_oid(&ObjectIdentifier::from_slice(components));
}

fn extension(w: &mut DERWriterSeq, id: &[u64], critical: bool, value: impl FnOnce(DERWriter)) {
    w.next().write_sequence(|w| {
        write_oid(w.next(), id);
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&yasna::construct_der(value));
    });
}

fn write_general_name(w: DERWriter, san: &San) {
    match san {
        San::Email(s) => w.write_tagged_implicit(Tag::context(1), |w| w.write_ia5_string(s)),
        San::Dns(s) => w.write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(s)),
        San::Uri(s) => w.write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(s)),
        San::Ip(ip) => w.write_tagged_implicit(Tag::context(7), |w| match ip {
            IpAddr::V4(v4) => w.write_bytes(&v4.octets()),
            IpAddr::V6(v6) => w.write_bytes(&v6.octets()),
        }),
    }
}

/// A Name with the given organisations (one RDN each, in order) followed by the common name.
/// Go's crypto/x509 also writes O before CN.
pub(crate) fn name(cn: &str, orgs: &[String]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for org in orgs {
                attribute(w.next(), oid::ORGANIZATION, org);
            }
            attribute(w.next(), oid::COMMON_NAME, cn);
        })
    })
}

fn attribute(w: DERWriter, id: &[u64], value: &str) {
    w.write_set(|w| {
        w.next().write_sequence(|w| {
            write_oid(w.next(), id);
            w.next().write_utf8_string(value);
        })
    })
}

/// SubjectPublicKeyInfo for an uncompressed P-256 point.
pub(crate) fn spki_p256(point: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                write_oid(w.next(), oid::EC_PUBLIC_KEY);
                write_oid(w.next(), oid::PRIME256V1);
            });
            w.next().write_bitvec_bytes(point, point.len() * 8);
        })
    })
}

/// A key identifier: the first 160 bits of the SHA-256 of the public key bits (RFC 7093 4.1).
pub(crate) fn key_id(public_key_bits: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, public_key_bits).as_ref()[..20].to_vec()
}

/// A certificate time: UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5), whole
/// seconds only.
enum Asn1Time {
    Utc(UTCTime),
    Generalized(GeneralizedTime),
}

fn asn1_time(t: OffsetDateTime) -> Result<Asn1Time, PkiError> {
    let t = t
        .replace_nanosecond(0)
        .map_err(|e| PkiError::Certificate(format!("time {t}: {e}")))?;
    if let Some(utc) = UTCTime::from_datetime_opt(t) {
        return Ok(Asn1Time::Utc(utc));
    }
    GeneralizedTime::from_datetime_opt(t)
        .map(Asn1Time::Generalized)
        .ok_or_else(|| PkiError::Certificate(format!("time {t} cannot be encoded")))
}

fn write_time(w: DERWriter, t: &Asn1Time) {
    match t {
        Asn1Time::Utc(t) => w.write_utctime(t),
        Asn1Time::Generalized(t) => w.write_generalized_time(t),
    }
}

/// The to-be-signed part of a certificate. Names and the public key are DER, copied as given.
#[derive(Debug)]
pub(crate) struct Tbs<'a> {
    pub(crate) serial: [u8; 16],
    pub(crate) issuer: &'a [u8],
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) subject: &'a [u8],
    pub(crate) spki: &'a [u8],
    pub(crate) extensions: &'a Extensions,
}

/// Encodes a v3 TBSCertificate signed with ecdsa-with-SHA256.
pub(crate) fn tbs_certificate(t: &Tbs<'_>) -> Result<Vec<u8>, PkiError> {
    t.extensions.check()?;
    let not_before = asn1_time(t.not_before)?;
    let not_after = asn1_time(t.not_after)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
            w.next().write_bigint_bytes(&t.serial, true);
            signature_algorithm(w.next());
            w.next().write_der(t.issuer);
            w.next().write_sequence(|w| {
                write_time(w.next(), &not_before);
                write_time(w.next(), &not_after);
            });
            w.next().write_der(t.subject);
            w.next().write_der(t.spki);
            if !t.extensions.is_empty() {
                w.next()
                    .write_tagged(Tag::context(3), |w| t.extensions.write(w));
            }
        })
    }))
}

/// Encodes a CertificationRequestInfo, with the SANs (if any) in an extensionRequest.
pub(crate) fn csr_info(subject: &[u8], spki: &[u8], sans: &[San]) -> Result<Vec<u8>, PkiError> {
    let extensions = Extensions {
        sans: sans.to_vec(),
        ..Extensions::default()
    };
    extensions.check()?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_der(subject);
            w.next().write_der(spki);
            w.next().write_tagged_implicit(Tag::context(0), |w| {
                w.write_set(|w| {
                    if !extensions.is_empty() {
                        w.next().write_sequence(|w| {
                            write_oid(w.next(), oid::EXTENSION_REQUEST);
                            w.next().write_set(|w| extensions.write(w.next()));
                        });
                    }
                })
            });
        })
    }))
}

fn signature_algorithm(w: DERWriter) {
    // RFC 5758 3.2: ecdsa-with-SHA256 has no parameters.
    w.write_sequence(|w| write_oid(w.next(), oid::ECDSA_WITH_SHA256));
}

/// Wraps a to-be-signed structure and its ECDSA signature: the same shape serves
/// Certificate and CertificationRequest.
pub(crate) fn signed(tbs: &[u8], signature: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(tbs);
            signature_algorithm(w.next());
            w.next().write_bitvec_bytes(signature, signature.len() * 8);
        })
    })
}

/// PEM armour with 64-column base64 lines, as openssl and Go write it.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bits_drop_trailing_zeros() {
        let cases: &[(u16, &[u8], usize)] = &[
            (key_usage::DIGITAL_SIGNATURE, &[0x80], 1),
            (
                key_usage::DIGITAL_SIGNATURE | key_usage::KEY_ENCIPHERMENT,
                &[0xa0],
                3,
            ),
            (
                key_usage::DIGITAL_SIGNATURE | key_usage::KEY_ENCIPHERMENT | key_usage::CERT_SIGN,
                &[0xa4],
                6,
            ),
            (key_usage::DECIPHER_ONLY, &[0x00, 0x80], 9),
        ];
        for (usage, bytes, bits) in cases {
            assert_eq!(
                key_usage_bits(*usage),
                (bytes.to_vec(), *bits),
                "{usage:#x}"
            );
        }
    }

    #[test]
    fn pem_lines_are_64_columns() {
        let pem = pem_encode("TEST", &[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN TEST-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END TEST-----"));
    }

    #[test]
    fn non_ascii_san_is_an_error_not_a_panic() {
        let ext = Extensions {
            sans: vec![San::Dns("bücher.example".into())],
            ..Extensions::default()
        };
        assert!(matches!(ext.check(), Err(PkiError::InvalidName { .. })));
    }
}
