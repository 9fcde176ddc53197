//! The node side of the binary: `rkube kubelet` on its own (with a kubeconfig), and the local
//! node `rkube server` runs unless `--disable-agent` is given.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use rkube_kubelet::kubelet::{self, Config, Running};

/// The kubelet's settings, shared by `rkube server` (its local node) and `rkube kubelet`.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// A running CRI runtime's socket (`unix:///run/containerd/containerd.sock`) instead of
    /// the containerd rkube supervises under the data dir.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// The cluster DNS server(s) pods with dnsPolicy ClusterFirst use (comma-separated).
    /// Without one, such pods use the node's resolver, as upstream's kubelet does.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<IpAddr>,
    /// Labels to register the node with (`key=value`, repeatable).
    #[arg(long = "node-label")]
    pub node_labels: Vec<String>,
    /// Taints to register the node with (`key=value:Effect`, repeatable).
    #[arg(long = "node-taint")]
    pub node_taints: Vec<String>,
    /// The pod network bridge's name.
    #[arg(long, default_value = "rkube0")]
    pub cni_bridge: String,
    /// Where the CNI plugins are.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// The cgroup the node's pods go under (default: /rkube/<node-name>).
    #[arg(long)]
    pub cgroup_root: Option<String>,
    /// The kubelet's HTTPS port (logs, exec, port-forward).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
}

/// The kubelet's config for node `name` at `ips` under `data_dir`.
pub fn config(
    args: &NodeArgs,
    name: &str,
    ips: &[IpAddr],
    data_dir: &std::path::Path,
    cluster_domain: &str,
) -> Result<Config> {
    let ips = if ips.is_empty() {
        vec![rkube_kubelet::node::default_ip()]
    } else {
        ips.to_vec()
    };
    let mut cfg = Config::new(name, ips, data_dir);
    cfg.runtime_endpoint = args.container_runtime_endpoint.clone();
    cfg.cluster_dns = args.cluster_dns.clone();
    cfg.cluster_domain = cluster_domain.to_string();
    cfg.cni_bridge = args.cni_bridge.clone();
    cfg.cni_bin_dir = args.cni_bin_dir.clone();
    cfg.node.kubelet_port = args.kubelet_port;
    if let Some(root) = &args.cgroup_root {
        cfg.cgroup_root = root.clone();
    }
    for l in &args.node_labels {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("--node-label {l:?}: expected key=value"))?;
        cfg.node.labels.insert(k.to_string(), v.to_string());
    }
    for t in &args.node_taints {
        cfg.node.taints.push(parse_taint(t)?);
    }
    Ok(cfg)
}

