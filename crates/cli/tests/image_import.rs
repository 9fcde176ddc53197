//! `rkube image import` against a real containerd supervised as a node's (under a temporary
//! data dir): OCI archives named every way `ctr` reads names, docker archives built by hand,
//! gzip; the names checked through CRI `ListImages` and `ImageStatus` (what pods resolve).

// the busybox test image of the kubelet's tests
#[path = "../../kubelet/tests/common/images.rs"]
#[allow(dead_code)]
mod images;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_cri::v1 as c;
use rkube_kubelet::containerd::{Containerd, CriSettings, Layout};
use rkube_kubelet::cri::Cri;
use rkube_kubelet::oci;
use serde_json::json;

/// Root, containerd, ctr, runc and busybox-static; under CI a missing one fails the test.
fn prerequisites() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    let mut missing: Vec<&str> = Vec::new();
    if !root {
        missing.push("root");
    }
    for bin in ["/usr/bin/containerd", "/usr/bin/ctr", "/bin/busybox"] {
        if !Path::new(bin).exists() {
            missing.push(bin);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "image import tests need {} (run scripts/setup.sh as root)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// A node's containerd under a temporary data dir, stopped on drop.
struct Node {
    data_dir: tempfile::TempDir,
    containerd: Option<Containerd>,
    cri: Cri,
}

impl Node {
    async fn start() -> Node {
        let data_dir = tempfile::Builder::new()
            .prefix("rkimp")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let agent = data_dir.path().join("agent");
        let settings = CriSettings {
            sandbox_image: rkube_kubelet::pause::image_name(),
            cni_bin_dir: "/usr/lib/cni".into(),
            cni_conf_dir: agent.join("cni/net.d"),
        };
        let (containerd, cri) = Containerd::start(Layout::new(&agent), &settings)
            .await
            .expect("starting containerd");
        Node {
            data_dir,
            containerd: Some(containerd),
            cri,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.data_dir.path().join(name)
    }

    async fn stop(mut self) {
        if let Some(c) = self.containerd.take() {
            c.stop().await;
        }
    }

    /// The image id CRI resolves `name` to, as a pod's image would be resolved.
    async fn resolve(&self, name: &str) -> Option<String> {
        self.cri
            .images
            .clone()
            .image_status(c::ImageStatusRequest {
                image: Some(c::ImageSpec {
                    image: name.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .image
            .map(|i| i.id)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(containerd) = self.containerd.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Runtime::new() {
                    rt.block_on(containerd.stop());
                }
            })
            .join();
        }
    }
}

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

fn busybox() -> oci::Image {
    oci::build(
        &images::busybox_entries(),
        &oci::ImageConfig {
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    )
    .expect("building busybox")
}

fn add(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, path, data).expect("tar entry");
}

/// An OCI-layout archive of the image whose index entry carries `annotations`.
fn oci_archive(image: &oci::Image, annotations: serde_json::Value) -> Vec<u8> {
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": image.manifest_digest, "size": image.manifest.len(),
        "annotations": annotations,
    }]});
    let mut tar = tar::Builder::new(Vec::new());
    add(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut tar, "index.json", index.to_string().as_bytes());
    for (digest, bytes) in &image.blobs {
        add(
            &mut tar,
            &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
            bytes,
        );
    }
    tar.into_inner().expect("tar")
}

