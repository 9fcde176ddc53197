//! rkube's PKI: the cluster CA and the certificates it issues (serving, client, CSR-signed),
//! kubeconfigs, bootstrap tokens, the API server's rustls configuration, and service-account
//! JWTs. A pure library: it reads and writes files it is pointed at, and nothing else: no
//! store, no server.
//!
//! Every key is ECDSA P-256 and every signature is made with ring, the one crypto backend of
//! the workspace. Certificates are DER-encoded here rather than through a certificate builder,
//! because Kubernetes needs one `O` attribute per group and CSR subjects copied as they are.

mod ca;
mod csr;
mod csr_info;
mod der;
mod error;
mod files;
mod inspect;
pub mod jwt;
mod key;
mod kubeconfig;
mod sans;
mod tls;
mod token;

pub use ca::{Ca, CertKey, CA_LIFETIME, LEAF_LIFETIME};
pub use csr::{create_csr, CsrKey};
pub use csr_info::{parse_csr, CsrSubject};
pub use error::PkiError;
pub use files::{
    load_or_issue_client, load_or_issue_serving, write_file_atomic, CERT_MODE, KEY_MODE,
    RENEW_BEFORE,
};
pub use inspect::{ca_hash, cert_info, certs_from_pem, client_identity, CertInfo};
pub use kubeconfig::{kubeconfig, kubeconfig_with_context, Credential};
pub use sans::{apiserver_sans, first_service_ip};
pub use tls::{crypto_provider, server_tls_config, ALPN};
pub use token::{generate_bootstrap_token, is_bootstrap_token};
