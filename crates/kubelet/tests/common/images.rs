//! Test images, built locally: no registry is reachable. The busybox image holds Debian's
//! `busybox-static` with a symlink per applet, and a minimal /etc.

use std::process::Command;

use rkube_kubelet::oci::{self, Entry, ImageConfig};

/// The busybox test image's name.
pub const BUSYBOX: &str = "localhost/rkube-test/busybox:1";

/// The busybox image's layer entries.
pub fn busybox_entries() -> Vec<Entry> {
    let bin = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian busybox-static; scripts/setup.sh installs it)");
    let list = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    let mut entries = Vec::new();
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev",
        "var", "var/www",
    ] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        entries.push(Entry::Dir {
            path: dir.into(),
            mode,
        });
    }
    entries.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: bin,
    });
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        entries.push(Entry::Symlink {
            path: applet.into(),
            target: "/bin/busybox".into(),
        });
    }
    entries.push(Entry::File {
        path: "etc/passwd".into(),
        mode: 0o644,
        data: b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
    });
    entries.push(Entry::File {
        path: "etc/group".into(),
        mode: 0o644,
        data: b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
    });
    entries
}

/// The busybox image as an OCI-layout archive named `name`.
pub fn busybox_archive(name: &str) -> Vec<u8> {
    let image = oci::build(
        &busybox_entries(),
        &ImageConfig {
            cmd: vec!["sh".into()],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            ..Default::default()
        },
    )
    .expect("building the busybox image");
    oci::archive(&image, name).expect("archiving the busybox image")
}
