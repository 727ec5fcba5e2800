//! Where the disk store keeps things under `<data_dir>/objects/`, and the start-up work that
//! only looks at names and sizes: preparing the directories, emptying `tmp/`, and listing the
//! objects a shard owns.
//!
//! ```text
//! objects/00/ .. objects/ff/   final files, objects/ab/<64 lowercase hex>, by the address's first byte
//! objects/tmp/                 uploads being written: <owner shard>-<origin shard>-<seq>.part
//! objects/quarantine/          files that failed verification or are not addresses
//! ```
//!
//! Every fan-out directory exists from [`prepare`] on, so a commit never creates a directory
//! (and never has to make one durable). A shard owns a contiguous range of addresses
//! (`shard_of` partitions the top bits), hence a contiguous range of fan-out directories: at
//! start it lists only those ([`fanout_of_shard`]), and of their files only the addresses it
//! owns (a directory on a boundary is listed by both of its shards).
//!
//! These run with `std::fs` (blocking) and only at start, before the shard serves anything.

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::OpId;
use ronode_shards::{shard_of, ShardId};

/// The store's directory under the data directory.
pub const OBJECTS_DIR: &str = "objects";
/// Uploads being written, under [`OBJECTS_DIR`]; emptied at every start.
pub const TMP_DIR: &str = "tmp";
/// Files refused by verification (or not named as addresses), under [`OBJECTS_DIR`].
pub const QUARANTINE_DIR: &str = "quarantine";

/// The fan-out directory of `addr`: its first byte in two lowercase hex digits.
pub fn fanout(addr: &ObjectAddr) -> String {
    format!("{:02x}", addr.as_bytes()[0])
}

/// The final file of `addr` under `root` (the objects directory).
pub fn object_path(root: &Path, addr: &ObjectAddr) -> PathBuf {
    root.join(fanout(addr)).join(hex::encode(addr.as_bytes()))
}

/// Where a file that failed verification goes (a later one of the same name replaces it).
pub fn quarantine_path(root: &Path, name: &str) -> PathBuf {
    root.join(QUARANTINE_DIR).join(name)
}

/// The temporary file of upload `put` on store `shard` (unique within one run; `tmp/` is emptied
/// at start, so names never meet a leftover).
pub fn tmp_path(root: &Path, shard: ShardId, put: OpId) -> PathBuf {
    root.join(TMP_DIR)
        .join(format!("{}-{}-{}.part", shard.0, put.shard.0, put.seq))
}

/// The address a file named `file` in fan-out directory `dir` holds: `file` is exactly 64
/// lowercase hex digits and starts with `dir`. `None` for anything else.
pub fn parse_name(dir: &str, file: &str) -> Option<ObjectAddr> {
    let addr = ObjectAddr::parse(&format!("b3:{file}")).ok()?;
    (fanout(&addr) == dir).then_some(addr)
}

/// The first bytes of the addresses `shard` of `shard_count` owns: the fan-out directories it
/// lists at start.
pub fn fanout_of_shard(shard: ShardId, shard_count: u16) -> RangeInclusive<u8> {
    let owner = |byte: u8, tail: u8| {
        let mut id = [tail; 32];
        id[0] = byte;
        shard_of(&id, shard_count)
    };
    // `shard_of` is monotonic: the directories holding some address of the shard are those
    // whose highest address is owned by it or a later shard and whose lowest by it or earlier.
    // Every shard owns a non-empty range, so both exist.
    let first = (0..=u8::MAX).find(|&b| owner(b, 0xff) >= shard);
    let last = (0..=u8::MAX).rev().find(|&b| owner(b, 0) <= shard);
    first.unwrap_or(u8::MAX)..=last.unwrap_or(0)
}

/// What a shard found on disk at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The objects it owns and their file sizes (not verified).
    pub objects: Vec<(ObjectAddr, u64)>,
    /// Entries of its fan-out directories that are not objects (to quarantine). Each is reported
    /// by one shard only: the owner of the directory's lowest addresses.
    pub strays: Vec<PathBuf>,
}

/// Lists the objects `shard` owns under `root` (the objects directory), by name and size only.
pub fn scan(root: &Path, shard: ShardId, shard_count: u16) -> io::Result<Scan> {
    let mut found = Scan::default();
    for byte in fanout_of_shard(shard, shard_count) {
        let name = format!("{byte:02x}");
        let dir = root.join(&name);
        let mut lowest = [0u8; 32];
        lowest[0] = byte;
        let reports_strays = shard_of(&lowest, shard_count) == shard;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            let addr = entry
                .file_name()
                .to_str()
                .and_then(|file| parse_name(&name, file))
                .filter(|_| meta.is_file());
            match addr {
                Some(addr) if shard_of(addr.as_bytes(), shard_count) == shard => {
                    found.objects.push((addr, meta.len()));
                }
                Some(_) => {}
                None if reports_strays => found.strays.push(entry.path()),
                None => {}
            }
        }
    }
    Ok(found)
}

