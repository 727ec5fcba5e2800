//! The operator's wire inspector, run as a process: golden frames, errors, stdin.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ronode(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ronode");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("ronode runs")
}

fn decode_json(hex: &str) -> serde_json::Value {
    let out = ronode(&["frame", "decode", hex], None);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

const HELLO_REPLY: &str =
    "0000008b00010002 00c8 0000 000000000000000000000000000000bb 0000 0000000000000007";
const HELLO_JSON: &str = r#"{"max_frame":1048576,"max_inflight":64,"flags_supported":255,"versions":[1],"transports":["tcp+tls"]}"#;

#[test]
fn golden_hello_request() {
    let v = decode_json(
        "00000036 0001 0001 0000 0000 000000000000000000000000000000aa 0000 000000000000002a \
         7b227561223a2273646b2f302e31227d",
    );
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let mut expected = vec![
        "len",
        "ver",
        "flags",
        "code",
        "app_proto_id",
        "tenant_id",
        "cap_len",
        "corr_id",
        "cap_hex",
        "payload_len",
        "wire_payload_len",
        "payload_utf8",
        "payload_hex",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(v["len"], 54);
    assert_eq!(v["flags"], serde_json::json!(["REQ"]));
    assert_eq!(v["tenant_id"], "0x000000000000000000000000000000aa");
    assert_eq!(v["corr_id"], 42);
    assert_eq!(v["payload_utf8"], r#"{"ua":"sdk/0.1"}"#);
}

#[test]
fn golden_hello_reply_and_key_order() {
    let hex = format!("{HELLO_REPLY}{}", hex::encode(HELLO_JSON));
    let out = ronode(&["frame", "decode", &hex], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(r#"{"len":139,"ver":1,"flags":["RESP"],"code":200,"app_proto_id":0,"#),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["payload_utf8"], HELLO_JSON);
    assert_eq!(v["payload_len"], 101);
}

#[test]
fn golden_unallocated_app_decodes() {
    let v = decode_json(
        "0000003100010002 00c8 00c8 000000000000000000000000000000dd 0000 000000000000007b 68656c6c6f20776f726c64",
    );
    assert_eq!(v["app_proto_id"], 200);
    assert_eq!(v["code"], 200);
    assert_eq!(v["payload_utf8"], "hello world");
    assert_eq!(v["payload_hex"], "68656c6c6f20776f726c64");
}

#[test]
fn stdin_and_hello_builder_agree_with_the_golden_frame() {
    let out = ronode(
        &[
            "frame", "hello", "--ua", "sdk/0.1", "--corr", "42", "--tenant", "aa",
        ],
        None,
    );
    assert!(out.status.success());
    let hex = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        hex.trim(),
        "000000360001000100000000000000000000000000000000000000aa0000000000000000002a7b227561223a2273646b2f302e31227d"
    );
    let spaced: String = hex.trim().chars().flat_map(|c| [c, '\n']).collect();
    let out = ronode(&["frame", "decode", "-"], Some(&spaced));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn comp_payload_is_shown_inflated() {
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(4);
    let z = zstd_frame(&text);
    let len = 38 + z.len();
    let hex = format!(
        "{len:08x}00010044000000020000000000000000000000000000000000000000000000000005{}",
        hex::encode(&z)
    );
    let v = decode_json(&hex);
    assert_eq!(v["flags"], serde_json::json!(["EVENT", "COMP"]));
    assert_eq!(v["payload_len"], text.len());
    assert_eq!(v["wire_payload_len"], z.len());
    assert_eq!(v["payload_utf8"], String::from_utf8(text).unwrap());
}

fn zstd_frame(data: &[u8]) -> Vec<u8> {
    let mut enc = ronode_proto::comp::Deflater::default();
    enc.compress(data, 10)
        .expect("compressible within the cap")
        .to_vec()
}

#[test]
fn invalid_frames_exit_1_with_their_label() {
    for (hex, label) in [
        ("00000010000100010000", "truncated"),
        ("00000010 0001 0001 0000 0000 00000000000000000000000000000000 0000 0000000000000001", "bad_len"),
        ("00100001 0001 0001 0000 0000 00000000000000000000000000000000 0000 0000000000000001", "oversize"),
        ("00000026 0002 0001 0000 0000 00000000000000000000000000000000 0000 0000000000000001", "bad_version"),
        ("00000026 0001 0003 0000 0000 00000000000000000000000000000000 0000 0000000000000001", "bad_flags"),
        ("00000027 0001 0001 0000 0000 00000000000000000000000000000000 0001 0000000000000001 ff", "cap_on_non_start"),
        ("00000026 0001 0009 0000 0000 00000000000000000000000000000000 0001 0000000000000001", "cap_out_of_bounds"),
        ("00000026 0001 0002 00c9 0000 00000000000000000000000000000000 0000 0000000000000001", "bad_code"),
        ("00000028 0001 0041 0000 0000 00000000000000000000000000000000 0000 0000000000000001 abcd", "bad_comp"),
        ("00000026 0001 0001 0000 0000 00000000000000000000000000000000 0000 0000000000000001 00", "trailing_bytes"),
    ] {
        let out = ronode(&["frame", "decode", hex], None);
        assert_eq!(out.status.code(), Some(1), "{label}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(&format!("error: {label}: ")), "{label}: {err}");
        assert!(out.stdout.is_empty());
    }
}
