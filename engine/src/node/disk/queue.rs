//! The commit queue of a shard's disk store: which uploads may begin, so that every body the
//! node accepts has a place to be written.
//!
//! A commit needs one of the store's `MAX_IO_OPS` I/O places. Refusing the commit when none is
//! free would throw away a body the client has already sent whole, so commits wait for a place
//! instead, like reads. What bounds the wait is admission at `BeginPut`, where nothing has been
//! sent yet: an upload that would make more than [`MAX_QUEUED_COMMITS`] uploads begun and not
//! finished on this store is refused there, 503 `busy` with `retry_after_ms`. An upload counts
//! from its `BeginPut` to its commit's end or its abort (the store's reservations), so the
//! commits waiting for a place are never more than that bound; their bodies are already bounded
//! by the planes' `max_inflight_put_bytes`.

use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::{Begun, BusyCause, OpId, StoreError};

use super::index::Index;

/// Uploads begun on one shard's store and not yet committed or aborted; one more is refused
/// `Busy` at its `BeginPut`, before its body.
pub const MAX_QUEUED_COMMITS: usize = 256;

/// `BeginPut` with the queue's admission: a duplicate of a verified object needs no commit and
/// is always taken; any other upload past [`MAX_QUEUED_COMMITS`] is `Busy`.
pub fn begin_put(
    index: &mut Index,
    put: OpId,
    addr: &ObjectAddr,
    size: u64,
    verified: bool,
) -> Result<Begun, StoreError> {
    let duplicate = verified && index.get(addr).is_some();
    if !duplicate && index.uploads() >= MAX_QUEUED_COMMITS {
        return Err(StoreError::Busy(BusyCause::CommitQueue));
    }
    index.begin_put(put, addr, size, verified)
}

#[cfg(test)]
mod tests {
    use super::super::tests::id;
    use super::super::{layout, DiskStore, Started, MAX_IO_OPS};
    use super::*;
    use bytes::Bytes;
    use ronode_shards::objects::{Committed, StoreDone, StoreOp};
    use ronode_shards::ShardId;
    use std::rc::Rc;

    #[test]
    fn admission_is_bounded_and_duplicates_always_pass() {
        let mut ix = Index::new(u64::MAX);
        let held = ObjectAddr::of(b"held");
        ix.insert(held, 4);
        for seq in 0..MAX_QUEUED_COMMITS as u64 {
            let addr = ObjectAddr::of(&seq.to_le_bytes());
            assert_eq!(begin_put(&mut ix, id(seq), &addr, 1, false), Ok(Begun::New));
        }
        let one_more = ObjectAddr::of(b"one more");
        assert_eq!(
            begin_put(&mut ix, id(1000), &one_more, 1, false),
            Err(StoreError::Busy(BusyCause::CommitQueue))
        );
        assert_eq!(
            begin_put(&mut ix, id(1001), &held, 4, true),
            Ok(Begun::Duplicate),
            "a duplicate of a verified object takes no place in the queue"
        );
        assert_eq!(
            begin_put(&mut ix, id(1002), &held, 4, false),
            Err(StoreError::Busy(BusyCause::CommitQueue)),
            "an object not verified is written again, so it needs a place"
        );
        ix.release(id(0));
        assert_eq!(
            begin_put(&mut ix, id(1000), &one_more, 1, false),
            Ok(Begun::New),
            "a finished upload frees its place"
        );
    }

    #[test]
    fn commits_past_the_io_places_wait_and_are_all_written() {
        let dir = std::env::temp_dir().join(format!("ronode-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        layout::prepare(&dir).unwrap();
        let root = dir.clone();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 * 1024)
            .spawn(move || async move {
                let store = Rc::new(DiskStore::open(root, ShardId(0), 1, 1 << 30, 0).unwrap());
                let n = 4 * MAX_IO_OPS as u64;
                let bodies: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 5000]).collect();
                for (seq, body) in (0..).zip(&bodies) {
                    let op = StoreOp::BeginPut {
                        put: id(seq),
                        addr: ObjectAddr::of(body),
                        size: body.len() as u64,
                    };
                    assert!(matches!(store.start(op), Started::Done(Some(_))));
                }
                // Every commit is started before any has run: all hold on for a place.
                let commits: Vec<_> = (0..)
                    .zip(&bodies)
                    .map(|(seq, body)| {
                        let op = StoreOp::CommitPut {
                            put: id(seq),
                            addr: ObjectAddr::of(body),
                            body: Some(Bytes::copy_from_slice(body)),
                        };
                        match store.start(op) {
                            Started::Io(io) => glommio::spawn_local(io),
                            Started::Done(done) => panic!("commit {seq} refused: {done:?}"),
                        }
                    })
                    .collect();
                for (seq, commit) in commits.into_iter().enumerate() {
                    let StoreDone::CommitPut { result, .. } = commit.await else {
                        unreachable!("a commit completes a commit")
                    };
                    assert_eq!(result, Ok(Committed { stored: true }), "commit {seq}");
                }
                assert_eq!(store.usage().objects, n);
            })
            .unwrap()
            .join()
            .unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
