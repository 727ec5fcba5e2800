//! `ronode-admin`: the node's admin plane (`/metrics`, `/healthz`, `/readyz`, `/version`),
//! served by a plain thread that reads the shards' published snapshots and never blocks them.
//!
//! [`AdminServer::start`] takes a listener the caller has bound, the shards' [`StatsBoard`]
//! (see [`metrics`] for the families it exposes), the node's shared [`Readiness`] and its
//! [`VersionInfo`], and serves them from a thread running a current-thread tokio runtime with
//! axum until [`AdminHandle::shutdown`].
//!
//! [`StatsBoard`]: ronode_shards::stats::StatsBoard

#[cfg(feature = "count-allocs")]
pub mod alloc_count;
pub mod metrics;
pub mod readiness;
pub mod server;
pub mod version;

pub use readiness::Readiness;
pub use server::{AdminHandle, AdminServer};
pub use version::VersionInfo;
