//! The Python `kubernetes` client (from PyPI, in the venv `scripts/setup.sh` makes) against
//! `rkube server`: create, list with a selector, watch, patch and delete. In CI a missing venv
//! fails the test.

mod common;

use std::path::PathBuf;
use std::process::Command;

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
    let server = common::Server::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(&server.kubeconfig)
        .output()
        .expect("run python");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
}
