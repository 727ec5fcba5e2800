//! `cargo +nightly fuzz run error_body`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::error_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::error_body(data));
