//! `rkube image`: images on this node. `rkube image import` loads image archives (OCI layouts
//! or docker archives, plain or gzip-compressed) into the containerd that rkube supervises for
//! the node with the given data directory, where pods find them by name, as k3s loads its
//! airgap images. Each image gets its normalized name (`busybox:1` →
//! `docker.io/library/busybox:1`), the one pods resolve.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rkube_kubelet::containerd::Layout;
use rkube_kubelet::images::archive;

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Load image archives (`docker save` or OCI-layout tarballs, .tar or .tar.gz) into this
    /// node's containerd, and print the names the images got.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The data directory of the running `rkube server` or `rkube agent` whose containerd
    /// receives the images.
    #[arg(long, default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    /// The repository of images that an OCI archive names by a tag only (an
    /// `org.opencontainers.image.ref.name` such as `1.0`), e.g. `example.com/app`.
    #[arg(long)]
    base_name: Option<String>,
    /// The archives.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: ImageArgs) -> Result<()> {
    match args.command {
        ImageCommand::Import(args) => import(args).await,
    }
}

async fn import(args: ImportArgs) -> Result<()> {
    let layout = Layout::new(&args.data_dir.join("agent"));
    let socket = &layout.socket;
    if !socket.exists() {
        bail!(
            "no containerd socket at {}: is rkube server/agent running with this data dir ({})?",
            socket.display(),
            args.data_dir.display()
        );
    }
    if let Err(e) = tokio::net::UnixStream::connect(socket).await {
        bail!(
            "containerd does not answer on {} ({e}): is rkube server/agent running with this data dir ({})?",
            socket.display(),
            args.data_dir.display()
        );
    }
    for file in args.files {
        let (base, scratch, path) = (args.base_name.clone(), layout.dir.clone(), file.clone());
        let prepared =
            tokio::task::spawn_blocking(move || archive::prepare(&path, base.as_deref(), &scratch))
                .await
                .context("inspecting the archive")??;
        let names = rkube_kubelet::import::import_file(socket, &prepared.file)
            .await
            .with_context(|| format!("importing {}", file.display()))?;
        if names.is_empty() {
            eprintln!(
                "warning: {} held no named image; nothing can run it by name",
                file.display()
            );
        }
        for name in names {
            println!("{name}");
        }
    }
    Ok(())
}
