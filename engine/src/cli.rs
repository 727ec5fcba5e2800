//! Command-line interface of the `ronode` binary.

use crate::config::{ConfigOverrides, PqMode, Profile};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// ronode: a bare-metal node for a peer-to-peer content network (overlay + DHT).
#[derive(Debug, Parser)]
#[command(name = "ronode", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node (OAP/1 over TLS 1.3 on --listen, admin HTTP on --admin) until SIGINT or
    /// SIGTERM, then drain and exit 0. Logs go to stderr, filtered by RONODE_LOG (e.g. `info`,
    /// `warn,ronode::node::peers=debug`; default `info`).
    Run(RunArgs),
    /// Store a file on a node; prints its `b3:` address as the last line.
    Put(PutArgs),
    /// Fetch an object by address, verify its digest, write it to stdout or -o FILE.
    Get(GetArgs),
    /// Ask a node for an object's size.
    Head(HeadArgs),
    /// Ping a node: TLS handshake, HELLO, one PING; prints RTT, TLS group and the node's NodeId.
    Ping(PingArgs),
    /// Capability tokens.
    #[command(subcommand)]
    Cap(CapCommand),
    /// Publish to and subscribe to gossip topics.
    #[command(subcommand)]
    Gossip(GossipCommand),
    /// Create the node's identity and capability root key in the data directory (or, when they
    /// exist, check their permissions and show the NodeId).
    Init(InitArgs),
    /// Inspect and build OAP/1 frames (the wire inspector for operators).
    #[command(subcommand)]
    Frame(FrameCommand),
    /// Show the node's effective configuration, or every knob.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum GossipCommand {
    /// Publish one message on a topic (needs a `scope=gossip` capability unless the node's
    /// `gossip.pub_policy` is `open`).
    Pub(GossipPubArgs),
    /// Subscribe to a topic and print one JSON line per message (topic, msg_id, ts, hops, data
    /// as UTF-8 or, when it is not, `data_hex`) until interrupted.
    Sub(GossipSubArgs),
}

#[derive(Debug, Args)]
pub struct GossipPubArgs {
    pub topic: String,
    pub message: String,
    #[command(flatten)]
    pub node: PeerArgs,
    /// Capability token (hex, from `ronode cap mint --scope gossip`).
    #[arg(long, env = "RONODE_CAP", hide_env_values = true)]
    pub cap: Option<String>,
}

#[derive(Debug, Args)]
pub struct GossipSubArgs {
    pub topic: String,
    #[command(flatten)]
    pub node: PeerArgs,
}

#[derive(Debug, Subcommand)]
pub enum FrameCommand {
    /// Decode exactly one OAP/1 frame from hex and print it as one JSON object.
    ///
    /// Runs the frame-level checks only (header rules and COMP caps, in PROTOCOL.md's order), not
    /// the session's. An invalid frame, or bytes left after it, exits 1 with
    /// `error: <label>: <explanation>` on stderr.
    Decode(DecodeArgs),
    /// Print the hex of a HELLO request frame.
    Hello(HelloArgs),
}

/// How to reach a node, shared by the client commands.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The node, as IP:port or IP:port#NodeId (the NodeId pins the node's identity).
    #[arg(long, value_name = "ADDR[#NODEID]")]
    pub peer: String,
    /// TLS key exchange to offer.
    #[arg(long, default_value = "hybrid", value_name = "off|hybrid|pq_only")]
    pub pq_mode: ronode_client::tls::PqMode,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The file to store.
    pub file: PathBuf,
    #[command(flatten)]
    pub node: PeerArgs,
    /// Capability token (hex, from `ronode cap mint`).
    #[arg(long, env = "RONODE_CAP", hide_env_values = true)]
    pub cap: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The object's address, `b3:` + 64 lowercase hex digits.
    pub addr: ronode_proto::ObjectAddr,
    #[command(flatten)]
    pub node: PeerArgs,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HeadArgs {
    /// The object's address.
    pub addr: ronode_proto::ObjectAddr,
    #[command(flatten)]
    pub node: PeerArgs,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    #[command(flatten)]
    pub node: PeerArgs,
    /// How many pings.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
}

#[derive(Debug, Subcommand)]
pub enum CapCommand {
    /// Mint a token from the root key; prints it (hex of its CBOR) as the last line.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// Operations allowed: get, put, gossip (comma-separated).
    #[arg(long)]
    pub scope: String,
    /// Lifetime: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = crate::cap_cmd::parse_ttl)]
    pub ttl: u64,
    /// Largest object a PUT under this token may store.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Tenant the token is bound to (hex).
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<u128>,
    /// Data directory holding cap_root.key.
    #[arg(long, env = "RONODE_DATA_DIR", default_value = "./ronode-data")]
    pub data_dir: std::path::PathBuf,
    /// Root key file instead of DIR/cap_root.key (an amnesia node's --cap-key).
    #[arg(long)]
    pub cap_key: Option<std::path::PathBuf>,
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

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, validated: defaults < profile < file <
    /// RONODE_* environment < flags. A bad configuration exits 2 naming the key and the reason.
    Show(NodeArgs),
    /// Print every knob with its environment variable, default and safe range (tuning/KNOBS.md).
    Knobs,
}

/// `ronode run`: the node's configuration, and how it logs.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Log lines on stderr as text or as one JSON object per line (filter: RONODE_LOG).
    #[arg(
        long,
        env = "RONODE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "text|json"
    )]
    pub log_format: crate::logging::LogFormat,
}

/// The node's configuration flags; they override every other layer. No `env` here: the
/// configuration reads `RONODE_*` itself, one layer below the flags.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Profile laid over the defaults (also RONODE_PROFILE).
    #[arg(long, value_name = "micronode|macronode")]
    pub profile: Option<Profile>,
    /// Configuration file (TOML) laid over the profile (also RONODE_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overlay address (OAP/1 over TLS).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Admin HTTP address (/metrics, /readyz, ...).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Data directory (identity, capability root key, disk store).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Executors, one per core (0: every online core).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Pin each executor to its core.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub pin: Option<bool>,
    /// Write nothing to disk (RAM store).
    #[arg(long)]
    pub amnesia: bool,
    /// TLS key exchange.
    #[arg(long, value_name = "off|hybrid|pq_only")]
    pub pq_mode: Option<PqMode>,
    /// Identity key file (instead of DIR/identity.key).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Capability root key file (instead of DIR/cap_root.key).
    #[arg(long, value_name = "FILE")]
    pub cap_key: Option<PathBuf>,
    /// Peers to dial, IP:port#NodeId, comma-separated or repeated (replaces the configured
    /// list).
    #[arg(
        long = "peers",
        visible_alias = "peer",
        value_name = "ADDR#NODEID,...",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
}

impl NodeArgs {
    /// The flags as the configuration's top layer.
    pub fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            profile: self.profile,
            config: self.config.clone(),
            listen: self.listen,
            admin: self.admin,
            data_dir: self.data_dir.clone(),
            shards: self.shards,
            pin: self.pin,
            amnesia: self.amnesia.then_some(true),
            pq_mode: self.pq_mode,
            identity: self.identity.clone(),
            cap_key: self.cap_key.clone(),
            peers: self.peers.clone(),
        }
    }
}

/// `on` or `off` (also `true` or `false`).
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}
