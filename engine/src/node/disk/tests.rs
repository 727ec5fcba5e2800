//! The disk store on a real glommio executor and real files: commit, windows, restart with a
//! torn file, the bound on operations at once, capacity.

use super::*;
use ronode_shards::objects::{Begun, ReadChunk};

/// The `seq`th operation of shard 0 (the disk module's unit tests share it).
pub(super) fn id(seq: u64) -> OpId {
    OpId {
        shard: ShardId(0),
        seq,
    }
}

fn root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ronode-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    layout::prepare(&dir).unwrap();
    dir
}

fn open(root: &std::path::Path, capacity_bytes: u64) -> Rc<DiskStore> {
    // No read cache: these tests are about the files.
    Rc::new(DiskStore::open(root.to_owned(), ShardId(0), 1, capacity_bytes, 0).unwrap())
}

fn on_executor<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

async fn run(store: &Rc<DiskStore>, op: StoreOp) -> Option<StoreDone> {
    match store.start(op) {
        Started::Done(done) => done,
        Started::Io(io) => Some(io.await),
    }
}

async fn put(store: &Rc<DiskStore>, seq: u64, body: &[u8]) -> Result<Committed, StoreError> {
    let addr = ObjectAddr::of(body);
    let begun = run(
        store,
        StoreOp::BeginPut {
            put: id(seq),
            addr,
            size: body.len() as u64,
        },
    )
    .await;
    assert_eq!(
        begun,
        Some(StoreDone::BeginPut {
            put: id(seq),
            result: Ok(Begun::New)
        })
    );
    let body = Some(Bytes::copy_from_slice(body));
    match run(
        store,
        StoreOp::CommitPut {
            put: id(seq),
            addr,
            body,
        },
    )
    .await
    {
        Some(StoreDone::CommitPut { result, .. }) => result,
        other => panic!("{other:?}"),
    }
}

async fn read(
    store: &Rc<DiskStore>,
    addr: ObjectAddr,
    range: Range<u64>,
) -> Result<ReadChunk, StoreError> {
    let op = StoreOp::Read {
        op: id(0),
        addr,
        range,
        min_len: 64 * 1024,
        fetch: None,
    };
    match run(store, op).await {
        Some(StoreDone::Read { result, .. }) => result,
        other => panic!("{other:?}"),
    }
}

#[test]
fn windows_follow_the_read_contract() {
    const K: u64 = 1024;
    // Short ranges come whole.
    assert_eq!(window(0..10, 64 * K), 0..10);
    assert_eq!(window(5..READ_WINDOW + 5, 64 * K), 5..READ_WINDOW + 5);
    // Longer ones stop at the largest multiple of min_len within the window.
    assert_eq!(window(0..10 * READ_WINDOW, 64 * K), 0..READ_WINDOW);
    assert_eq!(window(7..10 * READ_WINDOW, 300 * K), 7..7 + 900 * K);
    // A min_len over the window still gets one min_len.
    let big = READ_WINDOW + 1;
    assert_eq!(window(0..3 * big, big), 0..big);
    assert_eq!(window(3..3, 4 * K), 3..3);
    assert_eq!(window(0..u64::MAX, 0), 0..READ_WINDOW);
}

