//! Kubeconfig files for kubectl and other clients: one cluster, one user, one current context.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::CertKey;

/// How the kubeconfig's user authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A client certificate and key (`client-certificate-data`, `client-key-data`).
    Cert(CertKey),
    /// A bearer token (`token`).
    Token(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Cert(pair) => f.debug_tuple("Cert").field(pair).finish(),
            Credential::Token(_) => f.write_str("Token([redacted])"),
        }
    }
}

/// Kubeconfig YAML: cluster `cluster` (server URL, `certificate-authority-data`), user `user`
/// with `cred`, and a context named after the cluster, which is current.
pub fn kubeconfig(
    server_url: &str,
    ca_pem: &str,
    cluster: &str,
    user: &str,
    cred: &Credential,
) -> String {
    kubeconfig_with_context(server_url, ca_pem, cluster, cluster, user, cred)
}

/// As [`kubeconfig`], with the context's name chosen (kubeadm names it `<user>@<cluster>`).
pub fn kubeconfig_with_context(
    server_url: &str,
    ca_pem: &str,
    cluster: &str,
    context: &str,
    user: &str,
    cred: &Credential,
) -> String {
    let user_entry = match cred {
        Credential::Cert(pair) => json!({
            "client-certificate-data": STANDARD.encode(&pair.cert_pem),
            "client-key-data": STANDARD.encode(&pair.key_pem),
        }),
        Credential::Token(token) => json!({ "token": token }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster,
            "cluster": {
                "server": server_url,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "contexts": [{
            "name": context,
            "context": { "cluster": cluster, "user": user },
        }],
        "current-context": context,
        "preferences": {},
        "users": [{ "name": user, "user": user_entry }],
    });
    // A tree of strings always serialises; JSON is valid YAML should that ever change.
    serde_yaml_ng::to_string(&doc).unwrap_or_else(|_| doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> serde_json::Value {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn token_kubeconfig_has_one_cluster_user_and_current_context() {
        let yaml = kubeconfig(
            "https://127.0.0.1:6443",
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
            "default",
            "admin",
            &Credential::Token("abc.def".into()),
        );
        let doc = parse(&yaml);
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "default");
        assert_eq!(doc["clusters"][0]["name"], "default");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        assert!(String::from_utf8(STANDARD.decode(ca).unwrap())
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(doc["contexts"][0]["name"], "default");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "default");
        assert_eq!(doc["contexts"][0]["context"]["user"], "admin");
        assert_eq!(doc["users"][0]["name"], "admin");
        assert_eq!(doc["users"][0]["user"]["token"], "abc.def");
        assert!(doc["users"][0]["user"].get("client-key-data").is_none());
    }

    #[test]
    fn cert_kubeconfig_carries_base64_pem() {
        let pair = CertKey {
            cert_pem: "CERT PEM".into(),
            key_pem: "KEY PEM".into(),
        };
        let yaml = kubeconfig_with_context(
            "https://k:6443",
            "CA",
            "kubernetes",
            "admin@kubernetes",
            "admin",
            &Credential::Cert(pair),
        );
        let doc = parse(&yaml);
        assert_eq!(doc["current-context"], "admin@kubernetes");
        let user = &doc["users"][0]["user"];
        assert_eq!(user["client-certificate-data"], STANDARD.encode("CERT PEM"));
        assert_eq!(user["client-key-data"], STANDARD.encode("KEY PEM"));
        assert!(user.get("token").is_none());
    }

    #[test]
    fn credential_debug_hides_secrets() {
        let shown = format!("{:?}", Credential::Token("s3cret".into()));
        assert!(!shown.contains("s3cret"));
    }
}
