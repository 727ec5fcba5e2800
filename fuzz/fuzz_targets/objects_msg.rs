//! `cargo +nightly fuzz run objects_msg`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::objects_msg`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::objects_msg(data));
