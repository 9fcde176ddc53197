//! Shared fixtures of the kubelet's integration tests. They need root and the runtime
//! packages (containerd, runc, the CNI plugins, busybox-static); under CI a missing
//! prerequisite fails the test loudly instead of skipping it.

#![allow(dead_code)]

pub mod apiserver;
pub mod apiserver_vol;
pub mod cluster;
pub mod images;
pub mod node;
pub mod registry;
pub mod runtime;

/// Whether the prerequisites are here; when not, panics under CI and returns false elsewhere
/// (so a developer machine without containerd skips with a message).
pub fn prerequisites() -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root".to_string());
    }
    for bin in [
        "containerd",
        "runc",
        "ctr",
        "/usr/lib/cni/bridge",
        "/bin/busybox",
    ] {
        let found = if bin.starts_with('/') {
            std::path::Path::new(bin).exists()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
        };
        if !found {
            missing.push(bin.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "kubelet tests need {} (run scripts/setup.sh as root)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}
