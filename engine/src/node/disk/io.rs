//! The disk store's I/O on glommio DMA files (O_DIRECT, io_uring): the durable write of a
//! commit, the whole-object hash that builds an outboard, and the read of one window's pieces.
//!
//! Buffers stay small and bounded whatever the object's size: a commit writes in
//! [`WRITE_CHUNK`] pieces and a verification reads in [`VERIFY_CHUNK`] pieces, so one operation
//! holds one such buffer (taken from the executor's registered `io_memory` while it has room,
//! from the heap otherwise), and a read holds one window (`READ_WINDOW`).

use std::io;
use std::ops::Range;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use glommio::io::{Directory, DmaFile};
use ronode_proto::id::ObjectAddr;

use super::outboard::{self, Outboard};

/// Bytes per DMA write of a commit (a multiple of any O_DIRECT alignment).
pub const WRITE_CHUNK: usize = 256 * 1024;
/// Bytes per DMA read while an object is hashed whole (a multiple of the outboard's piece).
pub const VERIFY_CHUNK: usize = 256 * 1024;
const _: () = assert!((VERIFY_CHUNK as u64).is_multiple_of(outboard::PIECE));

/// Writes `body` to `tmp`, makes it durable, renames it to `dest` and makes the rename durable
/// (fsync of `dest`'s directory). When this returns `Ok` the object survives a crash; on an
/// error the temporary file is removed (best effort: start-up empties `tmp/` anyway).
pub async fn write_durably(tmp: &Path, dest: &Path, body: &[u8]) -> io::Result<()> {
    let written = async {
        let file = DmaFile::create(tmp).await?;
        let result = write_all(&file, body).await;
        let closed = file.close().await;
        result?;
        closed?;
        glommio::io::rename(tmp, dest).await?;
        Ok::<_, io::Error>(())
    }
    .await;
    if let Err(e) = written {
        let _ = glommio::io::remove(tmp).await;
        return Err(e);
    }
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::other("an object path has a directory"))?;
    let dir = Directory::open(dir).await?;
    let synced = dir.sync().await;
    dir.close().await?;
    Ok(synced?)
}

/// Writes `body` at offset 0 in aligned chunks (the last padded with zeros, then the file cut
/// to size) and `fdatasync`s it.
async fn write_all(file: &DmaFile, body: &[u8]) -> io::Result<()> {
    let align = file.alignment() as usize;
    let mut pos = 0u64;
    for chunk in body.chunks(WRITE_CHUNK) {
        let padded = chunk.len().next_multiple_of(align);
        let mut buf = file.alloc_dma_buffer(padded);
        let dst = buf.as_bytes_mut();
        dst[..chunk.len()].copy_from_slice(chunk);
        dst[chunk.len()..].fill(0);
        let n = file.write_at(buf, pos).await?;
        if n != padded {
            // A short write of a regular file means the file system ran out of room.
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("wrote {n} of {padded} bytes at offset {pos}"),
            ));
        }
        pos += chunk.len() as u64;
    }
    if !body.len().is_multiple_of(align) {
        file.truncate(body.len() as u64).await?;
    }
    file.fdatasync().await?;
    Ok(())
}

/// Why a file is not the object it is named after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Its size is not the indexed one (torn, truncated, appended to).
    Size { found: u64 },
    /// Its bytes do not hash to the address.
    Digest,
}

/// Hashes the whole file at `path` as the object `addr` of `size` bytes and returns its
/// outboard, or why the file is not that object.
pub async fn hash_outboard(
    path: &Path,
    addr: &ObjectAddr,
    size: u64,
) -> io::Result<Result<Outboard, Mismatch>> {
    let file = DmaFile::open(path).await?;
    let result = async {
        let found = file.file_size().await?;
        if found != size {
            return Ok(Err(Mismatch::Size { found }));
        }
        let mut builder = outboard::Builder::new(size);
        while builder.taken() < size {
            let pos = builder.taken();
            let want = (size - pos).min(VERIFY_CHUNK as u64) as usize;
            let got = file.read_at(pos, want).await?;
            if got.is_empty() {
                // Cut short since it was measured.
                return Ok(Err(Mismatch::Size { found: pos }));
            }
            builder.update(&got);
        }
        Ok::<_, io::Error>(builder.finish(addr).ok_or(Mismatch::Digest))
    }
    .await;
    let _ = file.close().await;
    result
}

/// Whether a failed write means the disk is full: ENOSPC, EDQUOT, or a short write.
pub fn is_no_space(e: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// The bytes at `range` of the file at `path`, copied once out of the DMA buffers.
pub async fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let len = (range.end - range.start) as usize;
    let file = DmaFile::open(path).await?;
    let result = async {
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            let pos = range.start + out.len() as u64;
            let got = file.read_at(pos, len - out.len()).await?;
            if got.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ends before offset {pos}"),
                ));
            }
            out.extend_from_slice(&got);
        }
        Ok(out.freeze())
    }
    .await;
    let _ = file.close().await;
    result
}
