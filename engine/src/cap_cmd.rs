//! `ronode cap mint`: a capability token from the node's root key (readable while the node runs).
//! A token's text form, on the command line and in `RONODE_CAP`, is the lowercase hex of its CBOR
//! bytes (docs/PROTOCOL.md section 10).

use crate::keystore::{self, CAP_ROOT_FILE};
use anyhow::{bail, Context, Result};
use ronode_proto::cap::{Capability, Caveat};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What to put in the token.
#[derive(Debug)]
pub struct MintRequest<'a> {
    pub scope: &'a str,
    pub ttl_s: u64,
    pub max_bytes: Option<u64>,
    pub tenant: Option<u128>,
}

/// Mints a token under `data_dir`'s root key (or `key_file`), expiring `ttl_s` from now; returns
/// its text form.
pub fn mint(data_dir: &Path, key_file: Option<&Path>, req: &MintRequest<'_>) -> Result<String> {
    let path = key_file.map_or_else(|| data_dir.join(CAP_ROOT_FILE), Path::to_path_buf);
    let (kid, key) = keystore::load_cap_root(&path)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut caveats = vec![
        format!("scope={}", req.scope),
        format!("exp={}", now.saturating_add(req.ttl_s)),
    ];
    if let Some(n) = req.max_bytes {
        caveats.push(format!("max_bytes={n}"));
    }
    if let Some(t) = req.tenant {
        caveats.push(format!("tenant=0x{t:x}"));
    }
    // Refuse to mint what a node would refuse to honour.
    for c in &caveats {
        Caveat::parse(c).map_err(|e| anyhow::anyhow!("caveat {c:?}: {e}"))?;
    }
    let refs: Vec<&str> = caveats.iter().map(String::as_str).collect();
    Ok(hex::encode(Capability::mint(&key, kid, &refs).encode()))
}

/// Parses a duration such as `90`, `90s`, `30m`, `24h` or `7d` into seconds.
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("ttl {s:?}: expected a number and a unit (s, m, h, d)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("ttl {s:?}: unit must be s, m, h or d")),
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("ttl {s:?}: must be between 1 s and centuries")),
        Some(v) => Ok(v),
    }
}

/// Checks a scope list before minting: `get`, `put`, `gossip`, comma-separated.
pub fn check_scope(scope: &str) -> Result<()> {
    if scope.is_empty()
        || !scope
            .split(',')
            .all(|op| matches!(op, "get" | "put" | "gossip"))
    {
        bail!("scope {scope:?}: a comma-separated list of get, put, gossip");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("24h"), Ok(86_400));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0s").is_err() && parse_ttl("1y").is_err() && parse_ttl("h").is_err());
    }

    #[test]
    fn scopes() {
        assert!(check_scope("put").is_ok() && check_scope("get,put,gossip").is_ok());
        assert!(
            check_scope("").is_err()
                && check_scope("admin").is_err()
                && check_scope("put,").is_err()
        );
    }
}
