//! Builds the pod sandbox ("pause") program, `pause/pause.rs`, as a static executable that the
//! kubelet embeds (see `src/pause.rs`). It is compiled with the same rustc, outside cargo, because
//! it needs static linking flags that must not apply to the rest of the workspace.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let src = PathBuf::from("pause/pause.rs");
    println!("cargo:rerun-if-changed=pause/pause.rs");
    let target = out.join("pause");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&target)
        .arg(&src)
        .env(
            "RKUBE_VERSION",
            std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        )
        .status()
        .expect("running rustc for the pause program");
    assert!(status.success(), "compiling pause/pause.rs failed");
}
