//! The Python `kubernetes` client (from PyPI, in the venv `scripts/setup.sh` makes) against
//! `rkube server`: create, list with a selector, watch, patch and delete. In CI a missing venv
//! fails the test.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_python_client_creates_lists_watches_patches_and_deletes() {
    let venv = PathBuf::from(
        std::env::var("RKUBE_VENV").unwrap_or_else(|_| "/var/cache/rkube-venv".into()),
    );
    let python = venv.join("bin/python");
    if !python.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "no Python client venv at {}; run scripts/setup.sh",
            venv.display()
        );
        eprintln!("no venv at {}; skipping outside CI", venv.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let mut server = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["server", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--https-listen-port",
            &port.to_string(),
            "--write-kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rkube server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(&kubeconfig)
        .output()
        .expect("run python");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
}
