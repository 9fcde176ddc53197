//! containerd's per-registry host configuration: `<certs.d>/<host[:port]>/hosts.toml` under
//! the CRI plugin's `registry.config_path` (the supervised containerd's is
//! [`crate::containerd::Layout::certs_d`]). containerd reads these files at every pull, so a
//! change needs no restart.
//!
//! Without a file, containerd 1.6 speaks HTTPS to a registry, except to `localhost` and
//! loopback addresses, which it speaks plain HTTP to (so a registry on 127.0.0.1 needs
//! nothing). A registry reached over plain HTTP elsewhere, or over HTTPS with a certificate
//! that cannot be verified (upstream's "insecure registries"), or through a mirror, needs one.

use std::io;
use std::path::{Path, PathBuf};

/// How to reach one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// The registry as images name it: `host` or `host:port`.
    pub host: String,
    /// Where containerd sends its requests: `http://host`, `https://host`, or another
    /// address serving the same images (a mirror).
    pub server: String,
    /// Over HTTPS, accept any certificate.
    pub skip_verify: bool,
    /// Over HTTPS, trust this CA bundle (PEM file).
    pub ca_file: Option<PathBuf>,
}

impl RegistryHost {
    /// A registry spoken to over plain HTTP (an "insecure registry").
    pub fn plain_http(host: &str) -> RegistryHost {
        RegistryHost {
            host: host.to_string(),
            server: format!("http://{host}"),
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
    let mut out = format!(
        "# Written by rkube.\nserver = {}\n",
        toml_string(&registry.server)
    );
    if registry.server.starts_with("https://") {
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
    // containerd 1.6 refuses a hosts.toml without a `host` table ("invalid `host` tree"); an
    // empty one leaves `server` the only endpoint
    out.push_str("\n[host]\n");
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
            "# Written by rkube.\nserver = \"http://127.0.0.1:5000\"\n\n[host]\n"
        );
        let https = RegistryHost {
            host: "reg.example.com".into(),
            server: "https://reg.example.com".into(),
            skip_verify: true,
            ca_file: Some("/etc/ca.pem".into()),
        };
        assert_eq!(
            render(&https),
            "# Written by rkube.\nserver = \"https://reg.example.com\"\nskip_verify = true\nca = \"/etc/ca.pem\"\n\n[host]\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &RegistryHost::plain_http("127.0.0.1:5000")).unwrap();
        assert_eq!(path, dir.path().join("127.0.0.1:5000/hosts.toml"));
        assert!(write(dir.path(), &RegistryHost::plain_http("../x")).is_err());
        assert!(write(dir.path(), &RegistryHost::plain_http("")).is_err());
    }
}
