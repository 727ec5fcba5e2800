//! Command-line interface of the `ronode` binary.

use clap::{Args, Parser, Subcommand};

/// ronode: a bare-metal node for a peer-to-peer content network (overlay + DHT).
#[derive(Debug, Parser)]
#[command(name = "ronode", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the node's identity and capability root key in the data directory (or, when they
    /// exist, check their permissions and show the NodeId).
    Init(InitArgs),
    /// Inspect and build OAP/1 frames (the wire inspector for operators).
    #[command(subcommand)]
    Frame(FrameCommand),
}

#[derive(Debug, Subcommand)]
pub enum FrameCommand {
    /// Decode exactly one OAP/1 frame from hex and print it as one JSON object.
    ///
    /// Runs the frame-level checks only (header rules and COMP caps, in WIRE.md's order), not
    /// the session's. An invalid frame, or bytes left after it, exits 1 with
    /// `error: <label>: <explanation>` on stderr.
    Decode(DecodeArgs),
    /// Print the hex of a HELLO request frame.
    Hello(HelloArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory holding `identity.key` and `cap_root.key` (created with mode 0700).
    #[arg(long, env = "RONODE_DATA_DIR", default_value = "./ronode-data")]
    pub data_dir: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The frame as hex (ASCII whitespace is ignored), or `-` to read the hex from stdin.
    pub hex: String,
}

#[derive(Debug, Args)]
pub struct HelloArgs {
    /// User agent to announce (`"ua"`).
    #[arg(long, default_value = concat!("ronode/", env!("CARGO_PKG_VERSION")))]
    pub ua: String,
    /// Correlation id of the request.
    #[arg(long, default_value_t = 1)]
    pub corr: u64,
    /// Tenant id as hex (up to 32 digits, optional `0x`).
    #[arg(long, default_value = "0", value_parser = parse_tenant)]
    pub tenant: u128,
    /// Ask the node to lower max_frame to this many bytes (4096..=1048576).
    #[arg(long)]
    pub max_frame: Option<u32>,
}

/// Parses a tenant id given as up to 32 hex digits, with or without `0x`.
pub fn parse_tenant(s: &str) -> Result<u128, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "tenant must be 1 to 32 hex digits, optionally prefixed by 0x (got {s:?})"
        ));
    }
    u128::from_str_radix(digits, 16).map_err(|e| e.to_string())
}
