//! `rkube store`: offline tools for the embedded store's data directory, in the spirit of
//! `etcdctl` and `etcdutl`: show its status, read keys, and compact it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rkube_store::embedded::{disk::DATA_FILE, EmbeddedStore, Options};
use rkube_store::{KeyRange, RangeRequest, Store};

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store's data directory (the one holding `store.redb`).
    #[arg(long)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Verify the data file and print its revision, compaction point, key count and size.
    Status,
    /// Print keys (and values) of one key or, with --prefix, every key under it.
    Get {
        /// The key.
        key: String,
        /// Treat the key as a prefix.
        #[arg(long)]
        prefix: bool,
        /// Print keys only.
        #[arg(long)]
        keys_only: bool,
        /// Read at this revision instead of the latest.
        #[arg(long, default_value_t = 0)]
        revision: i64,
    },
    /// Discard history older than a revision (default: the current revision).
    Compact {
        /// The revision to compact to.
        revision: Option<i64>,
    },
}

pub async fn run(args: StoreArgs) -> Result<()> {
    let opts = Options {
        compaction_interval: None,
        ..Options::default()
    };
    // Opening verifies the whole file: every record is decoded and the history checked for gaps.
    let store = EmbeddedStore::open_with(&args.data_dir, opts)
        .await
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    match args.command {
        StoreCommand::Status => {
            let size = std::fs::metadata(args.data_dir.join(DATA_FILE))
                .map(|m| m.len())
                .unwrap_or(0);
            let live = store
                .range(RangeRequest::new(KeyRange::prefix("")).count_only())
                .await?;
            println!("file:             {}", store.path().display());
            println!("revision:         {}", live.header_revision);
            println!("compact revision: {}", store.compact_revision());
            println!("live keys:        {}", live.count);
            println!("keys in history:  {}", store.indexed_keys());
            println!("file size:        {size} bytes");
        }
        StoreCommand::Get {
            key,
            prefix,
            keys_only,
            revision,
        } => {
            let range = if prefix {
                KeyRange::prefix(key)
            } else {
                KeyRange::key(key)
            };
            let mut req = RangeRequest::new(range).at_revision(revision);
            req.keys_only = keys_only;
            for kv in store.range(req).await?.kvs {
                println!("{}", String::from_utf8_lossy(&kv.key));
                if !keys_only {
                    println!("{}", String::from_utf8_lossy(&kv.value));
                }
            }
        }
        StoreCommand::Compact { revision } => {
            let rev = match revision {
                Some(r) => r,
                None => store.current_revision().await?,
            };
            store.compact(rev).await?;
            println!("compacted to revision {rev}");
        }
    }
    Ok(())
}
