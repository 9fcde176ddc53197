//! `rkube store` against a real data directory written by the embedded store.

use std::process::Command;

use rkube_store::embedded::{EmbeddedStore, Options};
use rkube_store::{PutRequest, Store};

fn rkube(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(args)
        .output()
        .expect("run rkube");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_get_and_compact_read_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let opts = Options {
            compaction_interval: None,
            ..Options::default()
        };
        let s = EmbeddedStore::open_with(dir.path(), opts).await.unwrap();
        s.put(PutRequest::new("/registry/a", "one")).await.unwrap();
        s.put(PutRequest::new("/registry/b", "two")).await.unwrap();
        s.put(PutRequest::new("/registry/a", "three"))
            .await
            .unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let (ok, out, err) = rkube(&["store", "--data-dir", d, "status"]);
    assert!(ok, "{err}");
    assert!(out.contains("revision:         4"), "{out}");
    assert!(out.contains("live keys:        2"), "{out}");
    let (ok, out, _) = rkube(&["store", "--data-dir", d, "get", "/registry/", "--prefix"]);
    assert!(ok);
    assert_eq!(out, "/registry/a\nthree\n/registry/b\ntwo\n");
    let (ok, out, _) = rkube(&[
        "store",
        "--data-dir",
        d,
        "get",
        "/registry/a",
        "--revision",
        "2",
    ]);
    assert!(ok);
    assert_eq!(out, "/registry/a\none\n");
    let (ok, out, _) = rkube(&["store", "--data-dir", d, "compact"]);
    assert!(ok && out.contains("compacted to revision 4"), "{out}");
    let (ok, _, err) = rkube(&[
        "store",
        "--data-dir",
        d,
        "get",
        "/registry/a",
        "--revision",
        "2",
    ]);
    assert!(!ok && err.contains("compacted"), "{err}");
}

#[test]
fn status_of_a_corrupt_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store.redb"), b"definitely not a database").unwrap();
    let (ok, _, err) = rkube(&[
        "store",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "status",
    ]);
    assert!(!ok);
    assert!(
        err.contains("store.redb") && err.contains("corrupt"),
        "{err}"
    );
}