/// `key[=value]:Effect`, as kubectl taint and k3s's --node-taint take it.
fn parse_taint(s: &str) -> Result<k8s_openapi::api::core::v1::Taint> {
    let (kv, effect) = s
        .rsplit_once(':')
        .with_context(|| format!("--node-taint {s:?}: expected key=value:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        anyhow::bail!(
            "--node-taint {s:?}: the effect must be NoSchedule, PreferNoSchedule or NoExecute"
        );
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), None),
    };
    Ok(k8s_openapi::api::core::v1::Taint {
        key,
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// The kubelet server's TLS from a certificate the cluster CA signed for the node's names and
/// addresses (issued into `<data-dir>/agent/tls` and reused while valid), trusting client
/// certificates of the same CA.
pub fn serving_from_ca(cfg: &Config, ca: &rkube_pki::Ca) -> Result<kubelet::Serving> {
    let dir = cfg.agent_dir.join("tls");
    let mut dns = vec![cfg.node.name.clone(), "localhost".to_string()];
    dns.dedup();
    let serving =
        rkube_pki::load_or_issue_serving(&dir, "serving-kubelet", ca, &dns, &cfg.node.ips)
            .context("issuing the kubelet's serving certificate")?;
    let tls = rkube_pki::server_tls_config(&serving, ca.cert_pem()).context("the kubelet's TLS")?;
    Ok(kubelet::Serving {
        tls,
        client_ca_pem: Some(ca.cert_pem().to_string()),
        bind: std::net::Ipv4Addr::UNSPECIFIED.into(),
    })
}

/// Starts the kubelet, saying what it does.
pub async fn start(cfg: Config, client: kube::Client) -> Result<Running> {
    let name = cfg.node.name.clone();
    let ips: Vec<String> = cfg.node.ips.iter().map(|i| i.to_string()).collect();
    let running = kubelet::start(cfg, client)
        .await
        .with_context(|| format!("starting the kubelet of node {name}"))?;
    eprintln!("rkube kubelet: node {name} registered ({})", ips.join(", "));
    Ok(running)
}

/// `rkube kubelet`.
#[derive(Debug, Args)]
pub struct KubeletArgs {
    /// The kubeconfig to reach the API server with (its user should be system:node:<name>).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The node's data directory (containerd, CNI config, pods, logs go below <dir>/agent).
    #[arg(long, default_value = "/var/lib/rkube")]
    pub data_dir: PathBuf,
    /// The node's name (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's addresses (default: the address of the default route's interface).
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The kubelet server's certificate (PEM), signed by the cluster CA for the node's names
    /// and addresses; with --tls-private-key-file.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// The CA that client certificates must chain to (the cluster CA).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

pub async fn run(args: KubeletArgs) -> Result<()> {
    let client = crate::kubeconfig::client(args.kubeconfig.as_deref()).await?;
    let name = args.node_name.clone().unwrap_or_else(hostname);
    let mut cfg = config(
        &args.node,
        &name,
        &args.node_ip,
        &args.data_dir,
        &args.cluster_domain,
    )?;
    cfg.serving = Some(standalone_serving(&args, &cfg)?);
    let running = start(cfg, client).await?;
    crate::server::shutdown_signal().await;
    eprintln!("rkube kubelet: stopping (pods keep running)");
    running.shutdown().await;
    Ok(())
}

/// The standalone kubelet's TLS: the given certificate, or a self-signed one (the API server,
/// which checks kubelets against the cluster CA, then refuses logs/exec/port-forward unless
/// asked to skip the check).
fn standalone_serving(args: &KubeletArgs, cfg: &Config) -> Result<kubelet::Serving> {
    let client_ca_pem = match &args.client_ca_file {
        Some(f) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?)
        }
        None => None,
    };
    let serving = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => rkube_pki::CertKey {
            cert_pem: std::fs::read_to_string(c)
                .with_context(|| format!("reading {}", c.display()))?,
            key_pem: std::fs::read_to_string(k)
                .with_context(|| format!("reading {}", k.display()))?,
        },
        _ => {
            eprintln!(
                "WARNING: rkube kubelet: no --tls-cert-file; serving with a self-signed certificate \
                 that the API server will not trust (kubectl logs/exec/port-forward fail)"
            );
            let ca = rkube_pki::Ca::generate().context("a self-signed CA")?;
            ca.issue_serving(
                &cfg.node.name,
                std::slice::from_ref(&cfg.node.name),
                &cfg.node.ips,
            )
            .context("a self-signed serving certificate")?
        }
    };
    let tls = rkube_pki::server_tls_config(&serving, client_ca_pem.as_deref().unwrap_or(""))
        .context("the kubelet's TLS")?;
    Ok(kubelet::Serving {
        tls,
        client_ca_pem,
        bind: std::net::Ipv4Addr::UNSPECIFIED.into(),
    })
}

/// The machine's hostname, lowercased.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rkube-node".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_kubectl_writes_them() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        let t = parse_taint("node-role.kubernetes.io/control-plane:NoExecute").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value, t.effect.as_str()),
            ("node-role.kubernetes.io/control-plane", None, "NoExecute")
        );
        assert!(parse_taint("x=y:Sometimes").is_err());
        assert!(parse_taint("novalue").is_err());
    }
}
