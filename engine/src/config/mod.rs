//! The node's configuration.
//!
//! Layers, lowest precedence first: the defaults (the knob table, [`knobs::KNOBS`]) < a profile
//! (`tuning/micronode.toml` or `tuning/macronode.toml`, embedded) < a configuration file
//! (`--config FILE` or `RONODE_CONFIG`) < `RONODE_*` environment variables < flags
//! ([`ConfigOverrides`]). Each layer is a TOML table whose keys are checked against the knob
//! table; the layers are merged key by key, every value is checked against its knob (type and
//! safe range), the values `amnesia` implies are applied, the result is deserialized once
//! (`deny_unknown_fields` throughout) and the rules between knobs are checked. The first
//! problem stops the load with an error naming the key, the value, where it came from and why.

mod check;
mod error;
pub mod knobs;
mod layers;
pub mod markdown;
mod peer;
mod rules;
#[cfg(test)]
mod tests;

pub use error::{ConfigError, Source};
pub use peer::PeerAddr;

use layers::{Layered, Origins};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A starting point for a node's configuration, laid over the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// An edge node: amnesia, RAM store, small queues and limits.
    Micronode,
    /// A durable node: disk store, larger queues and limits.
    Macronode,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Micronode, Profile::Macronode];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Micronode => "micronode",
            Profile::Macronode => "macronode",
        }
    }

    /// Where the profile lives in the repository (it is embedded in the binary).
    pub fn path(self) -> &'static str {
        match self {
            Profile::Micronode => "tuning/micronode.toml",
            Profile::Macronode => "tuning/macronode.toml",
        }
    }

    /// The profile's TOML text.
    pub fn toml(self) -> &'static str {
        match self {
            Profile::Micronode => include_str!("../../../tuning/micronode.toml"),
            Profile::Macronode => include_str!("../../../tuning/macronode.toml"),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?}: must be micronode or macronode"))
    }
}

/// TLS key exchange (PROTOCOL.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PqMode {
    /// Classical X25519 only.
    Off,
    /// X25519MLKEM768 preferred, X25519 allowed.
    Hybrid,
    /// X25519MLKEM768 only.
    PqOnly,
}

impl From<PqMode> for ronode_client::tls::PqMode {
    fn from(mode: PqMode) -> Self {
        match mode {
            PqMode::Off => ronode_client::tls::PqMode::Off,
            PqMode::Hybrid => ronode_client::tls::PqMode::Hybrid,
            PqMode::PqOnly => ronode_client::tls::PqMode::PqOnly,
        }
    }
}

impl PqMode {
    pub fn name(self) -> &'static str {
        match self {
            PqMode::Off => "off",
            PqMode::Hybrid => "hybrid",
            PqMode::PqOnly => "pq_only",
        }
    }
}

impl fmt::Display for PqMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PqMode {
    type Err = String;
    fn from_str(s: &str) -> Result<PqMode, String> {
        [PqMode::Off, PqMode::Hybrid, PqMode::PqOnly]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown pq_mode {s:?}: must be off, hybrid or pq_only"))
    }
}

/// Where objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Disk,
    Ram,
}

/// Who may use an object operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// A capability with the operation's scope is required.
    Token,
    /// Anyone who connects.
    Open,
}

/// The node's effective configuration. See `tuning/KNOBS.md` for every knob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    /// 0: one shard per online core.
    pub shards: u32,
    pub pin: bool,
    pub amnesia: bool,
    pub pq_mode: PqMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_key: Option<PathBuf>,
    pub drain_timeout_ms: u64,
    pub peers: Vec<PeerAddr>,
    pub engine: EngineConfig,
    pub session: SessionConfig,
    pub objects: ObjectsConfig,
    pub store: StoreConfig,
    pub queues: QueuesConfig,
    pub gossip: GossipConfig,
}

/// `[engine]`: each glommio executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub io_memory_bytes: u64,
    pub ring_depth: u32,
    pub spin_before_park_us: u64,
}

/// `[session]`: each TLS session and the node's connection limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub handshake_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub inflight_frames: u32,
    pub max_rps: u32,
    pub burst: u32,
    pub send_window_frames: u32,
    pub max_conns: u32,
    pub chunk_bytes: u32,
    pub max_frame: u32,
}

/// `[objects]`: the object plane (app 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsConfig {
    pub max_bytes: u64,
    pub put_policy: Policy,
    pub get_policy: Policy,
    pub fetch_peers: u32,
    pub fetch_timeout_ms: u64,
    pub cache_fetched: bool,
    pub put_timeout_s: u64,
}

/// `[store]`: where objects live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub capacity_bytes: u64,
    pub cache_bytes: u64,
}

/// `[queues]`: per-shard bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuesConfig {
    pub work: u32,
    pub mesh: u32,
}

