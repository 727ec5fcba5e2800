//! What keeps two nodes from stepping on each other: the data directory lock and the port probe.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive lock on a data directory, held for the node's life (released on drop, and by the
/// kernel if the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Locks `dir` (creating the lock file), or fails naming the directory when another process
/// holds it.
pub fn lock_data_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "data directory {} is in use by another ronode process (lock file {}); \
             stop it or give this node its own --data-dir",
            dir.display(),
            path.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Checks that nothing listens on `addr` with a plain bind (SO_REUSEADDR, never SO_REUSEPORT).
/// The shards' listeners set SO_REUSEPORT, so without this check a second node on the same port
/// would silently take part of the first one's connections. The probe socket is closed before
/// returning (a socket without SO_REUSEPORT would keep the shards from binding); port 0 needs no
/// probe.
pub fn probe_port(addr: SocketAddr, what: &str) -> Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    // A node that just exited may leave its io_uring listeners closing for a few milliseconds
    // (the kernel tears the ring down asynchronously): retry briefly before calling the
    // address taken.
    for attempt in 0..=PROBE_RETRIES {
        match TcpListener::bind(addr) {
            Ok(_probe) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if attempt < PROBE_RETRIES {
                    std::thread::sleep(PROBE_PAUSE);
                }
            }
            Err(e) => bail!("{what} address {addr} cannot be bound: {e}"),
        }
    }
    bail!("{what} address {addr} is already in use (another node or service listens there)")
}

/// The probe's patience with an address still held: 20 x 50 ms.
const PROBE_RETRIES: u32 = 20;
const PROBE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_fails_clearly() {
        let dir = std::env::temp_dir().join(format!("ronode-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = lock_data_dir(&dir).unwrap();
        let err = lock_data_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("in use by another ronode"), "{err}");
        drop(first);
        assert!(lock_data_dir(&dir).is_ok(), "released on drop");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn probe_refuses_a_taken_port() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = probe_port(addr, "listen").unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
    }
}
