//! What only the embedded backend has: its data file. Restarts recover everything, a damaged or
//! foreign file stops start-up with an error naming it, and compaction keeps the file from
//! growing without bound under steady churn.

use std::time::Duration;

use redb::ReadableDatabase;
use rkube_store::embedded::{disk::DATA_FILE, EmbeddedStore, Options};
use rkube_store::*;

fn opts() -> Options {
    Options {
        compaction_interval: None,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_revision_keys_history_leases_and_compaction_point() {
    let dir = tempfile::tempdir().unwrap();
    let (lease, r_first, r_compact, r_last) = {
        let s = EmbeddedStore::open_with(dir.path(), opts()).await.unwrap();
        let lease = s.lease_grant(60).await.unwrap();
        let (r_first, _) = s.put(PutRequest::new("a", "1")).await.unwrap();
        s.put(PutRequest::new("a", "2")).await.unwrap();
        let (r_compact, _) = s
            .put(PutRequest::new("b", "1").with_lease(lease.id))
            .await
            .unwrap();
        s.compact(r_compact).await.unwrap();
        let (r_last, _) = s.put(PutRequest::new("a", "3")).await.unwrap();
        (lease, r_first, r_compact, r_last)
    };
    let s = EmbeddedStore::open_with(dir.path(), opts()).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), r_last);
    assert_eq!(s.compact_revision(), r_compact);
    let a = s.get(b"a").await.unwrap().unwrap();
    assert_eq!(
        (a.value.as_slice(), a.version, a.create_revision),
        (&b"3"[..], 3, r_first)
    );
    assert!(matches!(
        s.range(RangeRequest::new(KeyRange::key("a")).at_revision(r_first))
            .await,
        Err(StoreError::Compacted { .. })
    ));
    let ttl = s
        .lease_time_to_live(lease.id)
        .await
        .unwrap()
        .expect("the lease survives");
    assert_eq!(ttl.keys, vec![b"b".to_vec()]);
    let mut w = s
        .watch(
            WatchRequest::new(KeyRange::key("a"))
                .from_revision(r_compact)
                .with_prev_kv(),
        )
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.events.len(), 1);
    assert_eq!(
        resp.events[0].prev_kv.as_ref().unwrap().value,
        b"2",
        "prev_kv survives compaction"
    );
    assert_eq!(
        s.put(PutRequest::new("c", "1")).await.unwrap().0,
        r_last + 1
    );
}

#[tokio::test]
async fn a_garbage_data_file_stops_start_up_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = EmbeddedStore::open_with(dir.path(), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "got {err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is never reset"
    );
}

#[tokio::test]
async fn a_redb_file_that_is_not_ours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<&str, &str>::new("someone_else"))
                .unwrap();
            t.insert("k", "v").unwrap();
        }
        w.commit().unwrap();
    }
    let err = EmbeddedStore::open_with(dir.path(), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotOurs { .. }), "got {err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // The other program's data is untouched (redb may rewrite its own header on open).
    let db = redb::Database::open(&path).unwrap();
    let r = db.begin_read().unwrap();
    let t = r
        .open_table(redb::TableDefinition::<&str, &str>::new("someone_else"))
        .unwrap();
    assert_eq!(t.get("k").unwrap().unwrap().value(), "v");
    assert!(r
        .open_table(redb::TableDefinition::<&str, &[u8]>::new("rkube_meta"))
        .is_err());
}

