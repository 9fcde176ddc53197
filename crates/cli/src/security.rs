//! The server's security set-up: the cluster CA and certificates under
//! `<data-dir>/server/tls`, the component kubeconfigs under `<data-dir>/server/cred`, the
//! admin kubeconfig, and the API server's authenticators, admission plugins, encryption and
//! audit settings. Everything is made on first start and reused after.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use rkube_apiserver::admission::Admission;
use rkube_apiserver::authn::token_file::TokenFile;
use rkube_apiserver::sa_token::ServiceAccountTokens;
use rkube_apiserver::Security;
use rkube_pki::{Ca, CertKey, Credential};

/// The security flags, as upstream's kube-apiserver and k3s name them.
#[derive(Debug, Args, Clone)]
pub struct SecurityArgs {
    /// DEMO ONLY: serve plain HTTP with no authentication and no authorization; every
    /// request acts as a cluster admin. Never use this on a reachable address.
    #[arg(long)]
    pub insecure_dev: bool,
    /// Static bearer tokens, upstream's CSV format: token,user,uid,"group1,group2".
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Admission plugins to turn on besides the default ones.
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Default admission plugins to turn off.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// An EncryptionConfiguration file for encrypting resources (secrets) in the store.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// An audit Policy file; with --audit-log-path, requests are audited.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// Where audit events go, as JSON lines ("-" for standard output).
    #[arg(long)]
    pub audit_log_path: Option<String>,
    /// Rotate the audit log at this many megabytes (0: never).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// How many rotated audit logs to keep (0: all).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Service IPs come from this range; its first IP is the `kubernetes` Service's.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// This node's addresses, added to the serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,
    /// Extra names or IPs for the serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// The issuer of service-account tokens (default: https://kubernetes.default.svc.<domain>).
    #[arg(long)]
    pub service_account_issuer: Option<String>,
    /// Audiences a token must be meant for to authenticate (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
}

/// What the server needs from its PKI.
#[derive(Debug)]
pub struct ServerPki {
    pub ca: Arc<Ca>,
    pub tls: Arc<rustls::ServerConfig>,
    pub admin: CertKey,
    /// The API server's client certificate for kubelets (upstream's
    /// `--kubelet-client-certificate`).
    pub kubelet_client: CertKey,
}

/// The user the API server is to kubelets, and the ClusterRoleBinding that gives it
/// upstream's `system:kubelet-api-admin` role (as k3s binds it; kubeadm puts the
/// certificate in an admin group instead).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
pub const KUBELET_API_ADMIN_BINDING: &str = "kube-apiserver-kubelet-api-admin";

/// The component identities upstream gives client certificates, with their groups.
fn components(node: &str) -> Vec<(&'static str, String, Vec<String>)> {
    vec![
        (
            "client-admin",
            "system:admin".into(),
            vec!["system:masters".into()],
        ),
        (
            "client-kube-scheduler",
            "system:kube-scheduler".into(),
            vec![],
        ),
        (
            "client-kube-controller-manager",
            "system:kube-controller-manager".into(),
            vec![],
        ),
        ("client-kube-proxy", "system:kube-proxy".into(), vec![]),
        (
            "client-kubelet",
            format!("system:node:{node}"),
            vec!["system:nodes".into()],
        ),
    ]
}

pub fn node_name(args: &SecurityArgs) -> String {
    args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "rkube-server".to_string())
    })
}

/// Creates or loads the CA, the serving certificate and every component's client
/// certificate and kubeconfig.
pub fn load_pki(data_dir: &Path, args: &SecurityArgs, server_url: &str) -> Result<ServerPki> {
    let tls_dir = data_dir.join("server").join("tls");
    let cred_dir = data_dir.join("server").join("cred");
    let ca = Ca::load_or_create(&tls_dir).context("loading the cluster CA")?;
    let node = node_name(args);
    let (mut dns, mut ips) = rkube_pki::apiserver_sans(
        &node,
        &args.node_ip,
        &args.cluster_domain,
        &args.service_cidr,
    )
    .context("working out the serving certificate's names")?;
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(san) => dns.push(san.clone()),
            Err(_) => {}
        }
    }
    let serving =
        rkube_pki::load_or_issue_serving(&tls_dir, "serving-kube-apiserver", &ca, &dns, &ips)
            .context("issuing the serving certificate")?;
    let tls = rkube_pki::server_tls_config(&serving, ca.cert_pem()).context("TLS set-up")?;
    let mut admin = None;
    for (stem, cn, groups) in components(&node) {
        let cert = rkube_pki::load_or_issue_client(&tls_dir, stem, &ca, &cn, &groups)
            .with_context(|| format!("issuing the {cn} client certificate"))?;
        let name = stem.trim_start_matches("client-");
        let cfg = rkube_pki::kubeconfig(
            server_url,
            ca.cert_pem(),
            "rkube",
            &cn,
            &Credential::Cert(cert.clone()),
        );
        rkube_pki::write_file_atomic(
            &cred_dir.join(format!("{name}.kubeconfig")),
            cfg.as_bytes(),
            0o600,
        )?;
        if stem == "client-admin" {
            admin = Some(cert);
        }
    }
    let admin = admin.context("the admin certificate was not issued")?;
    let kubelet_client = rkube_pki::load_or_issue_client(
        &tls_dir,
        "client-kube-apiserver-kubelet-client",
        &ca,
        KUBELET_CLIENT_USER,
        &[],
    )
    .context("issuing the API server's kubelet client certificate")?;
    Ok(ServerPki {
        ca: Arc::new(ca),
        tls,
        admin,
        kubelet_client,
    })
}

