//! `ronode init`: create (or check) the node's keys in its data directory.

use crate::keystore::{self, CAP_ROOT_FILE, IDENTITY_FILE};
use anyhow::{Context, Result};
use ronode_proto::identity::Identity;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// What `init` found or made.
#[derive(Debug)]
pub struct Keys {
    pub identity: Identity,
    pub cap_kid: [u8; 8],
    pub created: Vec<&'static str>,
}

/// Loads the identity and capability root key from `dir`, creating whichever is missing. A key
/// file readable by group or others is refused, naming the file.
pub fn ensure_keys(dir: &Path) -> Result<Keys> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let mut created = Vec::new();
    let identity_path = dir.join(IDENTITY_FILE);
    if !identity_path.exists() {
        keystore::save_identity(dir, &keystore::generate_seeds())
            .with_context(|| format!("writing {}", identity_path.display()))?;
        created.push(IDENTITY_FILE);
    }
    let seeds = keystore::load_identity(&identity_path)?;
    let cap_path = dir.join(CAP_ROOT_FILE);
    if !cap_path.exists() {
        let (kid, key) = keystore::generate_cap_root();
        keystore::save_cap_root(dir, &kid, &key)
            .with_context(|| format!("writing {}", cap_path.display()))?;
        created.push(CAP_ROOT_FILE);
    }
    let (cap_kid, _key) = keystore::load_cap_root(&cap_path)?;
    Ok(Keys {
        identity: Identity::from_seeds(&seeds),
        cap_kid,
        created,
    })
}
