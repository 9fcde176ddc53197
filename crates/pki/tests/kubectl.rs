//! The kubeconfig as the real kubectl reads it (skipped where kubectl is not installed).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::process::Command;

use common::{have, strings, tempdir};
use rkube_pki::{kubeconfig, write_file_atomic, Ca, Credential, KEY_MODE};

fn config_view(path: &std::path::Path, jsonpath: &str) -> String {
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig",
            path.to_str().unwrap(),
            "config",
            "view",
            "--raw",
        ])
        .args(["-o", &format!("jsonpath={jsonpath}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubectl_reads_cert_and_token_kubeconfigs() {
    if !have("kubectl") {
        return;
    }
    let dir = tempdir();
    let ca = Ca::generate().unwrap();
    let admin = ca
        .issue_client("admin", &strings(&["system:masters"]))
        .unwrap();
    let cases = [
        (
            "cert",
            Credential::Cert(admin.clone()),
            "{.users[0].user.client-certificate-data}",
        ),
        (
            "token",
            Credential::Token("abcdef.0123456789abcdef".into()),
            "{.users[0].user.token}",
        ),
    ];
    for (name, cred, user_path) in cases {
        let yaml = kubeconfig(
            "https://127.0.0.1:6443",
            ca.cert_pem(),
            "default",
            "admin",
            &cred,
        );
        let path = dir.path().join(name);
        write_file_atomic(&path, yaml.as_bytes(), KEY_MODE).unwrap();
        assert_eq!(config_view(&path, "{.current-context}"), "default");
        assert_eq!(
            config_view(&path, "{.clusters[0].cluster.server}"),
            "https://127.0.0.1:6443"
        );
        assert_eq!(config_view(&path, "{.contexts[0].context.user}"), "admin");
        let user = config_view(&path, user_path);
        match &cred {
            Credential::Token(t) => assert_eq!(&user, t),
            Credential::Cert(_) => assert!(!user.is_empty()),
        }
    }
}

/// Serves `/version` over HTTP/1.1 with our TLS config on loopback, reporting the identity of
/// each request's client certificate. It keeps serving: on some machines `kubectl` is a
/// dispatcher that asks the server's version before running the real kubectl.
async fn serve_version(
    listener: tokio::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
    seen: tokio::sync::mpsc::UnboundedSender<Option<(String, Vec<String>)>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    while let Ok((tcp, _)) = listener.accept().await {
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            continue;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0-rkube-pki-test"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.write_all(response.as_bytes()).await;
        let _ = tls.shutdown().await;
        let (_, conn) = tls.get_ref();
        let identity = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| rkube_pki::client_identity(leaf));
        let _ = seen.send(identity);
    }
}

#[tokio::test]
async fn kubectl_trusts_the_serving_cert_and_presents_the_client_cert() {
    if !have("kubectl") {
        return;
    }
    let dir = tempdir();
    let ca = Ca::generate().unwrap();
    let serving = ca
        .issue_serving(
            "kube-apiserver",
            &strings(&["localhost"]),
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
    let mut config = (*rkube_pki::server_tls_config(&serving, ca.cert_pem()).unwrap()).clone();
    // This test server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(serve_version(listener, std::sync::Arc::new(config), tx));

    let admin = ca
        .issue_client("admin", &strings(&["system:masters"]))
        .unwrap();
    let yaml = kubeconfig(
        &format!("https://127.0.0.1:{port}"),
        ca.cert_pem(),
        "default",
        "admin",
        &Credential::Cert(admin),
    );
    let path = dir.path().join("admin.kubeconfig");
    write_file_atomic(&path, yaml.as_bytes(), KEY_MODE).unwrap();
    let out = tokio::process::Command::new("kubectl")
        .args(["--kubeconfig", path.to_str().unwrap()])
        .args(["--cache-dir", dir.path().join("cache").to_str().unwrap()])
        .args(["--request-timeout=20s", "get", "--raw", "/version"])
        .output()
        .await
        .unwrap();
    server.abort();
    assert!(
        out.status.success(),
        "kubectl get --raw: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1.33.0-rkube-pki-test"));
    let mut identities = Vec::new();
    while let Ok(identity) = rx.try_recv() {
        identities.push(identity);
    }
    assert!(!identities.is_empty());
    for identity in identities {
        assert_eq!(
            identity,
            Some(("admin".to_string(), strings(&["system:masters"])))
        );
    }
}
