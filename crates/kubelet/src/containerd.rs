//! A containerd of the node's own, supervised by rkube as k3s does: its own config, root, state
//! directory and socket under the data dir, so that a containerd the machine already runs is
//! never touched, and several nodes on one machine never share a path.
//!
//! [`render_config`] is pure (tested below); [`Containerd::start`] writes it, checks the
//! installed version, starts the daemon and waits until its CRI socket answers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::cri::Cri;

/// The oldest containerd whose CRI v1 plugin rkube drives (Debian 12 ships 1.6.20).
pub const MIN_VERSION: (u32, u32) = (1, 6);

/// Where the supervised containerd keeps everything, all below `<data-dir>/agent`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    /// Registry host configuration (`hosts.toml` per registry), containerd's `config_path`.
    pub certs_d: PathBuf,
}

impl Layout {
    pub fn new(agent_dir: &Path) -> Layout {
        let dir = agent_dir.join("containerd");
        Layout {
            root: dir.join("root"),
            state: dir.join("state"),
            socket: dir.join("containerd.sock"),
            config: dir.join("config.toml"),
            log: dir.join("containerd.log"),
            pid_file: dir.join("containerd.pid"),
            certs_d: dir.join("certs.d"),
            dir,
        }
    }

    /// The CRI endpoint of this containerd.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// What goes into the CRI plugin's section of the config.
#[derive(Debug, Clone)]
pub struct CriSettings {
    pub sandbox_image: String,
    pub cni_bin_dir: PathBuf,
    pub cni_conf_dir: PathBuf,
}

/// Errors starting the supervised containerd. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error(
        "containerd is not installed ({0}); install containerd and runc \
         (`apt-get install containerd runc`, which scripts/setup.sh does), or point \
         --container-runtime-endpoint at a running CRI runtime"
    )]
    Missing(String),
    #[error(
        "containerd {found} is too old: rkube needs {}.{} or newer; install a newer \
         containerd, or point --container-runtime-endpoint at another CRI runtime",
        MIN_VERSION.0, MIN_VERSION.1
    )]
    TooOld { found: String },
    #[error(
        "runc is not installed; install it (`apt-get install runc`, which scripts/setup.sh does)"
    )]
    NoRunc,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd exited during start-up ({status}); its log {log} ends with:\n{tail}")]
    Exited {
        status: String,
        log: String,
        tail: String,
    },
    #[error("containerd did not answer on {socket} within {secs} s; see its log {log}")]
    Timeout {
        socket: String,
        secs: u64,
        log: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerdError {
    let context = context.into();
    move |source| ContainerdError::Io { context, source }
}

/// containerd's config file (version 2) for this layout.
pub fn render_config(layout: &Layout, cri: &CriSettings) -> String {
    let q = |p: &Path| toml_string(&p.display().to_string());
    format!(
        r#"# Written by rkube at every start; edits are overwritten.
version = 2
root = {root}
state = {state}
# Snapshotters that cannot work here only slow the start-up down.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {socket}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj (the sandbox's -998); this clamps
  # it to the runtime's own value instead of failing every sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  # pods' network namespaces live under this node's state dir, not the machine's /run/netns
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroupfs: the kubelet's cgroup driver (no systemd is assumed).
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = {certs_d}
"#,
        root = q(&layout.root),
        state = q(&layout.state),
        socket = q(&layout.socket),
        opt = q(&layout.dir.join("opt")),
        sandbox = toml_string(&cri.sandbox_image),
        cni_bin = q(&cri.cni_bin_dir),
        cni_conf = q(&cri.cni_conf_dir),
        certs_d = q(&layout.certs_d),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `(major, minor)` from `containerd --version` output, e.g.
/// `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3`.
pub fn parse_version(output: &str) -> Option<(u32, u32)> {
    output.split_whitespace().find_map(|word| {
        let word = word.trim_start_matches('v');
        let mut parts = word.split(['.', '~', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        // a version has at least major.minor.patch
        parts.next()?.parse::<u32>().ok()?;
        Some((major, minor))
    })
}

/// The running, supervised containerd.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
    pub layout: Layout,
}

impl Containerd {
    /// Writes the config, stops a containerd left behind by an earlier run of this node (its
    /// containers keep running: they belong to their shims), starts the daemon and waits until
    /// its CRI service answers.
    pub async fn start(
        layout: Layout,
        cri: &CriSettings,
    ) -> Result<(Containerd, Cri), ContainerdError> {
        check_installed().await?;
        for dir in [
            &layout.dir,
            &layout.root,
            &layout.state,
            &layout.certs_d,
            &cri.cni_conf_dir,
        ] {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        std::fs::write(&layout.config, render_config(&layout, cri))
            .map_err(io(format!("writing {}", layout.config.display())))?;
        stop_leftover(&layout).await;
        let _ = std::fs::remove_file(&layout.socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&layout.log)
            .map_err(io(format!("opening {}", layout.log.display())))?;
        let log2 = log.try_clone().map_err(io("duplicating the log file"))?;
        let mut child = Command::new("containerd")
            .arg("--config")
            .arg(&layout.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // its own process group: a terminal's Ctrl-C reaches rkube, which stops it in order
            .process_group(0)
            .spawn()
            .map_err(io("starting containerd"))?;
        if let Some(pid) = child.id() {
            let _ = std::fs::write(&layout.pid_file, pid.to_string());
        }
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        let endpoint = layout.endpoint();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ContainerdError::Exited {
                    status: status.to_string(),
                    log: layout.log.display().to_string(),
                    tail: tail(&layout.log, 20),
                });
            }
            if layout.socket.exists() {
                if let Ok(cri) = Cri::connect(&endpoint).await {
                    if cri.version().await.is_ok() {
                        return Ok((Containerd { child, layout }, cri));
                    }
                }
            }
            if started.elapsed() > limit {
                let _ = child.start_kill();
                return Err(ContainerdError::Timeout {
                    socket: layout.socket.display().to_string(),
                    secs: limit.as_secs(),
                    log: layout.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops containerd with SIGTERM (SIGKILL after 10 s). Containers keep running under
    /// their shims; the next start adopts them.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.layout.pid_file);
    }
}

async fn check_installed() -> Result<(), ContainerdError> {
    let out = Command::new("containerd")
        .arg("--version")
        .output()
        .await
        .map_err(|e| ContainerdError::Missing(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    match parse_version(&text) {
        Some(v) if v >= MIN_VERSION => {}
        _ => {
            return Err(ContainerdError::TooOld {
                found: text.trim().to_string(),
            })
        }
    }
    match Command::new("runc").arg("--version").output().await {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(ContainerdError::NoRunc),
    }
}

/// Stops the containerd an earlier, crashed run of this node left behind (named by its pid
/// file, and only if that process is a containerd using this node's config).
async fn stop_leftover(layout: &Layout) {
    let Ok(text) = std::fs::read_to_string(&layout.pid_file) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !cmdline.contains("containerd") || !cmdline.contains(&*layout.config.to_string_lossy()) {
        return;
    }
    tracing::warn!(pid, "stopping the containerd an earlier run left behind");
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if nix::sys::signal::kill(pid, None).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_debian_and_upstream_builds() {
        assert_eq!(
            parse_version(
                "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
            ),
            Some((1, 6))
        );
        assert_eq!(
            parse_version(
                "containerd containerd.io v1.7.13 7c3aca7a610df76212171d200ca3811ff6096eb8"
            ),
            Some((1, 7))
        );
        assert_eq!(
            parse_version("containerd github.com/containerd/containerd/v2 v2.0.2 c50"),
            Some((2, 0))
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn config_keeps_everything_under_the_data_dir() {
        let layout = Layout::new(Path::new("/data/agent"));
        let cfg = render_config(
            &layout,
            &CriSettings {
                sandbox_image: "localhost/rkube/pause:1".into(),
                cni_bin_dir: "/usr/lib/cni".into(),
                cni_conf_dir: "/data/agent/cni/net.d".into(),
            },
        );
        for line in [
            r#"root = "/data/agent/containerd/root""#,
            r#"state = "/data/agent/containerd/state""#,
            r#"address = "/data/agent/containerd/containerd.sock""#,
            r#"path = "/data/agent/containerd/opt""#,
            r#"sandbox_image = "localhost/rkube/pause:1""#,
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            "SystemdCgroup = false",
            r#"bin_dir = "/usr/lib/cni""#,
            r#"conf_dir = "/data/agent/cni/net.d""#,
            r#"config_path = "/data/agent/containerd/certs.d""#,
        ] {
            assert!(cfg.contains(line), "missing {line} in\n{cfg}");
        }
        assert_eq!(
            layout.endpoint(),
            "unix:///data/agent/containerd/containerd.sock"
        );
        assert_eq!(toml_string("a\"b\\c"), r#""a\"b\\c""#);
    }
}
