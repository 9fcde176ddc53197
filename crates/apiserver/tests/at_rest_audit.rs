//! Encryption at rest and auditing against real stores: a secret's plaintext is in neither
//! the embedded store's files nor an etcd dump, and the audit log records requests in
//! upstream's format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::TestServer;
use http::StatusCode;
use serde_json::{json, Value};

const SENTINEL: &str = "plaintext-sentinel-8f3a2c";

const ENCRYPTION_CONFIG: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["secrets"]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=
      - identity: {}
"#;

fn encrypted_security(dir: &std::path::Path) -> rkube_apiserver::Security {
    let mut sec = common::security(dir);
    sec.encryption = Some(
        rkube_apiserver::encryption::EncryptionConfig::from_bytes(ENCRYPTION_CONFIG.as_bytes())
            .expect("config"),
    );
    sec
}

/// Writes a secret and a config map holding the sentinel, and reads the secret back.
async fn write_both(t: &TestServer) {
    let r = t
        .post_json(
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                    "stringData": {"password": SENTINEL}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = t
        .post_json(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"},
                    "data": {"note": SENTINEL}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let back = t.get("/api/v1/namespaces/default/secrets/db").await.json();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(back["data"]["password"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, SENTINEL.as_bytes());
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The sentinel as a secret carries it in JSON: base64.
fn secret_forms() -> Vec<String> {
    use base64::Engine;
    vec![
        SENTINEL.to_string(),
        base64::engine::general_purpose::STANDARD.encode(SENTINEL),
    ]
}

#[tokio::test]
async fn secrets_are_not_in_the_embedded_store_files_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    std::fs::create_dir_all(&data).unwrap();
    let store: Arc<dyn rkube_store::Store> = Arc::new(
        rkube_store::embedded::EmbeddedStore::open(&data)
            .await
            .unwrap(),
    );
    let sec = encrypted_security(dir.path());
    let t = TestServer::on_store_with(store.clone(), dir, Default::default(), sec).await;
    write_both(&t).await;
    let (store, dir) = t.stop();
    drop(store);
    let mut files = Vec::new();
    for entry in walk(&dir.path().join("db")) {
        files.push(std::fs::read(entry).unwrap());
    }
    assert!(!files.is_empty());
    // The unencrypted config map is there, so the search would find a plaintext secret.
    assert!(
        files.iter().any(|f| contains(f, SENTINEL)),
        "the config map is stored as plain JSON"
    );
    for form in secret_forms() {
        for f in &files {
            // Only the config map holds the raw sentinel; the secret's base64 form must be absent.
            if form != SENTINEL {
                assert!(
                    !contains(f, &form),
                    "secret plaintext {form} found in the store files"
                );
            }
        }
    }
    assert!(files.iter().any(|f| contains(f, "k8s:enc:aesgcm:v1:key1:")));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn secrets_are_not_in_an_etcd_dump_in_plaintext() {
    let etcd = tokio::task::spawn_blocking(rkube_store::testing::EtcdServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let store: Arc<dyn rkube_store::Store> = Arc::new(
        rkube_store::etcd::EtcdStore::connect(&[etcd.client_url().to_string()])
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let sec = encrypted_security(dir.path());
    let t = TestServer::on_store_with(store, dir, Default::default(), sec).await;
    write_both(&t).await;
    let dump = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            etcd.client_url(),
            "get",
            "--prefix",
            "/registry/",
        ])
        .output()
        .expect("etcdctl (Debian etcd-client) must be installed");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let out = dump.stdout;
    assert!(
        contains(&out, "/registry/secrets/default/db"),
        "the dump holds the secret's key"
    );
    assert!(contains(&out, "k8s:enc:aesgcm:v1:key1:"));
    assert!(
        contains(&out, SENTINEL),
        "the config map is stored as plain JSON"
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(SENTINEL);
    assert!(
        !contains(&out, &b64),
        "secret plaintext found in the etcd dump"
    );
}

const AUDIT_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["configmaps"]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: Metadata
"#;

#[tokio::test]
async fn requests_are_audited_as_upstream_lays_events_out() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("audit.log");
    let mut sec = common::security(dir.path());
    let log = rkube_apiserver::audit::AuditLog::open(&log_path, Default::default()).unwrap();
    let log = Arc::new(log);
    sec.audit = Some(rkube_apiserver::guard::Audit {
        policy: rkube_apiserver::audit::Policy::from_bytes(AUDIT_POLICY.as_bytes()).unwrap(),
        log: log.clone(),
    });
    let store: Arc<dyn rkube_store::Store> = Arc::new(
        rkube_store::embedded::EmbeddedStore::open(dir.path())
            .await
            .unwrap(),
    );
    let t = TestServer::on_store_with(store, dir, Default::default(), sec).await;
    // Over HTTPS, so the user comes from the client certificate.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(t.client.clone(), "default");
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "audited"}, "data": {"k": "v"}}))
            .unwrap();
    cms.create(&Default::default(), &cm).await.unwrap();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(t.client.clone(), "default");
    assert!(pods.get("missing").await.is_err());
    let nobody = t.client_as("nobody", &[]).await;
    assert!(
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(nobody, "default")
            .list(&Default::default())
            .await
            .is_err()
    );
    assert_eq!(t.get("/healthz").await.status, StatusCode::OK);
    log.flush().await;
    let text = std::fs::read_to_string(&log_path).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events
        .iter()
        .all(|e| e["kind"] == "Event" && e["apiVersion"] == "audit.k8s.io/v1"));
    assert!(
        events.iter().all(|e| e["stage"] != "RequestReceived"),
        "omitted stage"
    );
    let create = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps")
        .expect("the create is audited");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["user"]["username"], "system:admin");
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(create["requestObject"]["data"]["k"], "v");
    assert_eq!(create["responseObject"]["metadata"]["name"], "audited");
    assert_eq!(create["sourceIPs"][0], "127.0.0.1");
    let get = events
        .iter()
        .find(|e| e["verb"] == "get" && e["objectRef"]["resource"] == "pods")
        .expect("the get is audited");
    assert_eq!(get["level"], "Metadata");
    assert_eq!(get["responseStatus"]["code"], 404);
    assert!(get.get("responseObject").is_none());
    let denied = events
        .iter()
        .find(|e| e["user"]["username"] == "nobody")
        .expect("the refusal is audited");
    assert_eq!(denied["responseStatus"]["code"], 403);
    assert!(
        events.iter().all(|e| e["requestURI"] != "/healthz"),
        "level None is not logged"
    );
}
