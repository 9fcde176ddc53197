//! Opening the store the API server runs on: the embedded store in a data directory, or an
//! etcd cluster. Other crates start the API server through this, never the store itself.

use std::path::Path;
use std::sync::Arc;

use rkube_store::embedded::EmbeddedStore;
use rkube_store::etcd::EtcdStore;
use rkube_store::Store;
pub use rkube_store::StoreError;

/// Where the objects live.
#[derive(Debug, Clone)]
pub enum Datastore {
    /// The embedded store, in `<data dir>/db`.
    Embedded,
    /// An etcd cluster at these endpoints (`http://127.0.0.1:2379`).
    Etcd(Vec<String>),
}

/// Opens the datastore.
pub async fn open(data_dir: &Path, datastore: &Datastore) -> Result<Arc<dyn Store>, StoreError> {
    match datastore {
        Datastore::Embedded => {
            let dir = data_dir.join("db");
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::Storage(format!("{}: {e}", dir.display())))?;
            Ok(Arc::new(EmbeddedStore::open(&dir).await?))
        }
        Datastore::Etcd(endpoints) => Ok(Arc::new(EtcdStore::connect(endpoints).await?)),
    }
}
