//! Real TLS handshakes against `server_tls_config`, over an in-memory duplex pipe.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::sync::Arc;

use common::strings;
use rkube_pki::{client_identity, crypto_provider, server_tls_config, Ca, CertKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Cluster {
    ca: Ca,
    server: Arc<rustls::ServerConfig>,
}

fn cluster() -> Cluster {
    let ca = Ca::generate().unwrap();
    let serving = ca
        .issue_serving(
            "kube-apiserver",
            &strings(&["localhost", "kubernetes.default.svc"]),
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
    let server = server_tls_config(&serving, ca.cert_pem()).unwrap();
    Cluster { ca, server }
}

fn client_config(
    ca_pem: &str,
    cert: Option<&CertKey>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(pair) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What the server saw of a successful handshake.
#[derive(Debug)]
struct Seen {
    identity: Option<(String, Vec<String>)>,
    alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
}

/// Runs one handshake (plus a byte each way) as `server_name`; Err is the client's error.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> Result<Seen, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server_task = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server).accept(server_io).await.ok()?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.ok()?;
        tls.write_all(b"!").await.ok()?;
        tls.flush().await.ok()?;
        let (_, conn) = tls.get_ref();
        Some(Seen {
            identity: conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| client_identity(leaf)),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
        })
    });
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let result = async {
        let mut tls = TlsConnector::from(client)
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"?").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    }
    .await;
    let seen = server_task.await.unwrap();
    result?;
    seen.ok_or_else(|| "server side failed".to_string())
}

#[tokio::test]
async fn admin_client_cert_authenticates_over_h2() {
    let c = cluster();
    let admin =
        c.ca.issue_client("admin", &strings(&["system:masters"]))
            .unwrap();
    let client = client_config(c.ca.cert_pem(), Some(&admin), rustls::DEFAULT_VERSIONS);
    let seen = handshake(c.server, client, "localhost").await.unwrap();
    assert_eq!(
        seen.identity,
        Some(("admin".to_string(), strings(&["system:masters"])))
    );
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn client_without_cert_connects_anonymously() {
    let c = cluster();
    let client = client_config(c.ca.cert_pem(), None, rustls::DEFAULT_VERSIONS);
    let seen = handshake(c.server, client, "127.0.0.1").await.unwrap();
    assert_eq!(seen.identity, None);
}

#[tokio::test]
async fn tls12_client_connects() {
    let c = cluster();
    let user = c.ca.issue_client("u", &[]).unwrap();
    let client = client_config(c.ca.cert_pem(), Some(&user), &[&rustls::version::TLS12]);
    let seen = handshake(c.server, client, "kubernetes.default.svc")
        .await
        .unwrap();
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(seen.identity, Some(("u".to_string(), vec![])));
}

#[tokio::test]
async fn client_cert_from_another_ca_is_refused() {
    let c = cluster();
    let stranger = Ca::generate().unwrap().issue_client("admin", &[]).unwrap();
    let client = client_config(c.ca.cert_pem(), Some(&stranger), rustls::DEFAULT_VERSIONS);
    let err = handshake(c.server, client, "localhost").await.unwrap_err();
    // Same-second CAs share a subject name, so the server finds a candidate issuer whose
    // signature does not match (DecryptError); otherwise it knows no issuer (UnknownCA).
    assert!(
        err.contains("DecryptError") || err.contains("UnknownCA"),
        "{err}"
    );
}

#[tokio::test]
async fn serving_cert_does_not_cover_other_names() {
    let c = cluster();
    let client = client_config(c.ca.cert_pem(), None, rustls::DEFAULT_VERSIONS);
    let err = handshake(c.server, client, "example.com")
        .await
        .unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for"),
        "{err}"
    );
}

#[tokio::test]
async fn serving_cert_only_is_not_a_client_cert() {
    // A serverAuth-only certificate must not pass as a client identity.
    let c = cluster();
    let serving =
        c.ca.issue_serving("node", &strings(&["node"]), &[])
            .unwrap();
    let client = client_config(c.ca.cert_pem(), Some(&serving), rustls::DEFAULT_VERSIONS);
    let err = handshake(c.server, client, "localhost").await.unwrap_err();
    assert!(err.contains("UnsupportedCertificate"), "{err}");
}
