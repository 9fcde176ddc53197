//! The data file: creating it, refusing one that is damaged or not ours, and loading the index,
//! the revision and the leases from it at start-up.
//!
//! One `redb` file holds three tables: `meta` (format tag, current and compact revision),
//! `log` (every retained change, keyed by `(revision, sub)`) and `leases` (id to TTL).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::codec::{LogPos, Record};
use super::index::{Entry, Index};
use crate::error::StoreError;
use crate::types::{LeaseId, Revision};

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("rkube_meta");
pub(crate) const LOG: TableDefinition<LogPos, &[u8]> = TableDefinition::new("rkube_log");
pub(crate) const LEASES: TableDefinition<i64, i64> = TableDefinition::new("rkube_leases");

pub(crate) const FORMAT_KEY: &str = "format";
pub(crate) const FORMAT: &[u8] = b"rkube-store/1";
pub(crate) const REVISION_KEY: &str = "revision";
pub(crate) const COMPACT_KEY: &str = "compact";

/// The data file's name inside the data directory.
pub const DATA_FILE: &str = "store.redb";

/// What start-up reads from the file.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub db: Database,
    pub path: PathBuf,
    pub index: Index,
    /// Lease id to granted TTL.
    pub leases: HashMap<LeaseId, i64>,
}

fn corrupt(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn encode_rev(rev: Revision) -> [u8; 8] {
    rev.to_le_bytes()
}

fn decode_rev(path: &Path, what: &str, bytes: &[u8]) -> Result<Revision, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(path, format!("meta {what} is not 8 bytes")))?;
    Ok(i64::from_le_bytes(arr))
}

/// Writes the meta table's revision entries inside a write transaction.
pub(crate) fn write_meta_revisions(
    meta: &mut redb::Table<&str, &[u8]>,
    current: Revision,
    compact: Option<Revision>,
) -> Result<(), redb::StorageError> {
    meta.insert(REVISION_KEY, encode_rev(current).as_slice())?;
    if let Some(c) = compact {
        meta.insert(COMPACT_KEY, encode_rev(c).as_slice())?;
    }
    Ok(())
}

/// Creates a new, empty store file at `path`. It is built under a temporary name and renamed
/// into place, so that a crash half-way never leaves a file without the format tag (which would
/// then be refused as not ours).
fn create(path: &Path) -> Result<(), StoreError> {
    let tmp = path.with_extension("redb.tmp");
    let _ = std::fs::remove_file(&tmp);
    let io = |e: &dyn std::fmt::Display| {
        StoreError::Storage(format!("creating {}: {e}", path.display()))
    };
    {
        let db = Database::create(&tmp).map_err(|e| io(&e))?;
        let wtx = db.begin_write().map_err(|e| io(&e))?;
        {
            let mut meta = wtx.open_table(META).map_err(|e| io(&e))?;
            meta.insert(FORMAT_KEY, FORMAT).map_err(|e| io(&e))?;
            write_meta_revisions(&mut meta, 1, Some(0)).map_err(|e| io(&e))?;
            wtx.open_table(LOG).map_err(|e| io(&e))?;
            wtx.open_table(LEASES).map_err(|e| io(&e))?;
        }
        wtx.commit().map_err(|e| io(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(&e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&e))?;
    }
    Ok(())
}

/// Opens (creating if absent) the store file in `dir` and loads its state.
pub(crate) fn open(dir: &Path, cache_size: usize) -> Result<Loaded, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Storage(format!("creating data dir {}: {e}", dir.display())))?;
    let path: PathBuf = dir.join(DATA_FILE);
    if !path.exists() {
        create(&path)?;
    }
    let db = Database::builder()
        .set_cache_size(cache_size)
        .open(&path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.clone()),
            other => corrupt(&path, other),
        })?;
    let (index, leases) = load(&path, &db)?;
    Ok(Loaded {
        db,
        path,
        index,
        leases,
    })
}

fn load(path: &Path, db: &Database) -> Result<(Index, HashMap<LeaseId, i64>), StoreError> {
    let rtx = db.begin_read().map_err(|e| corrupt(path, e))?;
    let meta = match rtx.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => {
            return Err(StoreError::NotOurs {
                path: path.to_path_buf(),
                reason: "it is a redb database without rkube's metadata table".into(),
            })
        }
        Err(e) => return Err(corrupt(path, e)),
    };
    let get = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(meta
            .get(k)
            .map_err(|e| corrupt(path, e))?
            .map(|v| v.value().to_vec()))
    };
    match get(FORMAT_KEY)? {
        Some(f) if f == FORMAT => {}
        Some(f) => {
            return Err(StoreError::NotOurs {
                path: path.to_path_buf(),
                reason: format!("unknown format tag {:?}", String::from_utf8_lossy(&f)),
            })
        }
        None => {
            return Err(StoreError::NotOurs {
                path: path.to_path_buf(),
                reason: "no format tag in the metadata table".into(),
            })
        }
    }
    let current = decode_rev(path, "revision", &get(REVISION_KEY)?.unwrap_or_default())?;
    let compact = decode_rev(path, "compact", &get(COMPACT_KEY)?.unwrap_or_default())?;
    if current < 1 || compact < 0 || compact > current {
        return Err(corrupt(
            path,
            format!("revision {current} and compact revision {compact} are inconsistent"),
        ));
    }

    let mut index = Index::new(current, compact);
    let log = rtx.open_table(LOG).map_err(|e| corrupt(path, e))?;
    // Every revision from the compaction point on (revision 1 is the empty store) must have at
    // least one record: a gap means lost history.
    let mut expect = compact.max(2);
    let mut last: Option<LogPos> = None;
    for item in log.iter().map_err(|e| corrupt(path, e))? {
        let (k, v) = item.map_err(|e| corrupt(path, e))?;
        let pos = k.value();
        let rec = Record::decode(pos, v.value()).map_err(|e| corrupt(path, e))?;
        let rev = pos.0 as i64;
        if rev > current {
            return Err(corrupt(
                path,
                format!("log record at revision {rev} is above the store revision {current}"),
            ));
        }
        if rev >= expect {
            if rev > expect {
                return Err(corrupt(
                    path,
                    format!("revision {expect} is missing from the log"),
                ));
            }
            expect += 1;
        }
        if last.is_some_and(|l| l >= pos) {
            return Err(corrupt(path, "log records out of order"));
        }
        last = Some(pos);
        index.push(
            rec.key,
            Entry {
                rev,
                sub: pos.1,
                tombstone: rec.tombstone,
                create_revision: rec.create_revision,
                version: rec.version,
                lease: rec.lease,
            },
        );
    }
    if current >= 2 && expect <= current {
        return Err(corrupt(
            path,
            format!("revision {expect} is missing from the log"),
        ));
    }

    let mut leases = HashMap::new();
    let table = rtx.open_table(LEASES).map_err(|e| corrupt(path, e))?;
    for item in table.iter().map_err(|e| corrupt(path, e))? {
        let (id, ttl) = item.map_err(|e| corrupt(path, e))?;
        leases.insert(id.value(), ttl.value());
    }
    Ok((index, leases))
}
