//! `overlay-smoke`: the load generator behind `src/bin/overlay-smoke.rs` (issue 10).
//!
//! One pinned glommio executor drives every TLS session: GETs of one object class (S = 1 KiB,
//! M = 64 KiB, L = 1 MiB) over OAP/1 to a ronode node, or over HTTP/1.1 to any HTTPS server
//! (nginx), with the same rustls + aws-lc-rs stack and the same pacing. Open loop at a fixed rate
//! (latency from each request's scheduled send time) or flat out; warm-up, then a measured window.
//!
//! - [`class`]: the object classes and their deterministic bytes (the same bytes on both servers).
//! - [`parse`]: sans-IO streaming parsers of OAP/1 and HTTP/1.1 responses.
//! - [`tracker`]: requests in flight, completion, digest checks, latency.
//! - [`session`]: the glommio session driver (TLS by hand, batched writes).
//! - [`report`]: the JSON report, percentiles, `/proc` readers.
//! - [`handshake`]: full TLS + HELLO per second, `pq_mode` off vs hybrid.

pub mod class;
pub mod handshake;
pub mod load;
pub mod parse;
pub mod report;
pub mod session;
pub mod tls;
pub mod tracker;

pub use class::{class_object, Class};
