//! `cargo +nightly fuzz run gossip_msg`; the properties checked are documented at
//! `ronode_proto::fuzz_targets::gossip_msg`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ronode_proto::fuzz_targets::gossip_msg(data));