#[test]
fn commits_are_read_back_in_windows_and_a_torn_file_is_quarantined() {
    let dir = root("torn");
    let d = dir.clone();
    on_executor(move || async move {
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 5)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let small = b"a small object".to_vec();
        let store = open(&d, 16 << 20);
        assert_eq!(put(&store, 1, &big).await, Ok(Committed { stored: true }));
        assert_eq!(put(&store, 2, &small).await, Ok(Committed { stored: true }));
        assert_eq!(
            std::fs::read_dir(d.join(layout::TMP_DIR)).unwrap().count(),
            0
        );
        let big_addr = ObjectAddr::of(&big);
        assert_eq!(
            std::fs::read(layout::object_path(&d, &big_addr)).unwrap(),
            big
        );

        // A GET streams the big one a window at a time.
        let mut got = Vec::new();
        while got.len() < big.len() {
            let chunk = read(&store, big_addr, got.len() as u64..u64::MAX)
                .await
                .unwrap();
            assert_eq!(chunk.object_size, big.len() as u64);
            assert!(chunk.bytes.len() as u64 <= READ_WINDOW);
            got.extend_from_slice(&chunk.bytes);
        }
        assert!(got == big);
        let usage = store.usage();
        assert_eq!(
            (usage.objects, usage.bytes),
            (2, (big.len() + small.len()) as u64)
        );
        drop(store);

        // Restart with the big file cut short: indexed by its size, refused on first read.
        let path = layout::object_path(&d, &big_addr);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(1024 * 1024).unwrap();
        let store = open(&d, 16 << 20);
        assert_eq!(store.usage().objects, 2);
        assert_eq!(
            read(&store, big_addr, 0..10).await,
            Err(StoreError::Corrupt(big_addr))
        );
        assert_eq!(store.usage().quarantined, 1);
        assert_eq!(store.usage().objects, 1);
        assert!(!path.exists());
        assert!(layout::quarantine_path(&d, &hex::encode(big_addr.as_bytes())).is_file());
        assert_eq!(
            read(&store, big_addr, 0..10).await,
            Err(StoreError::NotFound(big_addr))
        );
        let small_addr = ObjectAddr::of(&small);
        assert_eq!(
            &read(&store, small_addr, 2..7).await.unwrap().bytes[..],
            b"small"
        );
    });
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn operations_at_once_are_bounded_and_full_is_full() {
    let dir = root("bounds");
    let d = dir.clone();
    on_executor(move || async move {
        let store = open(&d, 100);
        let body = b"bounded".to_vec();
        let addr = ObjectAddr::of(&body);
        put(&store, 1, &body).await.unwrap();
        // Reads started but not yet run hold their places in the queue.
        let held: Vec<_> = (0..MAX_QUEUED_READS)
            .map(|_| {
                store.start(StoreOp::Read {
                    op: id(2),
                    addr,
                    range: 0..7,
                    min_len: 4096,
                    fetch: None,
                })
            })
            .collect();
        assert!(held.iter().all(|s| matches!(s, Started::Io(_))));
        assert_eq!(
            read(&store, addr, 0..7).await,
            Err(StoreError::Busy(BusyCause::ReadQueue)),
            "one more than MAX_QUEUED_READS"
        );
        drop(held);
        assert_eq!(
            &read(&store, addr, 0..7).await.unwrap().bytes[..],
            b"bounded"
        );

        // 7 bytes stored of 100: 94 more do not fit, and nothing is evicted for them.
        let op = StoreOp::BeginPut {
            put: id(3),
            addr: ObjectAddr::of(b"x"),
            size: 94,
        };
        assert!(matches!(
            run(&store, op).await,
            Some(StoreDone::BeginPut {
                result: Err(StoreError::Full { .. }),
                ..
            })
        ));
        let op = StoreOp::BeginPut {
            put: id(4),
            addr,
            size: 7,
        };
        assert_eq!(
            run(&store, op).await,
            Some(StoreDone::BeginPut {
                put: id(4),
                result: Ok(Begun::Duplicate)
            })
        );
    });
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_read_cache_answers_without_io_once_an_object_was_read_whole() {
    let dir = root("cache");
    let dir2 = dir.clone();
    on_executor(move || async move {
        let body: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let addr = ObjectAddr::of(&body);
        {
            let store = open(&dir2, 1 << 20);
            put(&store, 1, &body).await.unwrap();
        }
        // Restarted with a cache: the first read verifies and reads from the file...
        let store =
            Rc::new(DiskStore::open(dir2.clone(), ShardId(0), 1, 1 << 20, 1 << 20).unwrap());
        let op = |seq| StoreOp::Read {
            op: id(seq),
            addr,
            range: 0..u64::MAX,
            min_len: 1024,
            fetch: None,
        };
        assert!(matches!(store.start(op(2)), Started::Io(_)));
        let Started::Io(io) = store.start(op(3)) else {
            unreachable!()
        };
        io.await;
        // ...the next one completes on the spot, from memory, with the same bytes.
        match store.start(op(4)) {
            Started::Done(Some(StoreDone::Read {
                result: Ok(chunk), ..
            })) => {
                assert_eq!(&chunk.bytes[..], &body[..]);
                assert_eq!(chunk.object_size, 4096);
            }
            _ => panic!("a cached object is read without I/O"),
        }
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_burst_of_reads_past_the_io_places_waits_and_is_served() {
    let dir = root("burst");
    let d = dir.clone();
    on_executor(move || async move {
        let store = open(&d, 1 << 20);
        let body = b"a cold object wanted by many".to_vec();
        let addr = ObjectAddr::of(&body);
        put(&store, 1, &body).await.unwrap();
        let tasks: Vec<_> = (0..4 * MAX_IO_OPS as u64)
            .map(|_| {
                let store = store.clone();
                glommio::spawn_local(
                    async move { read(&store, addr, 0..100).await.map(|c| c.bytes) },
                )
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let got = t.await.unwrap_or_else(|e| panic!("read {i} refused: {e}"));
            assert_eq!(&got[..], &body[..]);
        }
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn damage_found_while_an_upload_replaces_the_file_is_busy_saying_so() {
    let dir = root("replaced");
    let d = dir.clone();
    on_executor(move || async move {
        let body = b"an object an upload is writing again".to_vec();
        let addr = ObjectAddr::of(&body);
        let store = open(&d, 16 << 20);
        assert_eq!(put(&store, 1, &body).await, Ok(Committed { stored: true }));
        // A read saw this entry, found damage, and meanwhile a commit began a new file.
        let seen = store.index.borrow().get(&addr).unwrap();
        assert!(store.index.borrow_mut().start_replacing(&addr));
        let e = store.quarantine(&addr, &seen, "a test's damage".into());
        assert_eq!(e, StoreError::Busy(BusyCause::Replaced));
        // Its message says what happened: no queue was full.
        let message = e.to_string();
        assert!(
            message.contains("replaced") && !message.contains("queue"),
            "{message}"
        );
        assert_eq!(store.usage().quarantined, 0, "nothing quarantined");
        assert!(layout::object_path(&d, &addr).is_file(), "the file is left");
    });
    std::fs::remove_dir_all(dir).unwrap();
}
