//! `cargo +nightly fuzz run record`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::record`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::record(data));
