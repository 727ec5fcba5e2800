//! What keeps two nodes from stepping on each other: the data directory lock, the start-up lock
//! on a port, the port probe, and the listeners bound before the lock is let go.
//!
//! The shards' listeners set SO_REUSEPORT (the kernel spreads connections over them), and the
//! kernel lets any process of the same user join such a group: two nodes binding one port would
//! both run and split its clients. So a node takes the port before it listens, in this order,
//! all in the main thread: the start-up lock of the port ([`lock_port_start`]), the probe (a
//! plain bind, which any listener on the port refuses, ronode's or another program's), the
//! listeners ([`bind_listeners`], handed to the shards), and only then lets the lock go. A
//! second node starting at the same moment waits for the lock and then finds the listeners;
//! one starting later finds them at once. The lock lives only through that start-up: after it
//! the listeners themselves hold the port.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::net::{SocketAddr, TcpListener};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
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

/// The start-up lock of a TCP port, held from the probe until the listeners are bound.
#[derive(Debug)]
pub struct PortLock {
    _socket: UnixListener,
}

/// Takes the start-up lock of `port` (any address: a node on 0.0.0.0 and one on 127.0.0.1 would
/// overlap), waiting while another node holds it (its start-up takes milliseconds), at most
/// [`PORT_LOCK_PATIENCE`]. `None` for port 0, which the kernel makes unique.
///
/// The lock is a unix socket in the abstract namespace named after the port: binding it is
/// exclusive, the kernel releases it when the process dies however it dies (no stale lock file
/// to clean after a kill -9), it needs no writable directory (two nodes may have different data
/// directories), and like TCP ports it is per network namespace, so nodes in separate
/// containers do not block each other.
pub fn lock_port_start(addr: SocketAddr, what: &str) -> Result<Option<PortLock>> {
    lock_port_within(addr, what, PORT_LOCK_PATIENCE)
}

fn lock_port_within(
    addr: SocketAddr,
    what: &str,
    patience: std::time::Duration,
) -> Result<Option<PortLock>> {
    if addr.port() == 0 {
        return Ok(None);
    }
    let name = format!("ronode-start-tcp-port-{}", addr.port());
    let lock = UnixAddr::from_abstract_name(name.as_bytes())
        .with_context(|| format!("start-up lock {name}"))?;
    let started = std::time::Instant::now();
    loop {
        match UnixListener::bind_addr(&lock) {
            Ok(socket) => return Ok(Some(PortLock { _socket: socket })),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if started.elapsed() >= patience {
                    bail!(
                        "{what} address {addr} is in use: another ronode process has been \
                         starting on port {} for {patience:?} (start-up lock @{name})",
                        addr.port()
                    );
                }
                std::thread::sleep(PROBE_PAUSE);
            }
            Err(e) => return Err(e).with_context(|| format!("start-up lock @{name}")),
        }
    }
}

/// How long a node waits for another node's start-up on the same port.
const PORT_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The shards' listeners on `addr`, one per shard, bound and listening: SO_REUSEPORT (the
/// kernel spreads connections over them) and SO_REUSEADDR (a node restarted on its port binds
/// even while the connections its predecessor closed linger in TIME_WAIT on it; they inherit
/// the option from the listener). Port 0: the first gets a port, the others join it.
pub fn bind_listeners(addr: SocketAddr, count: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        let listener = TcpListener::from(socket);
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Connections waiting for a shard's accept (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

/// Checks that nothing listens on `addr` with a plain bind (SO_REUSEADDR, never SO_REUSEPORT),
/// which a listening socket refuses whatever its options: a running node, or another program.
/// The probe socket is closed before returning (a socket without SO_REUSEPORT would keep the
/// shards from binding); port 0 needs no probe.
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
    fn the_start_lock_is_exclusive_per_port_and_released_on_drop() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(lock_port_start("127.0.0.1:0".parse().unwrap(), "listen")
            .unwrap()
            .is_none());
        // A port number no other test or node uses: the lock is host-wide.
        let addr = SocketAddr::new(addr.ip(), 65_021);
        let first = lock_port_start(addr, "listen").unwrap();
        let other_ip = SocketAddr::new("0.0.0.0".parse().unwrap(), 65_021);
        let err = lock_port_within(other_ip, "listen", PROBE_PAUSE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in use") && err.contains("0.0.0.0:65021"),
            "{err}"
        );
        drop(first);
        assert!(lock_port_start(addr, "listen").unwrap().is_some());
    }

    #[test]
    fn listeners_share_the_port_the_first_got_and_the_probe_sees_them() {
        let listeners = bind_listeners("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let addr = listeners[0].local_addr().unwrap();
        assert!(listeners.iter().all(|l| l.local_addr().unwrap() == addr));
        let err = probe_port(addr, "listen").unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
    }

    #[test]
    fn probe_refuses_a_taken_port() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = probe_port(addr, "listen").unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
    }
}
