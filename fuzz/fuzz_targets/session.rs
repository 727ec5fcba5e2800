//! `cargo +nightly fuzz run session`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::session`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::session(data));
