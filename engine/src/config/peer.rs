//! A configured peer: `IP:port#NodeId`, the NodeId pinning the identity the peer must present.

use ronode_proto::id::AddrError;
use ronode_proto::NodeId;
use std::fmt;
use std::net::SocketAddr;

/// A peer to dial: where, and which NodeId its certificate must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddr {
    pub addr: SocketAddr,
    pub node_id: NodeId,
}

impl PeerAddr {
    /// Strict parse of `IP:port#NodeId` (64 lowercase hex digits). Names are not resolved and the
    /// NodeId is required: a configured peer is always pinned.
    pub fn parse(s: &str) -> Result<PeerAddr, String> {
        let Some((addr, id)) = s.rsplit_once('#') else {
            return Err(
                "must be \"IP:port#NodeId\": the #NodeId is missing (a configured \
                        peer is always pinned to its identity)"
                    .to_owned(),
            );
        };
        let addr: SocketAddr = addr.parse().map_err(|_| {
            format!("{addr:?} is not an IP:port address (names are not resolved here)")
        })?;
        if addr.port() == 0 {
            return Err(format!("{addr}: port 0 cannot be dialled"));
        }
        let node_id = NodeId::parse_hex(id).map_err(|e| match e {
            AddrError::Length(n) => format!("the NodeId must be 64 hex digits, found {n}"),
            _ => "the NodeId must be lowercase hex digits only (0-9, a-f)".to_owned(),
        })?;
        Ok(PeerAddr { addr, node_id })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.addr, self.node_id)
    }
}

impl TryFrom<String> for PeerAddr {
    type Error = String;
    fn try_from(s: String) -> Result<PeerAddr, String> {
        PeerAddr::parse(&s)
    }
}

impl From<PeerAddr> for String {
    fn from(p: PeerAddr) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e11b7ba139dda67198474e88ca2bd0e8a056b70441e22d309424382c0a73a72a";

    #[test]
    fn parses_and_prints_back() {
        let s = format!("10.0.0.1:9500#{ID}");
        let p = PeerAddr::parse(&s).unwrap();
        assert_eq!(p.addr, "10.0.0.1:9500".parse().unwrap());
        assert_eq!(p.to_string(), s);
        let v6 = format!("[::1]:9500#{ID}");
        assert_eq!(PeerAddr::parse(&v6).unwrap().to_string(), v6);
    }

    #[test]
    fn refuses_what_cannot_be_pinned_or_dialled() {
        let cases = [
            ("10.0.0.1:9500".to_owned(), "#NodeId is missing"),
            (format!("node.example:9500#{ID}"), "not an IP:port"),
            (format!("10.0.0.1:0#{ID}"), "port 0"),
            ("10.0.0.1:9500#abc".to_owned(), "64 hex digits, found 3"),
            (
                format!("10.0.0.1:9500#{}", ID.to_uppercase()),
                "lowercase hex",
            ),
        ];
        for (input, want) in cases {
            let err = PeerAddr::parse(&input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