/// `[gossip]`: the gossip plane (app 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipConfig {
    pub relay_fanout: u32,
    pub seed: u64,
    pub pub_policy: Policy,
    pub max_hops: u8,
    pub ihave_interval_ms: u64,
    pub topic_rate_per_s: u32,
    pub topic_burst: u32,
    pub peer_rate_per_s: u32,
    pub peer_burst: u32,
    pub message_cache: u32,
}

/// What the command line sets: the highest layer. `None` (or an empty `peers`) leaves the key
/// to the layers below; `profile` and `config` select layers instead of setting knobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    pub profile: Option<Profile>,
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<u32>,
    pub pin: Option<bool>,
    pub amnesia: Option<bool>,
    pub pq_mode: Option<PqMode>,
    pub identity: Option<PathBuf>,
    pub cap_key: Option<PathBuf>,
    /// `IP:port#NodeId` each; when not empty, replaces the configured list.
    pub peers: Vec<String>,
}

impl NodeConfig {
    /// Loads the configuration from every layer: the profile chosen by `overrides.profile` or
    /// `RONODE_PROFILE`, the file named by `overrides.config` or `RONODE_CONFIG` (read from
    /// disk), the `RONODE_*` variables of `env`, then `overrides`.
    pub fn load(
        overrides: &ConfigOverrides,
        env: &[(String, String)],
    ) -> Result<NodeConfig, ConfigError> {
        NodeConfig::load_with(overrides, env, |path| std::fs::read_to_string(path))
    }

    /// [`NodeConfig::load`] with the configuration file read by `read_file`.
    pub fn load_with(
        overrides: &ConfigOverrides,
        env: &[(String, String)],
        read_file: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<NodeConfig, ConfigError> {
        let env = layers::environment(env)?;
        let mut layered = Layered::defaults();
        if let Some(profile) = overrides.profile.or(env.profile) {
            let source = Source::Profile(profile);
            layered.apply(layers::document(profile.path(), profile.toml(), &source)?);
        }
        let file = overrides
            .config
            .clone()
            .or_else(|| env.config.as_ref().map(PathBuf::from));
        if let Some(path) = file {
            let name = path.display().to_string();
            let text = read_file(&path).map_err(|source| ConfigError::ReadFile {
                path: name.clone(),
                source,
            })?;
            let source = Source::File(name.clone());
            layered.apply(layers::document(&name, &text, &source)?);
        }
        layered.apply(env.entries);
        layered.apply(layers::flags(overrides)?);
        NodeConfig::from_layered(layered)
    }

    fn from_layered(mut layered: Layered) -> Result<NodeConfig, ConfigError> {
        check_table(&layered.table, &layered.origins)?;
        rules::apply_implied(&mut layered)?;
        let config: NodeConfig = layered
            .table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Internal(e.message().to_owned()))?;
        rules::check_relations(&config, &layered.origins)?;
        Ok(config)
    }

    /// Checks a configuration built in code as loading would: every knob in its range, the
    /// rules between knobs. (A loaded configuration has passed this already.)
    #[cfg_attr(not(test), allow(dead_code))] // for `ronode run` and tests building configs
    pub fn validate(&self) -> Result<(), ConfigError> {
        let table = self.to_table()?;
        let none = Origins::default();
        check_table(&table, &none)?;
        rules::check_relations(self, &none)
    }

    /// The effective configuration as a TOML document a file could hold (`ronode config show`).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Internal(e.to_string()))
    }

    fn to_table(&self) -> Result<toml::Table, ConfigError> {
        toml::Table::try_from(self).map_err(|e| ConfigError::Internal(e.to_string()))
    }
}

impl Default for NodeConfig {
    /// The defaults of the knob table, without profile, file, environment or flags.
    fn default() -> NodeConfig {
        NodeConfig::from_layered(Layered::defaults()).expect("the knob table's defaults are valid")
    }
}

/// Every knob's value in `table` checked against the knob table.
fn check_table(table: &toml::Table, origins: &Origins) -> Result<(), ConfigError> {
    for knob in knobs::KNOBS {
        match knobs::value(table, knob.key) {
            Some(value) => check::check_value(knob, value, origins.get(knob.key))?,
            None if knob.default == knobs::DefaultValue::Absent => {}
            None => return Err(ConfigError::Internal(format!("{} is missing", knob.key))),
        }
    }
    Ok(())
}

/// The process environment's variables for [`NodeConfig::load`]. A `RONODE_*` variable whose
/// value is not UTF-8 is refused by name; other variables are passed over.
pub fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if !name.starts_with("RONODE_") {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name, value)),
            Err(_) => return Err(ConfigError::EnvNotUnicode { name }),
        }
    }
    Ok(vars)
}
