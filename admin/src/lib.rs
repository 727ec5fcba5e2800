//! `ronode-admin`: the node's admin plane (`/metrics`, `/healthz`, `/readyz`, `/version`),
//! served by a plain thread that reads the shards' published snapshots and never blocks them.
//!
//! Today it holds the readiness rule ([`readiness::readyz`]); the HTTP thread and the metrics
//! registry arrive with the running node.

pub mod readiness;
