//! Support for tests and benchmarks that need a real etcd: starts a single-member etcd (Debian's
//! `etcd-server`) on free loopback ports with a temporary data directory, and stops it and removes
//! the directory on drop. Not used by the server itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd process, owned by a test or benchmark.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    dir: tempfile::TempDir,
    client_url: String,
}

/// Why an etcd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EtcdStartError {
    /// The etcd binary is missing or could not be run.
    #[error("cannot run {bin} (install Debian's etcd-server; scripts/setup.sh does): {source}")]
    Spawn {
        /// The binary that was tried.
        bin: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Some other I/O failure (temporary directory, ports).
    #[error("i/o error while starting etcd: {0}")]
    Io(#[from] std::io::Error),
    /// etcd exited before it became healthy (a port taken, a bad flag).
    #[error("etcd exited during start-up: {0}")]
    Exited(String),
    /// etcd did not become healthy in time.
    #[error("etcd did not become healthy within {0:?}; its log is in {1}")]
    NotHealthy(Duration, String),
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdServer {
    /// Starts an etcd with its defaults (durable writes, 1.5 MiB request limit).
    pub fn start() -> Result<Self, EtcdStartError> {
        Self::start_with_args(&[])
    }

    /// Starts an etcd with extra command-line flags. A free port can be taken by someone else
    /// between our probe and etcd's bind, so a start whose etcd exits early is retried on new
    /// ports.
    pub fn start_with_args(extra: &[&str]) -> Result<Self, EtcdStartError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(extra) {
                Err(EtcdStartError::Exited(_)) if attempt < 5 => continue,
                other => return other,
            }
        }
    }

    fn start_once(extra: &[&str]) -> Result<Self, EtcdStartError> {
        let bin = std::env::var("RKUBE_ETCD_BIN").unwrap_or_else(|_| "etcd".to_string());
        let dir = tempfile::Builder::new().prefix("rkube-etcd-").tempdir()?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        let child = Command::new(&bin)
            .arg("--name=rkube-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=rkube-test={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-level=error")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| EtcdStartError::Spawn {
                bin: bin.clone(),
                source,
            })?;
        let mut server = EtcdServer {
            child,
            dir,
            client_url,
        };
        server.wait_healthy(Duration::from_secs(30))?;
        Ok(server)
    }

    /// The URL clients connect to (`http://127.0.0.1:PORT`).
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// The directory holding etcd's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), EtcdStartError> {
        let addr = self.client_url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + timeout;
        let log = self.dir.path().join("etcd.log").display().to_string();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                return Err(EtcdStartError::Exited(format!(
                    "{status}; last log lines:\n{tail}"
                )));
            }
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                let mut body = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut body).is_ok()
                    && body.contains("\"health\":\"true\"")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(EtcdStartError::NotHealthy(
            timeout,
            self.dir.path().join("etcd.log").display().to_string(),
        ))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