#[tokio::test]
async fn a_damaged_log_record_is_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = EmbeddedStore::open_with(dir.path(), opts()).await.unwrap();
        s.put(PutRequest::new("a", "1")).await.unwrap();
    }
    let path = dir.path().join(DATA_FILE);
    {
        // Overwrite the record with bytes that do not decode, through redb itself, so that
        // the file stays a valid database and only our layer can notice.
        let db = redb::Database::open(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<(u64, u32), &[u8]>::new("rkube_log"))
                .unwrap();
            t.insert((2u64, 0u32), [0xffu8, 0xff, 0xff].as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let err = EmbeddedStore::open_with(dir.path(), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "got {err:?}");
    assert!(err.to_string().contains("store.redb"), "{err}");
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open_with(dir.path(), opts()).await.unwrap();
    let err = EmbeddedStore::open_with(dir.path(), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "got {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_churn_with_compaction_does_not_grow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open_with(dir.path(), opts()).await.unwrap();
    let value = vec![b'x'; 2048];
    // One round rewrites each of 200 keys 10 times (from 20 concurrent writers, so that
    // group commit keeps the test quick), then compacts away everything but the latest.
    let churn = || {
        let s = s.clone();
        let value = value.clone();
        async move {
            let mut writers = Vec::new();
            for w in 0..20 {
                let s = s.clone();
                let value = value.clone();
                writers.push(tokio::spawn(async move {
                    for i in 0..100 {
                        let key = format!("/churn/{}", (w * 100 + i) % 200);
                        s.put(PutRequest::new(key, value.clone())).await.unwrap();
                    }
                }));
            }
            for w in writers {
                w.await.unwrap();
            }
            let rev = s.current_revision().await.unwrap();
            s.compact(rev).await.unwrap();
        }
    };
    let size = || std::fs::metadata(dir.path().join(DATA_FILE)).unwrap().len();
    for _ in 0..3 {
        churn().await;
    }
    let warm = size();
    for _ in 3..15 {
        churn().await;
    }
    let later = size();
    // 12 more rounds write about 48 MiB of history; with its pages reused the file stays put.
    assert!(
        later <= warm + warm / 2,
        "file grew from {warm} to {later} bytes under steady churn"
    );
    assert_eq!(s.indexed_keys(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_keeps_about_one_interval_of_history() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(300);
    let opts = Options {
        compaction_interval: Some(interval),
        ..Options::default()
    };
    let s = EmbeddedStore::open_with(dir.path(), opts).await.unwrap();
    let (r1, _) = s.put(PutRequest::new("auto", "1")).await.unwrap();
    let (r2, _) = s.put(PutRequest::new("auto", "2")).await.unwrap();
    assert_eq!(
        s.compact_revision(),
        0,
        "nothing is compacted before an interval has passed"
    );
    // The policy compacts to the revision it saw one interval earlier: with no more writes,
    // that reaches the current revision within a few intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.compact_revision() < r2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compaction never reached {r2}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.compact_revision(), r2, "never past the current revision");
    assert!(matches!(
        s.range(RangeRequest::new(KeyRange::key("auto")).at_revision(r1))
            .await,
        Err(StoreError::Compacted { .. })
    ));
    assert_eq!(s.get(b"auto").await.unwrap().unwrap().value, b"2");
}

/// A tmpfs of a few MiB mounted on a temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("temporary directory");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "rkube-test-tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount (this test needs root)");
        assert!(
            status.success(),
            "mounting a tmpfs failed (this test needs root)"
        );
        SmallFs { dir }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_with_a_storage_error_and_keeps_acknowledged_ones() {
    let fs = SmallFs::mount("4m");
    let data = fs.dir.path().join("data");
    let s = EmbeddedStore::open_with(&data, opts()).await.unwrap();
    let value = vec![b'x'; 8 * 1024];
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..10_000 {
        match s
            .put(PutRequest::new(format!("/full/{i}"), value.clone()))
            .await
        {
            Ok((rev, _)) => acked.push((format!("/full/{i}"), rev)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("a 4 MiB filesystem fills up");
    assert!(matches!(failure, StoreError::Storage(_)), "got {failure:?}");
    assert!(!acked.is_empty());
    // Every later write is refused too: the store does not trust its state after a failure.
    let again = s.put(PutRequest::new("/after", "x")).await;
    assert!(
        matches!(again, Err(StoreError::Storage(_))),
        "got {again:?}"
    );
    // Reads still serve what was acknowledged.
    let (key, rev) = acked.last().unwrap();
    assert_eq!(
        s.get(key.as_bytes()).await.unwrap().unwrap().mod_revision,
        *rev
    );
    drop(s);
    // A copy of the file on a roomy disk opens with every acknowledged write.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(data.join(DATA_FILE), copy.path().join(DATA_FILE)).unwrap();
    let s = EmbeddedStore::open_with(copy.path(), opts()).await.unwrap();
    for (key, rev) in &acked {
        let kv = s
            .get(key.as_bytes())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(kv.mod_revision, *rev);
    }
}
