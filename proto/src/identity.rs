//! Node identity (PROTOCOL.md sections 1 and 11): an Ed25519 key pair and an ML-DSA-87 key pair, both derived
//! deterministically from 32-byte seeds the caller supplies (the engine draws them from the OS RNG
//! once and keeps them in the data directory; tests pass fixed bytes).
//!
//! `NodeId = BLAKE3-256(ed25519_pk || BLAKE3-256(ml_dsa_87_pk))`, see [`NodeId::from_keys`].

use std::fmt;

use aws_lc_rs::signature::{KeyPair as _, PqdsaKeyPair, ML_DSA_87_SIGNING};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::id::NodeId;

/// Length of an ML-DSA-87 public key (FIPS 204 encoding).
pub const ML_DSA_87_PK_LEN: usize = 2_592;
/// Length of an ML-DSA-87 signature.
pub const ML_DSA_87_SIG_LEN: usize = 4_627;

/// The secret material an [`Identity`] is rebuilt from: the Ed25519 secret key (RFC 8032 seed)
/// and the ML-DSA-87 key-generation seed (FIPS 204 `xi`). Both are 32 bytes.
///
/// `Debug` never prints the bytes; the memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentitySeeds {
    pub ed25519: [u8; 32],
    pub ml_dsa: [u8; 32],
}

impl fmt::Debug for IdentitySeeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentitySeeds { .. }")
    }
}

impl Drop for IdentitySeeds {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.ed25519.zeroize();
        self.ml_dsa.zeroize();
    }
}

/// A node's two signing keys and the NodeId they define.
#[derive(Clone)]
pub struct Identity {
    seeds: IdentitySeeds,
    ed25519: SigningKey,
    ml_dsa: PqdsaKeyPair,
    ml_dsa_pk_hash: [u8; 32],
    node_id: NodeId,
}

impl Identity {
    /// Builds the identity from its seeds; the same seeds always give the same keys and NodeId.
    pub fn from_seeds(seeds: &IdentitySeeds) -> Identity {
        let ed25519 = SigningKey::from_bytes(&seeds.ed25519);
        // `from_seed` only rejects a seed of the wrong length, and ours is a `[u8; 32]`.
        let ml_dsa = PqdsaKeyPair::from_seed(&ML_DSA_87_SIGNING, &seeds.ml_dsa)
            .expect("a 32-byte seed is a valid ML-DSA-87 seed");
        let ml_dsa_pk = ml_dsa.public_key().as_ref();
        debug_assert_eq!(ml_dsa_pk.len(), ML_DSA_87_PK_LEN);
        let ml_dsa_pk_hash = *blake3::hash(ml_dsa_pk).as_bytes();
        let node_id = NodeId::from_key_hashes(ed25519.verifying_key().as_bytes(), &ml_dsa_pk_hash);
        Identity {
            seeds: seeds.clone(),
            ed25519,
            ml_dsa,
            ml_dsa_pk_hash,
            node_id,
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn ed25519_pk(&self) -> [u8; 32] {
        self.ed25519.verifying_key().to_bytes()
    }

    /// The 2,592-byte ML-DSA-87 public key.
    pub fn ml_dsa_pk(&self) -> &[u8] {
        self.ml_dsa.public_key().as_ref()
    }

    /// BLAKE3-256 of [`Identity::ml_dsa_pk`] (what the certificate's CommonName carries).
    pub fn ml_dsa_pk_hash(&self) -> [u8; 32] {
        self.ml_dsa_pk_hash
    }

    /// Ed25519 signature (RFC 8032, deterministic) over `msg`.
    pub fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        self.ed25519.sign(msg).to_bytes()
    }

    /// ML-DSA-87 signature (4,627 bytes) over `msg`, empty context. aws-lc signs in FIPS 204's
    /// hedged mode, so two signatures of the same message differ; both verify.
    pub fn sign_ml_dsa(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; ML_DSA_87_SIG_LEN];
        // Signing only fails for a short output buffer or an internal aws-lc fault.
        let n = self
            .ml_dsa
            .sign(msg, &mut sig)
            .expect("ML-DSA-87 signing with a valid key and a full-size buffer");
        sig.truncate(n);
        sig
    }

    /// The seeds, for the key store to save.
    pub fn seeds(&self) -> &IdentitySeeds {
        &self.seeds
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ML_DSA_87};
    use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};

    pub(crate) fn test_identity(n: u8) -> Identity {
        Identity::from_seeds(&IdentitySeeds {
            ed25519: [n; 32],
            ml_dsa: [n.wrapping_add(100); 32],
        })
    }

    #[test]
    fn deterministic_and_sizes() {
        let a = test_identity(1);
        let b = test_identity(1);
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(a.ed25519_pk(), b.ed25519_pk());
        assert_eq!(a.ml_dsa_pk(), b.ml_dsa_pk());
        assert_eq!(a.ml_dsa_pk().len(), ML_DSA_87_PK_LEN);
        assert_eq!(a.ml_dsa_pk_hash(), *blake3::hash(a.ml_dsa_pk()).as_bytes());
        assert_eq!(
            a.node_id(),
            NodeId::from_keys(&a.ed25519_pk(), a.ml_dsa_pk())
        );
        assert_eq!(
            a.seeds(),
            &IdentitySeeds {
                ed25519: [1; 32],
                ml_dsa: [101; 32]
            }
        );
        assert_ne!(a.node_id(), test_identity(2).node_id());
        // Changing only the ML-DSA seed changes the id: it commits to both keys.
        let c = Identity::from_seeds(&IdentitySeeds {
            ed25519: [1; 32],
            ml_dsa: [7; 32],
        });
        assert_eq!(c.ed25519_pk(), a.ed25519_pk());
        assert_ne!(c.node_id(), a.node_id());
    }

    #[test]
    fn signatures_verify() {
        let id = test_identity(3);
        let msg = b"ron signature test";
        let sig = id.sign_ed25519(msg);
        let vk = VerifyingKey::from_bytes(&id.ed25519_pk()).unwrap();
        assert!(vk.verify(msg, &Signature::from_bytes(&sig)).is_ok());
        assert!(vk.verify(b"other", &Signature::from_bytes(&sig)).is_err());

        let pq = id.sign_ml_dsa(msg);
        assert_eq!(pq.len(), ML_DSA_87_SIG_LEN);
        let pk = UnparsedPublicKey::new(&ML_DSA_87, id.ml_dsa_pk());
        assert!(pk.verify(msg, &pq).is_ok());
        assert!(pk.verify(b"other", &pq).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let id = test_identity(4);
        let seeds = format!("{:?}", id.seeds());
        assert_eq!(seeds, "IdentitySeeds { .. }");
        let dbg = format!("{id:?}");
        assert!(dbg.contains(&id.node_id().to_string()));
        let seed_hex = hex::encode([4u8; 32]);
        assert!(!dbg.contains(&seed_hex) && !dbg.contains("[4, 4"), "{dbg}");
    }
}
