//! `crash-puts`: the two halves of a kill -9 round (`scripts/crash-rounds.sh`).
//!
//! - `put`: `--threads` sessions PUT random objects (mostly small, every tenth 5 MiB, so that
//!   some are past the read cache) until killed, appending one line `SEED SIZE` to `--acked`
//!   for each PUT the node answered 200, written and flushed right after the answer: the file
//!   lists what was acknowledged (a line cut by the kill is ignored by `check`).
//! - `check`: GETs every acknowledged object and compares its bytes with the ones regenerated
//!   from its seed; prints `acknowledged A recovered R wrong W missing M failed F`, where wrong
//!   counts answers with other bytes (the SDK refuses bytes that do not hash to the address, so
//!   a damaged object served with 200 shows as a digest error, counted here as wrong).

use clap::{Parser, Subcommand};
use ronode_client::{Client, ClientError, ClientOptions, ObjectAddr};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Put {
        #[arg(long)]
        node: SocketAddr,
        /// A `scope=put` capability, hex.
        #[arg(long)]
        cap: String,
        #[arg(long)]
        acked: PathBuf,
        #[arg(long, default_value_t = 8)]
        threads: u64,
        /// Makes this run's objects differ from other runs'.
        #[arg(long, default_value_t = 1)]
        salt: u64,
    },
    Check {
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        acked: PathBuf,
    },
}

/// Bytes of object `seed` (xorshift; a seed of 0 is never used).
fn object(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// The size of object number `n`: every tenth 5 MiB, the others 1 KiB to about 200 KiB.
fn size_of(n: u64) -> usize {
    if n % 10 == 9 {
        5 * 1024 * 1024
    } else {
        1024 + (n.wrapping_mul(2_654_435_761) % (200 * 1024)) as usize
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

fn put(node: SocketAddr, cap: &[u8], acked: PathBuf, threads: u64, salt: u64) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&acked)
        .expect("open the acknowledged list");
    let file = Arc::new(Mutex::new(file));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (file, cap) = (file.clone(), cap.to_vec());
            std::thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    let Ok(mut c) = Client::connect(node, &options()) else {
                        return; // the node is gone
                    };
                    loop {
                        n += 1;
                        // Odd seeds only: the generator folds seed and seed|1 together.
                        let seed = ((salt << 40) | (t << 32) | n) * 2 + 1;
                        let size = size_of(n);
                        match c.put(&object(seed, size), Some(&cap)) {
                            Ok(_) => {
                                let mut f = file.lock().unwrap();
                                let _ = writeln!(f, "{seed} {size}");
                                let _ = f.flush();
                            }
                            // A new session (a refusal may end this one), or none: the
                            // node is gone.
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn check(node: SocketAddr, acked: PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read(&acked)?;
    let list: Vec<(u64, usize)> = text
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let (seed, size) = l.split_once(' ')?;
            Some((seed.parse().ok()?, size.parse().ok()?))
        })
        .collect();
    let (mut recovered, mut wrong, mut missing, mut failed) = (0, 0, 0, 0);
    let mut c = Client::connect(node, &options())?;
    for &(seed, size) in &list {
        let data = object(seed, size);
        let fresh = match c.get(&ObjectAddr::of(&data)) {
            Ok(got) if got == data => {
                recovered += 1;
                false
            }
            Ok(_) => {
                wrong += 1;
                false
            }
            Err(ClientError::BadDigest { .. }) => {
                wrong += 1;
                true
            }
            Err(e) if e.is_not_found() => {
                missing += 1;
                false
            }
            Err(e) => {
                eprintln!("GET of seed {seed}: {e}");
                failed += 1;
                true
            }
        };
        // An error may have ended the session.
        if fresh {
            c = Client::connect(node, &options())?;
        }
    }
    println!(
        "acknowledged {} recovered {recovered} wrong {wrong} missing {missing} failed {failed}",
        list.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Put {
            node,
            cap,
            acked,
            threads,
            salt,
        } => put(node, &hex::decode(cap)?, acked, threads, salt),
        Cmd::Check { node, acked } => check(node, acked)?,
    }
    Ok(())
}
