//! `cargo +nightly fuzz run cert`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::cert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::cert(data));
