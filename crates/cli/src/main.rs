//! The `rkube` binary. One file per subcommand; each is a thin layer over a library crate.
//! Subcommands appear as the components they run are built (the API server and the rest come
//! with later issues).

mod agent;
mod controller_manager;
mod controllers;
mod image;
mod kubeconfig;
mod leader;
mod metrics_http;
mod scheduler;
mod security;
mod server;
mod store;

use anyhow::Result;

/// mimalloc rather than glibc malloc: the control plane allocates many small, short-lived
/// objects from many threads, where glibc spent a fifth of the CPU of the scheduler benchmark.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rkube",
    version,
    about = "A Kubernetes-compatible container orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: the datastore, the API server, the scheduler and the controllers.
    Server(server::ServerArgs),
    /// Run the API server alone.
    Apiserver(server::ServerArgs),
    /// Run the scheduler on its own, reaching the API server through a kubeconfig.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the controllers on their own, reaching the API server through a kubeconfig.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Run a kubelet on its own, reaching the API server through a kubeconfig.
    Kubelet(agent::KubeletArgs),
    /// Inspect or maintain an embedded store's data directory (the server must be stopped).
    Store(store::StoreArgs),
    /// Manage the images of this node's container runtime (`rkube image import FILE.tar`).
    Image(image::ImageArgs),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args, true).await,
            Command::Apiserver(args) => server::run(args, false).await,
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::ControllerManager(args) => controller_manager::run(args).await,
            Command::Kubelet(args) => agent::run(args).await,
            Command::Store(args) => store::run(args).await,
            Command::Image(args) => image::run(args).await,
        }
    })
}
