//! Configuration errors, each naming the key (or variable, or file) and the reason, and where a
//! value came from.

use super::Profile;
use std::fmt;

/// Where a value came from: the layers, lowest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    Profile(Profile),
    /// A configuration file, named as given.
    File(String),
    /// An environment variable.
    Env(String),
    /// A command-line flag (`--listen`).
    Flag(&'static str),
    /// Set because `amnesia = true` (a disk store left to the defaults or a profile).
    ImpliedByAmnesia,
    /// The RAM store's default capacity, applied because the store is in RAM.
    RamDefault,
}

impl Source {
    /// True for a value the operator chose (file, environment or flag), not one the node supplied.
    pub fn is_explicit(&self) -> bool {
        matches!(self, Source::File(_) | Source::Env(_) | Source::Flag(_))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Profile(p) => write!(f, "profile {p}"),
            Source::File(name) => write!(f, "config file {name}"),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::ImpliedByAmnesia => f.write_str("implied by amnesia"),
            Source::RamDefault => f.write_str("the RAM store's default"),
        }
    }
}

/// `" (from <source>)"`, or nothing when the source is unknown.
struct FromSource<'a>(&'a Option<Source>);

impl fmt::Display for FromSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(source) => write!(f, " (from {source})"),
            None => Ok(()),
        }
    }
}

/// `"; did you mean X?"`, or nothing.
struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => Ok(()),
        }
    }
}

/// Why a configuration was refused. Loading stops at the first error.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {file}: {message}")]
    Syntax { file: String, message: String },
    /// A key no knob has, in a file, a profile or a flag.
    #[error("{origin}: unknown key {key}{}", Hint(.suggestion))]
    UnknownKey {
        origin: Source,
        key: String,
        suggestion: Option<String>,
    },
    /// A section given as a plain value (`session = 5`).
    #[error("{origin}: {key} must be a section ([{key}]), not a value")]
    NotASection { origin: Source, key: String },
    /// A `RONODE_*` variable that is neither a knob nor one of the CLI's own variables.
    #[error("environment: unknown variable {name}{}", Hint(.suggestion))]
    UnknownEnv {
        name: String,
        suggestion: Option<String>,
    },
    #[error("environment: {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    /// A bad `--profile`/`RONODE_PROFILE` or `RONODE_CONFIG`.
    #[error("{origin}: {reason}")]
    Selector { origin: Source, reason: String },
    /// One knob's value has the wrong type or is out of its range.
    #[error("config: {key} = {value}{}: {reason}", FromSource(.origin))]
    Invalid {
        key: String,
        value: String,
        origin: Option<Source>,
        reason: String,
    },
    /// Two knobs that cannot hold together.
    #[error("{0}")]
    Conflict(Box<Conflict>),
    /// The checked table did not deserialize: a bug in the knob table, reported, not panicked.
    #[error("config: internal: {0}")]
    Internal(String),
}

impl ConfigError {
    /// The knob, variable or file the error names first (for tests and log fields).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn subject(&self) -> &str {
        match self {
            ConfigError::ReadFile { path, .. } => path,
            ConfigError::Syntax { file, .. } => file,
            ConfigError::UnknownKey { key, .. }
            | ConfigError::NotASection { key, .. }
            | ConfigError::Invalid { key, .. } => key,
            ConfigError::Conflict(c) => &c.key,
            ConfigError::UnknownEnv { name, .. } | ConfigError::EnvNotUnicode { name } => name,
            ConfigError::Selector { .. } | ConfigError::Internal(_) => "",
        }
    }
}

/// Two knobs that cannot hold together, each with its value and where it came from.
#[derive(Debug, thiserror::Error)]
#[error(
    "config: {key} = {value}{} conflicts with {other_key} = {other_value}{}: {reason}",
    FromSource(.origin),
    FromSource(.other_origin)
)]
pub struct Conflict {
    pub key: String,
    pub value: String,
    pub origin: Option<Source>,
    pub other_key: String,
    pub other_value: String,
    pub other_origin: Option<Source>,
    pub reason: String,
}
