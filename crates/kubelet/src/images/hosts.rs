//! containerd's per-registry host configuration: `<certs.d>/<host[:port]>/hosts.toml` under
//! the CRI plugin's `registry.config_path` (the supervised containerd's is
//! [`crate::containerd::Layout::certs_d`]). containerd reads these files at every pull, so a
//! change needs no restart.
//!
//! A registry reached over plain HTTP, or over HTTPS with a certificate that cannot be
//! verified (upstream's "insecure registries"), needs such a file. Without one, containerd
//! 1.6 speaks HTTPS to every registry except `localhost` and loopback addresses, which it
//! tries over plain HTTP.

use std::io;
use std::path::{Path, PathBuf};

/// How to reach one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// The registry as images name it: `host` or `host:port`.
    pub host: String,
    /// Speak plain HTTP to it.
    pub plain_http: bool,
    /// Over HTTPS, accept any certificate.
    pub skip_verify: bool,
    /// Over HTTPS, trust this CA bundle (PEM file).
    pub ca_file: Option<PathBuf>,
}

impl RegistryHost {
    /// A registry spoken to over plain HTTP.
    pub fn plain_http(host: &str) -> RegistryHost {
        RegistryHost {
            host: host.to_string(),
            plain_http: true,
            skip_verify: false,
            ca_file: None,
        }
    }
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The `hosts.toml` of a registry.
pub fn render(registry: &RegistryHost) -> String {
    let scheme = if registry.plain_http { "http" } else { "https" };
    let mut out = format!(
        "# Written by rkube.\nserver = {}\n",
        toml_string(&format!("{scheme}://{}", registry.host))
    );
    if !registry.plain_http {
        if registry.skip_verify {
            out.push_str("skip_verify = true\n");
        }
        if let Some(ca) = &registry.ca_file {
            out.push_str(&format!(
                "ca = {}\n",
                toml_string(&ca.display().to_string())
            ));
        }
    }
    out
}

/// The directory holding a registry's `hosts.toml`.
pub fn host_dir(certs_d: &Path, host: &str) -> PathBuf {
    certs_d.join(host)
}

/// Writes the registry's `hosts.toml` under `certs_d`, and returns its path.
pub fn write(certs_d: &Path, registry: &RegistryHost) -> io::Result<PathBuf> {
    if registry.host.is_empty()
        || registry.host.contains(['/', '\\'])
        || registry.host.starts_with('.')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} is not a registry host[:port]", registry.host),
        ));
    }
    let dir = host_dir(certs_d, &registry.host);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("hosts.toml");
    std::fs::write(&path, render(registry))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_names_the_server_with_its_scheme() {
        assert_eq!(
            render(&RegistryHost::plain_http("127.0.0.1:5000")),
            "# Written by rkube.\nserver = \"http://127.0.0.1:5000\"\n"
        );
        let https = RegistryHost {
            host: "reg.example.com".into(),
            plain_http: false,
            skip_verify: true,
            ca_file: Some("/etc/ca.pem".into()),
        };
        assert_eq!(
            render(&https),
            "# Written by rkube.\nserver = \"https://reg.example.com\"\nskip_verify = true\nca = \"/etc/ca.pem\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &RegistryHost::plain_http("127.0.0.1:5000")).unwrap();
        assert_eq!(path, dir.path().join("127.0.0.1:5000/hosts.toml"));
        assert!(write(dir.path(), &RegistryHost::plain_http("../x")).is_err());
        assert!(write(dir.path(), &RegistryHost::plain_http("")).is_err());
    }
}