/// How the API server reaches kubelets: its kubelet client certificate, and kubelet
/// serving certificates verified against the cluster CA.
pub fn kubelet_client(pki: &ServerPki) -> Result<rkube_apiserver::kubelet_client::KubeletClient> {
    rkube_apiserver::kubelet_client::KubeletClient::new(
        &rkube_apiserver::kubelet_client::KubeletClientConfig {
            client_cert: Some(pki.kubelet_client.clone()),
            ca_pem: Some(pki.ca.cert_pem().to_string()),
        },
    )
    .context("setting up the kubelet client")
}

/// Binds `system:kubelet-api-admin` to the API server's kubelet client user, so kubelets
/// authorize the API server's `nodes/proxy` (exec, attach, logs, port-forward) requests.
pub async fn bind_kubelet_api_admin(server: &Arc<rkube_apiserver::ApiServer>) -> Result<()> {
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
    let client = server.client(rkube_apiserver::authz::User {
        name: "system:apiserver".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    let api: kube::Api<ClusterRoleBinding> = kube::Api::all(client);
    let binding = ClusterRoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some(KUBELET_API_ADMIN_BINDING.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "system:kubelet-api-admin".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: KUBELET_CLIENT_USER.into(),
            namespace: None,
        }]),
    };
    match api.create(&Default::default(), &binding).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).context("creating the kubelet-api-admin binding"),
    }
}

/// Writes the admin kubeconfig (a `system:masters` client certificate, the CA embedded).
pub fn write_admin_kubeconfig(path: &Path, pki: &ServerPki, server_url: &str) -> Result<()> {
    let cfg = rkube_pki::kubeconfig(
        server_url,
        pki.ca.cert_pem(),
        "default",
        "default",
        &Credential::Cert(pki.admin.clone()),
    );
    rkube_pki::write_file_atomic(path, cfg.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))
}

/// The API server's security settings from the flags.
pub fn security(data_dir: &Path, args: &SecurityArgs) -> Result<Security> {
    let mut security = if args.insecure_dev {
        Security::insecure()
    } else {
        Security::default()
    };
    security.admission = Admission::from_flags(
        &args.enable_admission_plugins,
        &args.disable_admission_plugins,
    )?;
    if let Some(path) = &args.token_auth_file {
        security.authn.token_file = Some(TokenFile::load(path)?);
    }
    let key_path = data_dir
        .join("server")
        .join("tls")
        .join("service-account.key");
    let key = rkube_pki::jwt::SigningKey::load_or_create(&key_path)
        .context("loading the service-account signing key")?;
    let issuer = args
        .service_account_issuer
        .clone()
        .unwrap_or_else(|| format!("https://kubernetes.default.svc.{}", args.cluster_domain));
    let mut tokens = ServiceAccountTokens::new(key, issuer);
    if !args.api_audiences.is_empty() {
        tokens.api_audiences = args.api_audiences.clone();
    }
    security.service_accounts = Some(tokens);
    if let Some(path) = &args.encryption_provider_config {
        security.encryption = Some(
            rkube_apiserver::encryption::EncryptionConfig::load(path)
                .with_context(|| format!("loading {}", path.display()))?,
        );
    }
    match (&args.audit_policy_file, &args.audit_log_path) {
        (Some(policy), Some(log)) => {
            let policy = rkube_apiserver::audit::Policy::load(policy)
                .with_context(|| format!("loading {}", policy.display()))?;
            let options = rkube_apiserver::audit::AuditLogOptions {
                max_size_mb: args.audit_log_maxsize,
                max_backups: args.audit_log_maxbackup,
                ..Default::default()
            };
            let log = rkube_apiserver::audit::AuditLog::open(log, options)
                .with_context(|| format!("opening the audit log {log}"))?;
            security.audit = Some(rkube_apiserver::guard::Audit {
                policy,
                log: Arc::new(log),
            });
        }
        (None, None) => {}
        _ => anyhow::bail!("auditing needs both --audit-policy-file and --audit-log-path"),
    }
    Ok(security)
}
