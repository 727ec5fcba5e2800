//! `ronode-bench`: criterion micro-benchmarks (under `benches/`) and load generators
//! ([`smoke`], the `overlay-smoke` binary). Shared, deterministic inputs live here so every
//! bench measures the same bytes.

pub mod smoke;

use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::msg::dht::NodeInfo;
use ronode_proto::NodeId;

/// `n` bytes of varied lowercase text: compresses about 3x with zstd, so COMP benches stay
/// within the ratio cap the sender rule enforces.
pub fn pseudo_text(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b"abcdefghijklmnopqrstuvwxyz .,;:!"[(x >> 16) as usize % 32]
        })
        .collect()
}

/// `n` pseudo-random 32-byte ids from `seed` (xorshift64*, deterministic).
pub fn random_ids(n: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut x = seed.max(1);
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|_| {
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_be_bytes());
            }
            id
        })
        .collect()
}

/// `n` realistic DHT entries with ids from [`random_ids`]`(n, seed)`: two addresses each (IPv4
/// and IPv6 `host:port`), an ASN and a `last_seen`, as a routing table holds them.
pub fn node_infos(n: usize, seed: u64) -> Vec<NodeInfo> {
    random_ids(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, id)| NodeInfo {
            id: NodeId(id),
            addrs: vec![
                format!("198.51.{}.{}:7000", i / 250, i % 250 + 1),
                format!("[2001:db8::{:x}]:7000", i + 1),
            ],
            asn: Some(64_512 + (i as u32 % 7)),
            last_seen: Some(1_700_000_000 + i as u64),
        })
        .collect()
}

/// A node identity from fixed seeds derived from `n` (deterministic: same `n`, same keys).
pub fn identity(n: u16) -> Identity {
    let [hi, lo] = n.to_be_bytes();
    let mut seeds = IdentitySeeds {
        ed25519: [lo; 32],
        ml_dsa: [lo ^ 0x5a; 32],
    };
    seeds.ed25519[0] = hi;
    seeds.ml_dsa[0] = hi;
    Identity::from_seeds(&seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_deterministic_and_compressible() {
        assert_eq!(random_ids(3, 9), random_ids(3, 9));
        assert_ne!(random_ids(1, 1), random_ids(1, 2));
        assert_eq!(node_infos(20, 5), node_infos(20, 5));
        assert_eq!(identity(3).node_id(), identity(3).node_id());
        assert_ne!(identity(3).node_id(), identity(259).node_id());
        let text = pseudo_text(64 * 1024);
        let z = zstd_len(&text);
        assert!(
            z < text.len() && text.len() <= z * 10,
            "ratio {}",
            text.len() as f64 / z as f64
        );
    }

    fn zstd_len(data: &[u8]) -> usize {
        ronode_proto::comp::Deflater::default()
            .compress(data, 10)
            .map_or(data.len(), <[u8]>::len)
    }
}
