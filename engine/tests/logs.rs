//! The node's logs (issue 15, item 17): `tracing` on stderr, filtered by `RONODE_LOG`, as text
//! or as JSON lines (`--log-format json`, `RONODE_LOG_FORMAT=json`); the stdout lines scripts
//! parse are unchanged (the harness reads them to find the node).

mod common;

use common::{local_command, scratch, start_with};

/// Starts a node, stops it with SIGTERM, and returns what it wrote on stderr.
fn stderr_of_a_run(name: &str, env: &[(&str, &str)], extra: &[&str]) -> String {
    let dir = scratch(name);
    let mut cmd = local_command(&dir, extra);
    cmd.envs(env.iter().copied());
    let node = start_with(cmd);
    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

/// Every stderr line is one JSON object; the drain is logged at INFO with its message.
fn check_json(stderr: &str) {
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let drained = lines
        .iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("drained"))
        })
        .unwrap_or_else(|| panic!("no JSON line says the node drained:\n{stderr}"));
    assert_eq!(drained["level"], "INFO", "{drained}");
    assert!(drained["timestamp"].is_string(), "{drained}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    check_json(&stderr_of_a_run(
        "logs-json-flag",
        &[],
        &["--log-format", "json"],
    ));
    check_json(&stderr_of_a_run(
        "logs-json-env",
        &[("RONODE_LOG_FORMAT", "json")],
        &[],
    ));
}

#[test]
fn ronode_log_filters_what_is_written() {
    // Text by default, with the drain at INFO.
    let text = stderr_of_a_run("logs-text", &[], &[]);
    assert!(
        text.lines()
            .any(|l| l.contains("INFO") && l.contains("drained")),
        "{text}"
    );
    // Above INFO, a clean run logs nothing.
    let quiet = stderr_of_a_run("logs-warn", &[("RONODE_LOG", "warn")], &[]);
    assert!(
        quiet.trim().is_empty(),
        "RONODE_LOG=warn still wrote:\n{quiet}"
    );
}
