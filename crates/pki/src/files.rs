//! Files on disk: atomic writes with explicit modes, and the "load if still good, else issue
//! and write" logic for the certificates rkube keeps across restarts.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ca::{Ca, CertKey};
use crate::inspect::{self, CertInfo};
use crate::key::EcKey;
use crate::PkiError;

/// Mode of private keys and anything else secret (kubeconfigs with credentials, tokens).
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates, which are public.
pub const CERT_MODE: u32 = 0o644;
/// A certificate that expires sooner than this is reissued at startup.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) fn read_to_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, fsync,
/// rename, fsync of the directory) with permission bits `mode` (use [`KEY_MODE`], 0600, for
/// anything secret), creating parent directories. Readers see the old or the new file, never a
/// torn one, and a secret is never readable by others, not even briefly.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| PkiError::io("write", path, std::io::ErrorKind::InvalidInput.into()))?;
    fs::create_dir_all(dir).map_err(|e| PkiError::io("create directory", dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have cleared bits of `mode` at creation; set exactly what was asked.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io("write", path, e));
    }
    // Make the rename itself durable.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PkiError::io("sync directory", dir, e))
}

/// The certificate and key at `<dir>/<stem>.crt` / `.key`, if both exist, parse, belong
/// together, were issued by `ca` and stay valid for more than [`RENEW_BEFORE`].
fn load_valid(dir: &Path, stem: &str, ca: &Ca) -> Option<(CertKey, CertInfo)> {
    let cert_pem = fs::read_to_string(dir.join(format!("{stem}.crt"))).ok()?;
    let key_pem = fs::read_to_string(dir.join(format!("{stem}.key"))).ok()?;
    let der = inspect::first_cert_der(&cert_pem).ok()?;
    let cert = inspect::parse(&der).ok()?;
    let key = EcKey::from_pem(&key_pem).ok()?;
    if cert.public_key().raw != key.spki_der().as_slice() || !ca.issued(&der) {
        return None;
    }
    let info = inspect::cert_info(&der).ok()?;
    let renew_at = crate::ca::unix_now() + RENEW_BEFORE.as_secs() as i64;
    if info.not_after <= renew_at {
        return None;
    }
    Some((CertKey { cert_pem, key_pem }, info))
}

fn write_pair(dir: &Path, stem: &str, pair: &CertKey) -> Result<(), PkiError> {
    write_file_atomic(
        &dir.join(format!("{stem}.key")),
        pair.key_pem.as_bytes(),
        KEY_MODE,
    )?;
    write_file_atomic(
        &dir.join(format!("{stem}.crt")),
        pair.cert_pem.as_bytes(),
        CERT_MODE,
    )
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// Loads `<dir>/<stem>.crt` / `.key` if present, issued by `ca`, not expiring within 30 days,
/// a client certificate, and with the same subject (CN, and O as a set); else issues a new one
/// and writes it (key 0600).
pub fn load_or_issue_client(
    dir: &Path,
    stem: &str,
    ca: &Ca,
    cn: &str,
    groups: &[String],
) -> Result<CertKey, PkiError> {
    if let Some((pair, info)) = load_valid(dir, stem, ca) {
        if info.client_auth
            && info.common_name.as_deref() == Some(cn)
            && same_set(&info.organizations, groups)
        {
            return Ok(pair);
        }
    }
    let pair = ca.issue_client(cn, groups)?;
    write_pair(dir, stem, &pair)?;
    Ok(pair)
}

/// Loads `<dir>/<stem>.crt` / `.key` if present, issued by `ca`, not expiring within 30 days,
/// a serving certificate, and carrying every wanted SAN; else issues a new one (CN: the first
/// DNS name, else the first IP, else `stem`) and writes it (key 0600).
pub fn load_or_issue_serving(
    dir: &Path,
    stem: &str,
    ca: &Ca,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<CertKey, PkiError> {
    if let Some((pair, info)) = load_valid(dir, stem, ca) {
        if info.server_auth
            && dns.iter().all(|d| info.dns_names.contains(d))
            && ips.iter().all(|ip| info.ip_addresses.contains(ip))
        {
            return Ok(pair);
        }
    }
    let cn = dns
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_else(|| stem.to_string());
    let pair = ca.issue_serving(&cn, dns, ips)?;
    write_pair(dir, stem, &pair)?;
    Ok(pair)
}
