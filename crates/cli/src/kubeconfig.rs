//! The API client of a standalone component: from `--kubeconfig`, else kube-rs's defaults
//! (`$KUBECONFIG`, `~/.kube/config`, in-cluster).

use std::path::Path;

use anyhow::{Context, Result};

/// A client for the kubeconfig at `path`, or the default one.
pub async fn client(path: Option<&Path>) -> Result<kube::Client> {
    match path {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .context("loading kubeconfig")?;
            kube::Client::try_from(cfg).context("building the API client")
        }
        None => kube::Client::try_default()
            .await
            .context("no --kubeconfig given and no default kubeconfig found"),
    }
}

/// The PEM CA bundle the kubeconfig at `path` trusts for its current cluster, if it embeds one
/// (`certificate-authority-data`) or names a file (`certificate-authority`).
pub fn ca_pem(path: &Path) -> Result<Option<String>> {
    use base64::Engine;
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let context = kc
        .current_context
        .as_deref()
        .and_then(|name| kc.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| context.is_none_or(|ctx| ctx.cluster == c.name))
        .and_then(|c| c.cluster.as_ref());
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("decoding certificate-authority-data")?;
        return Ok(Some(
            String::from_utf8(pem).context("certificate-authority-data is not PEM")?,
        ));
    }
    if let Some(file) = &cluster.certificate_authority {
        return Ok(Some(
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
        ));
    }
    Ok(None)
}
