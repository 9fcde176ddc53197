//! What the `rkube` binary's tests share: a real `rkube server` on a free loopback port.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rkube server` on a free loopback port, killed on drop.
pub struct Server {
    child: Child,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the control plane alone (`rkube server --disable-agent`) with these extra flags
    /// and waits until it wrote its kubeconfig.
    pub fn start(extra: &[&str]) -> Server {
        let mut flags = vec!["--disable-agent"];
        flags.extend_from_slice(extra);
        Server::start_with_node(&flags)
    }

    /// Starts `rkube server` with exactly these extra flags (with its local node unless they
    /// say `--disable-agent`) and waits until it wrote its kubeconfig.
    pub fn start_with_node(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["server", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--https-listen-port",
                &port.to_string(),
                "--bind-address",
                "127.0.0.1",
                "--write-kubeconfig",
            ])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rkube server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubeconfig.exists() {
            assert!(
                Instant::now() < deadline,
                "rkube server wrote no kubeconfig within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Server {
    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Stops the server with SIGTERM (as a user would), then SIGKILL after 20 s; a local
    /// node's containerd, which a clean stop ends, is killed by its pid file otherwise.
    pub fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY-free: kill(2) through the `kill` command keeps this crate unsafe-free
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid_file = self.data_dir().join("agent/containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on at the moment.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `GET /metrics` of a component's plain-HTTP endpoint on loopback `port` (HTTP/1.0: the
/// server closes the connection after the answer).
pub fn scrape(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
