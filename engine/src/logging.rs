//! The node's logs: `tracing` events on stderr, one line each, filtered by `RONODE_LOG` (an
//! env-filter directive such as `info` or `warn,ronode::node::peers=debug`; `info` when unset)
//! and written as text or, for a log pipeline, as one JSON object per line
//! (`--log-format json` or `RONODE_LOG_FORMAT=json`). The lines `ronode run` prints on stdout
//! (where it listens, its NodeId) are not logs: scripts read them, and they stay as they are.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// The variable holding the filter directives.
pub const FILTER_VAR: &str = "RONODE_LOG";
/// The filter when `RONODE_LOG` is unset: start-up, drain, peers up and down, and problems.
const DEFAULT_FILTER: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `TIMESTAMP LEVEL target: message key=value ...`
    Text,
    /// `{"timestamp":...,"level":...,"fields":{"message":...},"target":...}`
    Json,
}

/// Installs the process's log subscriber. A `RONODE_LOG` that does not parse is reported (on
/// stderr, the logs' own channel) and the default used: a typo must not silence the node.
pub fn init(format: LogFormat) {
    let filter = match std::env::var(FILTER_VAR) {
        Err(_) => EnvFilter::new(DEFAULT_FILTER),
        Ok(directives) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            eprintln!(
                "{FILTER_VAR}={directives:?} is not a filter ({e}); using {DEFAULT_FILTER:?}"
            );
            EnvFilter::new(DEFAULT_FILTER)
        }),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // Only one subscriber per process: `ronode run` calls this once, before anything logs.
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = installed {
        eprintln!("logging: {e}");
    }
}