/// Creates the layout under `root` (the objects directory) and deletes what `tmp/` holds: uploads
/// torn by a crash or a kill, never acknowledged. Returns how many it deleted. Runs once per
/// start, before any shard.
pub fn prepare(root: &Path) -> io::Result<usize> {
    let mut created = false;
    for sub in [TMP_DIR, QUARANTINE_DIR]
        .into_iter()
        .map(str::to_owned)
        .chain((0..=u8::MAX).map(|b| format!("{b:02x}")))
    {
        match std::fs::create_dir_all(root.join(sub)) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let mut torn = 0;
    for entry in std::fs::read_dir(root.join(TMP_DIR))? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        torn += 1;
    }
    if created {
        // The fan-out directories must outlive a crash for the objects renamed into them.
        std::fs::File::open(root)?.sync_all()?;
        if let Some(parent) = root.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(torn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_strictly() {
        let addr = ObjectAddr::of(b"abc");
        let hex = hex::encode(addr.as_bytes());
        assert_eq!(fanout(&addr), "64");
        assert_eq!(parse_name("64", &hex), Some(addr));
        assert_eq!(parse_name("65", &hex), None, "wrong fan-out directory");
        assert_eq!(parse_name("64", &hex.to_uppercase()), None);
        assert_eq!(parse_name("64", &hex[..63]), None);
        assert_eq!(parse_name("64", &format!("{hex}.part")), None);
        assert_eq!(parse_name("64", &format!("b3:{hex}")), None);
        let root = Path::new("/d/objects");
        assert_eq!(object_path(root, &addr), root.join("64").join(&hex));
        let put = OpId {
            shard: ShardId(1),
            seq: 9,
        };
        assert_eq!(tmp_path(root, ShardId(0), put), root.join("tmp/0-1-9.part"));
    }

    #[test]
    fn every_address_lies_in_its_shards_directories() {
        for count in [1u16, 2, 3, 7, 255, 256, 300] {
            let mut covered = vec![false; 256];
            for s in 0..count {
                let range = fanout_of_shard(ShardId(s), count);
                for b in range.clone() {
                    covered[b as usize] = true;
                }
                // Both ends of the shard's own address range fall inside its directories.
                for probe in [0u8, 0x80, 0xff] {
                    for b in 0..=u8::MAX {
                        let mut id = [probe; 32];
                        id[0] = b;
                        if shard_of(&id, count) == ShardId(s) {
                            assert!(range.contains(&b), "count {count} shard {s} byte {b}");
                        }
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "count {count}");
        }
        assert_eq!(fanout_of_shard(ShardId(0), 1), 0..=255);
        assert_eq!(fanout_of_shard(ShardId(0), 2), 0..=0x7f);
        assert_eq!(fanout_of_shard(ShardId(1), 2), 0x80..=0xff);
    }

    #[test]
    fn prepare_and_scan_rebuild_from_names_and_sizes() {
        let root = std::env::temp_dir().join(format!("ronode-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(prepare(&root).unwrap(), 0);
        std::fs::write(root.join(TMP_DIR).join("0-0-1.part"), b"torn").unwrap();
        let mut owned = [Vec::new(), Vec::new()];
        for i in 0..16u32 {
            let body = vec![i as u8; i as usize * 100];
            let addr = ObjectAddr::of(&body);
            std::fs::write(object_path(&root, &addr), &body).unwrap();
            owned[shard_of(addr.as_bytes(), 2).0 as usize].push((addr, body.len() as u64));
        }
        std::fs::write(root.join("00").join("not-an-address"), b"x").unwrap();
        std::fs::write(root.join("ff").join("also-not"), b"x").unwrap();

        assert_eq!(prepare(&root).unwrap(), 1, "the torn upload is deleted");
        assert_eq!(std::fs::read_dir(root.join(TMP_DIR)).unwrap().count(), 0);
        for s in 0..2u16 {
            let mut scan = scan(&root, ShardId(s), 2).unwrap();
            scan.objects.sort();
            owned[s as usize].sort();
            assert_eq!(scan.objects, owned[s as usize], "shard {s}");
            let stray = if s == 0 { "00" } else { "ff" };
            assert_eq!(scan.strays.len(), 1, "shard {s}");
            assert!(scan.strays[0].parent().unwrap().ends_with(stray));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