/// A docker archive (`docker save` layout, written by hand) of the image under `tags`.
fn docker_archive(image: &oci::Image, tags: &[&str]) -> Vec<u8> {
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let blob = |d: &str| {
        image
            .blobs
            .iter()
            .find(|(digest, _)| digest == d)
            .expect("the image has the blob")
            .1
            .clone()
    };
    let config = format!("{}.json", hex(&image.config_digest));
    let layer = format!("{}/layer.tar", hex(&image.layer_digest));
    let manifest = json!([{"Config": config, "RepoTags": tags, "Layers": [layer]}]);
    let mut tar = tar::Builder::new(Vec::new());
    add(&mut tar, "manifest.json", manifest.to_string().as_bytes());
    add(&mut tar, &config, &blob(&image.config_digest));
    add(&mut tar, &layer, &blob(&image.layer_digest));
    tar.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().expect("gzip stdin");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
    let out = child.wait_with_output().expect("gzip output");
    writer.join().expect("writer").expect("writing to gzip");
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn image_import_names_oci_and_docker_archives_as_pods_resolve_them() {
    if !prerequisites() {
        return;
    }
    let node = Node::start().await;
    let d = node.data_dir.path().to_str().unwrap().to_string();
    let image = busybox();
    let id = image.config_digest.clone();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = node.path(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    // (archive, the names rkube prints, a name a pod would write for it)
    let full = write("full.tar", oci::archive(&image, images::BUSYBOX).unwrap());
    let short = write(
        "short.tar",
        oci_archive(&image, json!({oci::OCI_REF_NAME: "busybox:2"})),
    );
    let cname = write(
        "cname.tar.gz",
        gzip(&oci_archive(
            &image,
            json!({oci::CONTAINERD_NAME: "rkube-test/cname:3", oci::OCI_REF_NAME: "3"}),
        )),
    );
    let docker = write(
        "docker.tar",
        docker_archive(&image, &["busybox:5", "localhost/rkube-test/docker:6"]),
    );
    let tag_only = write(
        "tagonly.tar",
        oci_archive(&image, json!({oci::OCI_REF_NAME: "1.0"})),
    );

    // several archives at once
    let (ok, out, err) = rkube(&[
        "image",
        "import",
        "--data-dir",
        &d,
        &full,
        &short,
        &cname,
        &docker,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            images::BUSYBOX,
            "docker.io/library/busybox:2",
            "docker.io/rkube-test/cname:3",
            "docker.io/library/busybox:5",
            "localhost/rkube-test/docker:6",
        ]
    );
    // an OCI name that is only a tag needs the repository
    let (ok, _, err) = rkube(&["image", "import", "--data-dir", &d, &tag_only]);
    assert!(!ok);
    assert!(
        err.contains("named only by the tag \"1.0\"") && err.contains("--base-name"),
        "{err}"
    );
    let (ok, out, err) = rkube(&[
        "image",
        "import",
        "--data-dir",
        &d,
        "--base-name",
        "example.com/app",
        &tag_only,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "example.com/app:1.0\n");

    // every name is listed, and resolves as a pod writes it
    let listed = rkube_kubelet::images::list_images(&node.cri).await.unwrap();
    for (listed_as, written) in [
        (images::BUSYBOX, images::BUSYBOX),
        ("docker.io/library/busybox:2", "busybox:2"),
        ("docker.io/rkube-test/cname:3", "rkube-test/cname:3"),
        ("docker.io/library/busybox:5", "busybox:5"),
        (
            "localhost/rkube-test/docker:6",
            "localhost/rkube-test/docker:6",
        ),
        ("example.com/app:1.0", "example.com/app:1.0"),
    ] {
        assert_eq!(
            listed.get(listed_as),
            Some(&id),
            "{listed_as} in {listed:?}"
        );
        assert_eq!(node.resolve(written).await.as_ref(), Some(&id), "{written}");
    }
    // no leftover names (ctr's `import-<date>:1.0`, or un-normalized ones)
    assert!(
        listed
            .keys()
            .all(|k| !k.starts_with("import-") && !k.starts_with("busybox:")),
        "{listed:?}"
    );
    // the renamed copies are gone
    let leftovers: Vec<_> = std::fs::read_dir(node.data_dir.path().join("agent/containerd"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    node.stop().await;
}

#[test]
fn image_import_without_a_running_node_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.tar");
    std::fs::write(&file, b"").unwrap();
    let (ok, _, err) = rkube(&[
        "image",
        "import",
        "--data-dir",
        dir.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("is rkube server/agent running with this data dir"),
        "{err}"
    );
}
