//! `cargo +nightly fuzz run frame_decode`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::frame_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::frame_decode(data));
